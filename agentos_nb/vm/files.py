"""The VM's file actions over its shell's filesystem, with paths as a user means them. They
run on the VM's host, next to the filesystem (`host/engine.py`); the kernel asks for them
through `host/client.py`, which checks paths the same way first.

Paths are VM paths: absolute, or relative to a working directory (the home directory by
default), with `~` for home. A path that climbs out of the VM's root is refused, never
clamped, so a caller that got its arithmetic wrong hears about it. Symlinks are followed as
the shell follows them (a link's own `..` stops at the root, which is the whole VM). Errors
are the `OSError` subclasses Python code already handles, each naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import posixpath
from collections.abc import Iterator, Sequence

from agentos_nb.vm.models import DirEntry, FileStat
from agentos_nb.vm.shell import HOME, EntryInfo, Shell

Content = bytes | str

_MAX_LINKS = 40  # as Linux: more symlinks than this in one path is a loop


def resolve_path(path: str, cwd: str = HOME) -> str:
    """The absolute, normalised VM path that `path` names when seen from `cwd`."""
    if not isinstance(path, str):
        raise TypeError(f"a VM path is a str, not {type(path).__name__}: {path!r}")
    if not path:
        raise ValueError("a VM path cannot be empty")
    if "\0" in path:
        raise ValueError(f"a VM path cannot contain a NUL character: {path!r}")
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    joined = posixpath.join(cwd, path)
    depth = 0
    for part in joined.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise PermissionError(errno.EACCES, "path leads outside the VM's root", path)
        elif part not in ("", "."):
            depth += 1
    return posixpath.normpath(joined).replace("//", "/")


class VmFiles:
    """File operations of one VM, as its actions expose them."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell

    def read_file(self, path: str, *, encoding: str | None = None) -> Content:
        given = resolve_path(path)
        with _naming(given):
            data = self._shell.read(self.real_path(given))
        return data if encoding is None else data.decode(encoding)

    def write_file(self, path: str, content: Content, *, encoding: str = "utf-8") -> None:
        """Write `content`, making missing parent directories first; a failed write leaves
        no directories behind."""
        given = resolve_path(path)
        if path.endswith("/"):
            raise IsADirectoryError(errno.EISDIR, "a file path cannot end in /", given)
        if isinstance(content, str):
            content = content.encode(encoding)
        elif not isinstance(content, bytes | bytearray | memoryview):
            raise TypeError(f"content for {given} must be bytes or str, not {type(content).__name__}")
        with _naming(given):
            target = self.real_path(given)
            made = self._make_parents(target)
            try:
                self._shell.write(target, bytes(content))
            except OSError:
                for directory in reversed(made):
                    self._shell.remove(directory)
                raise

    def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        given = resolve_path(path)
        target = self.real_path(given, follow_last=False)
        found = self._shell.info(target)
        if found is not None:
            if found.kind == "symlink":  # a link to a directory is one; a dangling link is in the way
                found = self._shell.info(self.real_path(given))
            if found is None or found.kind != "directory":
                raise FileExistsError(errno.EEXIST, "a file is in the way", given)
            if not exist_ok:
                raise FileExistsError(errno.EEXIST, "directory exists", given)
            return
        if parents:
            self._make_parents(target)
        self._shell.mkdir(target)

    def readdir(self, path: str = HOME) -> list[DirEntry]:
        return self._list(*self._directory(path))

    def readdir_recursive(
        self, path: str = HOME, *, max_depth: int | None = None, exclude: Sequence[str] = ()
    ) -> list[DirEntry]:
        """Everything under `path`, parents before children. `exclude` holds name patterns
        (`node_modules`, `*.pyc`); an excluded directory is not entered, nor is a symlink."""
        if max_depth is not None and max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, not {max_depth}")
        found: list[DirEntry] = []
        pending = [(*self._directory(path), 1)]
        while pending:
            shown, real, depth = pending.pop()
            entries = [
                entry
                for entry in self._list(shown, real, vanished_ok=depth > 1)
                if not any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in exclude)
            ]
            found.extend(entries)
            if max_depth is None or depth < max_depth:
                pending.extend(
                    (e.path, posixpath.join(real, e.name), depth + 1)
                    for e in reversed(entries)
                    if e.kind == "directory"
                )
        return found

    def stat(self, path: str, *, follow_symlinks: bool = True) -> FileStat:
        given = resolve_path(path)
        info = self._shell.info(self.real_path(given, follow_last=follow_symlinks))
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", given)
        return FileStat(
            path=given,
            kind=info.kind,
            size=info.size,
            mode=info.mode,
            modified=info.modified,
            created=info.created,
        )

    def exists(self, path: str) -> bool:
        """False for a symlink whose target is missing, as `os.path.exists`."""
        try:
            return self._shell.info(self.real_path(path)) is not None
        except OSError:  # a symlink loop, or a file where a directory should be
            return False

    def move(self, source: str, target: str) -> None:
        """Rename `source` (a symlink itself, not its target) to `target`, replacing a file
        there; missing parents are made."""
        origin = self.real_path(source, follow_last=False)
        destination = self.real_path(target, follow_last=False)
        moving = self._shell.info(origin)
        if moving is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", origin)
        if destination == origin:
            return
        if destination.startswith(origin.rstrip("/") + "/"):
            raise OSError(errno.EINVAL, f"cannot move a directory into itself ({destination})", origin)
        existing = self._shell.info(destination)
        if existing is not None and existing.kind == "directory":
            raise IsADirectoryError(errno.EISDIR, "a directory is in the way", destination)
        if existing is not None and moving.kind == "directory":
            raise NotADirectoryError(errno.ENOTDIR, "cannot put a directory over a file", destination)
        self._make_parents(destination)
        self._shell.rename(origin, destination)

    def delete_file(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, a symlink (not its target), or a directory: an empty one, or any
        with `recursive=True`."""
        target = self.real_path(path, follow_last=False)
        if target == "/":
            raise PermissionError(errno.EACCES, "the VM's root cannot be deleted", target)
        info = self._shell.info(target)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", target)
        if info.kind == "directory" and not recursive and self._shell.list_dir(target):
            raise IsADirectoryError(errno.EISDIR, "a non-empty directory; pass recursive=True", target)
        self._shell.remove(target, recursive=recursive)

    def real_path(self, path: str, *, follow_last: bool = True, cwd: str = HOME) -> str:
        """`path` with its symlinks resolved (the last one only if `follow_last`): the path
        the filesystem itself knows. Parts that do not exist yet are kept as they are."""
        pending = resolve_path(path, cwd).split("/")[::-1]
        resolved = "/"
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            info = self._shell.info(candidate)
            if info is not None and info.kind == "symlink" and (pending or follow_last):
                hops += 1
                if hops > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", resolve_path(path, cwd))
                target = self._shell.read_link(candidate)
                if target.startswith("/"):
                    resolved = "/"
                pending.extend(target.split("/")[::-1])
                continue
            resolved = candidate
        return resolved

    def _list(self, shown: str, real: str, *, vanished_ok: bool = False) -> list[DirEntry]:
        """The entries of directory `real`, named under `shown` (the path the caller gave).
        `vanished_ok`: a subdirectory a command removed meanwhile has none, as in `os.walk`."""
        try:
            entries = self._shell.list_dir(real)
        except (FileNotFoundError, NotADirectoryError):
            if not vanished_ok:
                raise
            return []
        ordered = sorted(entries, key=lambda item: item[0])
        return [self._dir_entry(shown, real, name, info) for name, info in ordered]

    def _dir_entry(self, shown: str, real: str, name: str, info: EntryInfo) -> DirEntry:
        target = None
        if info.kind == "symlink":
            with contextlib.suppress(OSError):  # removed meanwhile: listed without its target
                target = self._shell.read_link(posixpath.join(real, name))
        return DirEntry(
            name=name, path=posixpath.join(shown, name), kind=info.kind, size=info.size, target=target
        )

    def _directory(self, path: str) -> tuple[str, str]:
        """The directory `path` as given (resolved) and as it really is (links followed)."""
        shown = resolve_path(path)
        real = self.real_path(shown)
        info = self._shell.info(real)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", shown)
        if info.kind != "directory":
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", shown)
        return shown, real

    def _make_parents(self, path: str) -> list[str]:
        """Make the missing directories above `path`; returns those it made, outermost first."""
        parent = posixpath.dirname(path)
        missing: list[str] = []
        while parent != "/":
            info = self._shell.info(parent)
            if info is not None:
                if info.kind != "directory":
                    raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", parent)
                break
            missing.append(parent)
            parent = posixpath.dirname(parent)
        missing.reverse()
        for directory in missing:
            self._shell.mkdir(directory)
        return missing


@contextlib.contextmanager
def _naming(given: str) -> Iterator[None]:
    """Errors name the path the caller gave, not where its symlinks led."""
    try:
        yield
    except OSError as error:
        if error.filename == given or error.errno is None:
            raise
        raise type(error)(error.errno, error.strerror, given) from None
