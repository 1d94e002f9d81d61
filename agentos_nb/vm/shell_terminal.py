"""An interactive shell on an in-memory terminal (bashkit's `Terminal`), for `open_shell`: the
adapter's second half, beside `shell.py`, and like it run in VM hosts only.

Three facts about bashkit's `Terminal` shape it:
- It is synchronous and runs only while it is driven (`run_until_idle`), holding a lock the
  whole time. So each terminal has a pump that drives it in short slices on a thread, and every
  other use of it (keys, the screen, a resize) takes the same lock between two slices.
- It has a filesystem of its own, which cannot be mounted over. So it works on a copy of the
  VM's files: taken when it opens, and synchronised both ways whenever a command in it ends
  and before a typed line runs (what changed on one side since the last synchronisation goes
  to the other; if both changed a path, the terminal's wins). Host directories mounted in the
  VM are left out: a terminal does not see them.
- It has no host commands (`agentos-<toolkit>`), and the engine's default limits (10,000
  commands per line typed) instead of the VM's: a runaway loop ends on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import bashkit

from agentos_nb.vm.shell import BASE_ENV, HOME, HOSTNAME, USERNAME, EntryInfo, Shell, entry_info, fs_call
from agentos_nb.vm.terminal_models import TerminalScreen, TerminalState, check_keys, check_size

T = TypeVar("T")

OUTPUT_KEPT = 256 * 1024
"""Bytes of a terminal's output kept for readers; older bytes are dropped, and readers told."""
_SLICE = 0.05  # seconds the pump drives the terminal before it lets keys and readers in
_NOT_SYNCED = frozenset({"/dev", "/proc"})  # devices each side provides for itself
# Terminal work runs on threads of its own, so that busy terminals cannot starve the host's
# other work (packing, listing) of the default executor's few threads.
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="agentos-terminal")


@dataclass(frozen=True, slots=True)
class OutputRead:
    """Output from offset `start` to `end`; `dropped` bytes before `start` were no longer kept."""

    data: bytes
    start: int
    end: int
    dropped: int
    closed: bool


class ShellTerminal:
    """One interactive shell in a VM, its screen, and the output its readers have yet to see."""

    def __init__(self, shell: Shell, *, rows: int, cols: int) -> None:
        rows, cols = check_size(rows, cols)
        env = {**BASE_ENV, "TERM": "xterm-256color"}
        self._terminal = bashkit.Terminal(
            rows=rows, cols=cols, username=USERNAME, hostname=HOSTNAME, cwd=HOME, env=env
        )
        self._files = _Sync(shell, _TerminalFiles(self._terminal.fs()))
        self._lock = threading.Lock()  # held by whichever thread drives or reads the terminal
        self._output = bytearray()
        self._output_start = 0  # the offset of the first byte kept
        self._grew = asyncio.Event()
        self._input = asyncio.Event()
        self._closed = False
        self._files_changed = False
        self._pump: asyncio.Task[None] | None = None

    async def start(self, *, max_copy: int) -> None:
        """Copy the VM's files in (at most `max_copy` bytes of them: each terminal holds a copy),
        show the first prompt, and start driving the terminal."""
        await self._locked(self._files.start, max_copy)
        self._input.set()
        self._pump = asyncio.create_task(self._drive())

    # --- input ---------------------------------------------------------------------------------

    async def send(self, keys: str) -> None:
        """Type `keys` (raw: "\\r" is Enter, "\\x03" Ctrl-C). A typed line runs on files
        synchronised with the VM's first."""
        keys = check_keys(keys)
        self._check_open()
        await self._locked(self._type, keys)
        self._input.set()

    def _type(self, keys: str) -> None:
        if ("\r" in keys or "\n" in keys) and not self._terminal.is_alternate_screen():
            self._files_changed |= self._files.sync()
        self._terminal.send(keys)

    async def resize(self, *, rows: int, cols: int) -> None:
        """Change the size; a full-screen program redraws."""
        rows, cols = check_size(rows, cols)
        self._check_open()
        await self._locked(self._terminal.resize, rows, cols)
        self._input.set()

    # --- output --------------------------------------------------------------------------------

    async def screen(self) -> TerminalScreen:
        """The visible screen as text, and where the cursor is."""
        return await self._locked(self._screen)

    def _screen(self) -> TerminalScreen:
        terminal = self._terminal
        rows, cols = terminal.size()
        row, col = terminal.cursor()
        exit_code = terminal.exit_code
        state: TerminalState = "exited" if exit_code is not None else _state(terminal.activity())
        return TerminalScreen(
            text=terminal.screen_text(),
            rows=rows,
            cols=cols,
            cursor_row=row,
            cursor_col=col,
            alternate_screen=terminal.is_alternate_screen(),
            state=state,
            exit_code=exit_code,
        )

    async def read(self, since: int, *, wait: float) -> OutputRead:
        """The output after offset `since`, waiting up to `wait` seconds for some to come."""
        if not isinstance(since, int) or since < 0:
            raise ValueError(f"terminal output offset must be a whole number >= 0, not {since!r}")
        end = self._output_start + len(self._output)
        if since >= end and not self._closed:
            self._grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grew.wait(), wait)
        end = self._output_start + len(self._output)
        since = min(since, end)
        start = max(since, self._output_start)
        data = bytes(self._output[start - self._output_start :])
        return OutputRead(data, start, end, start - since, self._closed)

    def take_files_changed(self) -> bool:
        """Whether the terminal changed the VM's files since the last time this was asked."""
        changed, self._files_changed = self._files_changed, False
        return changed

    # --- the end -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the shell; what its finished commands changed is in the VM's files."""
        if self._closed:
            return
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        self._files_changed |= await self._locked(self._files.sync)
        self._grew.set()

    @property
    def closed(self) -> bool:
        """Whether the terminal was closed, or its shell exited."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the terminal is closed")

    async def _drive(self) -> None:
        """Drive the terminal whenever there is input, until it is idle again."""
        while True:
            await self._input.wait()
            self._input.clear()
            status = "timeout"
            while status == "timeout":
                status, output = await self._locked(self._step)
                if output:
                    self._append(output)
            if status == "exited":
                self._closed = True
                self._grew.set()
                return

    def _step(self) -> tuple[str, bytes]:
        """One slice: run, collect the output, and synchronise the files if a command ended."""
        terminal = self._terminal
        status = terminal.run_until_idle(_SLICE)
        output = terminal.take_output()
        if terminal.take_transcript() or status == "exited":
            self._files_changed |= self._files.sync()
        return status, output

    def _append(self, data: bytes) -> None:
        self._output += data
        excess = len(self._output) - OUTPUT_KEPT
        if excess > 0:
            del self._output[:excess]
            self._output_start += excess
        self._grew.set()

    async def _locked(self, work: Callable[..., T], *args: object) -> T:
        def locked() -> T:
            with self._lock:
                return work(*args)

        return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, locked)


def _state(activity: dict[str, object]) -> TerminalState:
    return "running" if activity.get("state") == "running" else "prompt"


class _TerminalFiles:
    """The terminal's own filesystem, with the operations of `Shell` that the sync uses."""

    def __init__(self, fs: bashkit.FileSystem) -> None:
        self._fs = fs

    def list_dir(self, path: str) -> list[tuple[str, EntryInfo]]:
        entries = fs_call(path, self._fs.read_dir, path)
        return [(entry["name"], entry_info(entry["metadata"])) for entry in entries]

    def info(self, path: str) -> EntryInfo | None:
        try:
            return entry_info(fs_call(path, self._fs.stat, path))
        except FileNotFoundError:
            return None

    def read(self, path: str) -> bytes:
        return fs_call(path, self._fs.read_file, path)

    def write(self, path: str, content: bytes) -> None:
        fs_call(path, self._fs.write_file, path, content)

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        fs_call(path, self._fs.mkdir, path, parents)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        fs_call(path, self._fs.remove, path, recursive)

    def symlink(self, target: str, link: str) -> None:
        fs_call(link, self._fs.symlink, target, link)

    def read_link(self, path: str) -> str:
        return fs_call(path, self._fs.read_link, path)

    def chmod(self, path: str, mode: int) -> None:
        fs_call(path, self._fs.chmod, path, mode)


Files = Shell | _TerminalFiles
Fingerprint = tuple[str, int, int, float]


class _Sync:
    """Two trees kept alike: what changed on one side since the last sync is copied to the other."""

    def __init__(self, vm: Shell, terminal: _TerminalFiles) -> None:
        self._vm = vm
        self._terminal = terminal
        self._skip = _NOT_SYNCED | frozenset(vm.mount_points)
        self._seen_vm: dict[str, Fingerprint] = {}
        self._seen_terminal: dict[str, Fingerprint] = {}

    def start(self, max_copy: int) -> None:
        """The VM's tree copied over the terminal's; a `ValueError` if it is over `max_copy` bytes."""
        size = sum(fingerprint[1] for fingerprint in _walk(self._vm, self._skip).values())
        if size > max_copy:
            raise ValueError(f"the VM's files take {size} bytes; a terminal copies {max_copy} at most")
        self._seen_terminal = _walk(self._terminal, self._skip)
        self._seen_vm = {}
        self.sync()

    def sync(self) -> bool:
        """Copy the changes of each side to the other; whether the VM's files changed."""
        vm_now, terminal_now = _walk(self._vm, self._skip), _walk(self._terminal, self._skip)
        to_vm = _changes(self._seen_terminal, terminal_now)
        to_terminal = _changes(self._seen_vm, vm_now) - to_vm
        _copy(self._terminal, self._vm, sorted(to_vm), terminal_now)
        _copy(self._vm, self._terminal, sorted(to_terminal), vm_now)
        if to_terminal:
            terminal_now = _walk(self._terminal, self._skip)
        if to_vm:
            vm_now = _walk(self._vm, self._skip)
        self._seen_vm, self._seen_terminal = vm_now, terminal_now
        return bool(to_vm)


def _walk(files: Files, skip: frozenset[str]) -> dict[str, Fingerprint]:
    found: dict[str, Fingerprint] = {}
    pending = ["/"]
    while pending:
        directory = pending.pop()
        try:
            entries = files.list_dir(directory)
        except OSError:  # removed meanwhile
            continue
        for name, info in entries:
            path = posixpath.join(directory, name)
            if path in skip:
                continue
            found[path] = (info.kind, info.size, info.mode, info.modified)
            if info.kind == "directory":
                pending.append(path)
    return found


def _changes(before: dict[str, Fingerprint], now: dict[str, Fingerprint]) -> set[str]:
    return {path for path in before.keys() | now.keys() if before.get(path) != now.get(path)}


def _copy(source: Files, target: Files, paths: list[str], source_tree: dict[str, Fingerprint]) -> None:
    """Make each of `paths` in `target` what it is in `source` (parents sort before children)."""
    for path in paths:
        fingerprint = source_tree.get(path)
        try:
            _remove_unless(target, path, None if fingerprint is None else fingerprint[0])
            if fingerprint is None:
                continue
            kind, _, mode, _ = fingerprint
            if kind == "directory":
                target.mkdir(path, parents=True)
                target.chmod(path, mode)
            elif kind == "symlink":
                target.symlink(source.read_link(path), path)
            elif kind == "file":
                target.write(path, source.read(path))
                target.chmod(path, mode)
        except OSError:  # changed again meanwhile, or refused by the target: the next sync retries
            continue


def _remove_unless(files: Files, path: str, kind: str | None) -> None:
    """Clear `path` for an entry of `kind` (a directory stays a directory; None: clear it)."""
    present = files.info(path)
    if present is None or (kind == "directory" and present.kind == "directory"):
        return
    files.remove(path, recursive=True)
