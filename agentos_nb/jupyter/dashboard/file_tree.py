"""One VM's directory tree as far as it has been listed: which directories are open, what each
listing held, and the rows a tree picker shows (directories first, indented by depth)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from agentos_nb.jupyter.dashboard.text import size
from agentos_nb.vm.models import DirEntry
from agentos_nb.vm.shell import HOME

ROOT = "/"
INDENT = "   "
MAX_ENTRIES = 500
"""Entries shown per directory: a tree picker with tens of thousands of rows is of no use, and
each row travels to the browser."""


@dataclass(frozen=True, slots=True)
class TreeRow:
    label: str
    path: str
    """The entry's absolute path; rows that are not entries (a failed or pending listing, the
    entries left out of a long one) have a value that does not start with "/"."""
    kind: str


@dataclass
class FileTree:
    expanded: set[str] = field(default_factory=lambda: {ROOT, "/home", HOME})
    """Open directories; the home directory is open from the start."""
    listings: dict[str, list[DirEntry]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """Directories whose listing failed, with why."""

    def unlisted(self) -> list[str]:
        """Open directories whose parents are open and that have no listing (nor a failed one) yet."""
        return [
            path for path in self._visible_open() if path not in self.listings and path not in self.errors
        ]

    def open_directories(self) -> list[str]:
        return self._visible_open()

    def toggle(self, path: str) -> None:
        if path in self.expanded:
            self.expanded.discard(path)
        else:
            self.expanded.add(path)
            self.errors.pop(path, None)

    def listed(self, path: str, entries: list[DirEntry]) -> None:
        self.listings[path] = sorted(entries, key=lambda e: (e.kind != "directory", e.name))
        self.errors.pop(path, None)

    def failed(self, path: str, error: str) -> None:
        self.listings.pop(path, None)
        self.errors[path] = error

    def rows(self) -> list[TreeRow]:
        rows = [TreeRow(self._marker(ROOT) + ROOT, ROOT, "directory")]
        self._walk(ROOT, 1, rows)
        return rows

    def _walk(self, path: str, depth: int, rows: list[TreeRow]) -> None:
        if path not in self.expanded:
            return
        if path in self.errors:
            rows.append(TreeRow(f"{INDENT * depth}⚠ {self.errors[path]}", f"error:{path}", "error"))
            return
        entries = self.listings.get(path)
        if entries is None:
            rows.append(TreeRow(f"{INDENT * depth}…", f"loading:{path}", "loading"))
            return
        for entry in entries[:MAX_ENTRIES]:
            if entry.kind == "directory":
                rows.append(
                    TreeRow(
                        f"{INDENT * depth}{self._marker(entry.path)}{entry.name}/", entry.path, "directory"
                    )
                )
                self._walk(entry.path, depth + 1, rows)
            else:
                shown = f"{entry.name}  ({size(entry.size)})"
                if entry.kind == "symlink":
                    shown = f"{entry.name} → {entry.target or '?'}"
                rows.append(TreeRow(f"{INDENT * depth}  {shown}", entry.path, entry.kind))
        if len(entries) > MAX_ENTRIES:
            more = len(entries) - MAX_ENTRIES
            rows.append(TreeRow(f"{INDENT * depth}… {more:,} more entries not shown", f"more:{path}", "more"))

    def _marker(self, path: str) -> str:
        return "▾ " if path in self.expanded else "▸ "

    def _visible_open(self) -> list[str]:
        """Open directories all of whose ancestors are open too, shallowest first."""
        return sorted(
            (
                path
                for path in self.expanded
                if all(str(a) in self.expanded for a in PurePosixPath(path).parents)
            ),
            key=lambda path: (path.count("/"), path),
        )
