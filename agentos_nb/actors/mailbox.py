"""An awake actor's mailbox: its queues in memory, written through to the store.

Every change is written through to the store before it counts: a send returns once the message
is stored, an acknowledgement removes it from the store, and a delivery is recorded as a lease.
A write that settles a message carries the actor's state too, if it changed, in the same
transaction; a consumer moving on acknowledges its plain messages and leases the next ones in
one write. The mailbox keeps the awake actor's pending messages in memory so that delivery never queries
the store; on wake it reloads them, and a lease found there (a delivery cut short by a crash)
counts as a failed attempt, and is delivered alone.

A quick consumer of plain messages on a store that suspends gets messages leased ahead of need,
several in one write, each lease durable before its message is handed over; acknowledging one
of them is then written behind, not awaited, and counts once it lands. Memory follows every
write only once it is durable, so nobody (`wait_for`, events) hears of an acknowledgement that
a crash could undo, and the state goes with each acknowledgement as ever.

It is built as anyio's memory object streams are. `MailboxState` holds the queues and who waits
on them, and changes only in steps that never await, so each step is atomic on the event loop.
`Mailbox` is the thin async part around it: waiting for a message or for room, and
`_write_through` (or `_write_behind`, not awaited), the only places that write to the store and
apply a step once it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar

import pydantic

from agentos_nb.actors.completions import Completions
from agentos_nb.actors.deadlines import wait_until
from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.actors.message import Message
from agentos_nb.actors.queue_plan import QueuePlan, encode
from agentos_nb.actors.state_saves import StateSaves, StateWrite
from agentos_nb.errors import (
    AgentOSError,
    AlreadyCompleted,
    MessageReleased,
    MessageTooLarge,
    QueueFull,
    StoreError,
    UnknownQueue,
    ValidationError,
)
from agentos_nb.events import (
    ActorEvent,
    ActorRef,
    EventBus,
    MessageCompleted,
    MessageDeadLettered,
    MessageEnqueued,
    MessageReceived,
    MessageRedelivered,
    MessageRejected,
)
from agentos_nb.store.protocol import MessageRecord, Store

R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger(__name__)


class MailboxClosed(Exception):
    """Internal: the actor is going to sleep; the caller should wake it again and retry."""


class MailboxState:
    """An awake actor's queues in memory: pending messages in FIFO order, those in flight, the
    places taken, and who waits for a message or for room. No method awaits."""

    __slots__ = (
        "closed",
        "completed_total",
        "consumers",
        "held",
        "in_flight",
        "interrupted",
        "pending",
        "received_while_closed",
        "room",
    )

    def __init__(self, queue_names: Iterable[str]) -> None:
        # Per queue, made on first use: most of an idle actor's queues never hold anything.
        self.pending: dict[str, deque[Message]] = {}
        # Places taken per queue: pending, in flight, and reserved while a send is being stored.
        self.held: dict[str, int] = dict.fromkeys(queue_names, 0)
        self.in_flight: dict[int, Message] = {}
        self.consumers: list[tuple[frozenset[str], asyncio.Future[None]]] = []
        self.room: dict[str, list[asyncio.Future[None]]] = {}
        self.closed = False
        self.received_while_closed = False
        self.completed_total = 0
        # Messages found leased on wake: a crash cut their delivery short, perhaps by their doing.
        self.interrupted: set[int] = set()

    # --- reading -------------------------------------------------------------------------------

    @property
    def consumer_waiting(self) -> bool:
        """Whether a consumer waits for a message (a run loop waiting in `next()` is idle)."""
        return bool(self.consumers)

    def pending_count(self) -> int:
        """Messages waiting to be delivered, in every queue."""
        return sum(len(q) for q in self.pending.values())

    def depth(self, name: str) -> int:
        """Messages of queue `name` waiting to be delivered."""
        pending = self.pending.get(name)
        return 0 if pending is None else len(pending)

    def live_message_ids(self) -> list[int]:
        """Every message not settled yet: pending, then in flight."""
        return [m.id for q in self.pending.values() for m in q] + list(self.in_flight)

    # --- arriving ------------------------------------------------------------------------------

    def reserve(self, name: str, max_size: int) -> bool:
        """Take a place in queue `name` for a message about to be stored; False if it is full.
        The place is taken before the store write, which can yield, so that no other send
        takes it meanwhile."""
        if self.held[name] >= max_size:
            return False
        self.held[name] += 1
        return True

    def unreserve(self, name: str) -> None:
        """The message a place was reserved for could not be stored."""
        self.held[name] -= 1

    def append(self, message: Message) -> None:
        """A stored message joins the tail of its queue, its place taken already: a consumer
        waiting for it wakes or, once closed, the actor knows to wake again after its sleep."""
        self._queue(message.name).append(message)
        if self.closed:
            self.received_while_closed = True
        else:
            self.wake_consumer(message.name)

    def adopt(self, message: Message) -> None:
        """Take in a stored message that has no place yet (reloaded on wake, or a replayed
        dead letter)."""
        self.held[message.name] += 1
        self.append(message)

    # --- delivering ----------------------------------------------------------------------------

    def take(self, names: frozenset[str], count: int) -> list[Message]:
        """Pop up to `count` pending messages, oldest first across `names`; they are in flight."""
        taken: list[Message] = []
        while len(taken) < count:
            oldest = self._oldest(names)
            if oldest is None:
                break
            message = oldest.popleft()
            self.in_flight[message.id] = message
            taken.append(message)
        return taken

    def take_ahead(self, names: frozenset[str], limit: int, taken: list[Message]) -> list[Message]:
        """Pop up to `limit` more pending messages to lease together with `taken`, ahead of
        need. None beside or after a message whose delivery a crash cut short: it is leased
        alone, so that a message that kills the process is the only one its crashes count.
        None delivered before either (a failed attempt): a crash before its hand-over would
        count an attempt never made, perhaps its last."""
        ahead: list[Message] = []
        if any(message.id in self.interrupted for message in taken):
            return ahead
        while len(ahead) < limit:
            oldest = self._oldest(names)
            if oldest is None:
                break
            message = oldest[0]
            if message.id in self.interrupted or leased_ahead(message) or message.attempt > 0:
                break
            oldest.popleft()
            self.in_flight[message.id] = message
            ahead.append(message)
        return ahead

    def put_ahead(self, messages: list[Message]) -> None:
        """Messages taken ahead of need go back to the head of their queues, in order, for the
        next consumer to take."""
        for message in reversed(messages):
            del self.in_flight[message.id]
            self._queue(message.name).appendleft(message)
        for message in messages:
            self.wake_consumer(message.name)

    def leased_ahead(self) -> list[Message]:
        """Pending messages leased ahead of need, not handed to any consumer."""
        return [m for q in self.pending.values() for m in q if leased_ahead(m)]

    def _oldest(self, names: frozenset[str]) -> deque[Message] | None:
        oldest: deque[Message] | None = None
        for name in names:
            candidates = self.pending.get(name)
            if candidates and (oldest is None or candidates[0]._record.seq < oldest[0]._record.seq):
                oldest = candidates
        return oldest

    # --- settling ------------------------------------------------------------------------------

    def settle(self, message: Message) -> None:
        """An acknowledged message leaves flight for good while its store write runs."""
        message.settled = True
        del self.in_flight[message.id]

    def unsettle(self, message: Message) -> None:
        """Its settling write failed: the message is in flight again, as the store says, and a
        later stop releases it."""
        message.settled = False
        self.in_flight[message.id] = message

    def withdraw(self, message: Message) -> bool:
        """Take a delivered message out of flight to give it back; False if it was settled or
        given back already."""
        return not message.settled and self.in_flight.pop(message.id, None) is not None

    def free(self, name: str) -> None:
        """A settled message's place is free, its write durable: the first blocked sender still
        waiting may take it."""
        self.held[name] -= 1
        self.pass_room(name)

    def count_completed(self, name: str) -> None:
        """A completion is durable: its place is free, and it counts as the actor's progress."""
        self.free(name)
        self.completed_total += 1

    def requeue(self, message: Message) -> None:
        """Put a released message back at the head of its queue, once the store knows.

        It goes back as a new Message: whoever still holds the old one (a task the crashed
        run loop started) gets MessageReleased from complete(), not a false success."""
        record = replace(message._record, status="pending")
        self._queue(message.name).appendleft(Message(message._mailbox, record, message.body))
        self.wake_consumer(message.name)

    def close(self) -> None:
        """Stop handing out messages: waiting consumers and blocked senders return at once."""
        self.closed = True
        for _, waiter in self.consumers:
            if not waiter.done():
                waiter.set_result(None)
        for waiters in self.room.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # --- waking waiters ------------------------------------------------------------------------

    def wake_consumer(self, name: str) -> None:
        """Wake the first consumer waiting on queue `name`."""
        for names, waiter in self.consumers:
            if name in names and not waiter.done():
                waiter.set_result(None)
                return

    def pass_message(self, names: frozenset[str]) -> None:
        """A consumer woken for a message left without it (cancelled): wake another instead."""
        for name in names:
            if self.pending.get(name):
                self.wake_consumer(name)

    def pass_room(self, name: str) -> None:
        """Wake the first blocked sender still waiting; one that gave up cannot take the room."""
        waiters = self.room.get(name)
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def _queue(self, name: str) -> deque[Message]:
        queue = self.pending.get(name)
        if queue is None:
            queue = self.pending[name] = deque()
        return queue


class Mailbox:
    """The queues of one awake actor: `state` in memory, every change written through to the
    store first, and the waits for a message or for room."""

    __slots__ = (
        "_bus",
        "_completions",
        "_definition",
        "_leases_ahead",
        "_on_activity",
        "_plan",
        "_ref",
        "_saves",
        "_store",
        "_store_may_suspend",
        "state",
    )

    def __init__(
        self,
        *,
        ref: ActorRef,
        definition: ActorDefinition,
        plan: QueuePlan,
        store: Store,
        bus: EventBus,
        completions: Completions,
        saves: StateSaves,
        on_activity: Callable[[], None],
    ) -> None:
        self._ref = ref
        self._definition = definition
        self._store = store
        self._store_may_suspend = store.may_suspend
        # A crash counts a delivery of each message leased ahead: with one attempt allowed, that
        # would bury messages nobody ever saw. (Once is all it costs: after a crash each goes alone.)
        self._leases_ahead = store.may_suspend and definition.options.max_attempts > 1
        self._bus = bus
        self._completions = completions
        self._saves = saves
        self._on_activity = on_activity
        self._plan = plan
        self.state = MailboxState(definition.queues)

    # --- loading -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Bring the actor's stored messages back after a wake; interrupted deliveries count."""
        for record in await self._store.load_queues(self._ref.actor_id):
            await self._reload(record)

    async def _reload(self, record: MessageRecord) -> None:
        """One stored message back, or buried if it no longer fits; a lease found here is a
        delivery cut short, so it goes back to pending as a failed attempt."""
        if record.error is not None:  # the store could not read it back as it was written
            await self._quarantine(record, record.error)
            return
        spec = self._definition.queues.get(record.queue)
        if spec is None:
            await self._bury(record, f"queue {record.queue!r} is no longer declared")
            return
        try:
            body = spec.body.validate_json(record.body)
        except pydantic.ValidationError as error:
            await self._bury(record, f"stored body no longer fits the queue: {error}")
            return
        if record.status != "leased":
            self.state.adopt(Message(self, record, body))
        elif record.attempt >= self._definition.options.max_attempts:
            await self._bury(record, _unacknowledged(record.attempt))
        else:
            released = self._store.release(record.message_id)
            await self._write_through(released, lambda _: self._released_on_wake(record, body))

    async def _quarantine(self, record: MessageRecord, damage: str) -> None:
        """A message damaged in the store goes to the dead letters with the reason, so that it
        blocks none of its actor's other messages; if even that cannot be written, it is
        reported and skipped (left where it is: the next wake tries again)."""
        try:
            await self._bury(record, damage)
        except StoreError as error:
            logger.warning(
                "message %d of actor %s (%s) was skipped: %s; dead-lettering it failed too: %s",
                record.message_id,
                self._ref.name,
                self._ref.actor_id,
                damage,
                error,
            )

    # --- producing -----------------------------------------------------------------------------

    async def enqueue(
        self, name: str, body: Any, *, block: bool = False, deadline: float | None = None
    ) -> Message:
        """Validate and store a message; refuses (storing nothing) when it cannot be taken."""
        codec = self._plan.codecs.get(name)
        if codec is None:
            declared = ", ".join(sorted(self._definition.queues)) or "none"
            raise self._reject(
                name,
                UnknownQueue(f"actor {self._ref.name!r} has no queue {name!r} (declared: {declared})"),
            )
        try:
            value, data = encode(codec.validate_body, codec.dump_body, body, f"body for queue {name!r}")
        except ValidationError as error:
            raise self._reject(name, error) from None
        max_size, max_bytes = self._plan.limits[name]
        if len(data) > max_bytes:
            raise self._reject(
                name,
                MessageTooLarge(
                    f"body for queue {name!r} is {len(data)} bytes as JSON; the limit is {max_bytes}",
                    size=len(data),
                    limit=max_bytes,
                ),
            )
        while not self.state.reserve(name, max_size):
            if not block or not await self._wait_for_room(name, deadline):
                raise self._reject(name, _full(name, max_size))
        return await self._write_through(
            self._store.enqueue(self._ref.actor_id, name, data, time.time()),
            lambda record: self._enqueued(record, value, len(data)),
            lambda: self.state.unreserve(name),
        )

    async def replay(self, message_id: int) -> MessageRecord:
        """Move a dead letter back to the tail of its queue: in the store, then here. One that no
        longer fits (its queue's type changed, or the queue is gone) stays dead, and the error
        says why, rather than going back to a queue that could never deliver it."""
        stored = await self._store.get_message(message_id)
        if stored is not None and stored.status == "dead":
            spec = self._definition.queues.get(stored.queue)
            if spec is None:
                raise UnknownQueue(f"dead letter {message_id}'s queue {stored.queue!r} is no longer declared")
            try:
                spec.body.validate_json(stored.body)
            except pydantic.ValidationError as error:
                raise ValidationError.from_pydantic(
                    f"dead letter {message_id} no longer fits queue {stored.queue!r}; its body", error
                ) from None
        return await self._write_through(self._store.replay(message_id), self._replayed)

    # --- consuming -----------------------------------------------------------------------------

    def check_names(self, names: str | Iterable[str] | None) -> frozenset[str]:
        """The queues a consumer asks for, checked once per name set; None means all of them."""
        name_sets = self._plan.name_sets
        cached = name_sets.get(names) if isinstance(names, str | None) else None
        if cached is not None:
            return cached
        chosen = frozenset([names] if isinstance(names, str) else names or ())
        unknown = chosen - self._plan.limits.keys()
        if unknown:
            raise UnknownQueue(f"actor {self._ref.name!r} has no queue {sorted(unknown)[0]!r}")
        if isinstance(names, str):
            name_sets[names] = chosen
        return chosen

    async def wait_for_message(self, names: frozenset[str], deadline: float | None) -> bool:
        """Wait until one of `names` may have a message; False on timeout or when closed."""
        state = self.state
        if state.closed:
            return False
        waiter = asyncio.get_running_loop().create_future()
        entry = (names, waiter)
        state.consumers.append(entry)
        arrived = False
        try:
            arrived = await _until(waiter, deadline)
            return arrived and not state.closed
        finally:
            if entry in state.consumers:
                state.consumers.remove(entry)
            if not arrived and waiter.done() and not waiter.cancelled():
                state.pass_message(names)

    async def deliver(
        self,
        taken: list[Message],
        acknowledged: list[Message],
        *,
        names: frozenset[str] = frozenset(),
        ahead: int = 0,
    ) -> asyncio.Future[Any] | None:
        """Record the delivery of `taken` (from now on each counts as an attempt) and acknowledge
        `acknowledged`, plain messages the same consumer is done with, with the state if it
        changed: one store write, so a consumer moving on costs one round trip, not two.
        Either list may be empty.

        With `ahead`, up to that many more messages of `names` are leased in the same write,
        ahead of need, for the consumers that come next: taking one then needs no write, each
        lease durable already. Their acknowledgements are then written behind, as the consumer
        goes on: the returned write, None if everything has landed. Memory learns of each once
        it is durable, as of every write, and the state goes with it.
        """
        if taken and self._leases_ahead and all(leased_ahead(m) for m in taken):
            write = self._saves.pending() if acknowledged else None
            behind = self._acknowledge_behind(acknowledged, write) if acknowledged else None
            self._handed_over(taken)
            return behind
        write = self._saves.pending() if acknowledged else None
        fresh = [m for m in taken if not leased_ahead(m)]
        extra = self.state.take_ahead(names, ahead, fresh) if ahead and self._leases_ahead else []
        for message in acknowledged:
            self.state.settle(message)
        for message in (*fresh, *extra):
            message._record.attempt += 1
            message._record.status = "leased"
        await self._write_through(
            self._store.acknowledge_and_lease(
                [m.id for m in acknowledged], [m.id for m in (*fresh, *extra)], state=_data(write)
            ),
            lambda _: self._delivered(taken, acknowledged, write, extra),
            lambda: self._undelivered(acknowledged, extra),
        )
        return None

    def _acknowledge_behind(
        self, acknowledged: list[Message], write: StateWrite | None
    ) -> asyncio.Future[Any]:
        for message in acknowledged:
            self.state.settle(message)
        return self._write_behind(
            self._store.acknowledge_and_lease([m.id for m in acknowledged], [], state=_data(write)),
            lambda _: self._delivered([], acknowledged, write, []),
            lambda: self._unsettle(acknowledged),
        )

    async def unlease_ahead(self) -> None:
        """As the mailbox closes: messages leased ahead and never handed to a consumer go back
        to pending in the store, their attempt taken back, since it was never made."""
        ahead = self.state.leased_ahead()
        if ahead:
            await self._write_through(
                self._store.unlease([m.id for m in ahead]), lambda _: _not_leased(ahead)
            )

    # --- settling ------------------------------------------------------------------------------

    async def complete(self, message: Message, response: Any) -> None:
        """The consumer's `complete()`: the response is checked against the queue's type."""
        if message.settled:
            raise AlreadyCompleted(f"message {message.id} was already completed")
        if self.state.in_flight.get(message.id) is not message:
            raise MessageReleased(
                f"message {message.id} is no longer held by this consumer; it was released for redelivery"
            )
        codec = self._plan.codecs[message.name]
        if codec.validate_response is None or codec.dump_response is None:
            if response is not None:
                raise ValidationError(
                    f"queue {message.name!r} declares no response type, so complete() takes no response"
                )
            await self.acknowledge(message)
            return
        value, data = encode(
            codec.validate_response, codec.dump_response, response, f"response for queue {message.name!r}"
        )
        await self.acknowledge(message, value, data)

    async def acknowledge(
        self, message: Message, response: Any = None, response_data: bytes | None = None
    ) -> None:
        """Remove a delivered message for good, keeping its response for whoever waits on it;
        the state, if it changed, is written in the same transaction."""
        write = self._saves.pending()
        self.state.settle(message)
        await self._write_through(
            self._store.complete(message.id, response_data, state=_data(write)),
            lambda _: self._acknowledged(message, response, write),
            lambda: self.state.unsettle(message),
        )

    async def release(self, messages: list[Message], *, error: str | None) -> None:
        """Give messages back unacknowledged; with an `error` this delivery failed and counts."""
        for message in sorted(messages, key=lambda m: m._record.seq, reverse=True):
            if self.state.withdraw(message):
                await self._give_back(message, error)

    async def _give_back(self, message: Message, error: str | None) -> None:
        """Requeue a message taken out of flight, or bury it if that was its last attempt."""
        record = message._record
        if error is not None and record.attempt >= self._definition.options.max_attempts:
            message.settled = True
            await self._bury(record, f"{error} (after {record.attempt} attempts)", held=message)
            return
        await self._write_through(self._store.release(message.id), lambda _: self._released(message))

    async def _bury(self, record: MessageRecord, error: str, *, held: Message | None = None) -> None:
        """Dead-letter a message, with the state if it changed; `held`: it was in flight, and its
        place frees once stored. A state that cannot be serialised stays out: the message dies
        all the same, and the next save of the state says why."""
        try:
            write = self._saves.pending()
        except ValidationError:
            write = None
        await self._write_through(
            self._store.dead_letter(record.message_id, error, state=_data(write)),
            lambda _: self._buried(record, error, held, write),
            None if held is None else lambda: self.state.unsettle(held),
        )

    # --- writing through -----------------------------------------------------------------------

    async def _write_through(
        self,
        write: Awaitable[R],
        applied: Callable[[R], T],
        undo: Callable[[], None] | None = None,
    ) -> T:
        """Await a store write, then apply the step `applied` (or `undo`, if the write failed,
        what was done ahead of it), so that memory and store never disagree. It and
        `_write_behind` are the only places the mailbox writes to the store.

        With a store that may suspend, the write is shielded: a caller cancelled while it runs
        still gets memory updated once the write lands.
        """
        if not self._store_may_suspend:
            try:
                result = await write
            except BaseException:
                if undo is not None:
                    undo()
                raise
            return applied(result)
        task = asyncio.ensure_future(write)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                task.add_done_callback(lambda done: _land_late(done, applied, undo))
                raise
            _land_late(task, applied, undo)
            raise
        except BaseException:
            if undo is not None:
                undo()
            raise
        return applied(result)

    def _write_behind(
        self, write: Awaitable[R], applied: Callable[[R], Any], undo: Callable[[], None]
    ) -> asyncio.Future[R]:
        """A write of a store that may suspend, not awaited: memory follows it once it lands
        (or fails) as with `_write_through`, and the caller may wait for it later."""
        task = asyncio.ensure_future(write)
        task.add_done_callback(lambda done: _land_late(done, applied, undo))
        return task

    # The steps applied once a write is durable: the state's, then whoever waits, then the event.

    def _enqueued(self, record: MessageRecord, value: Any, size: int) -> Message:
        message = Message(self, record, value)
        self.state.append(message)
        if self._bus.active:
            self._emit(MessageEnqueued, queue=message.name, message_id=message.id, size=size)
        return message

    def _replayed(self, record: MessageRecord) -> MessageRecord:
        body = self._definition.queues[record.queue].body.validate_json(record.body)
        self.state.adopt(Message(self, record, body))
        return record

    def _released_on_wake(self, record: MessageRecord, body: Any) -> None:
        record.status = "pending"
        self.state.interrupted.add(record.message_id)
        if self._bus.active:
            self._emit(
                MessageRedelivered, queue=record.queue, message_id=record.message_id, attempt=record.attempt
            )
        self.state.adopt(Message(self, record, body))

    def _delivered(
        self,
        taken: list[Message],
        acknowledged: list[Message],
        write: StateWrite | None,
        ahead: list[Message],
    ) -> None:
        self._saves.landed(write)
        for message in acknowledged:
            self._acknowledged(message, None, None)
        interrupted = self.state.interrupted
        if interrupted:
            interrupted.difference_update(m.id for m in taken)
        if ahead:
            self.state.put_ahead(ahead)
        self._handed_over(taken)

    def _handed_over(self, taken: list[Message]) -> None:
        if self._bus.active:
            for message in taken:
                self._emit(
                    MessageReceived, queue=message.name, message_id=message.id, attempt=message.attempt
                )

    def _unsettle(self, messages: list[Message]) -> None:
        for message in messages:
            self.state.unsettle(message)

    def _undelivered(self, acknowledged: list[Message], ahead: list[Message]) -> None:
        self._unsettle(acknowledged)
        _not_leased(ahead)
        self.state.put_ahead(ahead)

    def _acknowledged(self, message: Message, response: Any, write: StateWrite | None) -> None:
        message._record.status = "completed"
        self._saves.landed(write)
        self.state.count_completed(message.name)
        self._completions.settle(message.id, "completed", response, None)
        self._on_activity()
        if self._bus.active:
            self._emit(MessageCompleted, queue=message.name, message_id=message.id, response=response)

    def _released(self, message: Message) -> None:
        self.state.requeue(message)
        self._on_activity()  # its handling may have changed the state, which no settling write carried
        if self._bus.active:
            self._emit(MessageRedelivered, queue=message.name, message_id=message.id, attempt=message.attempt)

    def _buried(
        self, record: MessageRecord, error: str, held: Message | None, write: StateWrite | None
    ) -> None:
        record.status = "dead"
        self._saves.landed(write)
        if held is not None:
            self.state.free(held.name)
        self._completions.settle(record.message_id, "dead_lettered", None, error)
        if self._bus.active:
            self._emit(
                MessageDeadLettered,
                queue=record.queue,
                message_id=record.message_id,
                attempts=record.attempt,
                error=error,
            )

    # --- waiting and telling -------------------------------------------------------------------

    async def _wait_for_room(self, name: str, deadline: float | None) -> bool:
        """Wait until queue `name` may have room; False on timeout, MailboxClosed once closed."""
        state = self.state
        if state.closed:
            raise MailboxClosed
        waiter = asyncio.get_running_loop().create_future()
        state.room.setdefault(name, []).append(waiter)
        arrived = False
        try:
            arrived = await _until(waiter, deadline)
        finally:
            if waiter in state.room[name]:
                state.room[name].remove(waiter)
            elif not arrived and waiter.done() and not waiter.cancelled():
                state.pass_room(name)  # woken, but leaving (cancelled or timed out): hand it on
        if state.closed:
            raise MailboxClosed
        return arrived

    def _reject(self, name: str, error: AgentOSError) -> AgentOSError:
        if self._bus.active:
            self._emit(MessageRejected, queue=name, code=error.code, reason=str(error))
        return error

    def _emit(self, kind: type[ActorEvent], **fields: Any) -> None:
        """Publish an event about this actor's queues. Callers check `self._bus.active` first, so
        that a send nobody watches pays for no call: three of them cost a plain send about 5%."""
        self._bus.publish(kind(actor=self._ref, **fields))


def _land_late(
    write: asyncio.Future[Any], applied: Callable[[Any], Any], undo: Callable[[], None] | None
) -> None:
    """Finish a write whose caller was cancelled: memory follows whatever the store did."""
    if write.cancelled() or write.exception() is not None:
        if undo is not None:
            undo()
    else:
        applied(write.result())


async def _until(waiter: asyncio.Future[None], deadline: float | None) -> bool:
    """Await `waiter` until `deadline` (loop time); False if the deadline came first."""
    try:
        await wait_until(waiter, deadline)
    except TimeoutError:
        return False
    return True


def leased_ahead(message: Message) -> bool:
    """Whether a message not yet handed to a consumer was leased ahead of need."""
    return message._record.status == "leased"


def _not_leased(messages: list[Message]) -> None:
    """A lease ahead that the store does not (or no longer) hold: its attempt was never made."""
    for message in messages:
        message._record.status = "pending"
        message._record.attempt -= 1


def _data(write: StateWrite | None) -> bytes | None:
    return None if write is None else write.data


def _full(name: str, max_size: int) -> QueueFull:
    return QueueFull(
        f"queue {name!r} is full ({max_size} messages); nothing was stored, retry later "
        "or send with block=True",
        limit=max_size,
    )


def _unacknowledged(attempts: int) -> str:
    return f"delivered {attempts} times without being acknowledged"
