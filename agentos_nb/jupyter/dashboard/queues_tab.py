"""The Queues tab: per queue, what waits, what is in flight, how fast it drains, what was
refused or dead-lettered, and the depth over the last minute.

Depths come from `registry.overview()`, taken at most once per tick while this tab or the
Actors tab is on screen, so the chart is sampled then; the counters come from every event."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import ipywidgets as widgets

from agentos_nb.jupyter.dashboard.markup import empty, esc, muted, table, warn
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.queue_stats import HISTORY_SPAN, QueueStats
from agentos_nb.jupyter.dashboard.sparkline import sparkline
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.widget_tools import html

HEADERS = (
    "actor",
    "queue",
    "depth",
    "in flight",
    "done/s",
    "completed",
    "rejected",
    "dead letters",
    "depth over time",
)


class QueuesTab(TabView):
    title = "Queues"
    needs = "depths"
    event_types = ("actor.", "message.")

    def __init__(self) -> None:
        self._table = html("ao-scroll", "agentos-queues")
        super().__init__(widgets.VBox([self._table]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (self._table,)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        board = model.queues
        # Rates decay and charts scroll with time alone: redraw once a second while they do.
        moving = any(stats.active(now) for stats in board.queues.values())
        return (board.version, int(now) if moving else None)

    def render(self, model: DashboardModel, now: float) -> None:
        rows = model.queues.rows()
        if not rows:
            self._table.value = empty("No queues yet: actors with queues appear once they are created.")
            return
        self._table.value = table(HEADERS, [_row(stats, now) for stats in rows])


def _row(stats: QueueStats, now: float) -> tuple[str, ...]:
    full = stats.max_size and stats.depth + stats.in_flight >= stats.max_size
    share = min(1.0, (stats.depth + stats.in_flight) / stats.max_size) if stats.max_size else 0.0
    bar = (
        f'<span class="ao-bar{" ao-full" if full else ""}" title="{stats.depth + stats.in_flight} of '
        f'{stats.max_size} places taken"><span style="width:{share * 100:.0f}%"></span></span>'
        if stats.max_size
        else ""
    )
    rejected = sum(stats.rejected.values())
    codes = ", ".join(f"{code} ×{n}" for code, n in stats.rejected.items())
    rejected_cell = warn(f"{rejected:,}", title=codes) if rejected else muted("0")
    dead = warn(f"{stats.dead_lettered:,}") if stats.dead_lettered else muted("0")
    return (
        f"<b>{esc(stats.actor)}</b>",
        esc(stats.queue),
        f'<span class="ao-num">{stats.depth:,}</span>'
        + (f' <span class="ao-muted">/ {stats.max_size:,}</span>' if stats.max_size else "")
        + bar,
        f'<span class="ao-num">{stats.in_flight:,}</span>',
        f'<span class="ao-num">{stats.rate(now):,.1f}</span>',
        f'<span class="ao-num">{stats.completed:,}</span>',
        rejected_cell,
        dead,
        sparkline(stats.history, now=now, span=HISTORY_SPAN, ceiling=stats.max_size) or muted("—"),
    )
