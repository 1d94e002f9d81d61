"""The Sessions tab: every agent session, and a live transcript of the one selected (the one
that spoke last, until you pick one), its tool calls folding and unfolding. A permission request
the selected session's turn waits on shows with buttons that answer it.

Sessions that began before the dashboard are listed by asking the awake VMs; a transcript
that missed updates (it started late, or events were dropped) is filled in from its VM.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any

import ipywidgets as widgets

from agentos_nb.actors.registry import Registry
from agentos_nb.events import ActorRef
from agentos_nb.jupyter.dashboard.fetcher import Fetcher
from agentos_nb.jupyter.dashboard.markup import badge, empty, esc, mono, muted, warn
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.sessions_state import SessionBoard, SessionLog
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import actor_label
from agentos_nb.jupyter.dashboard.transcript_html import render_item
from agentos_nb.jupyter.dashboard.vms import known_vms, vm_handle
from agentos_nb.jupyter.dashboard.widget_tools import close_tree, html
from agentos_nb.jupyter.permission_buttons import PermissionButtons
from agentos_nb.jupyter.transcript import TranscriptItem, transcript_items
from agentos_nb.jupyter.wording import counted
from agentos_nb.vm.session_models import PermissionRequest, PermissionResponse

MAX_ITEMS = 150
"""Transcript items shown: the newest."""


class SessionsTab(TabView):
    title = "Sessions"
    needs = "members"
    event_types = ("session.", "actor.")

    def __init__(self, registry: Registry, fetcher: Fetcher) -> None:
        self._registry = registry
        self._fetcher = fetcher
        self.picker = widgets.Select(options=[], rows=16, layout=widgets.Layout(width="100%"))
        self.picker.add_class("agentos-session-list")
        self._count = html("ao-note")
        self._head = html("agentos-session-head")
        self._note = html("ao-note")
        self._items = widgets.VBox(layout=widgets.Layout(max_height="480px", overflow="auto"))
        self._items.add_class("agentos-transcript")
        self.asks = widgets.VBox()
        """The buttons of the permission requests the selected session waits on."""
        self._ask_widgets: dict[str, PermissionButtons] = {}
        self._item_widgets: dict[str, widgets.HTML] = {}
        self._spare: list[widgets.HTML] = []
        self._rendered: dict[str, tuple[TranscriptItem, str]] = {}
        self._rendered_for: str | None = None
        self._options: tuple[tuple[str, str], ...] = ()
        self._selected: str | None = None
        self._following = True
        self._setting = False
        self._discovered: set[str] = set()
        self._backfilled: set[str] = set()
        self._dropped_seen = 0
        self._load_errors: dict[str, str] = {}
        self.picker.observe(self._picked, names="value")
        left = widgets.VBox([self._count, self.picker], layout=widgets.Layout(width="36%", min_width="280px"))
        right = widgets.VBox(
            [self._head, self._note, self.asks, self._items],
            layout=widgets.Layout(flex="1", padding="0 0 0 12px"),
        )
        super().__init__(widgets.HBox([left, right]))

    def synced(self) -> Sequence[widgets.Widget]:
        return (
            self.picker,
            self._count,
            self._head,
            self._note,
            self.asks,
            self._items,
            *self._item_widgets.values(),
        )

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        return (model.sessions.version, model.actors.version, self._selected)

    def render(self, model: DashboardModel, now: float) -> None:
        board = model.sessions
        if model.events.dropped != self._dropped_seen:  # gaps may be new: fill them again
            self._dropped_seen = model.events.dropped
            self._backfilled.clear()
        self._discover(model)
        logs = list(reversed(board.sessions.values()))
        if self._following or self._selected not in board.sessions:
            # Follow the session that spoke last: the one a live run is in now.
            self._selected = max(logs, key=lambda log: log.last_at).session_id if logs else None
        self._pick(tuple((_label(log), log.session_id) for log in logs))
        opened = sum(not log.closed for log in logs)
        self._count.value = f"{counted(len(logs), 'session')}, {opened} open · {LEGEND}" if logs else ""
        if self._selected is None:
            self._head.value = empty(
                "No agent sessions yet. Sessions appear here as VMs create them "
                "(`await vm.create_session('pi')`), with a live transcript."
            )
            self._note.value = ""
            self._ask([], None)
            self._show([])
            return
        log = board.sessions[self._selected]
        self._head.value = _head(log)
        self._note.value = self._fill_gaps(model, log)
        self._ask(_waiting(log), log)
        self._show(transcript_items(log.updates)[-MAX_ITEMS:])

    def close(self) -> None:
        for widget in self._spare:
            close_tree(widget)
        self._ask([], None)
        super().close()

    def _ask(self, requests: list[PermissionRequest], log: SessionLog | None) -> None:
        """Buttons for each waiting request; those answered go (the transcript says how)."""
        wanted = {request.request_id for request in requests}
        for request_id in [key for key in self._ask_widgets if key not in wanted]:
            close_tree(self._ask_widgets.pop(request_id))
        for request in requests:
            if request.request_id not in self._ask_widgets and log is not None:
                handle = vm_handle(self._registry, log.actor)
                respond = functools.partial(handle.respond_permission, log.session_id, request.request_id)
                self._ask_widgets[request.request_id] = PermissionButtons(request, respond)
        children = tuple(self._ask_widgets[request.request_id] for request in requests)
        if children != self.asks.children:
            self.asks.children = children

    def _picked(self, change: dict[str, Any]) -> None:
        if self._setting:
            return
        self._selected = change["new"]
        self._following = False
        self.mark_dirty()

    def _pick(self, options: tuple[tuple[str, str], ...]) -> None:
        """Set the list and its selection without taking it for a user's pick."""
        self._setting = True
        try:
            if options != self._options:
                self._options = options
                self.picker.options = options
            if self.picker.value != self._selected:
                self.picker.value = self._selected
        finally:
            self._setting = False

    def _discover(self, model: DashboardModel) -> None:
        """List the sessions of each awake VM once: those begun before the dashboard."""
        board = model.sessions
        for ref in known_vms(self._registry, model.actors):
            if ref.actor_id in self._discovered or model.actors.status_of(ref.actor_id) != "awake":
                continue
            self._discovered.add(ref.actor_id)
            handle = vm_handle(self._registry, ref)
            self._fetcher.start(
                ("sessions", ref.actor_id),
                functools.partial(handle.list_sessions, include_closed=True),
                functools.partial(self._discovered_in, board, ref),
            )

    def _discovered_in(self, board: SessionBoard, ref: ActorRef, infos: Any, error: Exception | None) -> None:
        if error is None and infos:
            board.discover(ref, infos)
        self.mark_dirty()

    def _fill_gaps(self, model: DashboardModel, log: SessionLog) -> str:
        """Ask the VM for a transcript's missing updates (once), and say how that goes."""
        session_id = log.session_id
        if session_id in self._load_errors:
            return warn(f"Could not load earlier updates: {self._load_errors[session_id]}")
        if not log.missing():
            return ""
        if self._fetcher.busy(("history", session_id)):
            return "Loading earlier updates from the VM…"
        if session_id in self._backfilled:
            return ""
        if model.actors.status_of(log.actor.actor_id) != "awake":
            return "Earlier updates are kept by the VM, which is not awake; they load once it is."
        self._backfilled.add(session_id)
        handle = vm_handle(self._registry, log.actor)
        board = model.sessions

        def loaded(updates: Any, error: Exception | None) -> None:
            if error is not None:
                self._load_errors[session_id] = f"{type(error).__name__}: {error}"
            elif updates:
                board.backfill(session_id, updates)
            self.mark_dirty()

        self._fetcher.start(("history", session_id), lambda: handle.get_session_events(session_id), loaded)
        return "Loading earlier updates from the VM…"

    def _show(self, items: list[TranscriptItem]) -> None:
        """One HTML widget per item, kept by item: a new item adds a widget, a growing one
        changes only its own (so an unfolded tool call elsewhere stays unfolded)."""
        if self._rendered_for != self._selected:
            self._rendered.clear()
            self._rendered_for = self._selected
        wanted = {item.key for item in items}
        for key in [key for key in self._item_widgets if key not in wanted]:
            self._spare.append(self._item_widgets.pop(key))
        for item in items:
            cached = self._rendered.get(item.key)
            if cached is None or cached[0] != item:
                cached = self._rendered[item.key] = (item, render_item(item))
            widget = self._item_widgets.get(item.key)
            if widget is None:
                widget = self._spare.pop() if self._spare else html("ao-item", value=cached[1])
                self._item_widgets[item.key] = widget
            widget.value = cached[1]
        children = tuple(self._item_widgets[item.key] for item in items)
        if children != self._items.children:
            self._items.children = children


def _waiting(log: SessionLog) -> list[PermissionRequest]:
    """The session's permission requests with no answer yet (none once its turn ended)."""
    if not log.running:
        return []
    answered = {u.request_id for u in log.updates if isinstance(u, PermissionResponse)}
    return [u for u in log.updates if isinstance(u, PermissionRequest) and u.request_id not in answered]


LEGEND = "▶ turn running · ✓ open, waiting for a prompt · ✕ closed"
"""What the marks before each session in the picker mean."""


def _label(log: SessionLog) -> str:
    """`✓ writer/my-project · s-41ac4b839294`, a cross for a closed one (the head says more)."""
    mark = "✕" if log.closed else "▶" if log.running else "✓"
    return f"{mark} {actor_label(log.actor.name, log.actor.key)} · {log.session_id}"


def _head(log: SessionLog) -> str:
    info = log.info
    if log.closed:
        state = badge("closed", "grey")
    elif log.running:
        state = badge("turn running", "blue")
    else:
        state = badge("idle", "green")
    parts = [f"<b>{esc(actor_label(log.actor.name, log.actor.key))}</b>", state, mono(log.session_id)]
    if info is not None:
        parts.append(badge(info.agent_type, "purple"))
        parts.append(mono(info.model))
        if info.offline:
            parts.append(badge("offline model", "amber"))
        if info.mode != "default":
            parts.append(badge(f"{info.mode.replace('_', ' ')} mode", "blue"))
    turns = sum(u.session_update == "turn_ended" for u in log.updates)
    parts.append(muted(f"{turns} turn{'' if turns == 1 else 's'} seen"))
    return f'<div class="ao-session-head">{"".join(parts)}</div>'
