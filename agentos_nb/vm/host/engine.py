"""The VM host process: it owns the shells and filesystems of the VMs placed on it and does
what the kernel asks of them, one frame at a time in, each request in its own task.

Everything the engine can do to a process (crash it, fill its memory, keep a core busy) stays
here: the kernel only sees this process end, and starts another. A host command that a script
runs is a `call` frame to the kernel, whose toolkits answer it; the script waits for the answer.
Its stdout is the channel, so the engine's own output (and anything a library prints) goes to
stderr instead.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import resource
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from agentos_nb.vm import archive
from agentos_nb.vm.files import VmFiles
from agentos_nb.vm.host.frames import Failure, Header, VmLayout, encode, read_frame
from agentos_nb.vm.host.spawned import OutputFrames, run_process, write_stdin
from agentos_nb.vm.languages import programs as language_programs
from agentos_nb.vm.mounts import resolve_mounts
from agentos_nb.vm.net_commands import network_commands
from agentos_nb.vm.pipes import InputPipe
from agentos_nb.vm.shell import (
    HOME,
    CommandCall,
    CommandHandler,
    CommandReply,
    PersistentShell,
    Shell,
    analyze,
)
from agentos_nb.vm.shell_terminal import ShellTerminal
from agentos_nb.vm.terminal_models import MAX_TERMINALS


class _Vm:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.files = VmFiles(shell)
        self.persistent: dict[str, PersistentShell] = {}
        self.terminals: dict[str, ShellTerminal] = {}
        self.processes: dict[str, InputPipe] = {}
        """The stdin of each running process (`spawned.py`), by the kernel's process id."""


Op = Callable[["_Vm", dict[str, Any], list[bytes]], Awaitable[tuple[Any, tuple[bytes, ...]]]]


class Engine:
    """The host's side of the channel."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._vms: dict[str, _Vm] = {}
        self._requests: dict[int, asyncio.Task[None]] = {}
        self._calls: dict[int, asyncio.Future[CommandReply]] = {}
        self._call_ids = itertools.count(1)

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Answer frames until the kernel closes the channel."""
        while (frame := await read_frame(reader)) is not None:
            header, blobs = frame
            if header.kind == "request":
                task = asyncio.create_task(self._answer(header, blobs))
                self._requests[header.id] = task
                task.add_done_callback(functools.partial(_forget, self._requests, header.id))
            elif header.kind == "answer":
                waiting = self._calls.pop(header.id, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(CommandReply(**header.result))
            elif header.kind == "cancel":
                request = self._requests.get(header.id)
                if request is not None:
                    request.cancel()

    def _send(self, header: Header, blobs: tuple[bytes, ...] = ()) -> None:
        self._writer.write(encode(header, blobs))

    async def _answer(self, request: Header, blobs: list[bytes]) -> None:
        reply = Header(kind="reply", id=request.id)
        out: tuple[bytes, ...] = ()
        try:
            if request.op == "open":
                self._open(request.vm, VmLayout.model_validate(request.args))
            elif request.op == "run_process":  # a long request: output frames come before its reply
                vm = self._vms[request.vm]
                output = OutputFrames(request.id, self._send, self._writer.drain)
                reply.result = await run_process(vm.shell, vm.processes, request.args, output)
            elif request.op == "close":
                closing = self._vms.pop(request.vm, None)
                if closing is not None:
                    await _close_terminals(closing)
            else:
                reply.result, out = await _OPS[request.op](self._vms[request.vm], request.args, blobs)
        except asyncio.CancelledError:  # the kernel stopped waiting: say the work has stopped
            reply.failure = Failure(kind="engine", message="cancelled")
        except OSError as error:
            reply.failure = Failure(
                kind="os", message=error.strerror or str(error), errno=error.errno, filename=_name(error)
            )
        except ValueError as error:
            reply.failure = Failure(kind="value", message=str(error))
        except TypeError as error:
            reply.failure = Failure(kind="type", message=str(error))
        except BaseException as error:  # the engine failed (a Rust panic is a BaseException): say so
            reply.failure = Failure(kind="engine", message=f"{type(error).__name__}: {error}")
        self._send(reply, out)

    def _open(self, vm: str, layout: VmLayout) -> None:
        commands: dict[str, CommandHandler] = {name: self._command_for(vm, name) for name in layout.commands}
        if layout.network is not None:  # made here, on the host, which alone holds the credentials
            commands.update(
                network_commands(
                    layout.network, lambda: self._vms[vm].files, max_memory=layout.limits.max_memory
                )
            )
        mounts = resolve_mounts(layout.mounts, layout.mount_roots)
        shell = Shell(
            limits=layout.limits,
            commands=commands,
            features=frozenset(layout.features),
            mounts=mounts,
            programs=language_programs(layout.features, layout.network),
        )
        self._vms[vm] = _Vm(shell)

    def _command_for(self, vm: str, name: str) -> CommandHandler:
        async def command(call: CommandCall) -> CommandReply:
            call_id = next(self._call_ids)
            answer = asyncio.get_running_loop().create_future()
            self._calls[call_id] = answer
            self._send(Header(kind="call", id=call_id, vm=vm, args=asdict(call)))
            try:
                return await answer
            except asyncio.CancelledError:  # the script was stopped: so is the tool
                if self._calls.pop(call_id, None) is not None:
                    self._send(Header(kind="cancel", id=call_id))
                raise

        return command


def _forget(tasks: dict[int, asyncio.Task[None]], key: int, _: object) -> None:
    tasks.pop(key, None)


def _name(error: OSError) -> str | None:
    return error.filename if isinstance(error.filename, str) else None


# --- the operations on one VM: (args, blobs) -> (JSON result, blobs) ------------------------------


async def _run(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    run = await vm.shell.run(
        args["script"], cwd=args["cwd"], env=args["env"], stdin=args["stdin"], timeout=args["timeout"]
    )
    return asdict(run), ()


async def _run_persistent(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    shell = vm.persistent.get(args["session"])
    if shell is None:
        shell = vm.persistent[args["session"]] = vm.shell.persistent(args["cwd"])
    return asdict(await shell.run(args["script"], timeout=args["timeout"])), ()


async def _close_persistent(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    vm.persistent.pop(args["session"], None)
    return None, ()


async def _analyze(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return analyze(args["script"]), ()


async def _read(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    data = vm.files.read_file(args["path"])
    assert isinstance(data, bytes)
    return None, (data,)


async def _write(vm: _Vm, args: dict[str, Any], blobs: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    vm.files.write_file(args["path"], blobs[0])
    return None, ()


async def _mkdir(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    vm.files.mkdir(args["path"], parents=args["parents"], exist_ok=args["exist_ok"])
    return None, ()


async def _readdir(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return [entry.model_dump(mode="json") for entry in vm.files.readdir(args["path"])], ()


async def _readdir_recursive(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    entries = await asyncio.to_thread(
        vm.files.readdir_recursive, args["path"], max_depth=args["max_depth"], exclude=args["exclude"]
    )
    return [entry.model_dump(mode="json") for entry in entries], ()


async def _stat(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return vm.files.stat(args["path"], follow_symlinks=args["follow_symlinks"]).model_dump(mode="json"), ()


async def _exists(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return vm.files.exists(args["path"]), ()


async def _move(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    vm.files.move(args["source"], args["target"])
    return None, ()


async def _delete(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    vm.files.delete_file(args["path"], recursive=args["recursive"])
    return None, ()


async def _real_path(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return vm.files.real_path(args["path"], cwd=args["cwd"]), ()


async def _pack(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return None, (await asyncio.to_thread(archive.pack, vm.shell, frozenset(args["skip"])),)


async def _boot(vm: _Vm, args: dict[str, Any], blobs: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    """Unpack the saved archive (the first blob, if `saved`), then lay the boot files (the
    other blobs, in the order of `files`) and links over it."""
    contents = iter(blobs)
    if args["saved"]:
        await asyncio.to_thread(archive.unpack, vm.shell, next(contents))
    archive.place_directory(vm.shell, "/tmp", 0o1777)
    archive.place_directory(vm.shell, HOME, 0o755)
    vm.shell.make_mount_points()
    for path, mode in args["files"]:
        archive.place_file(vm.shell, path, next(contents), mode)
    for path, target in args["links"]:
        archive.place_symlink(vm.shell, path, target)
    return None, ()


# --- terminals (`shell_terminal.py`) ----------------------------------------------------------------

_READ_WAIT_MAX = 30.0


def _terminal(vm: _Vm, args: dict[str, Any]) -> ShellTerminal:
    terminal = vm.terminals.get(args["terminal"])
    if terminal is None:
        raise ValueError(f"no open terminal {args['terminal']!r} in this VM")
    return terminal


async def _terminal_open(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    for name in [name for name, terminal in vm.terminals.items() if terminal.closed]:
        await vm.terminals.pop(name).close()
    if len(vm.terminals) >= MAX_TERMINALS:
        raise ValueError(f"a VM may have at most {MAX_TERMINALS} terminals open; close one first")
    if args["terminal"] in vm.terminals:
        raise ValueError(f"terminal {args['terminal']!r} is open already")
    terminal = ShellTerminal(vm.shell, rows=args["rows"], cols=args["cols"])
    vm.terminals[args["terminal"]] = terminal  # counted against the cap while it opens
    try:
        await terminal.start(max_copy=args["max_copy"])
    except BaseException:
        del vm.terminals[args["terminal"]]
        raise
    return None, ()


async def _terminal_send(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    terminal = _terminal(vm, args)
    await terminal.send(args["keys"])
    return {"files_changed": terminal.take_files_changed()}, ()


async def _terminal_read(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    terminal = _terminal(vm, args)
    read = await terminal.read(args["since"], wait=min(float(args["wait"]), _READ_WAIT_MAX))
    result = {
        "start": read.start,
        "end": read.end,
        "dropped": read.dropped,
        "closed": read.closed,
        "files_changed": terminal.take_files_changed(),
    }
    return result, (read.data,)


async def _terminal_screen(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    return (await _terminal(vm, args).screen()).model_dump(), ()


async def _terminal_resize(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    await _terminal(vm, args).resize(rows=args["rows"], cols=args["cols"])
    return None, ()


async def _terminal_close(vm: _Vm, args: dict[str, Any], _: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    terminal = vm.terminals.pop(args["terminal"], None)
    if terminal is None:
        return {"files_changed": False}, ()
    await terminal.close()
    return {"files_changed": terminal.take_files_changed()}, ()


async def _close_terminals(vm: _Vm) -> None:
    terminals, vm.terminals = list(vm.terminals.values()), {}
    for terminal in terminals:
        await terminal.close()


async def _process_stdin(vm: _Vm, args: dict[str, Any], blobs: list[bytes]) -> tuple[Any, tuple[bytes, ...]]:
    await write_stdin(vm.processes, args, blobs[0] if blobs else b"")
    return None, ()


_OPS: dict[str, Op] = {
    "process_stdin": _process_stdin,
    "analyze": _analyze,
    "run": _run,
    "run_persistent": _run_persistent,
    "close_persistent": _close_persistent,
    "read": _read,
    "write": _write,
    "mkdir": _mkdir,
    "readdir": _readdir,
    "readdir_recursive": _readdir_recursive,
    "stat": _stat,
    "exists": _exists,
    "move": _move,
    "delete": _delete,
    "real_path": _real_path,
    "pack": _pack,
    "boot": _boot,
    "terminal_open": _terminal_open,
    "terminal_send": _terminal_send,
    "terminal_read": _terminal_read,
    "terminal_screen": _terminal_screen,
    "terminal_resize": _terminal_resize,
    "terminal_close": _terminal_close,
}


async def main(memory_limit: int) -> None:
    """Serve the kernel over stdin and a private copy of stdout, within `memory_limit` bytes."""
    if memory_limit > 0:  # the soft limit: Deno's child lifts it for V8's reservations (languages/deno.py)
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    channel = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(channel, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    await Engine(writer).serve(reader)
