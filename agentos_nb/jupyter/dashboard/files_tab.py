"""The Files tab: for each VM, a directory tree and a viewer for the file picked in it.

Everything is read lazily through the VM's own actions, in background reads: the home
directory when a VM is first shown, a directory when it is opened, a file when it is picked.
Reads made on their own (the first listing, a relisting after the VM's files changed) wait
for the VM to be awake; a click or Refresh reads at once, which wakes a sleeping VM.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from agentos_nb.actors.registry import Registry
from agentos_nb.errors import ActorDestroyed, ActorNotFound
from agentos_nb.events import ActorRef
from agentos_nb.jupyter.dashboard.fetcher import Fetcher
from agentos_nb.jupyter.dashboard.file_tree import FileTree
from agentos_nb.jupyter.dashboard.markup import badge, empty, mono, muted, pre, warn
from agentos_nb.jupyter.dashboard.model import DashboardModel
from agentos_nb.jupyter.dashboard.tab_view import TabView
from agentos_nb.jupyter.dashboard.text import actor_label, size
from agentos_nb.jupyter.dashboard.vms import known_vms, vm_handle
from agentos_nb.jupyter.dashboard.widget_tools import html

SHOWN_BYTES = 200_000
"""The viewer shows a file's first bytes, up to this many."""
HEX_BYTES = 512


@dataclass(frozen=True, slots=True)
class FileShown:
    path: str
    content: bytes | None = None
    error: str | None = None


class FilesTab(TabView):
    title = "Files"
    needs = "members"
    event_types = ("actor.", "action.finished", "shell.command", "session.updated", "vm.host_crashed")

    def __init__(self, registry: Registry, fetcher: Fetcher) -> None:
        self._registry = registry
        self._fetcher = fetcher
        self.vm_picker = widgets.Dropdown(options=[], description="VM", layout=widgets.Layout(width="320px"))
        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="List the open directories and read the file again"
        )
        self._status = html("ao-note", "agentos-file-status")
        self.tree = widgets.Select(options=[], rows=22, layout=widgets.Layout(width="36%", min_width="240px"))
        self.tree.add_class("agentos-file-tree")
        self.vm_picker.add_class("agentos-vm-picker")
        self.refresh_button.add_class("agentos-file-refresh")
        self._viewer = html("ao-scroll", "agentos-file-viewer")
        self._viewer.layout = widgets.Layout(flex="1", padding="0 0 0 12px")
        self._trees: dict[str, FileTree] = {}
        self._open: dict[str, str] = {}
        self._shown: dict[str, FileShown] = {}
        self._listed_at_change: dict[str, int] = {}
        self._gone: dict[str, str] = {}
        self._options: tuple[tuple[str, str], ...] = ()
        self._tree_options: tuple[tuple[str, str], ...] = ()
        self._selected: str | None = None
        self._picked_by_hand = False
        self._setting = False
        self._model: DashboardModel | None = None
        self.vm_picker.observe(self._vm_picked, names="value")
        self.tree.observe(self._row_picked, names="value")
        self.refresh_button.on_click(lambda _: self._reload(explicit=True))
        super().__init__(
            widgets.VBox(
                [
                    widgets.HBox([self.vm_picker, self.refresh_button, self._status]),
                    widgets.HBox([self.tree, self._viewer]),
                ]
            )
        )

    def synced(self) -> Sequence[widgets.Widget]:
        return (self.vm_picker, self.refresh_button, self._status, self.tree, self._viewer)

    def draw_key(self, model: DashboardModel, now: float) -> Hashable:
        changes = model.actors.file_changes.get(self._selected, 0) if self._selected else 0
        anywhere = 0 if self._picked_by_hand else sum(model.actors.file_changes.values())  # to follow them
        return (model.actors.version, self._selected, changes, anywhere)

    def render(self, model: DashboardModel, now: float) -> None:
        self._model = model
        vms = sorted(known_vms(self._registry, model.actors), key=lambda ref: actor_label(ref.name, ref.key))
        by_id = {ref.actor_id: ref for ref in vms}
        if self._selected not in by_id or not self._picked_by_hand:
            # Until one is picked, the VM whose files changed most: not an empty one beside it.
            changed = model.actors.file_changes
            self._selected = max(vms, key=lambda ref: changed.get(ref.actor_id, 0)).actor_id if vms else None
        self._set(self.vm_picker, "_options", tuple((actor_label(r.name, r.key), r.actor_id) for r in vms))
        self._set_value(self.vm_picker, self._selected, self._options)
        if self._selected is None:
            self._status.value = ""
            self._set(self.tree, "_tree_options", ())
            self._viewer.value = empty("No agent VMs yet. A VM made with agent_os(...) shows its files here.")
            return
        ref = by_id[self._selected]
        status = model.actors.status_of(ref.actor_id)
        tree = self._trees.setdefault(ref.actor_id, FileTree())
        if ref.actor_id in self._gone:
            self._status.value = warn(self._gone[ref.actor_id])
        elif status == "awake":
            changes = model.actors.file_changes.get(ref.actor_id, 0)
            if self._listed_at_change.get(ref.actor_id) != changes:
                self._reload(explicit=False)
            else:
                self._list(ref, tree.unlisted())
            self._status.value = badge("awake", "green")
        else:
            self._status.value = (
                f"{badge(status, 'grey')} Refresh, or a click in the tree, wakes it to read its files."
            )
        self.refresh_button.description = "Refresh" if status == "awake" else "Wake and list"
        self._set(self.tree, "_tree_options", tuple((row.label, row.path) for row in tree.rows()))
        self._set_value(self.tree, self._open.get(ref.actor_id), self._tree_options)
        self._viewer.value = self._view(ref.actor_id)

    # --- user actions ------------------------------------------------------------------------

    def _vm_picked(self, change: dict[str, Any]) -> None:
        if not self._setting:
            self._selected = change["new"]
            self._picked_by_hand = True
            self.mark_dirty()

    def _row_picked(self, change: dict[str, Any]) -> None:
        path = change["new"]
        ref = self._ref()
        if self._setting or path is None or ref is None or not path.startswith("/"):
            return
        tree = self._trees.setdefault(ref.actor_id, FileTree())
        if path in tree.listings or path in tree.expanded or self._is_directory(tree, path):
            tree.toggle(path)
            self._list(ref, tree.unlisted())
        else:
            self._open[ref.actor_id] = path
            self._read(ref, path)
        self.mark_dirty()

    def _reload(self, *, explicit: bool) -> None:
        """List every open directory again and re-read the open file (after the VM's files
        changed, or on Refresh)."""
        ref = self._ref()
        if ref is None or self._model is None:
            return
        if self._fetcher.busy(("list", ref.actor_id)):
            return  # the listing under way sees the changes, or the next tick starts another
        if explicit:
            self._gone.pop(ref.actor_id, None)
        tree = self._trees.setdefault(ref.actor_id, FileTree())
        self._listed_at_change[ref.actor_id] = self._model.actors.file_changes.get(ref.actor_id, 0)
        self._list(ref, tree.open_directories())
        path = self._open.get(ref.actor_id)
        if path is not None:
            self._read(ref, path)
        self.mark_dirty()

    # --- reads ---------------------------------------------------------------------------------

    def _list(self, ref: ActorRef, paths: list[str]) -> None:
        if not paths:
            return
        tree = self._trees.setdefault(ref.actor_id, FileTree())
        handle = vm_handle(self._registry, ref)

        async def read() -> list[tuple[str, Any]]:
            listed = []
            for path in paths:
                try:
                    listed.append((path, await handle.readdir(path)))
                except OSError as error:
                    listed.append((path, error))
            return listed

        def done(listed: list[tuple[str, Any]] | None, error: Exception | None) -> None:
            if error is not None:
                self._failed(ref, error)
            for path, entries in listed or ():
                if isinstance(entries, OSError):
                    tree.failed(path, f"{type(entries).__name__}: {entries.strerror or entries}")
                else:
                    tree.listed(path, entries)
            self.mark_dirty()

        self._fetcher.start(("list", ref.actor_id), read, done)

    def _read(self, ref: ActorRef, path: str) -> None:
        handle = vm_handle(self._registry, ref)

        def done(content: Any, error: Exception | None) -> None:
            if isinstance(error, OSError):
                self._shown[ref.actor_id] = FileShown(path, error=f"{type(error).__name__}: {error}")
            elif error is not None:
                self._failed(ref, error)
            else:
                self._shown[ref.actor_id] = FileShown(path, content=content)
            self.mark_dirty()

        self._fetcher.start(("read", ref.actor_id, path), lambda: handle.read_file(path), done)

    def _failed(self, ref: ActorRef, error: Exception) -> None:
        if isinstance(error, ActorNotFound | ActorDestroyed):
            self._gone[ref.actor_id] = f"{actor_label(ref.name, ref.key)} is gone (destroyed)."
        else:
            self._gone[ref.actor_id] = f"Could not read the VM: {type(error).__name__}: {error}"

    # --- drawing helpers -------------------------------------------------------------------

    def _view(self, actor_id: str) -> str:
        path = self._open.get(actor_id)
        if path is None:
            return empty("Pick a file in the tree to see it here; pick a directory to open or close it.")
        shown = self._shown.get(actor_id)
        if shown is None or shown.path != path:
            return f'<div class="ao-viewer-head">{mono(path)}</div>' + empty("Reading…")
        if shown.error is not None:
            return f'<div class="ao-viewer-head">{mono(path)}</div>{warn(shown.error)}'
        content = shown.content or b""
        if isinstance(content, str):
            content = content.encode()
        head = f'<div class="ao-viewer-head">{mono(path)}{muted(size(len(content)))}</div>'
        if b"\0" in content[:8192]:
            hexdump = " ".join(f"{byte:02x}" for byte in content[:HEX_BYTES])
            return head + muted("binary file; its first bytes:") + pre(hexdump)
        text = content[:SHOWN_BYTES].decode("utf-8", errors="replace")
        cut = (
            f'<div class="ao-muted">the first {size(SHOWN_BYTES)} of {size(len(content))}</div>'
            if len(content) > SHOWN_BYTES
            else ""
        )
        return head + pre(text) + cut

    def _ref(self) -> ActorRef | None:
        if self._selected is None or self._model is None:
            return None
        return self._model.actors.refs.get(self._selected)

    @staticmethod
    def _is_directory(tree: FileTree, path: str) -> bool:
        return any(
            entry.path == path and entry.kind == "directory"
            for entries in tree.listings.values()
            for entry in entries
        )

    def _set(
        self, picker: widgets.Dropdown | widgets.Select, attribute: str, options: tuple[tuple[str, str], ...]
    ) -> None:
        if getattr(self, attribute) != options:
            setattr(self, attribute, options)
            self._setting = True
            try:
                picker.options = options
            finally:
                self._setting = False

    def _set_value(
        self,
        picker: widgets.Dropdown | widgets.Select,
        value: str | None,
        options: tuple[tuple[str, str], ...],
    ) -> None:
        if value is not None and all(option != value for _, option in options):
            value = None
        if picker.value != value:
            self._setting = True
            try:
                picker.value = value
            finally:
                self._setting = False
