"""A VM's processes, as the kernel keeps them: `spawn` starts one and returns at once; its output
comes back from the host as it is printed (`host/spawned.py`), goes to the event bus and into a
bounded ring per process; `write_stdin`, `kill` and `wait` act on it by id.

A running process holds its VM awake (it is `keep_awake` work), and it survives nothing past
its VM's life on its host: when the VM sleeps or is destroyed its processes are stopped, and
when its host dies they end as `lost`; waiters hear why (`ProcessLost`). After a wake, the old
ids are unknown (`ProcessNotFound`).
"""

from __future__ import annotations

import asyncio
import codecs
import errno
import re
import signal as signals
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from agentos_nb.actors.context import ActorContext
from agentos_nb.errors import ActionTimeout, ProcessLost, ProcessNotFound, TooManyProcesses, VmCrashed
from agentos_nb.events import ProcessEnded, ProcessOutputEvent, ProcessStarted
from agentos_nb.vm.host.client import HostedShell
from agentos_nb.vm.process_models import ProcessInfo, ProcessOutput, ProcessStatus
from agentos_nb.vm.shell import HOME, ShellLimits

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEPT_ENDED = 16
"""Ended processes a VM remembers (for `wait`, `list_processes`, their output), newest kept."""
CHUNK_OVERHEAD = 128
"""Bytes each kept chunk counts for beyond its text, so that a ring of tiny chunks stays small."""
SIGNALS: Mapping[str, int] = {
    name: int(getattr(signals, name)) for name in ("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT")
}
"""What `kill` takes. Each ends the process at once: the engine has no signal handlers (`trap`)."""


@dataclass(frozen=True, slots=True)
class _Chunk:
    stream: str
    data: str
    offset: int
    end: int


class OutputRing:
    """The latest output of one process, at most `capacity` bytes; the oldest goes first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._chunks: deque[_Chunk] = deque()
        self._kept = 0
        self.total = 0
        """Bytes printed so far."""
        self.dropped = 0
        """Bytes printed and no longer kept."""
        self._news: asyncio.Future[None] | None = None

    def append(self, stream: str, data: str, size: int) -> _Chunk:
        chunk = _Chunk(stream, data, self.total, self.total + size)
        self.total += size
        if size > self._capacity:  # alone past the capacity: only its tail is kept
            tail = data.encode()[-self._capacity :].decode(errors="ignore")
            self._drop_all()
            self.dropped += size - len(tail.encode())
            chunk = _Chunk(stream, tail, chunk.end - len(tail.encode()), chunk.end)
        self._chunks.append(chunk)
        self._kept += chunk.end - chunk.offset + CHUNK_OVERHEAD
        while self._kept > self._capacity and len(self._chunks) > 1:
            old = self._chunks.popleft()
            self._kept -= old.end - old.offset + CHUNK_OVERHEAD
            self.dropped += old.end - old.offset
        self.wake()
        return chunk

    def _drop_all(self) -> None:
        self.dropped += sum(old.end - old.offset for old in self._chunks)
        self._chunks.clear()
        self._kept = 0

    def after(self, since: int) -> list[_Chunk]:
        """The kept chunks that end after byte `since`, oldest first."""
        found: list[_Chunk] = []
        for chunk in reversed(self._chunks):
            if chunk.end <= since:
                break
            found.append(chunk)
        found.reverse()
        return found

    def wake(self) -> None:
        """Tell the readers waiting in `changed` (new output, or the end)."""
        if self._news is not None and not self._news.done():
            self._news.set_result(None)
        self._news = None

    def changed(self) -> Awaitable[None]:
        if self._news is None:
            self._news = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._news)


class _Process:
    def __init__(self, pid: int, command: str, cwd: str, stdin_open: bool, capacity: int) -> None:
        self.pid = pid
        self.command = command
        self.cwd = cwd
        self.stdin_open = stdin_open
        self.ring = OutputRing(capacity)
        self.started_at = time.time()
        self.status: ProcessStatus = "running"
        self.exit_code: int | None = None
        self.signal: str | None = None
        self.error: str | None = None
        self.lost: ProcessLost | None = None
        self.ended_at: float | None = None
        self.ended = asyncio.get_running_loop().create_future()
        self.task: asyncio.Future[None] | None = None
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")(errors="replace") for name in ("stdout", "stderr")
        }

    def decode(self, stream: str, data: bytes, *, final: bool = False) -> str:
        return self._decoders[stream].decode(data, final)

    def finish(self, status: ProcessStatus, exit_code: int | None, error: str | None = None) -> None:
        if self.status != "running":
            return
        self.status, self.exit_code, self.error = status, exit_code, error
        self.stdin_open = False
        self.ended_at = time.time()
        if not self.ended.done():
            self.ended.set_result(None)
        self.ring.wake()

    def info(self) -> ProcessInfo:
        return ProcessInfo(
            pid=self.pid,
            command=self.command,
            cwd=self.cwd,
            status=self.status,
            exit_code=self.exit_code,
            signal=self.signal,
            error=self.error,
            started_at=self.started_at,
            ended_at=self.ended_at,
            stdin_open=self.stdin_open,
            output_bytes=self.ring.total,
            dropped_bytes=self.ring.dropped,
        )


class Processes:
    """The processes of one awake VM."""

    def __init__(
        self,
        c: ActorContext,
        shell: HostedShell,
        limits: ShellLimits,
        checked_cwd: Callable[[str], Awaitable[str]],
        changed: Callable[[], None],
    ) -> None:
        self._c = c
        self._shell = shell
        self._limits = limits
        self._checked_cwd = checked_cwd
        self._changed = changed
        self._processes: dict[int, _Process] = {}
        self._next_pid = 1

    async def spawn(
        self,
        command: str,
        *,
        env: Mapping[str, str] | None,
        cwd: str | None,
        stdin: str | bytes | None,
        keep_stdin_open: bool,
        timeout: float | None,
    ) -> ProcessInfo:
        if not isinstance(command, str):
            raise TypeError(f"spawn takes the command as one str, not {type(command).__name__}")
        for name, value in (env or {}).items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise ValueError(f"spawn env: {name!r} is not a valid variable name")
            if not isinstance(value, str):
                raise TypeError(f"spawn env: the value of {name} must be a str, not {type(value).__name__}")
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"spawn timeout must be a positive number of seconds or None, not {timeout!r}")
        if isinstance(stdin, bytes):
            try:
                stdin = stdin.decode()
            except UnicodeDecodeError as error:
                raise ValueError(f"spawn stdin must be text (UTF-8); byte {error.start} is not") from None
        directory = HOME if cwd is None else await self._checked_cwd(cwd)
        # Counted after the last await: spawns made at once cannot all slip under the cap.
        running = sum(1 for p in self._processes.values() if p.status == "running")
        if running >= self._limits.max_processes:
            raise TooManyProcesses(
                f"this VM runs {running} processes, its limit (ShellLimits.max_processes): "
                "wait for one to end or kill one first",
                limit=self._limits.max_processes,
            )
        pid = self._next_pid
        self._next_pid += 1
        process = _Process(pid, command, directory, bool(keep_stdin_open), self._limits.max_process_output)
        self._processes[pid] = process
        self._forget_old()
        process.task = self._c.keep_awake(
            self._supervise(process, env=dict(env or {}), stdin=stdin, timeout=timeout)
        )
        c = self._c
        if c.events.active:
            c.events.publish(ProcessStarted(actor=c.ref, pid=pid, command=command))
        return process.info()

    async def _supervise(
        self, process: _Process, *, env: dict[str, str], stdin: str | None, timeout: float | None
    ) -> None:
        """Run the process to its end, whatever ends it, and say how it ended."""
        try:
            code = await self._shell.run_process(
                str(process.pid),
                process.command,
                cwd=process.cwd,
                env=env,
                stdin=stdin,
                keep_stdin_open=process.stdin_open,
                timeout=timeout,
                on_output=lambda stream, data: self._hear(process, stream, data),
            )
        except asyncio.CancelledError:
            if process.signal is not None:  # our own kill
                process.finish("killed", 128 + SIGNALS[process.signal])
            else:
                self._lose(process, "the VM went to sleep or was destroyed, which ends its processes")
                raise
        except VmCrashed as error:
            self._lose(process, error.message, **error.details)
        except Exception as error:  # the VM is gone from its host, or its engine failed
            self._lose(process, f"{type(error).__name__}: {error}")
        else:
            self._flush(process)
            process.finish("exited", code)
        finally:
            self._ended(process)

    def _hear(self, process: _Process, stream: str, data: bytes) -> None:
        if process.status != "running" or stream not in ("stdout", "stderr"):
            return
        self._keep(process, stream, process.decode(stream, data), len(data))

    def _flush(self, process: _Process) -> None:
        for stream in ("stdout", "stderr"):
            rest = process.decode(stream, b"", final=True)
            if rest:
                self._keep(process, stream, rest, len(rest.encode()))

    def _keep(self, process: _Process, stream: str, text: str, size: int) -> None:
        if not size:
            return
        chunk = process.ring.append(stream, text, size)
        self._changed()  # a process at work may be writing files: a snapshot follows, one per burst
        c = self._c
        if c.events.active:
            c.events.publish(
                ProcessOutputEvent(
                    actor=c.ref,
                    pid=process.pid,
                    stream="stderr" if stream == "stderr" else "stdout",
                    data=chunk.data,
                    offset=chunk.offset,
                )
            )

    def _lose(self, process: _Process, why: str, **details: object) -> None:
        message = f"process {process.pid} ({_short(process.command)}) was lost: {why}"
        process.lost = ProcessLost(message, pid=process.pid, **details)
        process.finish("lost", None, why)

    def _ended(self, process: _Process) -> None:
        self._changed()  # the process may have changed files: a snapshot follows
        c = self._c
        if c.events.active and process.status != "running":
            c.events.publish(
                ProcessEnded(
                    actor=c.ref,
                    pid=process.pid,
                    command=process.command,
                    status=process.status,
                    exit_code=process.exit_code,
                    signal=process.signal,
                    error=process.error,
                    duration=(process.ended_at or time.time()) - process.started_at,
                )
            )

    def _forget_old(self) -> None:
        ended = [pid for pid, p in self._processes.items() if p.status != "running"]
        for pid in ended[: max(0, len(ended) - KEPT_ENDED)]:
            del self._processes[pid]

    def _get(self, pid: int) -> _Process:
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise TypeError(f"a process id is an int, not {type(pid).__name__}")
        process = self._processes.get(pid)
        if process is None:
            raise ProcessNotFound(
                f"no process {pid} in this VM (never spawned, long ended, or spawned before the VM "
                "last slept: processes end with their VM's sleep)",
                pid=pid,
            )
        return process

    # --- what the actions do -------------------------------------------------------------------

    async def write_stdin(self, pid: int, data: str | bytes, *, close: bool = False) -> None:
        process = self._get(pid)
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"stdin data is str or bytes, not {type(data).__name__}")
        if not process.stdin_open:
            why = (
                "it has ended"
                if process.status != "running"
                else "it was closed, or never kept open (spawn(..., keep_stdin_open=True))"
            )
            raise BrokenPipeError(errno.EPIPE, f"process {pid} takes no more stdin: {why}")
        if close:
            process.stdin_open = False
        await self._shell.process_stdin(str(pid), bytes(data), close=close)

    async def close_stdin(self, pid: int) -> None:
        process = self._get(pid)
        if process.stdin_open:
            await self.write_stdin(pid, b"", close=True)

    async def kill(self, pid: int, signal: int | str = "SIGTERM") -> ProcessInfo:
        process = self._get(pid)
        name = signal_name(signal)
        if process.status == "running" and process.task is not None:
            process.signal = name
            process.task.cancel()
            await asyncio.wait([process.task])
        return process.info()

    async def wait(self, pid: int, timeout: float | None = None) -> int:
        process = self._get(pid)
        if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
            raise ValueError(f"wait timeout must be a number of seconds >= 0 or None, not {timeout!r}")
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(process.ended)
        except TimeoutError:
            raise ActionTimeout(
                f"process {pid} did not end within {timeout:g} s; it is still running", action="wait"
            ) from None
        if process.lost is not None:  # a fresh error for each waiter: a shared one gathers their tracebacks
            raise ProcessLost(process.lost.message, **process.lost.details)
        assert process.exit_code is not None
        return process.exit_code

    def list(self) -> list[ProcessInfo]:
        return [process.info() for process in self._processes.values()]

    def get(self, pid: int) -> ProcessInfo:
        return self._get(pid).info()

    async def output(self, pid: int, since: int = 0) -> AsyncIterator[ProcessOutput]:
        process = self._get(pid)
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ValueError(f"since is a byte offset >= 0 (a chunk's `end`), not {since!r}")
        cursor = since
        while True:
            chunks = process.ring.after(cursor)
            if not chunks:
                if process.status != "running":
                    return
                await process.ring.changed()
                continue
            for chunk in chunks:
                yield ProcessOutput(
                    pid=pid,
                    stream="stderr" if chunk.stream == "stderr" else "stdout",
                    data=chunk.data,
                    offset=chunk.offset,
                    end=chunk.end,
                    dropped=max(0, chunk.offset - cursor),
                )
                cursor = chunk.end

    async def stop_all(self) -> None:
        """End every running process (the VM is going to sleep, or away), and wait until they
        have: their waiters hear that they were lost."""
        tasks = [p.task for p in self._processes.values() if p.status == "running" and p.task is not None]
        for process in self._processes.values():
            if process.status == "running":
                self._lose(process, "the VM went to sleep or was destroyed, which ends its processes")
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def signal_name(signal: int | str) -> str:
    """The name of a signal `kill` takes (15, "TERM" or "SIGTERM"), or a ValueError naming them."""
    allowed = ", ".join(SIGNALS)
    if isinstance(signal, int) and not isinstance(signal, bool):
        for name, number in SIGNALS.items():
            if number == signal:
                return name
    elif isinstance(signal, str):
        name = signal.upper() if signal.upper().startswith("SIG") else "SIG" + signal.upper()
        if name in SIGNALS:
            return name
    raise ValueError(f"kill takes one of {allowed} (or their numbers), not {signal!r}")


def _short(command: str) -> str:
    return command if len(command) <= 60 else command[:57] + "..."
