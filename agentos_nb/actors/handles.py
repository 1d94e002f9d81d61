"""The client side: `client.NAME.get_or_create(key)` and the handles it returns.

Handles are cheap and stateless: making one touches nothing. The actor is looked up (or
created) on the first call, and its id is remembered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from typing_extensions import override

from agentos_nb.actors.calls import ActionCall
from agentos_nb.errors import (
    ActorDestroyed,
    ActorNotFound,
    UnknownAction,
    UnknownActorType,
    ValidationError,
)

if TYPE_CHECKING:
    from agentos_nb.actors.registry import Registry

T = TypeVar("T")
HandleT = TypeVar("HandleT")
Key = str | list[str] | tuple[str, ...]
Lookup = Literal["get_or_create", "get", "id"]


class SendResult(BaseModel):
    """What `send` returns: at once with status "enqueued", or the outcome with `wait=True`."""

    status: Literal["enqueued", "completed", "timed_out", "dead_lettered"]
    message_id: int
    response: Any = None
    error: str | None = None


class DeadLetter(BaseModel):
    """A message that failed `max_attempts` deliveries; `replay` puts it back in its queue."""

    message_id: int
    queue: str
    body: Any
    attempts: int
    error: str | None
    created_at: float


def normalize_key(key: Key) -> tuple[str, ...]:
    """A key as the runtime keeps it: "a" is ("a",), a list a tuple. Raises `ValidationError`
    for a part that is not a string."""
    parts = (key,) if isinstance(key, str) else tuple(key)
    for part in parts:
        if not isinstance(part, str):
            raise ValidationError(f"an actor key is a string or a list of strings, not {key!r}")
    return parts


class ActorReference:
    """Which actor a handle names: by key (looked up, or created if `lookup` says so, on first
    use) or by id. The in-process handle and the remote one (`agentos_nb.http.client`) share it."""

    def __init__(
        self,
        name: str,
        *,
        key: tuple[str, ...] | None,
        actor_id: str | None,
        lookup: Lookup,
        create_input: Any = None,
    ) -> None:
        self._name = name
        self._key = key
        self._actor_id = actor_id
        self._lookup = lookup
        self._create_input = create_input

    @property
    def name(self) -> str:
        """The actor's type: its name in `setup(use=...)`."""
        return self._name

    @property
    def key(self) -> tuple[str, ...] | None:
        """The key, or None for a handle made by id that has not been resolved yet."""
        return self._key

    @property
    def actor_id(self) -> str | None:
        """The actor's id, or None until a call (or `resolve()`) has looked it up."""
        return self._actor_id

    def _where(self) -> str:
        return f"key={list(self._key)!r}" if self._key is not None else f"id={self._actor_id!r}"


class ActorHandle(ActorReference):
    """A reference to one actor. Its actions are methods: `await handle.ingest_issue(...)`, or
    `async for item in handle.some_stream(...)` for a streaming action (see `ActionCall`)."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        *,
        key: tuple[str, ...] | None,
        actor_id: str | None,
        lookup: Lookup,
        create_input: Any = None,
    ) -> None:
        super().__init__(name, key=key, actor_id=actor_id, lookup=lookup, create_input=create_input)
        self._registry = registry

    async def resolve(self) -> str:
        """The actor's id, creating the actor first if this is a `get_or_create` handle."""
        if self._actor_id is None:
            assert self._key is not None
            self._actor_id = await self._registry.resolve(
                self._name, self._key, create=self._lookup == "get_or_create", input=self._create_input
            )
        elif self._key is None:
            self._key = await self._registry.key_of(self._name, self._actor_id)
        return self._actor_id

    async def send(
        self,
        queue: str,
        body: Any,
        *,
        wait: bool = False,
        timeout: float | None = None,
        block: bool = False,
    ) -> SendResult:
        """Store a message on one of the actor's queues.

        Returns once the message is stored. With `block=True`, a full queue is waited on
        instead of refused (`QueueFull` once `timeout` passes). With `wait=True`, returns when a
        consumer completes the message, with status "dead_lettered" if it failed
        `max_attempts` times, or with status "timed_out" after `timeout` seconds (the message
        stays queued; `wait_for` picks it up later). If the actor is destroyed meanwhile,
        raises `ActorDestroyed`, and the message is never sent again.
        """
        return await self._retrying(
            functools.partial(
                self._registry.send, queue=queue, body=body, wait=wait, timeout=timeout, block=block
            )
        )

    async def wait_for(self, message_id: int, *, timeout: float | None = None) -> SendResult:
        """Wait for the outcome of a message sent earlier, even by a registry now gone."""
        return await self._retrying(
            lambda actor_id: self._registry.wait_for(actor_id, message_id, timeout=timeout)
        )

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call an action; a streaming one (an async generator) gives the list of what it yielded."""
        return await self._retrying(lambda actor_id: self._registry.invoke(actor_id, action, args, kwargs))

    async def stream(self, action: str, /, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """Call a streaming action and yield its items as they come.

        The action runs inside the actor (holding sleep off, stopping with it), not in the
        caller's task. Closing the iterator cancels it: leave the loop inside
        `contextlib.aclosing(...)`, or drop the iterator, to stop it at once.
        """
        definition = self._registry.definitions[self._name]
        if not inspect.isasyncgenfunction(definition.actions.get(action)):
            raise UnknownAction(f"actor {self._name!r} has no streaming action {action!r}; use call()")
        items: asyncio.Queue[Any] = asyncio.Queue()
        end = object()

        async def run(actor_id: str) -> None:
            await self._registry.invoke(actor_id, action, args, kwargs, sink=items.put_nowait)

        async def call() -> None:
            try:
                await self._retrying(run)
            finally:
                items.put_nowait(end)

        task = asyncio.ensure_future(call())
        try:
            while (item := await items.get()) is not end:
                yield item
            await task  # the action's error, if it failed
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        """The actor's dead letters, of one queue if given; raises `UnknownQueue` for a queue the
        actor does not declare."""
        return await self._retrying(lambda actor_id: self._registry.dead_letters(actor_id, queue))

    async def replay(self, message_id: int) -> None:
        """Put a dead letter back at the tail of its queue, its attempts reset."""
        await self._retrying(lambda actor_id: self._registry.replay(actor_id, message_id))

    def __getattr__(self, action: str) -> Callable[..., ActionCall[Any, Any]]:
        if action.startswith("_"):
            raise AttributeError(action)
        definition = self._registry.definitions[self._name]
        if action not in definition.actions:
            defined = ", ".join(sorted(definition.actions)) or "none"
            raise UnknownAction(f"actor {self._name!r} has no action {action!r} (defined: {defined})")
        return functools.partial(ActionCall, self, action)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._registry.definitions[self._name].actions})

    def __repr__(self) -> str:
        return f"<ActorHandle {self._name} {self._where()}>"

    async def _retrying(self, call: Callable[[str], Awaitable[T]]) -> T:
        """Run `call` on the actor; a `get_or_create` handle whose actor was destroyed before the
        call reached it makes a new one. A call that did reach it is never repeated."""
        actor_id = self._actor_id
        if actor_id is None or self._key is None:
            actor_id = await self.resolve()
        try:
            return await call(actor_id)
        except ActorDestroyed:
            raise  # its message was stored, and may have been worked on: sending again could do it twice
        except ActorNotFound:
            # Retry only if this actor is gone: an action that itself raised ActorNotFound
            # (from a call to another actor) must not run a second time.
            if self._lookup != "get_or_create" or await self._registry.store.get_actor(actor_id) is not None:
                raise
            self._actor_id = None
            return await call(await self.resolve())


class Accessor(ABC, Generic[HandleT]):
    """`client.NAME`: makes handles for one actor type, the same way in-process
    (`ActorAccessor`) and over HTTP (`agentos_nb.http.client`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    @abstractmethod
    def _handle(
        self, key: tuple[str, ...] | None, actor_id: str | None, lookup: Lookup, create_input: Any = None
    ) -> HandleT:
        """A handle naming the actor by `key` or `actor_id`."""

    @abstractmethod
    async def create(self, key: Key = (), *, input: Any = None) -> HandleT:
        """Create the actor now; raises `ActorAlreadyExists` if the key is taken."""

    def get_or_create(self, key: Key = (), *, create_with_input: Any = None) -> HandleT:
        """A handle to the actor with this key, created on the first call if it does not exist
        (its `on_create` then gets `create_with_input`). Makes no call itself."""
        return self._handle(normalize_key(key), None, "get_or_create", create_with_input)

    def get(self, key: Key = ()) -> HandleT:
        """A handle that never creates: calls raise `ActorNotFound` if the actor does not exist."""
        return self._handle(normalize_key(key), None, "get")

    def get_for_id(self, actor_id: str) -> HandleT:
        """A handle to the actor with this id; calls raise `ActorNotFound` if there is none."""
        return self._handle(None, actor_id, "id")


class ActorAccessor(Accessor[ActorHandle]):
    """`client.NAME` in-process: handles on the registry itself, no network in between."""

    def __init__(self, registry: Registry, name: str) -> None:
        super().__init__(name)
        self._registry = registry

    def _handle(
        self, key: tuple[str, ...] | None, actor_id: str | None, lookup: Lookup, create_input: Any = None
    ) -> ActorHandle:
        """An instance of the handle class the actor type asks for (typed, for a VM)."""
        handle_class = self._registry.definitions[self._name].handle_class
        return handle_class(
            self._registry, self._name, key=key, actor_id=actor_id, lookup=lookup, create_input=create_input
        )

    @override
    async def create(self, key: Key = (), *, input: Any = None) -> ActorHandle:
        normalized = normalize_key(key)
        return self._handle(
            normalized, await self._registry.create(self._name, normalized, input=input), "get"
        )

    def __repr__(self) -> str:
        return f"<ActorAccessor {self._name}>"


class Client:
    """In-process access to a registry's actors: `client.writer`, or `client["writer"]`."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getattr__(self, name: str) -> ActorAccessor:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> ActorAccessor:
        if name not in self._registry.definitions:
            defined = ", ".join(sorted(self._registry.definitions)) or "none"
            raise UnknownActorType(f"the registry defines no actor {name!r} (defined: {defined})")
        return ActorAccessor(self._registry, name)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._registry.definitions]
