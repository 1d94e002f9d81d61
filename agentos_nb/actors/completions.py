"""Who waits for which message's outcome: `send(wait=True)` and `wait_for` park here until the
message is completed or dead-lettered, its actor is destroyed, or the registry stops."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from agentos_nb.actors.deadlines import wait_until
from agentos_nb.actors.handles import SendResult

Outcome = Literal["completed", "dead_lettered"]


class Completions:
    """The futures waiting on message outcomes, by message id. The registry owns one and hands
    it to every mailbox: mailboxes settle messages, the registry fails what can no longer settle."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: dict[int, list[asyncio.Future[SendResult]]] = {}

    def watch(self, message_id: int) -> asyncio.Future[SendResult]:
        """A future for the message's outcome; `unwatch` it once nobody waits on it."""
        waiter: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(waiter)
        return waiter

    def unwatch(self, message_id: int, waiter: asyncio.Future[SendResult]) -> None:
        """Forget a waiter (a no-op if the message settled meanwhile)."""
        waiters = self._waiters.get(message_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[message_id]

    async def outcome(
        self,
        message_id: int,
        deadline: float | None,
        waiter: asyncio.Future[SendResult] | None = None,
    ) -> SendResult:
        """Wait for the message to settle until `deadline` (loop time), then "timed_out".
        `waiter`: one from `watch`, made before the caller looked at the store."""
        waiter = waiter or self.watch(message_id)
        try:
            return await wait_until(waiter, deadline)
        except TimeoutError:
            return SendResult(status="timed_out", message_id=message_id)
        finally:
            self.unwatch(message_id, waiter)

    def settle(self, message_id: int, outcome: Outcome, response: Any, error: str | None) -> None:
        """A message was completed or dead-lettered: tell whoever waits for it."""
        waiters = self._waiters.pop(message_id, None)
        if not waiters:
            return
        result = SendResult(status=outcome, message_id=message_id, response=response, error=error)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(result)

    def fail(self, message_id: int, error: Exception) -> None:
        """The message will never settle (its actor was destroyed): its waiters get `error`."""
        for waiter in self._waiters.pop(message_id, []):
            if not waiter.done():
                waiter.set_exception(error)

    def fail_all(self, error: Exception) -> None:
        """Nothing will settle any more (the registry stopped): every waiter gets `error`."""
        for message_id in list(self._waiters):
            self.fail(message_id, error)
