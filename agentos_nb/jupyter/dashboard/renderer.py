"""The one task that keeps a dashboard current.

It wakes every `interval` seconds (0.2 by default: at most 5 redraws a second, however many
events arrive), takes everything its bus subscription buffered with `get_nowait()`, folds it
into the model, fetches `registry.overview()` if the tab on screen needs it and something
changed, and redraws only the tab on screen, and only if what it shows changed. It ends by
itself when the registry stops (the bus closes the subscription), after one last redraw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import ipywidgets as widgets

from agentos_nb.actors.registry import Registry
from agentos_nb.events import Subscription
from agentos_nb.jupyter.dashboard.header import Header
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.tab_view import TabView

logger = logging.getLogger(__name__)


class Clock:
    """How the renderer waits between ticks (tests put a fake one in SYSTEM_CLOCK)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = Clock()


class Renderer:
    def __init__(
        self,
        registry: Registry,
        subscription: Subscription,
        model: DashboardModel,
        views: Sequence[TabView],
        tab: widgets.Tab,
        header: Header,
        interval: float,
    ) -> None:
        self._registry = registry
        self._subscription = subscription
        self._model = model
        self._views = list(views)
        self._tab = tab
        self._header = header
        self._interval = interval
        self._clock = SYSTEM_CLOCK
        self._lock = asyncio.Lock()
        self.live = True
        self.problem: str | None = None
        self.redraws = 0
        """Ticks that changed what is on screen."""

    async def run(self) -> None:
        try:
            while True:
                await self._clock.sleep(self._interval)
                # Decided before the tick drains: what came before the bus closed is drawn.
                ended = self._subscription.closed or self._registry.phase == "stopped"
                await self.tick()
                if ended:
                    break
        except asyncio.CancelledError:
            self.live = False  # closed: its widgets are going away, nothing more to draw
            raise
        self.live = False
        self.draw_header()

    async def tick(self, *, everything: bool = False) -> None:
        """Fold what is buffered, then redraw the tab on screen if it changed (every tab, and
        unconditionally, with `everything`)."""
        async with self._lock:
            drew = False
            try:
                self._model.fold(self._subscription.get_nowait())
                views = self._views if everything else [self._views[self._tab.selected_index or 0]]
                await self._overview(views, force=everything)
                now = time.time()
                for view in views:
                    if everything or view.stale(self._model, now):
                        view.draw(self._model, now)
                        drew = True
                self.problem = None
            except Exception as error:  # shown in the header; the next tick tries again
                logger.debug("the agentos dashboard could not redraw", exc_info=True)
                self.problem = f"{type(error).__name__}: {error}"
            drew = self.draw_header() or drew
            if drew:
                self.redraws += 1

    async def _overview(self, views: Sequence[TabView], *, force: bool) -> None:
        """At most one overview per tick: the first one (the header counts the actors that
        existed before the dashboard), then only if a tab on screen needs what went stale."""
        actors = self._model.actors
        needs = {view.needs for view in views}
        wanted = (
            not actors.fetched
            or ("depths" in needs and (actors.depths_stale or actors.members_stale))
            or ("members" in needs and actors.members_stale)
        )
        if self._registry.phase != "running" or not (wanted or (force and needs - {"nothing"})):
            return
        at = time.time()
        self._model.apply_overview(await self._registry.overview(), at)

    def draw_header(self) -> bool:
        return self._header.draw(
            self._model, phase=self._registry.phase, live=self.live, problem=self.problem
        )
