"""The VM actions on processes (`spawn` and the rest), which `agent_os` adds to a VM's actions;
their work is done by the VM's process table (`processes.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from agentos_nb.actors.context import ActorContext
from agentos_nb.vm.process_models import ProcessInfo, ProcessOutput
from agentos_nb.vm.processes import Processes


def _processes(c: ActorContext) -> Processes:
    processes: Processes = c.vars.processes
    return processes


async def spawn(
    c: ActorContext,
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: str | bytes | None = None,
    keep_stdin_open: bool = False,
    timeout: float | None = None,
) -> ProcessInfo:
    """Start `command` as `bash -c` in a new process would, and return at once with its info
    (its `pid`). Its input is `stdin`, then its end; with `keep_stdin_open`, `write_stdin`
    adds to it until `close_stdin`. No `timeout`: it runs until it ends or is killed."""
    return await _processes(c).spawn(
        command, env=env, cwd=cwd, stdin=stdin, keep_stdin_open=keep_stdin_open, timeout=timeout
    )


async def write_stdin(c: ActorContext, pid: int, data: str | bytes) -> None:
    """Write to the process's stdin, waiting while its pipe is full (64 KiB unread)."""
    await _processes(c).write_stdin(pid, data)


async def close_stdin(c: ActorContext, pid: int) -> None:
    """End the process's stdin: it reads what is left, then the end."""
    await _processes(c).close_stdin(pid)


async def kill(c: ActorContext, pid: int, signal: int | str = "SIGTERM") -> ProcessInfo:
    """Stop the process (any of SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT ends it at once) and
    return its info once it has stopped; an ended process is left as it is."""
    return await _processes(c).kill(pid, signal)


async def wait(c: ActorContext, pid: int, *, timeout: float | None = None) -> int:
    """The process's exit code once it ends (128+N if killed by signal N)."""
    return await _processes(c).wait(pid, timeout)


async def get_process(c: ActorContext, pid: int) -> ProcessInfo:
    """One process, running or recently ended."""
    return _processes(c).get(pid)


async def list_processes(c: ActorContext) -> list[ProcessInfo]:
    """The VM's running processes and the last ended ones, oldest first."""
    return _processes(c).list()


async def process_output(c: ActorContext, pid: int, *, since: int = 0) -> AsyncIterator[ProcessOutput]:
    """The process's output after byte `since`: what is kept of it, then the rest as it comes,
    until the process ends."""
    async for chunk in _processes(c).output(pid, since):
        yield chunk


PROCESS_ACTIONS: dict[str, Callable[..., Any]] = {
    "spawn": spawn,
    "write_stdin": write_stdin,
    "close_stdin": close_stdin,
    "kill": kill,
    "wait": wait,
    "get_process": get_process,
    "list_processes": list_processes,
    "process_output": process_output,
}
"""The process actions of every VM, by name."""
