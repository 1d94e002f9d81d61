"""Deadlines as event-loop times, so that one `timeout` spans every wait of a call (room in a
full queue, then the reply) instead of restarting at each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


async def wait_until(awaitable: Awaitable[T], deadline: float | None) -> T:
    """Await `awaitable`; raises TimeoutError once `deadline` has passed."""
    if deadline is None:
        return await awaitable
    async with asyncio.timeout_at(deadline):
        return await awaitable
