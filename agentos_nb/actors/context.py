"""The context `c` that hooks, actions and the run loop receive: the actor's view of itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from agentos_nb.events import ActorBroadcast, ActorRef, EventBus

if TYPE_CHECKING:
    from agentos_nb.actors.consumer import QueueConsumer
    from agentos_nb.actors.handles import Client
    from agentos_nb.actors.instance import ActorInstance
    from agentos_nb.actors.scheduling import Schedule

T = TypeVar("T")
StateT = TypeVar("StateT", default=Any)
VarsT = TypeVar("VarsT", default=Any)


class ActorContext(Generic[StateT, VarsT]):
    """What an actor's code gets as `c`. Generic over the types of `state` and `vars`, like
    pydantic-ai's `RunContext[Deps]`: `c: ActorContext[Counter, httpx.AsyncClient]` types
    `c.state` and `c.vars`; a bare `ActorContext` leaves both `Any`."""

    def __init__(self, instance: ActorInstance) -> None:
        self._instance = instance

    @property
    def name(self) -> str:
        """The actor's type: its name in `setup(use=...)`."""
        return self._instance.ref.name

    @property
    def key(self) -> tuple[str, ...]:
        """What tells this actor from the others of its type (`get_or_create(key)`)."""
        return self._instance.ref.key

    @property
    def actor_id(self) -> str:
        """This actor's id, unique in its store and the same across sleeps."""
        return self._instance.ref.actor_id

    @property
    def ref(self) -> ActorRef:
        """This actor as events name it."""
        return self._instance.ref

    @property
    def events(self) -> EventBus:
        """The registry's event bus; check `events.active` before building an event."""
        return self._instance.registry.bus

    @property
    def durable(self) -> bool:
        """Whether the store outlives this process, so saving as work goes on is worth it."""
        return self._instance.registry.store.durable

    async def save_blob(self, name: str, data: bytes) -> None:
        """Keep bytes too large or too opaque for `state` (a VM's filesystem) in the store."""
        await self._instance.registry.store.save_blob(self.actor_id, name, data)

    async def load_blob(self, name: str) -> bytes | None:
        """What `save_blob` kept under `name`; None if nothing was."""
        return await self._instance.registry.store.load_blob(self.actor_id, name)

    @property
    def state(self) -> StateT:
        """Saved to the store with each message's acknowledgement, in the same transaction;
        otherwise `state_save_interval` after a change, on sleep, and by `save_state()`."""
        return self._instance.state

    @state.setter
    def state(self, value: StateT) -> None:
        self._instance.state = value
        self._instance.state_touched()

    async def save_state(self) -> None:
        """Write `state` to the store now, if it changed since the store last got it: for work
        not tied to a message, whose acknowledgement would carry it. Raises `ValidationError`
        if the state cannot be serialised."""
        await self._instance.save_state()

    @property
    def vars(self) -> VarsT:
        """Ephemeral: rebuilt on every wake, never saved."""
        return self._instance.vars

    @vars.setter
    def vars(self, value: VarsT) -> None:
        self._instance.vars = value

    @property
    def queue(self) -> QueueConsumer:
        """This actor's queues: `await c.queue.next(...)`, `async for m in c.queue.iter()`."""
        return self._instance.consumer

    @property
    def actors(self) -> Client:
        """A client for calling other actors (and this one) of the same registry."""
        return self._instance.registry.client()

    @property
    def schedule(self) -> Schedule:
        """Call one of this actor's actions later (`await c.schedule.after(60, "tick")`), even
        if it sleeps meanwhile."""
        return self._instance.schedule

    @property
    def stopping(self) -> bool:
        """True once the actor has begun to sleep or be destroyed: long work should wind down."""
        return self._instance.phase in ("stopping", "stopped")

    def broadcast(self, name: str, *args: Any) -> None:
        """Publish an `actor.broadcast` event for every subscriber of the registry's bus."""
        bus = self._instance.registry.bus
        if bus.active:
            bus.publish(ActorBroadcast(actor=self._instance.ref, name=name, args=args))

    def keep_awake(self, awaitable: Awaitable[T]) -> asyncio.Future[T]:
        """Run `awaitable` in the background and hold off sleep until it is done."""
        return self._instance.keep_awake(awaitable)

    def sleep(self) -> None:
        """Ask the actor to go to sleep: its queues close at once, running calls get
        `sleep_grace_period` to finish, then are cancelled. Ignored while waking."""
        self._instance.request_stop(destroy=False, asked=True)

    def destroy(self) -> None:
        """Ask the actor to be destroyed, with its state, queues and schedules, after the same
        grace as `sleep()`. Ignored while waking."""
        self._instance.request_stop(destroy=True)
