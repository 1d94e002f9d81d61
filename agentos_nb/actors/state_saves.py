"""Which of an actor's states the store holds, so that a write carries the state only when it changed.

The state travels with the writes that settle messages (an acknowledgement, a dead letter), in
the same store transaction: a restart never shows a message settled whose effect on `state` is
missing. Serialising it for each of them is the price; comparing with what the store holds
spares the store a write when nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic import TypeAdapter

from agentos_nb.errors import ValidationError


@dataclass(frozen=True, slots=True)
class StateWrite:
    """The state as JSON, numbered in the order writes were issued."""

    number: int
    data: bytes


class StateSaves:
    """Compares an actor's state with what its store holds. A write that carries the state asks
    `pending()` first and calls `landed()` once the store has it. Writes are numbered, so that
    one landing after a newer one never makes the older state count as saved."""

    __slots__ = ("_adapter", "_issued", "_landed", "_owner", "_read", "_saved")

    def __init__(
        self, read: Callable[[], Any], adapter: TypeAdapter[Any], saved: bytes | None, owner: str
    ) -> None:
        self._read = read
        self._adapter = adapter
        self._saved = saved
        self._owner = owner
        self._issued = 0
        self._landed = 0

    @property
    def stored(self) -> bool:
        """Whether the store holds any state of the actor: it does once the actor was created."""
        return self._saved is not None

    def pending(self) -> StateWrite | None:
        """The state to write now, or None if the store holds it already. Raises
        `ValidationError` if it cannot be serialised: nothing is written then."""
        try:
            data = self._adapter.dump_json(self._read())
        except pydantic_core.PydanticSerializationError as error:
            raise ValidationError(f"state of actor {self._owner!r} cannot be saved: {error}") from None
        if data == self._saved:
            return None
        self._issued += 1
        return StateWrite(self._issued, data)

    def landed(self, write: StateWrite | None) -> None:
        """`write` is in the store (None: the write carried no state)."""
        if write is not None and write.number > self._landed:
            self._landed = write.number
            self._saved = write.data
