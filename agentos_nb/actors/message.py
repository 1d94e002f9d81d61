"""One queue message as the consumer sees it (`agentos_nb.Message`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentos_nb.store.protocol import MessageRecord

if TYPE_CHECKING:
    from agentos_nb.actors.mailbox import Mailbox


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
        """When the message was stored (Unix time)."""
        return self._record.created_at

    async def complete(self, response: Any = None) -> None:
        """Acknowledge the message; for a queue with a response type, `response` is its answer."""
        await self._mailbox.complete(self, response)

    def __repr__(self) -> str:
        return f"Message(id={self.id}, queue={self.name!r}, attempt={self.attempt}, body={self.body!r})"
