"""The Processes tab: every VM's processes (`spawn`), running ones first, each with the tail of
its output as it comes. Fed by the bus alone: showing it wakes no VM and reads nothing."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import ipywidgets as widgets

from agentos_nb.jupyter.dashboard.markup import badge, details, empty, esc, mono, muted, pre
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.processes_state import ProcessView
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import actor_label, clip, duration
from agentos_nb.jupyter.dashboard.widget_tools import html

_TONES = {"running": "blue", "exited": "green", "killed": "grey", "lost": "red"}


class ProcessesTab(TabView):
    title = "Processes"
    event_types = ("process.",)

    def __init__(self) -> None:
        self._list = html("ao-scroll", "agentos-processes")
        super().__init__(widgets.VBox([self._list]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (self._list,)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        return (model.processes.version, int(now) if model.processes.running else 0)

    def render(self, model: DashboardModel, now: float) -> None:
        processes = sorted(
            model.processes.processes.values(),
            key=lambda p: (p.status != "running", -(p.ended_at or p.started_at)),
        )
        if not processes:
            self._list.value = empty(
                "No processes yet. `await vm.spawn('npm run dev')` starts one; "
                "its output shows here as it comes."
            )
            return
        self._list.value = "".join(_process(process, now) for process in processes)


def _process(process: ProcessView, now: float) -> str:
    status = process.status if process.exit_code is None else f"{process.status} {process.exit_code}"
    ran = (process.ended_at or now) - process.started_at
    summary = (
        f"{badge(status, _tone(process))} "
        f"<b>{esc(actor_label(process.actor.name, process.actor.key))}</b> "
        f"{muted(f'pid {process.pid}')} {mono(clip(process.command, 100), title=process.command)} "
        f"{muted(duration(max(ran, 0.0)))}"
    )
    body = pre(process.tail) if process.tail else muted("no output yet")
    if process.printed > len(process.tail):
        body = muted(f"… the last {len(process.tail):,} of {process.printed:,} characters") + body
    if process.error:
        body += muted(process.error)
    return f'<div class="agentos-process">{details(summary, body, open_=process.status == "running")}</div>'


def _tone(process: ProcessView) -> str:
    if process.status == "exited" and process.exit_code:
        return "amber"  # it ended on its own, but failed
    return _TONES.get(process.status, "grey")
