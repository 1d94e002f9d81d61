"""The Events tab's log: the newest events, how many there were, how many were dropped, and a
one-line summary of each that a filter can match."""

from __future__ import annotations

from collections import deque

from agentos_nb.events import (
    ActionFinished,
    ActionStarted,
    ActorBroadcast,
    ActorCrashed,
    ActorEvent,
    Event,
    EventsDropped,
    MessageCompleted,
    MessageDeadLettered,
    MessageEnqueued,
    MessageReceived,
    MessageRedelivered,
    MessageRejected,
    MessageReplayed,
    ScheduleFired,
    ShellCommandRun,
    ToolCallFinished,
    ToolCallStarted,
)
from agentos_nb.jupyter.dashboard.text import actor_label, clip, compact_json, duration, size
from agentos_nb.vm.session_models import SessionClosed, SessionCreated, SessionUpdated

MAX_EVENTS = 500
"""Events the log keeps."""


class EventLog:
    def __init__(self) -> None:
        self.entries: deque[Event] = deque(maxlen=MAX_EVENTS)
        self.total = 0
        self.dropped = 0
        self.version = 0

    def add(self, events: list[Event]) -> None:
        if events:
            self.entries.extend(events)
            self.total += len(events)
            self.version += 1

    def dropped_notice(self, event: EventsDropped) -> None:
        """The bus's notice of events lost (it was counted as an event by `add`; it is not one)."""
        self.dropped += event.count
        self.total -= 1

    def matching(self, needle: str, limit: int, *, observed: bool = False) -> list[Event]:
        """The newest `limit` events that `needle` matches, newest first; the actions a viewer
        called to draw itself (the dashboard's own reads) only when `observed`."""
        needle = needle.strip().lower()
        found: list[Event] = []
        for event in reversed(self.entries):
            if not observed and is_observed(event):
                continue
            if not needle or matches(event, needle):
                found.append(event)
                if len(found) == limit:
                    break
        return found


def is_observed(event: Event) -> bool:
    """An action a viewer called to show something, not to do work."""
    return isinstance(event, ActionStarted | ActionFinished) and event.observer is not None


def matches(event: Event, needle: str) -> bool:
    """A lowercase `needle` matches a type prefix (`message.`, `tool`), an actor's name or label
    (`writer`, `writer/my-project`); a dropped-events notice always shows."""
    if isinstance(event, EventsDropped) or event.type.startswith(needle):
        return True
    if isinstance(event, ActorEvent):
        actor = event.actor
        return actor.name.lower().startswith(needle) or actor_label(actor.name, actor.key).lower().startswith(
            needle
        )
    return False


def summary(event: Event) -> str:
    """What happened, in one short line (plain text)."""
    if isinstance(event, EventsDropped):
        return f"{event.count:,} events dropped: the dashboard fell behind and skipped them"
    if isinstance(event, MESSAGE_EVENTS):
        return _message_summary(event)
    if isinstance(event, ActionStarted):
        via = event.via
        by = (
            f" (by {via.toolkit}.{via.tool} of {actor_label(via.caller.name, via.caller.key)})" if via else ""
        )
        return f"{event.action}{by}"
    if isinstance(event, ActionFinished):
        outcome = f" · {clip(event.error, 120)}" if event.error else ""
        return f"{event.action} · {duration(event.duration)}{outcome}"
    if isinstance(event, ToolCallStarted):
        return f"{event.toolkit}.{event.tool} {compact_json(event.input, 120)}"
    if isinstance(event, ToolCallFinished):
        outcome = "ok" if event.ok else f"{event.error}: {clip(event.message or '', 100)}"
        return f"{event.toolkit}.{event.tool} · {outcome} · {duration(event.duration)}"
    if isinstance(event, ShellCommandRun):
        return f"$ {clip(event.command, 120)} → exit {event.exit_code} · {duration(event.duration)}"
    if isinstance(event, ActorCrashed):
        return f"{event.phase}: {event.error_type}: {clip(event.error, 120)}"
    if isinstance(event, ScheduleFired):
        return f"{event.action} ({event.schedule_id})"
    if isinstance(event, SessionCreated):
        return f"{event.session.session_id} · {event.session.agent_type} on {event.session.model}"
    if isinstance(event, SessionUpdated):
        return f"{event.update.session_id} #{event.update.seq} {event.update.session_update}"
    if isinstance(event, SessionClosed):
        return event.session_id
    if isinstance(event, ActorBroadcast):
        return f"{event.name} {compact_json(list(event.args), 100)}"
    return ""


MESSAGE_EVENTS = (
    MessageEnqueued,
    MessageRejected,
    MessageReceived,
    MessageCompleted,
    MessageRedelivered,
    MessageDeadLettered,
    MessageReplayed,
)


def _message_summary(event: Event) -> str:
    parts = [getattr(event, "queue", "")]
    if isinstance(event, MessageRejected):
        parts += [event.code, clip(event.reason, 120)]
    else:
        parts.append(f"#{getattr(event, 'message_id', '?')}")
    if isinstance(event, MessageEnqueued):
        parts.append(size(event.size))
    elif isinstance(event, MessageReceived | MessageRedelivered) and event.attempt > 1:
        parts.append(f"attempt {event.attempt}")
    elif isinstance(event, MessageDeadLettered):
        parts += [f"after {event.attempts} attempts", clip(event.error, 120)]
    return " · ".join(parts)
