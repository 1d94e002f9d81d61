"""Durable storage behind the runtime: the protocol, and the stores that implement it."""

from __future__ import annotations

import urllib.parse

from agentos_nb.errors import InvalidDefinition
from agentos_nb.store.memory import MemoryStore
from agentos_nb.store.protocol import ActorRecord, MessageRecord, ScheduleRecord, Store

__all__ = ["ActorRecord", "MemoryStore", "MessageRecord", "ScheduleRecord", "Store", "open_store"]


def open_store(spec: str | Store) -> Store:
    """The store that `setup(store=...)` names: "memory", "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db" (with "?synchronous=FULL" to survive power cuts too), or a
    store object."""
    if isinstance(spec, str):
        if spec == "memory":
            return MemoryStore()
        if spec.startswith("sqlite:///"):
            return _sqlite_store(spec)
        raise InvalidDefinition(
            f"unknown store {spec!r}: use 'memory', 'sqlite:///path/to.db' or pass a store object"
        )
    if not isinstance(spec, Store):
        raise InvalidDefinition(f"store must be 'memory' or a Store object, not {type(spec).__name__}")
    return spec


def _sqlite_store(spec: str) -> Store:
    from agentos_nb.store.sqlite import SqliteStore

    parts = urllib.parse.urlsplit(spec)
    path = urllib.parse.unquote(spec.removeprefix("sqlite:///").split("?", 1)[0])
    if not path or path == ":memory:":
        raise InvalidDefinition(f"store {spec!r} names no file: use 'sqlite:///path/to.db' (or 'memory')")
    options = dict(urllib.parse.parse_qsl(parts.query))
    synchronous = options.pop("synchronous", "NORMAL").upper()
    if options:
        raise InvalidDefinition(f"store {spec!r}: unknown option {', '.join(options)} (known: synchronous)")
    if synchronous not in ("NORMAL", "FULL"):
        raise InvalidDefinition(f"store {spec!r}: synchronous must be NORMAL or FULL, not {synchronous}")
    return SqliteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
