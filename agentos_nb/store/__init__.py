"""Durable storage behind the runtime: the protocol, and the stores that implement it."""

from __future__ import annotations

from agentos_nb.errors import InvalidDefinition
from agentos_nb.store.memory import MemoryStore
from agentos_nb.store.protocol import ActorRecord, MessageRecord, ScheduleRecord, Store

__all__ = ["ActorRecord", "MemoryStore", "MessageRecord", "ScheduleRecord", "Store", "open_store"]


def open_store(spec: str | Store) -> Store:
    """The store that `setup(store=...)` names: "memory", or a store object."""
    if isinstance(spec, str):
        if spec == "memory":
            return MemoryStore()
        raise InvalidDefinition(f"unknown store {spec!r}: use 'memory' or pass a store object")
    if not isinstance(spec, Store):
        raise InvalidDefinition(f"store must be 'memory' or a Store object, not {type(spec).__name__}")
    return spec
