"""The store protocol: what the runtime asks of durable storage, and nothing more.

The runtime keeps its working set (awake actors, their queues) in memory and writes every
change through to a store before it is acknowledged. A store therefore only needs simple
keyed reads and writes; the memory store and the SQLite store implement the same protocol and
pass the same conformance tests. Bodies, responses, state and arguments cross it as JSON bytes,
so a store never sees user types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

MessageStatus = Literal["pending", "leased", "completed", "dead"]


@dataclass(slots=True)
class ActorRecord:
    """One actor, awake or asleep: its identity, its saved state and the input it was created
    with (both JSON; `state` is None until first saved)."""

    actor_id: str
    name: str
    key: tuple[str, ...]
    created_at: float
    state: bytes | None = None
    input: bytes | None = None


@dataclass(slots=True)
class MessageRecord:
    """One queue message. `seq` orders a queue (FIFO); `message_id` never changes."""

    message_id: int
    seq: int
    actor_id: str
    queue: str
    body: bytes
    created_at: float
    attempt: int = 0
    status: MessageStatus = "pending"
    response: bytes | None = None
    error: str | None = None


@dataclass(slots=True)
class ScheduleRecord:
    """An action call to make at `run_at` (a Unix timestamp), its arguments as JSON."""

    schedule_id: str
    actor_id: str
    run_at: float
    action: str
    args: bytes
    kwargs: bytes


@runtime_checkable
class Store(Protocol):
    """Durable storage for actors, queues and schedules. Every method is safe on the event loop.

    Records handed in or out are copies. Three rules the runtime relies on:
    - Writes are applied in the order they are called (a single writer, or one per actor).
    - A write, once started, runs to its end even if its caller is cancelled. The runtime
      shields writes of a store whose `may_suspend` is true and brings memory in line
      when they land; a store that never suspends (memory) needs no shielding.
    - `close()` lets the writes already started finish.

    A store need only match it; the two here subclass it, with `@override` on each method, so
    that they share the docstrings below.
    """

    may_suspend: bool
    durable: bool
    """Whether what it holds outlives this process: actors then save work as they go (a VM's
    files after changes), not only when they sleep."""

    async def open(self) -> None:
        """Get ready for calls; the registry calls it as it starts. Opening an open store does
        nothing more, and a closed one may be opened again. Raises `StoreUnusable` if it cannot be."""

    async def close(self) -> None:
        """Let the writes already started finish, then release what `open` took; a store that
        is not open is left as it is."""

    # actors
    async def insert_actor(self, record: ActorRecord) -> None:
        """Raises `ActorAlreadyExists` if (name, key) is taken."""

    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        """The actor of type `name` with that key; None if there is none."""

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """None for an unknown id."""

    async def list_actors(self) -> list[ActorRecord]:
        """Every actor, awake or asleep, in no particular order."""

    async def save_state(self, actor_id: str, state: bytes) -> None:
        """Replaces the actor's state; ignored for an actor that no longer exists."""

    async def delete_actor(self, actor_id: str) -> None:
        """Deletes the actor with its messages, schedules and blobs; an unknown id is a no-op."""

    async def save_blob(self, actor_id: str, name: str, data: bytes) -> None:
        """Keeps named bytes beside an actor's state (a VM's filesystem), replacing any before.
        Ignored for an actor that no longer exists."""

    async def load_blob(self, actor_id: str, name: str) -> bytes | None:
        """What `save_blob` kept under `name`; None if nothing was."""

    # queues
    async def enqueue(self, actor_id: str, queue: str, body: bytes, created_at: float) -> MessageRecord:
        """Stores a pending message at the tail; returns it with its new id and seq."""

    async def load_queues(self, actor_id: str) -> list[MessageRecord]:
        """Pending and leased messages of one actor, in seq order. One the store cannot read
        back as it was written (damaged on disk) comes with `error` saying what is wrong, for
        the runtime to dead-letter it."""

    # The writes of a message's delivery and settling return an awaitable rather than being
    # coroutines: a store may hand back its own future, which the runtime awaits as it is.

    def lease(self, message_id: int) -> Awaitable[None]:
        """Marks a message delivered: status leased, attempt + 1. Like `release`, `complete` and
        `dead_letter`, it takes a pending or a leased message; any other raises `MessageNotFound`."""

    def release(self, message_id: int) -> Awaitable[None]:
        """Puts a leased message back to pending, keeping its place."""

    def complete(
        self, message_id: int, response: bytes | None, *, state: bytes | None = None
    ) -> Awaitable[None]:
        """Acknowledges a message and keeps its response for `get_message`, but not its body:
        a completed message keeps only what `wait_for` needs. With `state`, the state of the
        message's actor is replaced in the same transaction: both are written, or neither (as
        with `save_state`, an actor that no longer exists is left alone)."""

    def dead_letter(self, message_id: int, error: str, *, state: bytes | None = None) -> Awaitable[None]:
        """Takes a message out of its queue for good, keeping `error`, until `replay`. `state`
        as for `complete`."""

    def acknowledge_and_lease(
        self, acknowledged: Sequence[int], leased: Sequence[int], *, state: bytes | None = None
    ) -> Awaitable[None]:
        """In one transaction: completes each of `acknowledged` (no response), leases each of
        `leased` (other messages of the same actor), and with `state` replaces that actor's
        state. All of it or none of it: a message that is neither pending nor leased raises
        `MessageNotFound`, changing nothing. A consumer moving on to its next message costs one
        transaction, not two."""

    def unlease(self, message_ids: Sequence[int]) -> Awaitable[None]:
        """Puts leased messages that were never handed to a consumer (leased ahead of need) back
        to pending, taking back the attempt their lease counted, in one transaction. All or
        none: one that is not leased raises `MessageNotFound`, changing nothing."""

    async def replay(self, message_id: int) -> MessageRecord:
        """Moves a dead letter back to pending at the tail, attempts reset; returns it."""

    async def get_message(self, message_id: int) -> MessageRecord | None:
        """A message in any status; None if unknown, or completed and since forgotten (a store
        keeps only the newest completed ones, for `wait_for`). A completed one has an empty body."""

    async def list_dead_letters(self, actor_id: str) -> list[MessageRecord]:
        """The actor's dead letters, in no particular order."""

    async def actors_with_pending(self) -> list[str]:
        """Ids of actors holding pending or leased messages: the ones to wake on start."""

    # schedules
    async def add_schedule(self, record: ScheduleRecord) -> None:
        """Stores a schedule, replacing one with the same id."""

    async def delete_schedule(self, schedule_id: str) -> bool:
        """True if it existed: firing and cancelling race, and only one may win."""

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule not yet fired or cancelled, in no particular order."""
