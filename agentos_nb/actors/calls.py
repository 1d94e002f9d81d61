"""`handle.some_action(...)`: one call of an action, the same object in-process and over HTTP.

An action either returns (awaited) or streams (an async generator, iterated with `async for`),
and a remote client cannot tell which before it asks; so the call is both: awaiting it runs the
action and gives its result (for a streaming action, the list of its items), iterating it
gives a streaming action's items as they come.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Generator
from typing import Any, Generic, Protocol, TypeVar

ResultT = TypeVar("ResultT", covariant=True)
ItemT = TypeVar("ItemT", covariant=True)


class ActionTarget(Protocol):
    """What runs the calls: an in-process or a remote actor handle."""

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def stream(self, action: str, /, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]: ...


class ActionCall(Coroutine[Any, Any, ResultT], AsyncIterator[ItemT], Generic[ResultT, ItemT]):
    """One call of `action` on `target`: await it for the result, or `async for` over it for
    a streaming action's items.

    Nothing runs until it is awaited or iterated, and then only once. It is a coroutine, so
    `asyncio.create_task(handle.ping())` and `asyncio.gather(...)` take it as they take an
    `async def` call. Closing it (`await call.aclose()`, or `contextlib.aclosing(call)`)
    stops a stream left early, as closing an async generator does.
    """

    __slots__ = ("_action", "_args", "_items", "_kwargs", "_running", "_target")

    def __init__(self, target: ActionTarget, action: str, /, *args: Any, **kwargs: Any) -> None:
        self._target = target
        self._action = action
        self._args = args
        self._kwargs = kwargs
        self._running: Coroutine[Any, Any, ResultT] | None = None
        self._items: AsyncGenerator[ItemT, None] | None = None

    def _coroutine(self) -> Coroutine[Any, Any, ResultT]:
        if self._running is None:
            self._running = self._target.call(self._action, *self._args, **self._kwargs)
        return self._running

    def _stream(self) -> AsyncGenerator[ItemT, None]:
        if self._items is None:
            self._items = self._target.stream(self._action, *self._args, **self._kwargs)
        return self._items

    def __await__(self) -> Generator[Any, None, ResultT]:
        return self._coroutine().__await__()

    def send(self, value: Any) -> Any:
        return self._coroutine().send(value)

    def throw(self, *exception: Any) -> Any:
        return self._coroutine().throw(*exception)

    def close(self) -> None:
        if self._running is not None:
            self._running.close()

    def __aiter__(self) -> ActionCall[ResultT, ItemT]:
        return self

    def __anext__(self) -> Awaitable[ItemT]:
        return self._stream().__anext__()

    async def aclose(self) -> None:
        if self._items is not None:
            await self._items.aclose()

    def __repr__(self) -> str:
        return f"<call of {self._action} on {self._target!r}>"
