"""The default store: everything in this process's memory.

It survives actor sleep and a replaced registry that is handed the same store object, not a
kernel restart. Its methods never await, so it adds no scheduling points to the hot path.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

from typing_extensions import override

from agentos_nb.errors import ActorAlreadyExists, MessageNotFound
from agentos_nb.store.protocol import ActorRecord, MessageRecord, ScheduleRecord, Store


class MemoryStore(Store):
    """The store `setup(...)` uses unless told otherwise. It remembers the newest
    `completed_retention` completed messages, for `wait_for`: their outcome, not their body."""

    may_suspend = False  # no method awaits anything: the runtime need not shield writes
    durable = False

    def __init__(self, *, completed_retention: int = 10_000) -> None:
        self._completed_retention = completed_retention
        self._actors: dict[str, ActorRecord] = {}
        self._actor_ids: dict[tuple[str, tuple[str, ...]], str] = {}
        self._live: dict[int, MessageRecord] = {}
        self._live_by_actor: dict[str, dict[int, MessageRecord]] = {}
        self._completed: OrderedDict[int, MessageRecord] = OrderedDict()
        self._dead: dict[int, MessageRecord] = {}
        self._schedules: dict[str, ScheduleRecord] = {}
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._counter = itertools.count(1)

    @override
    async def open(self) -> None:
        pass

    @override
    async def close(self) -> None:
        pass

    @override
    async def insert_actor(self, record: ActorRecord) -> None:
        identity = (record.name, record.key)
        if identity in self._actor_ids:
            raise ActorAlreadyExists(f"actor {record.name!r} with key {list(record.key)!r} already exists")
        self._actors[record.actor_id] = replace(record)
        self._actor_ids[identity] = record.actor_id

    @override
    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        actor_id = self._actor_ids.get((name, key))
        return None if actor_id is None else replace(self._actors[actor_id])

    @override
    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        record = self._actors.get(actor_id)
        return None if record is None else replace(record)

    @override
    async def list_actors(self) -> list[ActorRecord]:
        return [replace(record) for record in self._actors.values()]

    @override
    async def save_state(self, actor_id: str, state: bytes) -> None:
        self._write_state(actor_id, state)

    @override
    async def delete_actor(self, actor_id: str) -> None:
        record = self._actors.pop(actor_id, None)
        if record is None:
            return
        del self._actor_ids[(record.name, record.key)]
        for message_id in self._live_by_actor.pop(actor_id, {}):
            del self._live[message_id]
        for table in (self._completed, self._dead):
            for message_id in [m for m, r in table.items() if r.actor_id == actor_id]:
                del table[message_id]
        for schedule_id in [s for s, r in self._schedules.items() if r.actor_id == actor_id]:
            del self._schedules[schedule_id]
        for blob in [b for b in self._blobs if b[0] == actor_id]:
            del self._blobs[blob]

    @override
    async def save_blob(self, actor_id: str, name: str, data: bytes) -> None:
        if actor_id in self._actors:
            self._blobs[(actor_id, name)] = data

    @override
    async def load_blob(self, actor_id: str, name: str) -> bytes | None:
        return self._blobs.get((actor_id, name))

    @override
    async def enqueue(self, actor_id: str, queue: str, body: bytes, created_at: float) -> MessageRecord:
        number = next(self._counter)
        record = MessageRecord(number, number, actor_id, queue, body, created_at)
        self._live[number] = record
        self._live_by_actor.setdefault(actor_id, {})[number] = record
        return MessageRecord(number, number, actor_id, queue, body, created_at)

    @override
    async def load_queues(self, actor_id: str) -> list[MessageRecord]:
        records = self._live_by_actor.get(actor_id, {}).values()
        return sorted((replace(r) for r in records), key=lambda r: r.seq)

    @override
    async def lease(self, message_id: int) -> None:
        _mark_leased(self._live_record(message_id))

    @override
    async def release(self, message_id: int) -> None:
        self._live_record(message_id).status = "pending"

    @override
    async def complete(self, message_id: int, response: bytes | None, *, state: bytes | None = None) -> None:
        self._write_state(self._live_record(message_id).actor_id, state)
        self._settle_completed(message_id, response)

    @override
    async def acknowledge_and_lease(
        self, acknowledged: Sequence[int], leased: Sequence[int], *, state: bytes | None = None
    ) -> None:
        records = [self._live_record(message_id) for message_id in (*acknowledged, *leased)]
        if records:  # all of them live: from here on, nothing can fail halfway
            self._write_state(records[0].actor_id, state)
        for message_id in acknowledged:
            self._settle_completed(message_id, None)
        for record in records[len(acknowledged) :]:
            _mark_leased(record)

    @override
    async def unlease(self, message_ids: Sequence[int]) -> None:
        records = [self._live_record(message_id) for message_id in message_ids]
        for record in records:
            if record.status != "leased":
                raise MessageNotFound(f"message {record.message_id} is not leased")
        for record in records:
            record.status = "pending"
            record.attempt -= 1

    def _settle_completed(self, message_id: int, response: bytes | None) -> None:
        record = self._take_live(message_id)
        record.status = "completed"
        record.response = response
        record.body = b""  # kept for `wait_for` only: 10,000 bodies of 60 KB would be 600 MB
        self._completed[message_id] = record
        while len(self._completed) > self._completed_retention:
            self._completed.popitem(last=False)

    @override
    async def dead_letter(self, message_id: int, error: str, *, state: bytes | None = None) -> None:
        self._write_state(self._live_record(message_id).actor_id, state)
        record = self._take_live(message_id)
        record.status = "dead"
        record.error = error
        self._dead[message_id] = record

    @override
    async def replay(self, message_id: int) -> MessageRecord:
        record = self._dead.pop(message_id, None)
        if record is None:
            raise MessageNotFound(f"no dead letter with id {message_id}")
        record.status, record.attempt, record.error = "pending", 0, None
        record.seq = next(self._counter)
        self._live[message_id] = record
        self._live_by_actor.setdefault(record.actor_id, {})[message_id] = record
        return replace(record)

    @override
    async def get_message(self, message_id: int) -> MessageRecord | None:
        for table in (self._live, self._completed, self._dead):
            record = table.get(message_id)
            if record is not None:
                return replace(record)
        return None

    @override
    async def list_dead_letters(self, actor_id: str) -> list[MessageRecord]:
        return [replace(r) for r in self._dead.values() if r.actor_id == actor_id]

    @override
    async def actors_with_pending(self) -> list[str]:
        return [actor_id for actor_id, live in self._live_by_actor.items() if live]

    @override
    async def add_schedule(self, record: ScheduleRecord) -> None:
        self._schedules[record.schedule_id] = replace(record)

    @override
    async def delete_schedule(self, schedule_id: str) -> bool:
        return self._schedules.pop(schedule_id, None) is not None

    @override
    async def list_schedules(self) -> list[ScheduleRecord]:
        return [replace(r) for r in self._schedules.values()]

    def _write_state(self, actor_id: str, state: bytes | None) -> None:
        """The one place an actor's state is replaced: first, in a write that also settles
        messages, so that if it fails the messages are left as they were."""
        record = self._actors.get(actor_id)
        if record is not None and state is not None:
            record.state = state

    def _live_record(self, message_id: int) -> MessageRecord:
        record = self._live.get(message_id)
        if record is None:
            raise MessageNotFound(f"no pending or leased message with id {message_id}")
        return record

    def _take_live(self, message_id: int) -> MessageRecord:
        record = self._live_record(message_id)
        del self._live[message_id]
        del self._live_by_actor[record.actor_id][message_id]
        return record


def _mark_leased(record: MessageRecord) -> None:
    record.status = "leased"
    record.attempt += 1
