"""The line above the tabs: which registry, whether it runs, how much the dashboard has seen,
and anything wrong with the dashboard itself (events it dropped, a failed redraw)."""

from __future__ import annotations

from collections.abc import Hashable

from agentos_nb.jupyter.dashboard.markup import badge, esc, muted, warn
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.widget_tools import html

PHASE_TONES = {"running": "green", "starting": "amber", "stopping": "amber", "stopped": "grey", "new": "grey"}


class Header:
    def __init__(self, registry_name: str) -> None:
        self.widget = html("agentos-dashboard-header")
        self._name = registry_name
        self._drawn: Hashable = None

    def draw(self, model: DashboardModel, *, phase: str, live: bool, problem: str | None) -> bool:
        """Redraw if anything shown changed; says whether it did."""
        actors = model.actors.summary()
        key = (phase, live, problem, actors, model.events.total, model.events.dropped)
        if key == self._drawn:
            return False
        self._drawn = key
        parts = [
            "<b>agentos</b>",
            f"registry <code>{esc(self._name)}</code>",
            badge(phase, PHASE_TONES.get(phase, "grey")),
            muted(f"{actors} · {model.events.total:,} events seen"),
        ]
        if model.events.dropped:
            parts.append(
                warn(f"⚠ {model.events.dropped:,} events dropped", title="the dashboard fell behind the bus")
            )
        if not live:
            parts.append(badge("not updating", "grey"))
        if problem:
            parts.append(warn(f"dashboard error: {problem}"))
        self.widget.value = f'<div class="ao-header">{"".join(parts)}</div>'
        return True
