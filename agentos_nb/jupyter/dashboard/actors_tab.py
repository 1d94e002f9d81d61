"""The Actors tab: every actor with its key, whether it is awake, its queues and a preview of
its state."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import ipywidgets as widgets

from agentos_nb.jupyter.dashboard.markup import badge, empty, esc, mono, muted, table, warn
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import clip
from agentos_nb.jupyter.dashboard.widget_tools import html

STATUS_TONES = {"awake": "green", "asleep": "grey", "waking": "amber", "stopping": "amber", "gone": "red"}
STATE_CHARS = 160


class ActorsTab(TabView):
    title = "Actors"
    needs = "depths"
    event_types = ("actor.", "message.")

    def __init__(self) -> None:
        self._table = html("ao-scroll", "agentos-actors")
        super().__init__(widgets.VBox([self._table]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (self._table,)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        return model.actors.version

    def render(self, model: DashboardModel, now: float) -> None:
        actors = model.actors
        if not actors.views:
            self._table.value = empty(
                "No actors yet: they appear once a handle first calls one."
                if actors.fetched
                else "Waiting for the registry's first overview…"
            )
            return
        rows = []
        for view in actors.views:
            status = actors.status_of(view.actor_id)
            queues = ", ".join(
                f"{q.name} {q.depth}" + (f" (+{q.in_flight} in flight)" if q.in_flight else "")
                for q in view.queues
            )
            crashes = actors.crashes.get(view.actor_id)
            rows.append(
                (
                    f"<b>{esc(view.name)}</b>",
                    mono("/".join(view.key)) if view.key else muted("(no key)"),
                    badge(status, STATUS_TONES.get(status, "grey")),
                    esc(queues) if queues else muted("—"),
                    warn(str(crashes.count), title=crashes.last_error) if crashes else muted("0"),
                    mono(clip(view.state_preview, STATE_CHARS), title=view.state_preview)
                    if view.state_preview
                    else muted("—"),
                )
            )
        self._table.value = table(
            ("actor", "key", "status", "queues (waiting)", "crashes", "state"), rows, css_class="ao-last-wide"
        )
