"""Agent sessions as the bus reports them: their info, whether they are closed, and their
updates by sequence number, so a transcript can tell when it missed some and fetch them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from agentos_nb.events import ActorRef
from agentos_nb.vm.session_models import (
    CurrentModeUpdate,
    SessionClosed,
    SessionCreated,
    SessionInfo,
    SessionUpdate,
    SessionUpdated,
)

MAX_SESSIONS = 200
"""Sessions kept; the oldest are forgotten first."""
MAX_UPDATES = 2000
"""Updates kept per session; a transcript shows the newest."""


@dataclass(slots=True)
class SessionLog:
    session_id: str
    actor: ActorRef
    info: SessionInfo | None = None
    closed: bool = False
    updates: list[SessionUpdate] = field(default_factory=list)
    """Ordered by `seq`, without repeats."""
    last_at: float = 0.0
    """When it last said something: the newest update, or its creation."""
    trimmed: bool = False
    """Old updates were dropped to stay within MAX_UPDATES (as opposed to never received)."""
    version: int = 0

    def add(self, update: SessionUpdate) -> None:
        """Append an update as it happens (one already held, or older than those held, is merged)."""
        updates = self.updates
        if updates and update.seq <= updates[-1].seq:
            self.merge([update])
            return
        updates.append(update)
        self.last_at = max(self.last_at, update.at)
        if isinstance(update, CurrentModeUpdate) and self.info is not None:
            self.info = self.info.model_copy(update={"mode": update.current_mode_id})
        self._trim()
        self.version += 1

    def merge(self, updates: Iterable[SessionUpdate]) -> None:
        by_seq = {u.seq: u for u in self.updates}
        for update in updates:
            by_seq.setdefault(update.seq, update)
            self.last_at = max(self.last_at, update.at)
        self.updates = [by_seq[seq] for seq in sorted(by_seq)]
        self._trim()
        self.version += 1

    def _trim(self) -> None:
        if len(self.updates) > MAX_UPDATES:
            del self.updates[: len(self.updates) - MAX_UPDATES]
            self.trimmed = True

    def missing(self) -> bool:
        """Whether updates before or between those held were never received (the dashboard
        started after the session, or events were dropped)."""
        if self.trimmed:
            return False
        updates = self.updates
        if not updates:
            return self.info is None or self.info.turns > 0
        return updates[0].seq != 1 or updates[-1].seq - updates[0].seq + 1 != len(updates)

    @property
    def running(self) -> bool:
        """A turn has begun and not ended."""
        for update in reversed(self.updates):
            if update.session_update == "turn_ended":
                return False
            if update.session_update == "user_message_chunk":
                return True
        return self.info is not None and self.info.busy


class SessionBoard:
    """Sessions in the order they were first seen."""

    def __init__(self) -> None:
        self.sessions: OrderedDict[str, SessionLog] = OrderedDict()
        self.version = 0

    def created(self, event: SessionCreated) -> None:
        log = self._log(event.session.session_id, event.actor)
        log.info = event.session
        log.last_at = max(log.last_at, event.session.created_at)
        log.version += 1
        self.version += 1

    def updated(self, event: SessionUpdated) -> None:
        self._log(event.update.session_id, event.actor).add(event.update)
        self.version += 1

    def closed(self, event: SessionClosed) -> None:
        log = self._log(event.session_id, event.actor)
        log.closed = True
        log.version += 1
        self.version += 1

    def discover(self, actor: ActorRef, infos: Iterable[SessionInfo]) -> None:
        """Sessions a VM listed (those that began before this dashboard did)."""
        for info in infos:
            log = self.sessions.get(info.session_id)
            if log is None:
                log = self._log(info.session_id, actor)
            if log.info is None or log.info.turns < info.turns or info.closed:
                log.info = info
                log.last_at = max(log.last_at, info.created_at)
                log.closed = log.closed or info.closed
                log.version += 1
        self.version += 1

    def backfill(self, session_id: str, updates: Iterable[SessionUpdate]) -> None:
        """Updates a VM returned for a session whose transcript had gaps."""
        log = self.sessions.get(session_id)
        if log is None:
            return
        log.merge(updates)
        self.version += 1

    def _log(self, session_id: str, actor: ActorRef) -> SessionLog:
        log = self.sessions.get(session_id)
        if log is None:
            log = self.sessions[session_id] = SessionLog(session_id, actor)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return log
