"""`registry.dashboard()`: a live ipywidgets view of a registry, in eight tabs.

The dashboard reads the registry's event bus through one subscription with a generous buffer
(a dashboard that falls behind loses its oldest events and says so; the runtime never waits
for it), and one renderer task redraws it at most every `interval` seconds. Widgets are made
and changed only on the event loop's thread, and never through `with out:` in a task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from agentos_nb.actors.registry import Registry
from agentos_nb.jupyter.dashboard.actors_tab import ActorsTab
from agentos_nb.jupyter.dashboard.cell_runs import made_by_this_cell
from agentos_nb.jupyter.dashboard.cron_tab import CronTab
from agentos_nb.jupyter.dashboard.events_tab import EventsTab
from agentos_nb.jupyter.dashboard.fetcher import Fetcher
from agentos_nb.jupyter.dashboard.files_tab import FilesTab
from agentos_nb.jupyter.dashboard.header import Header
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.processes_tab import ProcessesTab
from agentos_nb.jupyter.dashboard.queues_tab import QueuesTab
from agentos_nb.jupyter.dashboard.renderer import Renderer
from agentos_nb.jupyter.dashboard.sessions_tab import SessionsTab
from agentos_nb.jupyter.dashboard.styles import STYLE
from agentos_nb.jupyter.dashboard.tab_titles import chosen_tabs
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.tool_calls_tab import ToolCallsTab
from agentos_nb.jupyter.dashboard.widget_tools import close_tree
from agentos_nb.jupyter.wording import counted

EVENT_BUFFER = 50_000
"""Events the subscription holds between two ticks: ten seconds of a busy runtime."""


class Dashboard:
    """Live tabs on a registry: Actors, Queues, Sessions, Tool calls, Files, Processes,
    Cron and Events.

    `tabs` picks some of them (`tabs=["Events"]`); `interval` is the shortest time between
    two redraws. Display it in a notebook (it shows as its `widget`); `await refresh()` applies
    what happened so far and redraws at once; `close()` stops it and removes its widgets (as
    running its notebook cell again does: the cell's new output replaces it).
    """

    def __init__(
        self, registry: Registry, *, tabs: Sequence[str] | None = None, interval: float = 0.2
    ) -> None:
        titles = chosen_tabs(tabs)
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval is the seconds between redraws, a positive number, not {interval!r}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "a dashboard needs a running event loop: make it in a notebook cell (the kernel's loop "
                "runs there), or inside async code"
            ) from None
        self.registry = registry
        self.interval = float(interval)
        self.titles = titles
        self.closed = False
        self._model = DashboardModel()
        self._fetcher = Fetcher()
        self._views: list[TabView] = [self._view(title) for title in titles]
        self._header = Header(registry.name)
        self._tab = widgets.Tab(children=[view.widget for view in self._views], titles=titles)
        self.widget = widgets.VBox([widgets.HTML(STYLE), self._header.widget, self._tab])
        self.widget.add_class("agentos-dashboard")
        now = time.time()
        for view in self._views:  # every tab starts with its empty state, never blank
            view.draw(self._model, now)
        self._subscription = registry.bus.subscribe(buffer=EVENT_BUFFER, types=_event_types(self._views))
        self._renderer = Renderer(
            registry, self._subscription, self._model, self._views, self._tab, self._header, self.interval
        )
        self._renderer.draw_header()
        self._task = loop.create_task(self._renderer.run(), name=f"agentos-dashboard:{registry.name}")
        self._task.add_done_callback(lambda _: self._fetcher.close())
        made_by_this_cell(self)

    @property
    def running(self) -> bool:
        """Whether the renderer still redraws (it stops on close() and when the registry stops)."""
        return not self._task.done()

    @property
    def redraws(self) -> int:
        """How many ticks changed what is on screen so far."""
        return self._renderer.redraws

    async def refresh(self) -> None:
        """Apply every event buffered now and redraw every tab at once."""
        if not self.closed:
            await self._renderer.tick(everything=True)

    def select(self, title: str) -> None:
        """Bring a tab to the front: `dashboard.select("Tool calls")`."""
        if title not in self.titles:
            raise ValueError(
                f"this dashboard has no tab {title!r}; it shows {', '.join(map(repr, self.titles))}"
            )
        self._tab.selected_index = self.titles.index(title)

    def close(self) -> None:
        """Stop the renderer and every read under way, unsubscribe, and close the widgets."""
        if self.closed:
            return
        self.closed = True
        self._task.cancel()
        self._fetcher.close()
        self._subscription.close()
        for view in self._views:
            view.close()
        close_tree(self.widget)

    def _view(self, title: str) -> TabView:
        if title == "Sessions":
            return SessionsTab(self.registry, self._fetcher)
        if title == "Files":
            return FilesTab(self.registry, self._fetcher)
        if title == "Cron":
            return CronTab(self.registry, self._fetcher)
        simple: dict[str, Callable[[], TabView]] = {
            "Actors": ActorsTab,
            "Queues": QueuesTab,
            "Tool calls": ToolCallsTab,
            "Events": EventsTab,
            "Processes": ProcessesTab,
        }
        return simple[title]()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        if self.closed:
            return {"text/plain": repr(self)}
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        model = self._model
        state = (
            "closed"
            if self.closed
            else f"updating every {self.interval:g} s"
            if self.running
            else "not updating"
        )
        sessions = model.sessions.sessions.values()
        counts = {
            "Actors": model.actors.summary(),
            "Queues": counted(len(model.queues.queues), "queue"),
            "Sessions": f"{counted(len(sessions), 'session')} ({sum(not s.closed for s in sessions)} open)",
            "Tool calls": counted(sum(model.calls.calls_per_tool.values()), "tool call"),
            "Files": "files of each VM",
            "Cron": "cron schedules of each VM",
            "Processes": f"{model.processes.running} processes running",
            "Events": f"{counted(model.events.total, 'event')} ({model.events.dropped:,} dropped)",
        }
        return (
            f"agentos dashboard of registry {self.registry.name!r} ({self.registry.phase}), {state}\n  "
            + " · ".join(counts[title] for title in self.titles)
        )


def _event_types(views: Sequence[TabView]) -> list[str] | None:
    """What the tabs shown read from the bus (all of it, if one reads everything), and the
    actor events the header counts actors by."""
    wanted: list[str] = ["actor."]
    for view in views:
        if view.event_types is None:
            return None
        wanted.extend(t for t in view.event_types if t not in wanted)
    return wanted
