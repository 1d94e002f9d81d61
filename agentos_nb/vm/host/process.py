"""One VM host process as the kernel sees it: started, asked, answered, and watched until it ends.

Requests and host-command calls share one channel (`frames.py`), each frame naming its id. A
host that ends for any reason (a crash, the memory limit, a kill for a command that would not
stop) fails every request under way with `VmCrashed`, at once: nobody waits on a dead host.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import os
import signal as signals
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentos_nb.errors import VmCrashed, VmError
from agentos_nb.vm.host.frames import Failure, Header, encode, read_frame
from agentos_nb.vm.shell import CommandCall, CommandReply
from agentos_nb.vm.tool_results import describe

CallHandler = Callable[[CommandCall], Awaitable[CommandReply]]
OutputHandler = Callable[[str, bytes], None]
"""Hears a process's output as it comes: the stream's name and its bytes."""
STOP_GRACE = 2.0
"""Seconds a command has to stop after its timeout or cancel, before its host is killed."""
_SPINNING = 0.5  # a host using more than half a core with nothing to run is running a stray
_SPIN_CHECKS = 10  # a host busy with other commands too is looked at this many times
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Pending:
    """A request waiting for its reply."""

    vm: str
    op: str
    args: dict[str, Any]
    reply: asyncio.Future[tuple[Any, list[bytes]]] = field(repr=False)
    output: OutputHandler | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HostExit:
    """How a host ended, and what its VMs were running then (VM id -> command)."""

    exit_code: int | None
    signal: int | None
    running: dict[str, str]
    reason: str | None = None
    """Why the kernel killed it, if it did."""

    def describe(self) -> str:
        if self.reason is not None:
            return f"the VM's host process was killed: {self.reason}"
        if self.signal is not None:
            try:
                name = signals.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"the VM's host process was killed by {name}"
        return f"the VM's host process exited with code {self.exit_code}"


HOST_ENVIRONMENT = (
    *("PATH", "PYTHONPATH", "PYTHONHASHSEED", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR"),
    "AGENTOS_NB_CACHE",  # where `agentos-nb prepare` put the compiled CPython (vm/languages/python_wasi.py)
)
"""The only variables a host gets from the kernel: what Python needs to start. API keys and
every other secret of the kernel's environment stay out of the process that runs agent code."""


def host_environment(kernel: Mapping[str, str]) -> dict[str, str]:
    """The environment a host starts with."""
    return {name: kernel[name] for name in HOST_ENVIRONMENT if name in kernel}


class HostProcess:
    """A started host. `request` asks it; host-command calls go to the handlers of `calls`."""

    def __init__(
        self, process: asyncio.subprocess.Process, calls: Callable[[str], CallHandler | None]
    ) -> None:
        self._process = process
        self._calls = calls
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._serving: dict[int, asyncio.Task[None]] = {}
        self._watching: set[asyncio.Task[None]] = set()
        self._strays: dict[int, Pending] = {}
        """Commands stopped lately, whose engine might still run: a crash now is theirs."""
        self.kill_reason: str | None = None
        self.exit: HostExit | None = None
        self.ended: asyncio.Future[HostExit] = asyncio.get_running_loop().create_future()
        self._reading = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, memory_limit: int, calls: Callable[[str], CallHandler | None]) -> HostProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agentos_nb.vm.host",
            str(memory_limit),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**31,
            env=host_environment(os.environ),
        )
        return cls(process, calls)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self.exit is None

    async def request(
        self,
        vm: str,
        op: str,
        args: dict[str, Any],
        blobs: tuple[bytes, ...] = (),
        *,
        deadline: float | None = None,
        on_output: OutputHandler | None = None,
    ) -> tuple[Any, list[bytes]]:
        """Ask the host; its answer, or the error it raised there (a process's output, before
        it, goes to `on_output`). A host that has not
        answered `deadline` seconds on is killed (its engine would not stop the work), and so is
        one that does not stop the work within `STOP_GRACE` of the caller being cancelled."""
        if self.exit is not None:
            raise _crashed(self.exit)
        request_id = next(self._ids)
        frame = encode(Header(kind="request", id=request_id, vm=vm, op=op, args=args), blobs)
        reply: asyncio.Future[tuple[Any, list[bytes]]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = Pending(vm, op, args, reply, on_output)
        self._write(frame)
        try:
            async with asyncio.timeout(deadline):
                return await asyncio.shield(reply)
        except TimeoutError:
            self._kill_for(f"a command ran {deadline:g} s, past its timeout, and did not stop")
            return await reply
        except asyncio.CancelledError:
            if not reply.done() and self.exit is None:
                self._send(Header(kind="cancel", id=request_id))
                self._watch(self._stopped_within(reply))
            raise

    def _watch(self, watch: Awaitable[None]) -> None:
        task = asyncio.ensure_future(watch)
        self._watching.add(task)
        task.add_done_callback(self._watching.discard)

    async def _spins_on(self, stray: int) -> None:
        """A stopped command's engine may compute on where nothing can interrupt it (a `jq`
        recursion ignores cancelling). Once the engine's own timeout should have caught it, a
        host that keeps a core busy with no other command running is killed."""
        try:
            await self._spinning()
        finally:
            self._strays.pop(stray, None)

    async def _spinning(self) -> None:
        await asyncio.sleep(STOP_GRACE / 2)
        for _ in range(_SPIN_CHECKS):
            if self.exit is not None:
                return
            before = _cpu_seconds(self.pid)
            quiet = not any(p.op.startswith("run") for p in self._pending.values())
            await asyncio.sleep(STOP_GRACE / 2)
            after = _cpu_seconds(self.pid)
            if before is None or after is None:
                return
            busy = (after - before) / (STOP_GRACE / 2)
            if busy < _SPINNING:
                return
            if quiet and not any(p.op.startswith("run") for p in self._pending.values()):
                self._kill_for("a stopped command kept computing past its grace period")
                return

    async def _stopped_within(self, reply: asyncio.Future[tuple[Any, list[bytes]]]) -> None:
        """The host acknowledges a cancel once the work has stopped; a host that does not in
        time is killed."""
        try:
            async with asyncio.timeout(STOP_GRACE):
                await asyncio.wait([reply])
        except TimeoutError:
            self._kill_for(f"a cancelled command did not stop within {STOP_GRACE:g} s")
        if reply.done() and not reply.cancelled():
            reply.exception()  # retrieved: nobody waits for it any more

    def _kill_for(self, reason: str) -> None:
        self.kill_reason = reason
        self.kill()

    def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()

    async def stop(self) -> None:
        """Close the channel, which ends the host, and wait for it."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            async with asyncio.timeout(2.0):
                await asyncio.shield(self.ended)
        except TimeoutError:
            self.kill()
            await asyncio.shield(self.ended)

    def _send(self, header: Header, blobs: tuple[bytes, ...] = ()) -> None:
        self._write(encode(header, blobs))

    def _write(self, frame: bytes) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(frame)

    async def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while (frame := await read_frame(stdout)) is not None:
                header, blobs = frame
                if header.kind == "reply":
                    self._settle(header, blobs)
                elif header.kind == "output":
                    self._hear(header, blobs)
                elif header.kind == "call":
                    task = asyncio.create_task(self._serve_call(header))
                    self._serving[header.id] = task
                    task.add_done_callback(functools.partial(_forget, self._serving, header.id))
                elif header.kind == "cancel":
                    serving = self._serving.get(header.id)
                    if serving is not None:
                        serving.cancel()
        except (ValueError, asyncio.IncompleteReadError):  # a garbled channel: the host is not to be trusted
            self.kill()
        finally:
            await self._ended()

    def _settle(self, header: Header, blobs: list[bytes]) -> None:
        pending = self._pending.pop(header.id, None)
        if pending is None:
            return
        stopped = (isinstance(header.result, dict) and header.result.get("timed_out")) or (
            header.failure is not None and header.failure.message == "cancelled"
        )
        if stopped and "script" in pending.args:
            self._strays[header.id] = pending
            self._watch(self._spins_on(header.id))
        if pending.reply.done():
            return
        if header.failure is not None:
            pending.reply.set_exception(_raised(header.failure))
        else:
            pending.reply.set_result((header.result, blobs))

    def _hear(self, header: Header, blobs: list[bytes]) -> None:
        pending = self._pending.get(header.id)
        streams = header.args.get("streams")
        if pending is None or pending.output is None or not isinstance(streams, list):
            return
        for stream, data in zip(streams, blobs, strict=False):
            pending.output(str(stream), data)

    async def _serve_call(self, header: Header) -> None:
        handler = self._calls(header.vm)
        call = CommandCall(**header.args)
        try:
            if handler is None:
                raise VmError("the VM is not awake")
            reply = await handler(call)
        except Exception as error:  # a host command must fail like a program, never hang the script
            reply = CommandReply(stderr=f"{call.name}: {describe(error)}\n", exit_code=1)
        self._send(Header(kind="answer", id=header.id, result=_reply(reply)))

    async def _ended(self) -> None:
        for task in list(self._serving.values()):
            task.cancel()
        code = await self._process.wait()
        running = {p.vm: str(p.args["script"]) for p in self._strays.values()}
        running.update({p.vm: str(p.args["script"]) for p in self._pending.values() if "script" in p.args})
        self.exit = HostExit(
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            running=running,
            reason=self.kill_reason,
        )
        error = _crashed(self.exit)
        for pending in self._pending.values():
            if not pending.reply.done():
                pending.reply.set_exception(error)
        self._pending.clear()
        self.ended.set_result(self.exit)


def _cpu_seconds(pid: int) -> float | None:
    """CPU time the process has used, from procfs (None where there is none, or it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _forget(tasks: dict[int, asyncio.Task[None]], key: int, _: object) -> None:
    tasks.pop(key, None)


def _reply(reply: CommandReply) -> dict[str, Any]:
    return {"stdout": reply.stdout, "stderr": reply.stderr, "exit_code": reply.exit_code}


def _crashed(exit: HostExit) -> VmCrashed:
    return VmCrashed(
        f"{exit.describe()}; the VM is restarting from its last snapshot",
        exit_code=exit.exit_code,
        signal=exit.signal,
    )


def _raised(failure: Failure) -> Exception:
    if failure.kind == "os":
        return OSError(failure.errno or errno.EIO, failure.message, failure.filename)
    if failure.kind == "value":
        return ValueError(failure.message)
    if failure.kind == "type":
        return TypeError(failure.message)
    return VmError(f"the VM's engine failed: {failure.message}")
