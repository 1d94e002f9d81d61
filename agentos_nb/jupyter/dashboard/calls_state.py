"""Host-tool calls: a bounded log of each call with its outcome, and who called whom.

A call's caller is the VM that ran `agentos-<toolkit> <tool>`; the actors it reached are those
whose actions name it in `ActionStarted.via` (seed 000: `review.submit` reaches the reviewer).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from agentos_nb.events import ActionStarted, ActorRef, ToolCallFinished, ToolCallStarted
from agentos_nb.jupyter.dashboard.text import actor_label

MAX_CALLS = 500
"""Calls kept in the table; the graph's counts cover every call seen."""
HOST = "the host (no actor)"
"""Where a call went that no actor answered: the tool is a function on the host (a notes list)."""


@dataclass(slots=True)
class ToolCallEntry:
    caller: ActorRef
    call_id: int
    toolkit: str
    tool: str
    input: dict[str, Any]
    started_at: float
    finished: bool = False
    ok: bool | None = None
    result: Any = None
    error: str | None = None
    message: str | None = None
    duration: float | None = None
    reached: list[str] = field(default_factory=list)
    """Labels of the other actors the call reached, in order."""

    @property
    def tool_label(self) -> str:
        return f"{self.toolkit}.{self.tool}"


class CallLog:
    def __init__(self) -> None:
        self.calls: OrderedDict[tuple[str, int], ToolCallEntry] = OrderedDict()
        self.calls_per_tool: Counter[tuple[str, str]] = Counter()
        """(caller label, toolkit.tool) -> calls."""
        self.edges: Counter[tuple[str, str, str]] = Counter()
        """(caller label, toolkit.tool, reached actor label) -> calls that reached it."""
        self._reached: OrderedDict[tuple[str, int], set[str]] = OrderedDict()
        self.version = 0

    def action_started(self, event: ActionStarted) -> None:
        """An action a host tool asked for: its actor is one the tool call reached."""
        via = event.via
        if via is None or event.actor.actor_id == via.caller.actor_id:
            return
        call = (via.caller.actor_id, via.call_id)
        reached = self._reached.get(call)
        if reached is None:
            reached = self._reached[call] = set()
            while len(self._reached) > MAX_CALLS:
                self._reached.popitem(last=False)
        if event.actor.actor_id in reached:
            return
        reached.add(event.actor.actor_id)
        callee = actor_label(event.actor.name, event.actor.key)
        tool = f"{via.toolkit}.{via.tool}"
        self.edges[(actor_label(via.caller.name, via.caller.key), tool, callee)] += 1
        entry = self.calls.get(call)
        if entry is not None:
            entry.reached.append(callee)
        self.version += 1

    def call_started(self, event: ToolCallStarted) -> None:
        self._entry(event)
        self.version += 1

    def call_finished(self, event: ToolCallFinished) -> None:
        entry = self._entry(event)
        entry.finished = True
        entry.ok, entry.result, entry.error = event.ok, event.result, event.error
        entry.message, entry.duration = event.message, event.duration
        if event.ok and not entry.reached:
            self.edges[(actor_label(entry.caller.name, entry.caller.key), entry.tool_label, HOST)] += 1
        self.version += 1

    def newest_first(self, limit: int) -> list[ToolCallEntry]:
        entries = list(self.calls.values())
        return entries[: -limit - 1 : -1]

    def _entry(self, event: ToolCallStarted | ToolCallFinished) -> ToolCallEntry:
        call = (event.actor.actor_id, event.call_id)
        entry = self.calls.get(call)
        if entry is None:
            entry = self.calls[call] = ToolCallEntry(
                caller=event.actor,
                call_id=event.call_id,
                toolkit=event.toolkit,
                tool=event.tool,
                input=event.input,
                started_at=event.at,
            )
            self.calls_per_tool[(actor_label(event.actor.name, event.actor.key), entry.tool_label)] += 1
            while len(self.calls) > MAX_CALLS:
                self.calls.popitem(last=False)
        return entry
