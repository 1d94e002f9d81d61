"""Where the offline agent may work. It reads anywhere in the VM (the VM's own files: the host's
are out of reach of every tool), but it changes files only under the home folder and /tmp, and
never deletes or moves those folders, or `/`, themselves. A request outside this is refused
before any tool is called, with a reason that names the path."""

from __future__ import annotations

import posixpath

from agentos_nb.agents.offline.intents import (
    AppendText,
    CountIn,
    DeletePath,
    ExplainFile,
    FindFiles,
    Intent,
    ListFolder,
    MakeFolder,
    MovePath,
    ReplaceText,
    RunFile,
    SearchText,
    ShowFile,
    WriteFile,
)
from agentos_nb.vm.files import resolve_path
from agentos_nb.vm.shell import HOME

WRITABLE = (HOME, "/tmp")
"""The folders the offline agent changes files in."""


def refusal(intent: Intent) -> str | None:
    """Why the agent will not do `intent`, or None when it may."""
    changed: list[str] = []
    removed: list[str] = []
    read: list[str] = []
    match intent:
        case WriteFile(path=path) | AppendText(path=path) | ReplaceText(path=path) | MakeFolder(path=path):
            changed.append(path)
        case DeletePath(path=path):
            removed.append(path)
        case MovePath(source=source, target=target, copy=copy):
            (read if copy else removed).append(source)
            changed.append(target)
        case ShowFile(path=path) | ListFolder(path=path) | RunFile(path=path) | ExplainFile(path=path):
            read.append(path)
        case SearchText(path=path) | FindFiles(path=path) | CountIn(path=path):
            read.append(path)
    for path in read + changed + removed:
        problem = _unreadable(path)
        if problem:
            return problem
    for path in removed:
        where = resolve_path(path, HOME)
        if where in ("/", "/home", *WRITABLE):
            return (
                f"I won't delete or move `{path}`{_resolved(path, where)}: it is "
                f"{'the root of the VM' if where == '/' else 'a folder the VM needs'}. "
                "Name a file or folder inside it instead."
            )
    for path in changed + removed:
        where = resolve_path(path, HOME)
        if not _inside_writable(where):
            folders = " and ".join(WRITABLE)
            return f"I won't change `{path}`{_resolved(path, where)}: I only change files under {folders}."
    return None


def _unreadable(path: str) -> str | None:
    try:
        resolve_path(path, HOME)
    except PermissionError:
        return f"`{path}` leads outside the VM's root folder, so there is nothing there I could use."
    except (TypeError, ValueError) as error:
        return f"`{path}` is not a path I can use: {error}"
    return None


def _resolved(path: str, where: str) -> str:
    return "" if where == path.rstrip("/") or (where == "/" and path.strip("/") == "") else f" ({where})"


def _inside_writable(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in WRITABLE)


def outside_home(path: str) -> bool:
    """Whether a path the agent reads is outside its usual folders (the reply then says that it is
    the VM's file, not the user's computer's)."""
    try:
        where = resolve_path(path, HOME)
    except (PermissionError, TypeError, ValueError):
        return False
    return not _inside_writable(posixpath.normpath(where))
