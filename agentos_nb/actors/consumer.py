"""`c.queue`: how an actor's run loop and actions read its queues and push to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from agentos_nb.actors.deadlines import deadline_after
from agentos_nb.actors.mailbox import Mailbox
from agentos_nb.actors.message import Message
from agentos_nb.errors import PreviousMessageNotCompleted

# How long `next()` on a closed mailbox waits when asked again (see `_closed_answer`).
CLOSED_POLL_SECONDS = 0.05
# `iter()` leases messages ahead of need for a loop that handles each in less than this long,
# twice as many at each write up to MAX_AHEAD: there a store round trip is worth saving.
QUICK_SECONDS = 0.002
MAX_AHEAD = 32


class QueueConsumer:
    """`c.queue`: how an actor reads its queues, one message at a time, and pushes to them.

    A plain message is acknowledged when the consumer asks for the next one (or the run loop
    or action that took it returns); a completable one only by `complete()`. Whatever is still
    held when the run loop or action crashes goes back to its queue as a failed attempt. Each
    task (the run loop, each action call) is its own consumer: one task's `next()` or crash
    never settles what another task is working on.

    A loop that handles plain messages quickly gets messages leased ahead of need, several per
    store write, and its acknowledgements are written behind it as it goes on (see
    `Mailbox.deliver`): it waits for the store once per batch, not once per message.
    """

    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox
        self._holdings: dict[asyncio.Task[Any] | None, list[Message]] = {}
        self._behind: dict[asyncio.Task[Any] | None, asyncio.Future[Any]] = {}
        """Per task, its latest acknowledgement written behind: the store lands writes in order."""
        self._told_closed = False

    async def next(
        self,
        names: str | Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        completable: bool = False,
    ) -> Message | None:
        """The next message, or None on timeout or when the actor is going to sleep."""
        batch = await self.next_batch(1, names, timeout=timeout, completable=completable)
        return batch[0] if batch else None

    async def next_batch(
        self,
        count: int,
        names: str | Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        completable: bool = False,
    ) -> list[Message]:
        """Wait for at least one message and return up to `count`, oldest first; [] on timeout
        or when the actor is going to sleep."""
        if count < 1:
            raise ValueError(f"next_batch needs a count of at least 1, not {count}")
        deadline = deadline_after(timeout)
        return await self._receive(count, names, deadline, completable, wait=True)

    async def try_next(
        self, names: str | Iterable[str] | None = None, *, completable: bool = False
    ) -> Message | None:
        """A message if one is pending now, else None; never waits."""
        batch = await self._receive(1, names, None, completable, wait=False)
        return batch[0] if batch else None

    async def iter(
        self, names: str | Iterable[str] | None = None, *, completable: bool = False
    ) -> AsyncIterator[Message]:
        """Messages one at a time, until the actor goes to sleep (then the loop just ends)."""
        clock = asyncio.get_running_loop().time
        ahead = 0
        while batch := await self._receive(1, names, None, completable, wait=True, ahead=ahead):
            handed = clock()
            yield batch[0]
            quick = not completable and clock() - handed < QUICK_SECONDS
            ahead = min(max(2 * ahead, 1), MAX_AHEAD) if quick else 0

    async def push(self, name: str, body: Any) -> int:
        """Enqueue onto one of this actor's own queues; returns the message id."""
        message = await self._mailbox.enqueue(name, body)
        return message.id

    async def finish(self) -> None:
        """The current task is done consuming: acknowledge its plain messages, give back the rest
        (those too, should their acknowledgement fail)."""
        task = asyncio.current_task()
        await self._landed(self._behind.pop(task, None))
        held = self._holdings.get(task, [])
        try:
            await self._acknowledge([m for m in held if not m.completable and not m.settled])
        finally:
            await self.abandon(error=None)

    async def abandon(self, *, error: str | None, every_task: bool = False) -> None:
        """Give back what the current task (or every task) holds; an `error` makes it a failed
        attempt. Every task: also what was leased ahead of need, as the actor stops."""
        if every_task:
            for write in list(self._behind.values()):
                await self._landed(write)
            self._behind.clear()
            held = [m for messages in self._holdings.values() for m in messages]
            self._holdings.clear()
        else:
            task = asyncio.current_task()
            await self._landed(self._behind.pop(task, None))
            held = self._holdings.pop(task, [])
        await self._mailbox.release([m for m in held if not m.settled], error=error)
        if every_task:
            await self._mailbox.unlease_ahead()

    async def _receive(
        self,
        count: int,
        names: str | Iterable[str] | None,
        deadline: float | None,
        completable: bool,
        *,
        wait: bool,
        ahead: int = 0,
    ) -> list[Message]:
        """Asking for more acknowledges the plain messages the task still holds: together with
        the delivery of the next ones (one store write) when there are some already, else at
        once, so that waiting holds nothing back. With `ahead`, a write that leases also leases
        up to that many more, ahead of need."""
        mailbox = self._mailbox
        state = mailbox.state
        chosen = mailbox.check_names(names)
        task = asyncio.current_task()
        done: list[Message] = []
        landing: list[Message] = []  # acknowledged, their write not landed yet
        for held_message in self._holdings.get(task, ()):
            if held_message.settled:
                if held_message._record.status == "leased":
                    landing.append(held_message)
                continue
            if held_message.completable:
                raise PreviousMessageNotCompleted(
                    f"complete message {held_message.id} from queue {held_message.name!r} "
                    "before asking for another"
                )
            done.append(held_message)
        while True:
            if state.closed:
                await self._acknowledge(done)
                return await self._closed_answer()
            taken = state.take(chosen, count)
            if taken:
                break
            if done:
                await self._acknowledge(done)
                done = []
                continue
            if not wait or not await mailbox.wait_for_message(chosen, deadline):
                return []
        for message in taken:
            message.completable = completable
        self._holdings[task] = [*landing, *done, *taken]  # until the store has them, all are held
        behind = await mailbox.deliver(taken, done, names=chosen, ahead=ahead)
        if behind is None:  # after a write that leased, every earlier one has landed too
            self._holdings[task] = [*(m for m in landing if m._record.status == "leased"), *taken]
        else:
            self._behind[task] = behind
        return taken

    async def _closed_answer(self) -> list[Message]:
        """Nothing, since the actor is going to sleep. A loop that keeps asking anyway waits a
        little each time, so it cannot starve the event loop before the grace period ends it."""
        if self._told_closed:
            await asyncio.sleep(CLOSED_POLL_SECONDS)
        self._told_closed = True
        return []

    @staticmethod
    async def _landed(write: asyncio.Future[Any] | None) -> None:
        """Wait until an acknowledgement written behind has landed (or failed, its message then
        held again); waiting never cancels it."""
        if write is not None and not write.done():
            await asyncio.wait((write,))

    async def _acknowledge(self, plain: list[Message]) -> None:
        """Acknowledge plain messages in one store write; they stay held until it is done."""
        if plain:
            await self._mailbox.deliver([], plain)
