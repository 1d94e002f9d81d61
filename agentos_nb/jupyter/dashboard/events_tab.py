"""The Events tab: the newest bus events, newest first, with a filter by type prefix or actor."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence

import ipywidgets as widgets

from agentos_nb.events import ActorEvent, Event, EventsDropped
from agentos_nb.jupyter.dashboard.event_log import MAX_EVENTS, summary
from agentos_nb.jupyter.dashboard.markup import badge, empty, esc, muted, table
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import actor_label, clock_time
from agentos_nb.jupyter.dashboard.widget_tools import html

ROWS = 50
"""Events the log shows; the model keeps MAX_EVENTS for the filter to search."""
FAMILY_TONES = {
    "actor": "blue",
    "message": "teal",
    "action": "purple",
    "tool": "orange",
    "session": "green",
    "shell": "grey",
    "schedule": "amber",
    "events": "red",
}


class EventsTab(TabView):
    title = "Events"

    def __init__(self) -> None:
        self.filter = widgets.Text(
            placeholder="a type (message., tool.) or an actor (writer)",
            description="Filter",
            continuous_update=True,
            layout=widgets.Layout(width="440px"),
        )
        self.filter.add_class("agentos-events-filter")
        self.observed = widgets.Checkbox(
            value=False,
            description="the dashboard's own reads",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.observed.add_class("agentos-events-observed")
        self._counts = html("ao-note", "agentos-events-count")
        self._log = html("ao-scroll", "agentos-events-log")
        self.filter.observe(lambda _: self.mark_dirty(), names="value")
        self.observed.observe(lambda _: self.mark_dirty(), names="value")
        super().__init__(widgets.VBox([widgets.HBox([self.filter, self.observed, self._counts]), self._log]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (self._counts, self._log)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        return (model.events.version, self.filter.value, self.observed.value)

    def render(self, model: DashboardModel, now: float) -> None:
        log = model.events
        needle = self.filter.value
        shown = log.matching(needle, ROWS, observed=self.observed.value)
        dropped = f' · <span class="ao-warn">⚠ {log.dropped:,} dropped</span>' if log.dropped else ""
        kept = min(len(log.entries), MAX_EVENTS)
        self._counts.value = (
            f"{len(shown):,} shown of the last {kept:,} · {log.total:,} events since the dashboard started"
            f"{dropped}"
        )
        if not shown:
            self._log.value = empty(
                f"No event matches {needle!r}."
                if needle.strip()
                else "No events yet: they appear as they happen."
            )
            return
        self._log.value = table(
            ("time", "type", "actor", "what"), [_row(event) for event in shown], css_class="ao-last-wide"
        )


def _row(event: Event) -> tuple[str, ...]:
    what = esc(summary(event))
    if isinstance(event, EventsDropped):
        what = f'<span class="ao-warn">⚠ {what}</span>'
    return (
        f'<span class="ao-nowrap ao-muted ao-mono">{clock_time(event.at)}</span>',
        _type_cell(event.type),
        _actor_cell(event.actor.name, event.actor.key) if isinstance(event, ActorEvent) else muted("—"),
        f'<span class="ao-wrap">{what}</span>',
    )


# The log redraws up to five times a second with fifty rows: what repeats is made once.
@functools.lru_cache(maxsize=128)
def _type_cell(kind: str) -> str:
    return badge(kind, FAMILY_TONES.get(kind.partition(".")[0], "grey"))


@functools.lru_cache(maxsize=1024)
def _actor_cell(name: str, key: tuple[str, ...]) -> str:
    return f"<b>{esc(actor_label(name, key))}</b>"
