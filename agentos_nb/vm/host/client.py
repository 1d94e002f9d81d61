"""A VM's engine as the kernel uses it: its shell and files, each call a request to its host.

The VM keeps one `HostedShell` for its life. When its host dies, the shell is placed on
another and `restart` (the VM's) lays its files back from the last snapshot; calls made
meanwhile wait for that, and the calls that were under way fail with `VmCrashed`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from agentos_nb.errors import VmCrashed, VmError
from agentos_nb.vm.files import Content, resolve_path
from agentos_nb.vm.host.frames import VmLayout
from agentos_nb.vm.host.pool import HostPool
from agentos_nb.vm.host.process import STOP_GRACE, CallHandler, HostExit, HostProcess, OutputHandler
from agentos_nb.vm.models import DirEntry, FileRead, FileStat, FileWrite
from agentos_nb.vm.shell import HOME, ShellLimits, ShellRun

Restart = Callable[[HostExit], Awaitable[None]]


class HostedShell:
    """One VM's shell and filesystem, on whichever host the pool gives it."""

    def __init__(self, pool: HostPool, layout: VmLayout, calls: CallHandler, restart: Restart) -> None:
        self.limits: ShellLimits = layout.limits
        self.files = HostedFiles(self)
        self._pool = pool
        self._layout = layout
        self._calls = calls
        self._restart = restart
        self.vm_id = secrets.token_hex(8)
        self._host: HostProcess | None = None
        self._restarting: asyncio.Task[None] | None = None
        self._closed = False

    async def open(self) -> None:
        """Place the VM on a host, with an empty filesystem (unless it has one already)."""
        if self._host is not None:
            return
        host = await self._pool.place(self.vm_id, self._calls, self._lost)
        try:
            await host.request(self.vm_id, "open", self._layout.model_dump(mode="json"))
        except BaseException:
            await self._pool.leave(self.vm_id, host)
            raise
        self._host = host

    async def close(self) -> None:
        """Free the VM's place on its host; its files go with it."""
        self._closed = True
        host, self._host = self._host, None
        if self._restarting is not None and self._restarting is not asyncio.current_task():
            self._restarting.cancel()
        if host is None:
            return
        try:
            if host.alive:
                await host.request(self.vm_id, "close", {})
        except VmCrashed:
            pass  # the host died meanwhile: the VM is gone from it all the same
        finally:
            await self._pool.leave(self.vm_id, host)

    async def request(
        self,
        op: str,
        args: dict[str, Any],
        blobs: tuple[bytes, ...] = (),
        *,
        deadline: float | None = None,
        on_output: OutputHandler | None = None,
    ) -> tuple[Any, list[bytes]]:
        restarting = self._restarting
        if restarting is not None and restarting is not asyncio.current_task():
            await asyncio.shield(restarting)
        if self._host is None:
            raise VmError("the VM has no host: it is going to sleep, or its host could not be restarted")
        return await self._host.request(self.vm_id, op, args, blobs, deadline=deadline, on_output=on_output)

    def _lost(self, exit: HostExit) -> None:
        if self._closed:
            return
        self._host = None
        self._restarting = asyncio.ensure_future(self._come_back(exit))

    async def _come_back(self, exit: HostExit) -> None:
        """On a new host, with the files of the last snapshot. A failure here reaches the calls
        that waited for it; later calls hear that the VM has no host."""
        try:
            await self.open()
            await self._restart(exit)
        finally:
            self._restarting = None

    # --- scripts -------------------------------------------------------------------------------

    async def run(
        self,
        script: str,
        *,
        cwd: str = HOME,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float | None = None,
    ) -> ShellRun:
        """Run `script` as `bash -c` would in a new process: fresh shell state, shared files."""
        timeout = self.limits.timeout if timeout is None else timeout
        args = {"script": script, "cwd": cwd, "env": dict(env or {}), "stdin": stdin, "timeout": timeout}
        result, _ = await self.request("run", args, deadline=timeout + STOP_GRACE)
        return ShellRun(**result)

    async def analyze(self, script: str) -> dict[str, Any]:
        """What `script` would run, found on the host without running it (`shell.analyze`)."""
        result, _ = await self.request("analyze", {"script": script})
        return dict(result)

    async def run_process(
        self,
        process: str,
        script: str,
        *,
        cwd: str,
        env: Mapping[str, str],
        stdin: str | None,
        keep_stdin_open: bool,
        timeout: float | None,
        on_output: OutputHandler,
    ) -> int:
        """Run `script` as process `process` to its end (see `host/spawned.py`): its output goes
        to `on_output` as it comes, and its exit code is returned. Cancelling stops it."""
        args: dict[str, Any] = {"process": process, "script": script, "cwd": cwd, "env": dict(env)}
        args.update(stdin=stdin, keep_open=keep_stdin_open, timeout=timeout)
        deadline = None if timeout is None else timeout + STOP_GRACE
        result, _ = await self.request("run_process", args, deadline=deadline, on_output=on_output)
        return int(result["exit_code"])

    async def process_stdin(self, process: str, data: bytes, *, close: bool = False) -> None:
        """Write `data` to a running process's stdin (waiting while its pipe is full), then
        close it if `close`. `BrokenPipeError` once the process has ended."""
        await self.request("process_stdin", {"process": process, "close": close}, (data,) if data else ())

    def persistent(self, cwd: str = HOME) -> HostedPersistentShell:
        """A shell whose state (cwd, variables, functions) lasts from one script to the next."""
        return HostedPersistentShell(self, cwd)

    # --- snapshots -----------------------------------------------------------------------------

    async def pack(self, skip: frozenset[str]) -> bytes:
        """The tree as a tar archive (`archive.pack`), without the paths in `skip`."""
        _, blobs = await self.request("pack", {"skip": sorted(skip)})
        return blobs[0]

    async def boot(
        self, saved: bytes | None, files: Mapping[str, tuple[bytes, int]], links: Mapping[str, str]
    ) -> None:
        """Unpack `saved`, then lay `files` (content, mode) and `links` over it."""
        blobs = ([saved] if saved is not None else []) + [content for content, _ in files.values()]
        args = {
            "saved": saved is not None,
            "files": [[path, mode] for path, (_, mode) in files.items()],
            "links": [[path, target] for path, target in links.items()],
        }
        await self.request("boot", args, tuple(blobs))


class HostedPersistentShell:
    """A shell that keeps its state between scripts, as a terminal does (see
    `shell.PersistentShell`, which runs on the host). A host that dies takes the state along."""

    def __init__(self, shell: HostedShell, cwd: str) -> None:
        self._shell = shell
        self._cwd = cwd
        self._session = secrets.token_hex(8)

    async def run(self, script: str, *, timeout: float | None = None) -> ShellRun:
        timeout = self._shell.limits.timeout if timeout is None else timeout
        args = {"session": self._session, "cwd": self._cwd, "script": script, "timeout": timeout}
        result, _ = await self._shell.request("run_persistent", args, deadline=timeout + STOP_GRACE)
        return ShellRun(**result)

    async def close(self) -> None:
        await self._shell.request("close_persistent", {"session": self._session})


class HostedFiles:
    """The VM's file actions (`files.VmFiles`, which runs on the host), as requests. Paths are
    checked here first, so that what cannot cross the channel fails as it would on the host."""

    def __init__(self, shell: HostedShell) -> None:
        self._shell = shell

    async def read_file(self, path: str, *, encoding: str | None = None) -> Content:
        resolve_path(path)
        _, blobs = await self._shell.request("read", {"path": path})
        return blobs[0] if encoding is None else blobs[0].decode(encoding)

    async def write_file(self, path: str, content: Content, *, encoding: str = "utf-8") -> None:
        """Write `content`, making missing parent directories first."""
        given = resolve_path(path)
        if isinstance(content, str):
            content = content.encode(encoding)
        elif not isinstance(content, bytes | bytearray | memoryview):
            raise TypeError(f"content for {given} must be bytes or str, not {type(content).__name__}")
        await self._shell.request("write", {"path": path}, (bytes(content),))

    async def read_files(self, paths: Iterable[str], *, encoding: str | None = None) -> list[FileRead]:
        results = []
        for path in paths:
            try:
                results.append(FileRead(path=path, content=await self.read_file(path, encoding=encoding)))
            except (OSError, ValueError, TypeError) as error:
                results.append(FileRead(path=path, error=_describe(error)))
        return results

    async def write_files(
        self, files: Mapping[str, Content] | Iterable[tuple[str, Content]], *, encoding: str = "utf-8"
    ) -> list[FileWrite]:
        """Write each file; one that fails does not stop the others. The items are checked
        first, so a malformed one writes nothing at all."""
        items = list(files.items() if isinstance(files, Mapping) else files)
        for number, item in enumerate(items, start=1):
            if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
                raise TypeError(f"write_files item {number} is not a (path, content) pair: {item!r}")
        results = []
        for path, content in items:
            try:
                await self.write_file(path, content, encoding=encoding)
                results.append(FileWrite(path=path, ok=True))
            except (OSError, ValueError, TypeError) as error:
                results.append(FileWrite(path=path, ok=False, error=_describe(error)))
        return results

    async def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        resolve_path(path)
        await self._shell.request("mkdir", {"path": path, "parents": parents, "exist_ok": exist_ok})

    async def readdir(self, path: str = HOME) -> list[DirEntry]:
        resolve_path(path)
        result, _ = await self._shell.request("readdir", {"path": path})
        return [DirEntry.model_validate(entry) for entry in result]

    async def readdir_recursive(
        self, path: str = HOME, *, max_depth: int | None = None, exclude: Sequence[str] = ()
    ) -> list[DirEntry]:
        resolve_path(path)
        if isinstance(exclude, str) or not all(isinstance(pattern, str) for pattern in exclude):
            raise TypeError(f"exclude is a list of name patterns, not {exclude!r}")
        args = {"path": path, "max_depth": max_depth, "exclude": list(exclude)}
        result, _ = await self._shell.request("readdir_recursive", args)
        return [DirEntry.model_validate(entry) for entry in result]

    async def stat(self, path: str, *, follow_symlinks: bool = True) -> FileStat:
        resolve_path(path)
        result, _ = await self._shell.request("stat", {"path": path, "follow_symlinks": follow_symlinks})
        return FileStat.model_validate(result)

    async def exists(self, path: str) -> bool:
        """False for a symlink whose target is missing, as `os.path.exists`."""
        resolve_path(path)
        result, _ = await self._shell.request("exists", {"path": path})
        return bool(result)

    async def move(self, source: str, target: str) -> None:
        resolve_path(source)
        resolve_path(target)
        await self._shell.request("move", {"source": source, "target": target})

    async def delete_file(self, path: str, *, recursive: bool = False) -> None:
        resolve_path(path)
        await self._shell.request("delete", {"path": path, "recursive": recursive})

    async def real_path(self, path: str, *, cwd: str = HOME) -> str:
        """`path` with its symlinks resolved: the path the filesystem itself knows."""
        resolve_path(path, cwd)
        result, _ = await self._shell.request("real_path", {"path": path, "cwd": cwd})
        return str(result)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
