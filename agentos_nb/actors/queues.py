"""Typed, durable queues: an awake actor's mailbox, its messages, and the consumer API `c.queue`.

Every change is written through to the store before it counts: a send returns once the message
is stored, an acknowledgement removes it from the store, and a delivery is recorded as a lease.
The mailbox keeps the awake actor's pending messages in memory so that delivery never queries
the store; on wake it reloads them, and a lease found there (a delivery cut short by a crash)
counts as a failed attempt.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, Literal, NamedTuple, TypeVar

import pydantic
import pydantic_core

from agentos_nb.actors.deadlines import deadline_after, wait_until
from agentos_nb.actors.definition import ActorDefinition, QueueSpec
from agentos_nb.errors import (
    AgentOSError,
    AlreadyCompleted,
    MessageReleased,
    MessageTooLarge,
    PreviousMessageNotCompleted,
    QueueFull,
    UnknownQueue,
    ValidationError,
)
from agentos_nb.events import (
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
Outcome = Literal["completed", "dead_lettered"]
CLOSED_POLL_SECONDS = 0.05
SettledCallback = Callable[[int, Outcome, Any, "str | None"], None]


class MailboxClosed(Exception):
    """Internal: the actor is going to sleep; the caller should wake it again and retry."""


class Message:
    """One delivered (or pending) queue message, as the consumer sees it."""

    __slots__ = ("_mailbox", "_record", "body", "completable", "id", "name", "settled")

    def __init__(self, mailbox: Mailbox, record: MessageRecord, body: Any) -> None:
        self._mailbox = mailbox
        self._record = record
        self.id = record.message_id
        self.name = record.queue  # the queue the message came from
        self.body = body
        self.completable = False
        self.settled = False

    @property
    def attempt(self) -> int:
        """How many times this message has been delivered, this delivery included."""
        return self._record.attempt

    @property
    def created_at(self) -> float:
        return self._record.created_at

    async def complete(self, response: Any = None) -> None:
        """Acknowledge the message; for a queue with a response type, `response` is its answer."""
        await self._mailbox.complete(self, response)

    def __repr__(self) -> str:
        return f"Message(id={self.id}, queue={self.name!r}, attempt={self.attempt}, body={self.body!r})"


class Mailbox:
    """The queues of one awake actor: pending messages in FIFO order, and those in flight."""

    def __init__(
        self,
        *,
        ref: ActorRef,
        definition: ActorDefinition,
        plan: QueuePlan,
        store: Store,
        bus: EventBus,
        on_settled: SettledCallback,
        on_activity: Callable[[], None],
    ) -> None:
        self._ref = ref
        self._definition = definition
        self._store = store
        self._store_may_suspend = store.may_suspend
        self._bus = bus
        self._on_settled = on_settled
        self._on_activity = on_activity
        self._plan = plan
        # Per queue, made on first use: most of an idle actor's queues never hold anything.
        self._pending: dict[str, deque[Message]] = {}
        self._held: dict[str, int] = dict.fromkeys(definition.queues, 0)
        self.in_flight: dict[int, Message] = {}
        self._consumers: list[tuple[frozenset[str], asyncio.Future[None]]] = []
        self._room: dict[str, list[asyncio.Future[None]]] = {}
        self.closed = False
        self.received_while_closed = False
        self.completed_total = 0

    # --- loading -----------------------------------------------------------------------------

    async def load(self) -> None:
        """Bring the actor's stored messages back after a wake; interrupted deliveries count."""
        max_attempts = self._definition.options.max_attempts
        for record in await self._store.load_queues(self._ref.actor_id):
            spec = self._definition.queues.get(record.queue)
            if spec is None:
                await self._bury(record, f"queue {record.queue!r} is no longer declared")
                continue
            try:
                body = spec.body.validate_json(record.body)
            except pydantic.ValidationError as error:
                await self._bury(record, f"stored body no longer fits the queue: {error}")
                continue
            if record.status == "leased":
                if record.attempt >= max_attempts:
                    await self._bury(record, _unacknowledged(record.attempt))
                    continue
                await self._store.release(record.message_id)
                record.status = "pending"
                self._emit_redelivered(record)
            self._queue(record.queue).append(Message(self, record, body))
            self._held[record.queue] += 1

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
            value, data = _encode(codec.validate_body, codec.dump_body, body, f"body for queue {name!r}")
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
        while self._held[name] >= max_size:
            if not block:
                raise self._reject(name, _full(name, max_size))
            if not await self._wait_for_room(name, deadline):
                raise self._reject(name, _full(name, max_size))
        self._held[name] += 1  # reserve the place before the store write can yield

        def stored(record: MessageRecord) -> Message:
            message = Message(self, record, value)
            self._queue(name).append(message)
            if self.closed:
                self.received_while_closed = True
            else:
                self._wake_consumer(name)
            if self._bus.active:
                self._bus.publish(
                    MessageEnqueued(actor=self._ref, queue=name, message_id=message.id, size=len(data))
                )
            return message

        def not_stored() -> None:
            self._held[name] -= 1

        write = self._store.enqueue(self._ref.actor_id, name, data, time.time())
        return await self._commit(write, stored, not_stored)

    def pending_count(self) -> int:
        return sum(len(q) for q in self._pending.values())

    def depth(self, name: str) -> int:
        """Messages of queue `name` waiting to be delivered."""
        pending = self._pending.get(name)
        return 0 if pending is None else len(pending)

    # --- consuming -----------------------------------------------------------------------------

    def check_names(self, names: str | Iterable[str] | None) -> frozenset[str]:
        name_sets = self._plan.name_sets
        cached = name_sets.get(names) if isinstance(names, str | None) else None
        if cached is not None:
            return cached
        chosen = frozenset([names] if isinstance(names, str) else names)
        unknown = chosen - self._plan.limits.keys()
        if unknown:
            raise UnknownQueue(f"actor {self._ref.name!r} has no queue {sorted(unknown)[0]!r}")
        if isinstance(names, str):
            name_sets[names] = chosen
        return chosen

    def take(self, names: frozenset[str], count: int) -> list[Message]:
        """Pop up to `count` pending messages, oldest first across `names`."""
        taken: list[Message] = []
        while len(taken) < count:
            oldest: deque[Message] | None = None
            for name in names:
                candidates = self._pending.get(name)
                if candidates and (oldest is None or candidates[0]._record.seq < oldest[0]._record.seq):
                    oldest = candidates
            if oldest is None:
                break
            message = oldest.popleft()
            self.in_flight[message.id] = message
            taken.append(message)
        return taken

    async def lease(self, message: Message) -> None:
        record = message._record
        record.attempt += 1
        record.status = "leased"

        def stored(_: None) -> None:
            if self._bus.active:
                self._bus.publish(
                    MessageReceived(
                        actor=self._ref, queue=record.queue, message_id=message.id, attempt=record.attempt
                    )
                )

        await self._commit(self._store.lease(message.id), stored)

    async def wait_for_message(self, names: frozenset[str], deadline: float | None) -> bool:
        """Wait until one of `names` may have a message; False on timeout or when closed."""
        if self.closed:
            return False
        waiter = asyncio.get_running_loop().create_future()
        entry = (names, waiter)
        self._consumers.append(entry)
        arrived = False
        try:
            arrived = await _until(waiter, deadline)
            return arrived and not self.closed
        finally:
            if entry in self._consumers:
                self._consumers.remove(entry)
            if not arrived and waiter.done() and not waiter.cancelled():
                for name in names:  # woken, but leaving (cancelled): hand the message on
                    if self._pending.get(name):
                        self._wake_consumer(name)

    @property
    def consumer_waiting(self) -> bool:
        return bool(self._consumers)

    # --- settling ------------------------------------------------------------------------------

    async def complete(self, message: Message, response: Any) -> None:
        """The consumer's `complete()`: the response is checked against the queue's type."""
        if message.settled:
            raise AlreadyCompleted(f"message {message.id} was already completed")
        if self.in_flight.get(message.id) is not message:
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
        value, data = _encode(
            codec.validate_response, codec.dump_response, response, f"response for queue {message.name!r}"
        )
        await self.acknowledge(message, value, data)

    async def acknowledge(
        self, message: Message, response: Any = None, response_data: bytes | None = None
    ) -> None:
        """Remove a delivered message for good, keeping its response for whoever waits on it."""
        message.settled = True
        del self.in_flight[message.id]

        def stored(_: None) -> None:
            self._free(message.name)
            self.completed_total += 1
            self._on_settled(message.id, "completed", response, None)
            self._on_activity()
            if self._bus.active:
                self._bus.publish(
                    MessageCompleted(
                        actor=self._ref, queue=message.name, message_id=message.id, response=response
                    )
                )

        def not_stored() -> None:
            message.settled = False
            self.in_flight[message.id] = message

        await self._commit(self._store.complete(message.id, response_data), stored, not_stored)

    async def release(self, messages: list[Message], *, error: str | None) -> None:
        """Give messages back unacknowledged; with an `error` this delivery failed and counts."""
        max_attempts = self._definition.options.max_attempts
        for message in sorted(messages, key=lambda m: m._record.seq, reverse=True):
            if message.settled or self.in_flight.pop(message.id, None) is None:
                continue
            record = message._record
            if error is not None and record.attempt >= max_attempts:
                message.settled = True
                await self._bury(record, f"{error} (after {record.attempt} attempts)", held=message)
                continue
            await self._commit(self._store.release(message.id), functools.partial(self._requeue, message))

    def _requeue(self, message: Message, _: None = None) -> None:
        """Put a released message back at the head of its queue, once the store knows.

        It goes back as a new Message: whoever still holds the old one (a task the crashed
        run loop started) gets MessageReleased from complete(), not a false success."""
        record = replace(message._record, status="pending")
        self._queue(message.name).appendleft(Message(self, record, message.body))
        self._emit_redelivered(record)
        self._wake_consumer(message.name)

    def close(self) -> None:
        """Stop handing out messages: waiting consumers and blocked senders return at once."""
        self.closed = True
        for _, waiter in self._consumers:
            if not waiter.done():
                waiter.set_result(None)
        for waiters in self._room.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def adopt(self, record: MessageRecord) -> None:
        """Take in a message the store moved back to pending (a replayed dead letter)."""
        body = self._definition.queues[record.queue].body.validate_json(record.body)
        self._queue(record.queue).append(Message(self, record, body))
        self._held[record.queue] += 1
        if self.closed:
            self.received_while_closed = True
        else:
            self._wake_consumer(record.queue)

    def live_message_ids(self) -> list[int]:
        return [m.id for q in self._pending.values() for m in q] + list(self.in_flight)

    # --- internals -----------------------------------------------------------------------------

    async def _bury(self, record: MessageRecord, error: str, *, held: Message | None = None) -> None:
        """Dead-letter a message; `held`: it was in flight, and its place frees once stored."""

        def stored(_: None) -> None:
            if held is not None:
                self._free(held.name)
            self._on_settled(record.message_id, "dead_lettered", None, error)
            if self._bus.active:
                self._bus.publish(
                    MessageDeadLettered(
                        actor=self._ref,
                        queue=record.queue,
                        message_id=record.message_id,
                        attempts=record.attempt,
                        error=error,
                    )
                )

        def not_stored() -> None:
            if held is not None:  # still in flight, as the store says: a later stop releases it
                held.settled = False
                self.in_flight[held.id] = held

        await self._commit(self._store.dead_letter(record.message_id, error), stored, not_stored)

    async def _commit(
        self,
        write: Awaitable[R],
        stored: Callable[[R], T],
        not_stored: Callable[[], None] | None = None,
    ) -> T:
        """Await a store write, then update memory to match (`stored`, or `not_stored` if it failed).

        With a store that may suspend, the write is shielded: a caller cancelled while it runs
        still gets memory updated once the write lands, so memory and store never disagree.
        """
        if not self._store_may_suspend:
            try:
                result = await write
            except BaseException:
                if not_stored is not None:
                    not_stored()
                raise
            return stored(result)
        task = asyncio.ensure_future(write)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                task.add_done_callback(lambda done: _land_late(done, stored, not_stored))
                raise
            _land_late(task, stored, not_stored)
            raise
        except BaseException:
            if not_stored is not None:
                not_stored()
            raise
        return stored(result)

    def _free(self, name: str) -> None:
        self._held[name] -= 1
        self._pass_room(name)

    def _queue(self, name: str) -> deque[Message]:
        queue = self._pending.get(name)
        if queue is None:
            queue = self._pending[name] = deque()
        return queue

    def _pass_room(self, name: str) -> None:
        """Wake the first blocked sender still waiting; one that gave up cannot take the room."""
        waiters = self._room.get(name)
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _wait_for_room(self, name: str, deadline: float | None) -> bool:
        if self.closed:
            raise MailboxClosed
        waiter = asyncio.get_running_loop().create_future()
        self._room.setdefault(name, []).append(waiter)
        arrived = False
        try:
            arrived = await _until(waiter, deadline)
        finally:
            if waiter in self._room[name]:
                self._room[name].remove(waiter)
            elif not arrived and waiter.done() and not waiter.cancelled():
                self._pass_room(name)  # woken, but leaving (cancelled or timed out): hand it on
        if self.closed:
            raise MailboxClosed
        return arrived

    def _wake_consumer(self, name: str) -> None:
        for names, waiter in self._consumers:
            if name in names and not waiter.done():
                waiter.set_result(None)
                return

    def _reject(self, name: str, error: AgentOSError) -> AgentOSError:
        if self._bus.active:
            self._bus.publish(
                MessageRejected(actor=self._ref, queue=name, code=error.code, reason=str(error))
            )
        return error

    def _emit_redelivered(self, record: MessageRecord) -> None:
        if self._bus.active:
            self._bus.publish(
                MessageRedelivered(
                    actor=self._ref, queue=record.queue, message_id=record.message_id, attempt=record.attempt
                )
            )


class QueueConsumer:
    """`c.queue`: how an actor reads its queues, one message at a time, and pushes to them.

    A plain message is acknowledged when the consumer asks for the next one (or the run loop
    or action that took it returns); a completable one only by `complete()`. Whatever is still
    held when the run loop or action crashes goes back to its queue as a failed attempt. Each
    task (the run loop, each action call) is its own consumer: one task's `next()` or crash
    never settles what another task is working on.
    """

    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox
        self._holdings: dict[asyncio.Task[Any] | None, list[Message]] = {}
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
        while batch := await self._receive(1, names, None, completable, wait=True):
            yield batch[0]

    async def push(self, name: str, body: Any) -> int:
        """Enqueue onto one of this actor's own queues; returns the message id."""
        message = await self._mailbox.enqueue(name, body)
        return message.id

    async def finish(self) -> None:
        """The current task is done consuming: acknowledge its plain messages, give back the rest."""
        await self._acknowledge_plain(asyncio.current_task())
        await self.abandon(error=None)

    async def abandon(self, *, error: str | None, every_task: bool = False) -> None:
        """Give back what the current task (or every task) holds; an `error` makes it a failed attempt."""
        if every_task:
            held = [m for messages in self._holdings.values() for m in messages]
            self._holdings.clear()
        else:
            held = self._holdings.pop(asyncio.current_task(), [])
        await self._mailbox.release([m for m in held if not m.settled], error=error)

    async def _receive(
        self,
        count: int,
        names: str | Iterable[str] | None,
        deadline: float | None,
        completable: bool,
        *,
        wait: bool,
    ) -> list[Message]:
        mailbox = self._mailbox
        chosen = mailbox.check_names(names)
        task = asyncio.current_task()
        if task in self._holdings:
            for held_message in self._holdings[task]:
                if held_message.completable and not held_message.settled:
                    raise PreviousMessageNotCompleted(
                        f"complete message {held_message.id} from queue {held_message.name!r} "
                        "before asking for another"
                    )
            await self._acknowledge_plain(task)
        while True:
            if mailbox.closed:
                return await self._closed_answer()
            taken = mailbox.take(chosen, count)
            if taken:
                break
            if not wait or not await mailbox.wait_for_message(chosen, deadline):
                return []
        held = self._holdings.setdefault(task, [])
        for message in taken:
            message.completable = completable
            held.append(message)
            await mailbox.lease(message)
        return taken

    async def _closed_answer(self) -> list[Message]:
        """Nothing, since the actor is going to sleep. A loop that keeps asking anyway waits a
        little each time, so it cannot starve the event loop before the grace period ends it."""
        if self._told_closed:
            await asyncio.sleep(CLOSED_POLL_SECONDS)
        self._told_closed = True
        return []

    async def _acknowledge_plain(self, task: asyncio.Task[Any] | None) -> None:
        held = self._holdings.pop(task, None)
        if not held:
            return
        still_open = [m for m in held if m.completable and not m.settled]
        if still_open:
            self._holdings[task] = still_open
        for message in held:
            if not message.completable and not message.settled:
                await self._mailbox.acknowledge(message)


class QueuePlan:
    """What a mailbox needs from its actor type's queue declarations, worked out once per type
    and shared by every instance: 10,000 awake actors need not hold 10,000 copies."""

    def __init__(self, definition: ActorDefinition) -> None:
        self.codecs = {name: _Codec.of(spec) for name, spec in definition.queues.items()}
        self.limits = {name: definition.queue_limits(name) for name in definition.queues}
        self.name_sets: dict[str | None, frozenset[str]] = {None: frozenset(definition.queues)}


class _Codec(NamedTuple):
    """A queue's validators and serialisers, bound once: pydantic-core's own methods skip the
    TypeAdapter wrappers, which cost more than the work on small bodies."""

    validate_body: Callable[[Any], Any]
    dump_body: Callable[[Any], bytes]
    validate_response: Callable[[Any], Any] | None
    dump_response: Callable[[Any], bytes] | None

    @classmethod
    def of(cls, spec: QueueSpec) -> _Codec:
        response = spec.response
        return cls(
            spec.body.validator.validate_python,
            spec.body.serializer.to_json,
            None if response is None else response.validator.validate_python,
            None if response is None else response.serializer.to_json,
        )


def _encode(
    validate: Callable[[Any], Any], dump: Callable[[Any], bytes], raw: Any, subject: str
) -> tuple[Any, bytes]:
    """Validate a body or response and serialise it for the store, as one ValidationError."""
    try:
        value = validate(raw)
        return value, dump(value)
    except pydantic.ValidationError as error:
        raise ValidationError.from_pydantic(subject, error) from None
    except pydantic_core.PydanticSerializationError as error:
        raise ValidationError(f"{subject} cannot be stored as JSON: {error}") from None


def _land_late(
    write: asyncio.Future[Any], stored: Callable[[Any], Any], not_stored: Callable[[], None] | None
) -> None:
    """Finish a write whose caller was cancelled: memory follows whatever the store did."""
    if write.cancelled() or write.exception() is not None:
        if not_stored is not None:
            not_stored()
    else:
        stored(write.result())


async def _until(waiter: asyncio.Future[None], deadline: float | None) -> bool:
    """Await `waiter` until `deadline` (loop time); False if the deadline came first."""
    try:
        await wait_until(waiter, deadline)
    except TimeoutError:
        return False
    return True


def _full(name: str, max_size: int) -> QueueFull:
    return QueueFull(
        f"queue {name!r} is full ({max_size} messages); nothing was stored, retry later "
        "or send with block=True",
        limit=max_size,
    )


def _unacknowledged(attempts: int) -> str:
    return f"delivered {attempts} times without being acknowledged"
