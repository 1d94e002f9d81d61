"""The Tool calls tab: the picture of who called whom through host tools, and the table of
calls with their input, result or error, and duration."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import ipywidgets as widgets

from agentos_nb.jupyter.dashboard.call_graph import call_graph
from agentos_nb.jupyter.dashboard.calls_state import ToolCallEntry
from agentos_nb.jupyter.dashboard.markup import badge, details, empty, esc, mono, muted, table
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import actor_label, clock_time, compact_json, duration, pretty_json
from agentos_nb.jupyter.dashboard.widget_tools import html

ROWS = 100
"""Calls the table shows, newest first."""
INLINE_CHARS = 90
FULL_CHARS = 4000


class ToolCallsTab(TabView):
    title = "Tool calls"
    event_types = ("tool.", "action.started")

    def __init__(self) -> None:
        self._graph = html("agentos-call-graph")
        self._table = html("agentos-tool-calls", "ao-scroll")
        super().__init__(widgets.VBox([self._graph, self._table]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (self._graph, self._table)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        return model.calls.version

    def render(self, model: DashboardModel, now: float) -> None:
        calls = model.calls
        if not calls.calls_per_tool:
            self._graph.value = empty(
                "No host-tool calls yet. When an agent in a VM runs `agentos-<toolkit> <tool>`, "
                "the call shows here: who called which tool, and which actors it reached."
            )
            self._table.value = ""
            return
        self._graph.value = call_graph(calls.calls_per_tool, calls.edges)
        entries = calls.newest_first(ROWS)
        self._table.value = table(
            ("time", "caller", "tool", "input", "result or error", "reached", "duration"),
            [_row(entry) for entry in entries],
        )


def _row(entry: ToolCallEntry) -> tuple[str, ...]:
    if not entry.finished:
        outcome = badge("running", "blue")
    elif entry.ok:
        outcome = _folded(entry.result)
    else:
        outcome = badge(str(entry.error), "red") + (" " + _folded(entry.message) if entry.message else "")
    return (
        f'<span class="ao-nowrap ao-muted">{clock_time(entry.started_at)}</span>',
        f"<b>{esc(actor_label(entry.caller.name, entry.caller.key))}</b>",
        mono(entry.tool_label),
        _folded(entry.input),
        outcome,
        esc(", ".join(entry.reached)) if entry.reached else muted("—"),
        f'<span class="ao-num">{duration(entry.duration)}</span>'
        if entry.duration is not None
        else muted("…"),
    )


def _folded(value: object) -> str:
    """Short values inline; long ones as their first line, unfolding to the whole."""
    line = value if isinstance(value, str) else compact_json(value, FULL_CHARS)
    if len(line) <= INLINE_CHARS and "\n" not in line:
        return mono(line)
    head = line.lstrip().split("\n", 1)[0][: INLINE_CHARS - 1] + "…"
    return details(mono(head), f'<pre class="ao-pre">{esc(pretty_json(value, FULL_CHARS))}</pre>')
