"""The dashboard's lazy reads (directory listings, file contents, session lists and histories)
run as background tasks, never in the renderer's tick: a slow VM must not stall the picture.

At most one read per key is under way; each task stays referenced until it ends, and close()
cancels them. Their actions are tagged as the dashboard's own (`observer`), so the Events tab can
leave them out. `done` runs in the task, on the loop thread, and only updates state (marking its
tab dirty): the renderer draws at its next tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from agentos_nb.events import current_observer

T = TypeVar("T")
OBSERVER = "dashboard"
"""What the actions the dashboard calls to draw itself say they were called by."""


class Fetcher:
    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}
        self.closed = False

    def busy(self, key: Hashable) -> bool:
        return key in self._tasks

    def start(
        self,
        key: Hashable,
        read: Callable[[], Awaitable[T]],
        done: Callable[[T | None, Exception | None], None],
    ) -> bool:
        """Run `read()` unless a read under `key` is under way; then `done(result, error)`."""
        if self.closed or key in self._tasks:
            return False

        async def run() -> None:
            current_observer.set(OBSERVER)  # in this task's own context: the reads say they are ours
            try:
                result = await read()
            except Exception as error:
                done(None, error)
            else:
                done(result, None)
            finally:
                self._tasks.pop(key, None)

        self._tasks[key] = asyncio.get_running_loop().create_task(run(), name=f"agentos-dashboard-read:{key}")
        return True

    def close(self) -> None:
        """Cancel every read; their tasks stay referenced until they have ended."""
        self.closed = True
        for task in list(self._tasks.values()):
            task.cancel()
