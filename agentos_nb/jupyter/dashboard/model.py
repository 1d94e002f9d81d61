"""The dashboard's state, with no widget in sight: bus events folded into one section per tab.

Folding costs a dictionary lookup and a handler or two per event, and touches no widget; the
tabs read the sections when they redraw, and each section's `version` tells a tab whether it
has anything new to show.
"""

from __future__ import annotations

from collections.abc import Callable

from agentos_nb.actors.overview import ActorView
from agentos_nb.events import Event
from agentos_nb.jupyter.dashboard.actors_state import STATUS_AFTER, ActorsState
from agentos_nb.jupyter.dashboard.calls_state import CallLog
from agentos_nb.jupyter.dashboard.event_log import EventLog
from agentos_nb.jupyter.dashboard.processes_state import ProcessBoard
from agentos_nb.jupyter.dashboard.queue_stats import QueueBoard
from agentos_nb.jupyter.dashboard.sessions_state import SessionBoard

Fold = Callable[[Event], None]

ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    **{kind: (("actors", "status_changed"),) for kind in STATUS_AFTER},
    "actor.crashed": (("actors", "crashed"),),
    "message.enqueued": (("actors", "message_moved"),),
    "message.received": (("actors", "message_moved"),),
    "message.redelivered": (("actors", "message_moved"),),
    "message.replayed": (("actors", "message_moved"),),
    "message.completed": (("actors", "message_moved"), ("queues", "completed")),
    "message.dead_lettered": (("actors", "message_moved"), ("queues", "dead_lettered")),
    "message.rejected": (("actors", "seen"), ("queues", "rejected")),
    "action.started": (("actors", "seen"), ("calls", "action_started")),
    "action.finished": (("actors", "action_finished"),),
    "tool.call_started": (("actors", "seen"), ("calls", "call_started")),
    "tool.call_finished": (("calls", "call_finished"),),
    "shell.command": (("actors", "seen"), ("actors", "files_touched")),
    "session.created": (("actors", "seen"), ("sessions", "created")),
    "session.updated": (("sessions", "updated"), ("actors", "session_updated")),
    "session.closed": (("sessions", "closed"),),
    "events.dropped": (("events", "dropped_notice"),),
    "process.started": (("actors", "seen"), ("processes", "started")),
    "process.output": (("processes", "output"),),
    "process.ended": (("processes", "ended"), ("actors", "files_touched")),
}
"""Which sections each event type changes, and how (section, handler); others are only logged."""


class DashboardModel:
    def __init__(self) -> None:
        self.actors = ActorsState()
        self.queues = QueueBoard()
        self.sessions = SessionBoard()
        self.calls = CallLog()
        self.events = EventLog()
        self.processes = ProcessBoard()
        self._folds: dict[type[Event], tuple[Fold, ...]] = {}

    def fold(self, events: list[Event]) -> None:
        self.events.add(events)
        folds = self._folds
        for event in events:
            # By class: reading a pydantic field costs more than looking up the event's type.
            route = folds.get(type(event))
            if route is None:
                route = folds[type(event)] = self._route(event.type)
            for fold in route:
                fold(event)

    def _route(self, kind: str) -> tuple[Fold, ...]:
        return tuple(getattr(getattr(self, section), handler) for section, handler in ROUTES.get(kind, ()))

    def apply_overview(self, views: list[ActorView], at: float) -> None:
        self.actors.apply(views)
        self.queues.apply(views, at)
