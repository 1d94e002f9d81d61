"""What a tab is to the renderer: a widget, what it needs fetched, and a redraw it can skip.

A tab redraws only when what it shows has changed: `draw_key` summarises that (section
versions, a filter, the current second for figures that move with time), and a user's click
marks it dirty. Its widgets' updates are held together, so a redraw is one message per widget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import ClassVar, Literal

import ipywidgets as widgets

from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.widget_tools import close_tree, held

Needs = Literal["nothing", "members", "depths"]
"""What a tab needs from `registry.overview()`: nothing, the actors (who exists, awake or
not), or the actors with their queue depths (which change with every message)."""


class TabView(ABC):
    title: ClassVar[str]
    needs: ClassVar[Needs] = "nothing"
    event_types: ClassVar[tuple[str, ...] | None] = None
    """Bus event types (or families ending in ".") the tab reads; None: all of them."""

    def __init__(self, widget: widgets.Widget) -> None:
        self.widget = widget
        widget.add_class(f"agentos-tab-{self.title.lower().replace(' ', '-')}")
        self._drawn: Hashable = None
        self._dirty = True

    def stale(self, model: DashboardModel, now: float) -> bool:
        return self._dirty or self.draw_key(model, now) != self._drawn

    def draw(self, model: DashboardModel, now: float) -> None:
        key = self.draw_key(model, now)
        self._dirty = False  # before render: a click during it asks for another redraw
        with held(self.synced()):
            self.render(model, now)
        self._drawn = key

    def mark_dirty(self) -> None:
        self._dirty = True

    def close(self) -> None:
        close_tree(self.widget)

    @abstractmethod
    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        """Equal keys mean an identical picture."""

    @abstractmethod
    def render(self, model: DashboardModel, now: float) -> None:
        """Set the widgets from the model (called with their sync held)."""

    @abstractmethod
    def synced(self) -> Sequence[widgets.Widget]:
        """The widgets `render` may change."""
