"""The VM's file actions over its shell's filesystem, with paths as a user means them.

Paths are VM paths: absolute, or relative to a working directory (the home directory by
default), with `~` for home. A path that climbs out of the VM's root is refused, never
clamped, so a caller that got its arithmetic wrong hears about it. Errors are the `OSError`
subclasses Python code already handles, each naming the path.
"""

from __future__ import annotations

import errno
import fnmatch
import posixpath
from collections.abc import Iterable, Mapping, Sequence

from agentos_nb.vm.models import DirEntry, FileRead, FileStat, FileWrite
from agentos_nb.vm.shell import HOME, EntryInfo, Shell

Content = bytes | str


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
        data = self._shell.read(resolve_path(path))
        return data if encoding is None else data.decode(encoding)

    def write_file(self, path: str, content: Content, *, encoding: str = "utf-8") -> None:
        """Write `content`, making missing parent directories first."""
        target = resolve_path(path)
        if isinstance(content, str):
            content = content.encode(encoding)
        elif not isinstance(content, bytes | bytearray | memoryview):
            raise TypeError(f"content for {target} must be bytes or str, not {type(content).__name__}")
        self._make_parents(target)
        self._shell.write(target, bytes(content))

    def read_files(self, paths: Iterable[str], *, encoding: str | None = None) -> list[FileRead]:
        results = []
        for path in paths:
            try:
                results.append(FileRead(path=path, content=self.read_file(path, encoding=encoding)))
            except (OSError, ValueError, TypeError) as error:
                results.append(FileRead(path=path, error=_describe(error)))
        return results

    def write_files(
        self, files: Mapping[str, Content] | Iterable[tuple[str, Content]], *, encoding: str = "utf-8"
    ) -> list[FileWrite]:
        items = files.items() if isinstance(files, Mapping) else files
        results = []
        for path, content in items:
            try:
                self.write_file(path, content, encoding=encoding)
                results.append(FileWrite(path=path, ok=True))
            except (OSError, ValueError, TypeError) as error:
                results.append(FileWrite(path=path, ok=False, error=_describe(error)))
        return results

    def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        target = resolve_path(path)
        found = self._shell.info(target)
        if found is not None:
            if found.kind != "directory":
                raise FileExistsError(errno.EEXIST, "a file is in the way", target)
            if not exist_ok:
                raise FileExistsError(errno.EEXIST, "directory exists", target)
            return
        if parents:
            self._make_parents(target)
        self._shell.mkdir(target)

    def readdir(self, path: str = HOME) -> list[DirEntry]:
        directory = self._directory(path)
        return [
            _dir_entry(directory, name, info)
            for name, info in sorted(self._shell.list_dir(directory), key=lambda item: item[0])
        ]

    def readdir_recursive(
        self, path: str = HOME, *, max_depth: int | None = None, exclude: Sequence[str] = ()
    ) -> list[DirEntry]:
        """Everything under `path`, parents before children. `exclude` holds name patterns
        (`node_modules`, `*.pyc`); an excluded directory is not entered."""
        if max_depth is not None and max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, not {max_depth}")
        found: list[DirEntry] = []
        pending = [(self._directory(path), 1)]
        while pending:
            directory, depth = pending.pop()
            entries = [
                entry
                for entry in self.readdir(directory)
                if not any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in exclude)
            ]
            found.extend(entries)
            if max_depth is None or depth < max_depth:
                pending.extend((e.path, depth + 1) for e in reversed(entries) if e.kind == "directory")
        return found

    def stat(self, path: str) -> FileStat:
        target = resolve_path(path)
        info = self._shell.info(target)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", target)
        return FileStat(
            path=target,
            kind=info.kind,
            size=info.size,
            mode=info.mode,
            modified=info.modified,
            created=info.created,
        )

    def exists(self, path: str) -> bool:
        return self._shell.info(resolve_path(path)) is not None

    def move(self, source: str, target: str) -> None:
        """Rename `source` to `target`, replacing a file there; missing parents are made."""
        origin, destination = resolve_path(source), resolve_path(target)
        if self._shell.info(origin) is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", origin)
        if destination == origin:
            return
        if destination.startswith(origin.rstrip("/") + "/"):
            raise OSError(errno.EINVAL, f"cannot move a directory into itself ({destination})", origin)
        existing = self._shell.info(destination)
        if existing is not None and existing.kind == "directory":
            raise IsADirectoryError(errno.EISDIR, "a directory is in the way", destination)
        self._make_parents(destination)
        self._shell.rename(origin, destination)

    def delete_file(self, path: str, *, recursive: bool = False) -> None:
        target = resolve_path(path)
        if target == "/":
            raise PermissionError(errno.EACCES, "the VM's root cannot be deleted", target)
        info = self._shell.info(target)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", target)
        if info.kind == "directory" and not recursive and self._shell.list_dir(target):
            raise IsADirectoryError(errno.EISDIR, "a non-empty directory; pass recursive=True", target)
        self._shell.remove(target, recursive=recursive)

    def _directory(self, path: str) -> str:
        target = resolve_path(path)
        info = self._shell.info(target)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", target)
        if info.kind != "directory":
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", target)
        return target

    def _make_parents(self, path: str) -> None:
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
        for directory in reversed(missing):
            self._shell.mkdir(directory)


def _dir_entry(directory: str, name: str, info: EntryInfo) -> DirEntry:
    return DirEntry(name=name, path=posixpath.join(directory, name), kind=info.kind, size=info.size)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
