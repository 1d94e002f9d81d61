"""The Cron tab: every VM's cron schedules, with their next run and how the last one went.

Read from the store (each VM keeps its schedules there, see `agentos_nb.vm.cron`), so listing
them wakes no VM; read again every few seconds while the tab is on screen.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

import ipywidgets as widgets

from agentos_nb.actors.registry import Registry
from agentos_nb.events import ActorRef
from agentos_nb.jupyter.dashboard.fetcher import Fetcher
from agentos_nb.jupyter.dashboard.markup import badge, empty, esc, mono, muted, table, warn
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import actor_label, clip
from agentos_nb.jupyter.dashboard.vms import known_vms
from agentos_nb.jupyter.dashboard.widget_tools import html
from agentos_nb.vm.cron import CRON_BLOB, CronExec, CronSchedule, saved_schedules

HEADERS = ("VM", "schedule", "when", "does", "next run", "last run")
REREAD_EVERY = 2.0
"""Seconds between reads of the store while the tab is on screen."""


class CronTab(TabView):
    title = "Cron"
    needs = "members"
    event_types = ("actor.",)

    def __init__(self, registry: Registry, fetcher: Fetcher) -> None:
        self._registry = registry
        self._fetcher = fetcher
        self._table = html("ao-scroll", "agentos-cron")
        self._schedules: dict[str, tuple[ActorRef, list[CronSchedule]]] = {}
        self._problem = ""
        self._read_at = -REREAD_EVERY
        self._version = 0
        super().__init__(widgets.VBox([self._table]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (self._table,)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        if now - self._read_at >= REREAD_EVERY:
            self._read(model, now)
        return (self._version, int(now // 60))  # "in 3 min" moves with the minute

    def render(self, model: DashboardModel, now: float) -> None:
        rows = [
            _row(ref, schedule, now)
            for ref, schedules in self._schedules.values()
            for schedule in sorted(schedules, key=lambda s: s.next_run)
        ]
        note = warn(f"Could not read schedules: {esc(self._problem)}") if self._problem else ""
        if not rows:
            self._table.value = note + empty(
                "No cron schedules. A VM runs a prompt or a command on a schedule with "
                "`await vm.schedule_cron('0 9 * * *', CronExec(command='make report'))`."
            )
            return
        self._table.value = note + table(HEADERS, rows)

    def _read(self, model: DashboardModel, now: float) -> None:
        self._read_at = now
        refs = known_vms(self._registry, model.actors)
        store = self._registry.store

        async def read() -> dict[str, tuple[ActorRef, list[CronSchedule]]]:
            found = {}
            for ref in refs:
                saved = await store.load_blob(ref.actor_id, CRON_BLOB)
                if saved:
                    found[ref.actor_id] = (ref, saved_schedules(saved))
            return found

        self._fetcher.start("cron", read, self._loaded)

    def _loaded(self, found: Any, error: Exception | None) -> None:
        self._problem = "" if error is None else f"{type(error).__name__}: {error}"
        if error is None and found != self._schedules:
            self._schedules = found
            self._version += 1
        self.mark_dirty()


def _row(ref: ActorRef, schedule: CronSchedule, now: float) -> tuple[str, ...]:
    action = schedule.action
    does = f"exec {action.command}" if isinstance(action, CronExec) else f"prompt: {action.prompt}"
    until = schedule.next_run - now
    last = schedule.last_run
    if last is None:
        last_cell = muted("not yet")
    else:
        tone = {"ok": "green", "failed": "red", "skipped": "grey"}[last.status]
        last_cell = f"{badge(last.status, tone)} {muted(esc(clip(last.detail, 80)))}"
    return (
        f"<b>{esc(actor_label(ref.name, ref.key))}</b>",
        mono(schedule.schedule_id),
        f"{mono(schedule.expression)} {muted(esc(schedule.timezone))}",
        esc(clip(does, 80)),
        f"{esc(_local(schedule.next_run))} {muted(_until(until))}",
        last_cell,
    )


def _local(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%a %d %b %H:%M")


def _until(seconds: float) -> str:
    """`in 40 s`, `in 12 min`, `in 3 h 5 min`, `in 2 d 4 h`, or `due`."""
    if seconds <= 0:
        return "due"
    if seconds < 60:
        return f"in {seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"in {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"in {hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"in {days} d {hours} h"
