"""What a store file holds, read without writing a byte: for `agentos-nb inspect STORE`.

It opens the file read-only, so it is safe beside a running registry (WAL lets readers in),
and refuses what `SqliteStore` refuses, with the same errors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from agentos_nb.errors import StoreUnusable
from agentos_nb.store.sqlite import check_store_file

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


class QueueReport(BaseModel):
    actor_id: str
    queue: str
    pending: int
    in_flight: int
    completed: int
    dead: int


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
    queues: list[QueueReport]
    dead_letters: list[DeadLetterReport]


def read_store(path: str | Path) -> StoreReport:
    path = Path(path)
    with _reading(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            raise StoreUnusable(f"{path} holds no agentos_nb store yet (it is empty)")
        blobs: dict[str, dict[str, int]] = {}
        for actor_id, name, size in db.execute("SELECT actor_id, name, length(data) FROM blobs"):
            blobs.setdefault(actor_id, {})[name] = size
        actors = [
            ActorReport(
                actor_id=row[0],
                name=row[1],
                key=json.loads(row[2]),
                created_at=row[3],
                state=_preview(row[4]),
                blobs=blobs.get(row[0], {}),
            )
            for row in db.execute(
                "SELECT actor_id, name, key, created_at, state FROM actors ORDER BY created_at"
            )
        ]
        queues = [
            QueueReport(
                actor_id=row[0], queue=row[1], pending=row[2], in_flight=row[3], completed=row[4], dead=row[5]
            )
            for row in db.execute(
                "SELECT actor_id, queue, sum(status = 'pending'), sum(status = 'leased'), "
                "sum(status = 'completed'), sum(status = 'dead') FROM messages GROUP BY actor_id, queue "
                "ORDER BY actor_id, queue"
            )
        ]
        dead = [
            DeadLetterReport(
                message_id=row[0],
                actor_id=row[1],
                queue=row[2],
                attempts=row[3],
                error=row[4] or "",
                body=_preview(row[5]),
            )
            for row in db.execute(
                "SELECT message_id, actor_id, queue, attempt, error, body FROM messages "
                "WHERE status = 'dead' ORDER BY message_id"
            )
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
    with _reading(Path(path)) as db:
        rows = db.execute("SELECT actor_id, data FROM blobs WHERE name = ?", (name,)).fetchall()
    return {actor_id: bytes(data) for actor_id, data in rows}


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise StoreUnusable(f"{path} does not exist")
    check_store_file(path)
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        yield db
    except sqlite3.Error as error:
        raise StoreUnusable(f"{path} could not be read: {error}") from None
    finally:
        db.close()


def _preview(data: bytes | None) -> str:
    if data is None:
        return ""
    text = bytes(data).decode(errors="replace")
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
