"""`agent_os(...)`: the VM actor type, and the actions its handles offer.

A VM is an ordinary actor: its shell and files are built in `on_wake` (in `c.vars`, since an
interpreter cannot be saved as JSON state), its filesystem is packed into the store in
`on_sleep` and unpacked on the next wake, and its actions interleave, so a host tool can read
the files of the very VM whose command is waiting on that tool.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic

from agentos_nb.actors.context import ActorContext
from agentos_nb.actors.definition import ActorDefinition, ActorOptions, actor
from agentos_nb.errors import InvalidDefinition
from agentos_nb.vm.cron import CronExec, CronPrompt, CronRun, CronSchedule, MissedRuns
from agentos_nb.vm.files import Content
from agentos_nb.vm.handle import LocalVmHandle
from agentos_nb.vm.machine import FILESYSTEM_BLOB, SESSIONS_BLOB, AgentVm, vm_spec
from agentos_nb.vm.mcp_servers import McpServer
from agentos_nb.vm.models import DirEntry, ExecResult, FileRead, FileStat, FileWrite
from agentos_nb.vm.mounts import Mount, check_vm_paths, resolve_mounts, resolve_roots
from agentos_nb.vm.network import Network
from agentos_nb.vm.process_actions import PROCESS_ACTIONS
from agentos_nb.vm.session_models import (
    AgentTypeInfo,
    PermissionPolicy,
    PromptResult,
    SessionInfo,
    SessionUpdate,
)
from agentos_nb.vm.shell import HOME, ShellLimits
from agentos_nb.vm.software import SoftwarePackage, install_all
from agentos_nb.vm.terminal_models import Terminal, TerminalOutput, TerminalScreen
from agentos_nb.vm.toolkits import Toolkit

# A VM's calls are long (commands, agent turns): each limits itself, not the actor's default.
_VM_OPTIONS: dict[str, Any] = {"action_timeout": 24 * 3600.0}


def agent_os(
    *,
    software: Sequence[SoftwarePackage] = (),
    toolkits: Sequence[Toolkit] = (),
    additional_instructions: str | None = None,
    limits: ShellLimits | Mapping[str, Any] | None = None,
    options: ActorOptions | Mapping[str, Any] | None = None,
    snapshot_every: float | None = 2.0,
    hosts: int | None = 2,
    memory_limit: int = 2 * 1024**3,
    mounts: Sequence[Mount] = (),
    mount_roots: Sequence[str | os.PathLike[str]] = (),
    network: Network | None = None,
) -> ActorDefinition:
    """An agent VM type: a sandboxed bash over an in-memory filesystem, with `software`
    installed and the host `toolkits` callable as `agentos-<name>` commands.

    A VM's files and sessions are saved `snapshot_every` seconds after they change, as well
    as when it sleeps (None: on sleep only); with a durable store (SQLite) they outlive the
    kernel too.

    VMs run in host processes, never in the kernel: the VMs of this type share `hosts` of
    them, or with `hosts=None` each VM has its own. A host may use `memory_limit` bytes of
    address space; one that dies takes its VMs back to their last snapshot.

    `mounts` (made with `mount(...)`) show host directories inside, read-only unless said
    otherwise; each must lie under one of `mount_roots`, the host's allow-list (none by
    default: nothing is mountable). Their files stay on the host, out of snapshots.

    `network` (made with `network(...)`) lets the VM's `curl`, `wget` and `http` reach the URLs
    it allows, with its credentials added by the host on the way out; without it, none."""
    kits = tuple(toolkits)
    for kit in kits:
        if not isinstance(kit, Toolkit):
            raise InvalidDefinition(f"toolkits must be made with toolkit(...), not {kit!r}")
    names = [kit.name for kit in kits]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidDefinition(f"toolkit names must differ; given twice: {', '.join(repeated)}")
    if not isinstance(limits, ShellLimits):
        try:
            limits = ShellLimits.model_validate(limits or {})
        except pydantic.ValidationError as error:
            raise InvalidDefinition(f"invalid shell limits: {error}") from None
    if snapshot_every is not None and not snapshot_every > 0:
        raise InvalidDefinition(
            f"snapshot_every must be a positive number of seconds or None, not {snapshot_every!r}"
        )
    if hosts is not None and not (isinstance(hosts, int) and hosts >= 1):
        raise InvalidDefinition(f"hosts must be a positive number of processes or None, not {hosts!r}")
    if not (isinstance(memory_limit, int) and memory_limit >= 256 * 1024**2):
        raise InvalidDefinition(f"memory_limit must be at least 256 MiB, in bytes, not {memory_limit!r}")
    if network is not None and not isinstance(network, Network):
        raise InvalidDefinition(f"network must be made with network(...), not {network!r}")
    placed, real_roots = _placed_mounts(mounts, mount_roots)
    spec = vm_spec(
        install_all(list(software)),
        kits,
        limits,
        additional_instructions,
        snapshot_every,
        hosts=hosts,
        memory_limit=memory_limit,
        mounts=placed,
        mount_roots=real_roots,
        network=network,
    )
    try:
        check_vm_paths(placed, {HOME} | spec.laid_down)
    except ValueError as error:
        raise InvalidDefinition(str(error)) from None
    if isinstance(options, ActorOptions):
        options = options.model_dump(exclude_unset=True)
    definition = actor(
        vars=lambda c: AgentVm(c, spec),
        on_wake=_boot,
        on_sleep=_save,
        on_destroy=_destroy,
        actions=_ACTIONS,
        options={**_VM_OPTIONS, **(options or {})},
    )
    return dataclasses.replace(definition, handle_class=LocalVmHandle)


def _placed_mounts(
    mounts: Sequence[Mount], roots: Sequence[str | os.PathLike[str]]
) -> tuple[tuple[Mount, ...], tuple[str, ...]]:
    """The mounts with their host paths made real, checked against the allow-list `roots`, and
    the roots made real."""
    for item in mounts:
        if not isinstance(item, Mount):
            raise InvalidDefinition(f"mounts must be made with mount(...), not {item!r}")
    try:
        real_roots = resolve_roots(roots)
        return resolve_mounts(list(mounts), real_roots), real_roots
    except OSError as error:
        raise InvalidDefinition(f"{error.strerror}: {error.filename}") from None
    except ValueError as error:
        raise InvalidDefinition(str(error)) from None


def is_vm(definition: ActorDefinition) -> bool:
    """Whether actors of this type are agent VMs: made by `agent_os(...)`, which gives them VM
    handles (and so files, exec and sessions)."""
    return issubclass(definition.handle_class, LocalVmHandle)


async def _boot(c: ActorContext) -> None:
    await c.vars.boot(await c.load_blob(FILESYSTEM_BLOB))
    sessions = await c.load_blob(SESSIONS_BLOB)
    if sessions is not None:
        await c.vars.sessions.restore(sessions)


async def _save(c: ActorContext) -> None:
    """Files and open sessions, for the next wake; the sessions' model clients are closed."""
    vm = _vm(c)
    await vm.sessions.cancel_turns()
    try:
        await vm.snapshot()
    finally:
        await vm.sessions.release()
        await vm.close()


async def _destroy(c: ActorContext) -> None:
    vm = _vm(c)
    await vm.sessions.release(forget=True)
    await vm.close()


def _vm(c: ActorContext[Any, AgentVm]) -> AgentVm:
    return c.vars


async def read_file(c: ActorContext, path: str, *, encoding: str | None = None) -> Content:
    """The file's bytes, or its text when `encoding` is given."""
    return await _vm(c).files.read_file(path, encoding=encoding)


async def write_file(c: ActorContext, path: str, content: Content, *, encoding: str = "utf-8") -> None:
    """Write the file, making missing parent directories."""
    vm = _vm(c)
    await vm.files.write_file(path, content, encoding=encoding)
    vm.changed()


async def read_files(c: ActorContext, paths: Iterable[str], *, encoding: str | None = None) -> list[FileRead]:
    """Each file's content, or the error that kept it from being read."""
    return await _vm(c).files.read_files(paths, encoding=encoding)


async def write_files(
    c: ActorContext, files: Mapping[str, Content] | Iterable[tuple[str, Content]], *, encoding: str = "utf-8"
) -> list[FileWrite]:
    """Write each file; one that fails does not stop the others."""
    vm = _vm(c)
    written = await vm.files.write_files(files, encoding=encoding)
    vm.changed()
    return written


async def mkdir(c: ActorContext, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
    """Make a directory, and its missing parents unless `parents=False`."""
    vm = _vm(c)
    await vm.files.mkdir(path, parents=parents, exist_ok=exist_ok)
    vm.changed()


async def readdir(c: ActorContext, path: str = HOME) -> list[DirEntry]:
    """The entries of one directory, sorted by name."""
    return await _vm(c).files.readdir(path)


async def readdir_recursive(
    c: ActorContext, path: str = HOME, *, max_depth: int | None = None, exclude: Sequence[str] = ()
) -> list[DirEntry]:
    """Everything under `path`, parents before children; `exclude` holds name patterns
    (`node_modules`, `*.pyc`), and an excluded directory is not entered, nor is a symlink."""
    return await _vm(c).files.readdir_recursive(path, max_depth=max_depth, exclude=exclude)


async def stat(c: ActorContext, path: str, *, follow_symlinks: bool = True) -> FileStat:
    """Kind, size, mode and times of a path (of a symlink itself with `follow_symlinks=False`)."""
    return await _vm(c).files.stat(path, follow_symlinks=follow_symlinks)


async def exists(c: ActorContext, path: str) -> bool:
    """False for a symlink whose target is missing, as `os.path.exists`."""
    return await _vm(c).files.exists(path)


async def move(c: ActorContext, source: str, target: str) -> None:
    """Rename `source` (a symlink itself, not its target) to `target`, replacing a file there."""
    vm = _vm(c)
    await vm.files.move(source, target)
    vm.changed()


async def delete_file(c: ActorContext, path: str, *, recursive: bool = False) -> None:
    """Delete a file, a symlink (not its target), or a directory: an empty one, or any with
    `recursive=True`."""
    vm = _vm(c)
    await vm.files.delete_file(path, recursive=recursive)
    vm.changed()


async def exec_command(
    c: ActorContext,
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: str | bytes | None = None,
    timeout: float | None = None,
) -> ExecResult:
    """Run `command` as `bash -c` in a new process would: fresh shell state, the VM's files."""
    return await _vm(c).exec(command, env=env, cwd=cwd, stdin=stdin, timeout=timeout)


async def create_session(
    c: ActorContext,
    agent_type: str = "pi",
    *,
    model: Any = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    additional_instructions: str | None = None,
    permissions: PermissionPolicy | Sequence[str] | None = None,
    mcp_servers: Sequence[McpServer] | None = None,
) -> SessionInfo:
    """Start a conversation with an agent of `agent_type` in this VM.

    `model` is a pydantic-ai model or model name; without one, `ANTHROPIC_API_KEY` or
    `OPENAI_API_KEY` (in `env`, then the host's environment) picks a provider, and with
    neither the offline model answers. `env` holds keys and settings for the model client on
    the host: none of it enters the VM. `permissions` names the tools the session asks the
    user about before using (`["write", "edit", "host:review.submit"]`); without it, the
    agent type's own policy applies (by default, none: nothing asks). `mcp_servers`
    (`McpStdioServer`, `McpHttpServer`) are connected on the host, and their tools offered
    beside the agent's own, as `SERVER__TOOL`.
    """
    return await _vm(c).sessions.create(
        agent_type,
        model=model,
        env=env,
        cwd=cwd,
        additional_instructions=additional_instructions,
        permissions=permissions,
        mcp_servers=mcp_servers,
    )


async def send_prompt(c: ActorContext, session_id: str, text: str) -> PromptResult:
    """Run one turn and return its final text. While another turn of the session runs, waits
    for it first."""
    return await _vm(c).sessions.prompt(session_id, text)


async def stream_prompt(c: ActorContext, session_id: str, text: str) -> AsyncIterator[SessionUpdate]:
    """Run one turn, yielding its updates as they happen; the last is `turn_ended`. Leaving
    the loop early cancels the turn."""
    async for update in _vm(c).sessions.stream(session_id, text):
        yield update


async def cancel_prompt(c: ActorContext, session_id: str) -> bool:
    """Stop the running turn; returns once it has stopped (True), or False if none was running."""
    return await _vm(c).sessions.cancel(session_id)


async def respond_permission(c: ActorContext, session_id: str, request_id: str, option: str) -> None:
    """Answer a permission request the session's turn waits on, with `allow_once`,
    `allow_always`, `reject_once` or `reject_always`; "always" holds for the session."""
    _vm(c).sessions.respond_permission(session_id, request_id, option)


async def set_mode(c: ActorContext, session_id: str, mode: str) -> SessionInfo:
    """Switch the session to `default`, `plan` (read-only) or `accept_edits` (write and edit
    never ask); the next tool call follows it."""
    return _vm(c).sessions.set_mode(session_id, mode)


async def set_model(c: ActorContext, session_id: str, model: Any) -> SessionInfo:
    """Use `model` (a pydantic-ai model or model name) from the session's next turn on, with
    the conversation so far; one that cannot be used is refused now."""
    return await _vm(c).sessions.set_model(session_id, model)


async def close_session(c: ActorContext, session_id: str) -> None:
    """Stop the session's turn, if any, and free its agent; its info and updates stay readable."""
    await _vm(c).sessions.close(session_id)


async def list_sessions(c: ActorContext, *, include_closed: bool = False) -> list[SessionInfo]:
    """The VM's open sessions, oldest first; with `include_closed`, the closed ones it keeps too."""
    return _vm(c).sessions.list(include_closed=include_closed)


async def get_session(c: ActorContext, session_id: str) -> SessionInfo:
    """Open or closed; raises `SessionNotFound` for one never created or long closed."""
    return _vm(c).sessions.get(session_id)


async def get_session_events(c: ActorContext, session_id: str, *, since: int = 0) -> list[SessionUpdate]:
    """The session's updates numbered after `since`, oldest first."""
    return _vm(c).sessions.events(session_id, since)


async def list_agents(c: ActorContext) -> list[AgentTypeInfo]:
    """The agent types `create_session` accepts in this VM."""
    return _vm(c).sessions.agent_types()


async def schedule_cron(
    c: ActorContext,
    expression: str,
    action: CronPrompt | CronExec,
    *,
    timezone: str = "UTC",
    missed: MissedRuns = "skip",
) -> CronSchedule:
    """Run `action` (a `CronPrompt` or a `CronExec`) whenever the cron `expression` matches
    in `timezone`. Kept in the store: it wakes the VM, and outlives a restart; a run missed
    while the kernel was down is skipped, or with `missed="run_once"` run once on the restart."""
    return await _vm(c).cron.add(expression, action, timezone=timezone, missed=missed)


async def list_schedules(c: ActorContext) -> list[CronSchedule]:
    """The VM's cron schedules, the next to run first, each with its last run."""
    return await _vm(c).cron.list()


async def cancel_schedule(c: ActorContext, schedule_id: str) -> None:
    """Stop and forget a cron schedule; raises `ScheduleNotFound` for one this VM lacks."""
    await _vm(c).cron.cancel(schedule_id)


async def run_schedule(
    c: ActorContext, schedule_id: str, *, planned_at: float | None = None, token: str | None = None
) -> CronRun | None:
    """Run a cron schedule's action now, and return how it went; its next run stays as planned.
    (Its timer calls this with `planned_at` and `token` when a run comes due.)"""
    return await _vm(c).cron.run(schedule_id, planned_at, token)


async def open_shell(c: ActorContext, *, cols: int = 80, rows: int = 24) -> Terminal:
    """An interactive shell on a terminal of this size, in the home directory."""
    return await _vm(c).terminals.open(rows=rows, cols=cols)


async def terminal_send(c: ActorContext, terminal_id: str, keys: str) -> None:
    """Type `keys` into the terminal, raw ("\\r" is Enter, "\\x03" Ctrl-C)."""
    await _vm(c).terminals.send(terminal_id, keys)


async def terminal_screen(c: ActorContext, terminal_id: str) -> TerminalScreen:
    """What the terminal shows now, as text, with the cursor."""
    return await _vm(c).terminals.screen(terminal_id)


async def terminal_output(c: ActorContext, terminal_id: str) -> AsyncIterator[TerminalOutput]:
    """What the terminal wrote (as much as is kept) and writes, escape sequences and all,
    until it closes."""
    async for chunk in _vm(c).terminals.output(terminal_id):
        yield chunk


async def resize_terminal(c: ActorContext, terminal_id: str, *, cols: int, rows: int) -> None:
    """Change the terminal's size; a full-screen program redraws."""
    await _vm(c).terminals.resize(terminal_id, rows=rows, cols=cols)


async def close_terminal(c: ActorContext, terminal_id: str) -> None:
    """End the terminal's shell; closing a closed terminal does nothing."""
    await _vm(c).terminals.close(terminal_id)


async def list_terminals(c: ActorContext) -> list[Terminal]:
    """The VM's open terminals."""
    return _vm(c).terminals.list()


_ACTIONS: dict[str, Callable[..., Any]] = {
    "read_file": read_file,
    "write_file": write_file,
    "read_files": read_files,
    "write_files": write_files,
    "mkdir": mkdir,
    "readdir": readdir,
    "readdir_recursive": readdir_recursive,
    "stat": stat,
    "exists": exists,
    "move": move,
    "delete_file": delete_file,
    "exec": exec_command,
    "create_session": create_session,
    "send_prompt": send_prompt,
    "stream_prompt": stream_prompt,
    "cancel_prompt": cancel_prompt,
    "respond_permission": respond_permission,
    "set_mode": set_mode,
    "set_model": set_model,
    "close_session": close_session,
    "list_sessions": list_sessions,
    "get_session": get_session,
    "get_session_events": get_session_events,
    "list_agents": list_agents,
    "schedule_cron": schedule_cron,
    "list_schedules": list_schedules,
    "cancel_schedule": cancel_schedule,
    "run_schedule": run_schedule,
    "open_shell": open_shell,
    "terminal_send": terminal_send,
    "terminal_screen": terminal_screen,
    "terminal_output": terminal_output,
    "resize_terminal": resize_terminal,
    "close_terminal": close_terminal,
    "list_terminals": list_terminals,
    **PROCESS_ACTIONS,
}
