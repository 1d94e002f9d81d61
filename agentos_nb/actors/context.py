"""The context `c` that hooks, actions and the run loop receive: the actor's view of itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from agentos_nb.events import ActorBroadcast, ActorRef, EventBus

if TYPE_CHECKING:
    from agentos_nb.actors.handles import Client
    from agentos_nb.actors.instance import ActorInstance
    from agentos_nb.actors.queues import QueueConsumer
    from agentos_nb.actors.scheduling import Schedule

T = TypeVar("T")


class ActorContext:
    def __init__(self, instance: ActorInstance) -> None:
        self._instance = instance

    @property
    def name(self) -> str:
        return self._instance.ref.name

    @property
    def key(self) -> tuple[str, ...]:
        return self._instance.ref.key

    @property
    def actor_id(self) -> str:
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
        return await self._instance.registry.store.load_blob(self.actor_id, name)

    @property
    def state(self) -> Any:
        """Saved to the store after changes (every `state_save_interval`) and on sleep."""
        return self._instance.state

    @state.setter
    def state(self, value: Any) -> None:
        self._instance.state = value
        self._instance.state_touched()

    @property
    def vars(self) -> Any:
        """Ephemeral: rebuilt on every wake, never saved."""
        return self._instance.vars

    @vars.setter
    def vars(self, value: Any) -> None:
        self._instance.vars = value

    @property
    def queue(self) -> QueueConsumer:
        return self._instance.consumer

    @property
    def actors(self) -> Client:
        """A client for calling other actors (and this one) of the same registry."""
        return self._instance.registry.client()

    @property
    def schedule(self) -> Schedule:
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
