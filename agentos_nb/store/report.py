"""What a store file holds, read without writing a byte: for `agentos-nb inspect STORE`.

The SQLite store module reads the file (read-only, so safe beside a running registry, and
refusing what `SqliteStore` refuses); this one shapes what it finds for people.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from agentos_nb.errors import StoreUnusable
from agentos_nb.store import sqlite

_PREVIEW = 80


class ActorReport(BaseModel):
    actor_id: str
    name: str
    key: list[str]
    created_at: float
    state: str
    """The state as JSON, cut to a preview."""
    blobs: dict[str, int]
    """Saved blobs (a VM's files, its sessions) by name, with their sizes in bytes."""


class DeadLetterReport(BaseModel):
    message_id: int
    actor_id: str
    queue: str
    attempts: int
    error: str
    body: str


class StoreReport(BaseModel):
    path: str
    size: int
    schema_version: int
    actors: list[ActorReport]
    queues: list[sqlite.QueueCounts]
    dead_letters: list[DeadLetterReport]


def read_store(path: str | Path) -> StoreReport:
    path = Path(path)
    with sqlite.read_only(path) as db:
        version = sqlite.schema_version(db)
        if version == 0:
            raise StoreUnusable(f"{path} holds no agentos_nb store yet (it is empty)")
        blobs = sqlite.blob_sizes(db)
        actors = [
            ActorReport(
                actor_id=actor.actor_id,
                name=actor.name,
                key=list(actor.key),
                created_at=actor.created_at,
                state=_preview(actor.state),
                blobs=blobs.get(actor.actor_id, {}),
            )
            for actor in sqlite.stored_actors(db)
        ]
        queues = sqlite.queue_counts(db)
        dead = [
            DeadLetterReport(
                message_id=letter.message_id,
                actor_id=letter.actor_id,
                queue=letter.queue,
                attempts=letter.attempt,
                error=letter.error or "",
                body=_preview(letter.body),
            )
            for letter in sqlite.all_dead_letters(db)
        ]
    return StoreReport(
        path=str(path),
        size=path.stat().st_size,
        schema_version=version,
        actors=actors,
        queues=queues,
        dead_letters=dead,
    )


def read_blobs(path: str | Path, name: str) -> dict[str, bytes]:
    """Every actor's blob of that name (each VM's "sessions"), in one read."""
    with sqlite.read_only(Path(path)) as db:
        return sqlite.blobs_named(db, name)


def _preview(data: bytes | None) -> str:
    if data is None:
        return ""
    text = bytes(data).decode(errors="replace")
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
