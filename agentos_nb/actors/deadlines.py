"""Time limits and cancellation, told apart from what the work inside them raises.

- Deadlines are event-loop times, so that one `timeout` spans every wait of a call (room in a
  full queue, then the reply) instead of restarting at each.
- `TimeLimit` ends its block with `TimeLimitReached` when its own time is up, so a TimeoutError
  that the work raised (a tool's, an action's) is never mistaken for ours.
- A CancelledError is ours to handle only when nobody asked the task to stop: `being_cancelled()`
  says whether someone did, and `CancelRequest` takes back exactly the cancels it issued, so a
  cancel from elsewhere still wins (pydantic-ai's `_cancel.RunCancellation` works the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


async def wait_until(awaitable: Awaitable[T], deadline: float | None) -> T:
    """Await `awaitable`; raises TimeoutError once `deadline` has passed."""
    if deadline is None:
        return await awaitable
    async with asyncio.timeout_at(deadline):
        return await awaitable


class TimeLimitReached(TimeoutError):
    """The `TimeLimit` around the block ran out (not a TimeoutError raised inside it)."""


class TimeLimit:
    """`asyncio.timeout(seconds)` (None: no limit) whose own expiry ends the block with
    `TimeLimitReached`; a TimeoutError from the work inside, and a cancel from elsewhere that
    came as the time ran out, go through as they are."""

    __slots__ = ("_scope",)

    def __init__(self, seconds: float | None) -> None:
        self._scope = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._scope.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._scope.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            raise TimeLimitReached from None
        if isinstance(exc, TimeoutError) and self._scope.expired():  # raised as our time ran out
            raise TimeLimitReached from None


def being_cancelled() -> bool:
    """Whether the current task has been asked to stop (a cancel not taken back). A
    CancelledError caught while it has not came from below: work it awaited was cancelled by
    someone else, or code raised it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class CancelRequest:
    """A stop we ask of one task, told apart from a cancel that comes from elsewhere."""

    __slots__ = ("_issued", "requested")

    def __init__(self) -> None:
        self.requested = False
        """Sticky: work that has not started yet checks it instead of being cancelled."""
        self._issued = 0

    def cancel(self, task: asyncio.Task[Any] | None) -> None:
        """Ask for the stop, and cancel `task` now if it is given."""
        self.requested = True
        if task is not None and task.cancel():
            self._issued += 1

    def resolve(self) -> bool:
        """In the cancelled task, on catching CancelledError: True if the cancel was ours alone,
        which is then taken back so that the task may end normally; False if it must propagate
        (nobody asked us to stop, or a cancel from elsewhere came too)."""
        task = asyncio.current_task()
        if not self.requested or task is None:
            return False
        while self._issued and task.cancelling():
            task.uncancel()
            self._issued -= 1
        self._issued = 0
        return task.cancelling() == 0
