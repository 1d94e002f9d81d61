"""`VmHandle`: a VM's actions with their signatures, for type checkers, editors and `help()`.

    vm: VmHandle = client.writer.get_or_create(["my-project"])
    result = await vm.exec("ls")                      # an ExecResult
    async for update in vm.stream_prompt(session.session_id, "Hello"):
        ...

It is a protocol: the in-process handle of a VM (`LocalVmHandle`, which `agent_os(...)` asks
the registry's client to make) implements it, and every handle of `create_client(...)`
matches it, since a remote client only learns at the first call which actor types are VMs.
A new VM action is added both here and in `agentos_nb.vm.agent_os` (a test compares them).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any, Protocol, overload

from agentos_nb.actors.calls import ActionCall
from agentos_nb.actors.handles import ActorHandle
from agentos_nb.vm.cron import CronExec, CronPrompt, CronRun, CronSchedule, MissedRuns
from agentos_nb.vm.files import Content
from agentos_nb.vm.mcp_servers import McpServer
from agentos_nb.vm.models import DirEntry, ExecResult, FileRead, FileStat, FileWrite
from agentos_nb.vm.process_models import ProcessInfo, ProcessOutput
from agentos_nb.vm.session_models import (
    AgentTypeInfo,
    PermissionPolicy,
    PromptResult,
    SessionInfo,
    SessionUpdate,
)
from agentos_nb.vm.shell import HOME
from agentos_nb.vm.terminal_models import Terminal, TerminalOutput, TerminalScreen


class VmHandle(Protocol):
    """A handle to an agent VM (a type made by `agent_os(...)`), in-process or remote."""

    @property
    def name(self) -> str:
        """The VM's actor type: the name it was given in `setup(use=...)`."""

    @property
    def key(self) -> tuple[str, ...] | None:
        """The key, or None for a handle made by id that has not been resolved yet."""

    @property
    def actor_id(self) -> str | None:
        """The VM's id, or None until a call (or `resolve()`) has looked it up."""

    async def resolve(self) -> str:
        """The VM's id, creating the VM first if this is a `get_or_create` handle."""

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call an action by name; a streaming one gives the list of what it yielded."""

    def stream(self, action: str, /, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """Call a streaming action by name and yield its items as they come; closing the
        iterator cancels it."""

    # --- files ---------------------------------------------------------------------------------

    @overload
    async def read_file(self, path: str, *, encoding: None = None) -> bytes: ...

    @overload
    async def read_file(self, path: str, *, encoding: str) -> str: ...

    async def read_file(self, path: str, *, encoding: str | None = None) -> Content:
        """The file's bytes, or its text when `encoding` is given."""
        return await self.call("read_file", path, encoding=encoding)

    async def write_file(self, path: str, content: Content, *, encoding: str = "utf-8") -> None:
        """Write the file, making missing parent directories."""
        await self.call("write_file", path, content, encoding=encoding)

    async def read_files(self, paths: Iterable[str], *, encoding: str | None = None) -> list[FileRead]:
        """Each file's content, or the error that kept it from being read."""
        return await self.call("read_files", paths, encoding=encoding)

    async def write_files(
        self, files: Mapping[str, Content] | Iterable[tuple[str, Content]], *, encoding: str = "utf-8"
    ) -> list[FileWrite]:
        """Write each file; one that fails does not stop the others."""
        return await self.call("write_files", files, encoding=encoding)

    async def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        """Make a directory, and its missing parents unless `parents=False`. Raises
        `FileExistsError` if a file is in the way, or the directory exists and not `exist_ok`."""
        await self.call("mkdir", path, parents=parents, exist_ok=exist_ok)

    async def readdir(self, path: str = HOME) -> list[DirEntry]:
        """The entries of one directory (the home directory by default), sorted by name.
        Raises `FileNotFoundError` or `NotADirectoryError`."""
        return await self.call("readdir", path)

    async def readdir_recursive(
        self, path: str = HOME, *, max_depth: int | None = None, exclude: Sequence[str] = ()
    ) -> list[DirEntry]:
        """Everything under `path`, parents before children, `max_depth` levels deep (all if
        None). `exclude` holds name patterns (`node_modules`, `*.pyc`); an excluded directory
        is not entered, nor is a symlink."""
        return await self.call("readdir_recursive", path, max_depth=max_depth, exclude=exclude)

    async def stat(self, path: str, *, follow_symlinks: bool = True) -> FileStat:
        """Kind, size, mode and times of a path (of a symlink itself with
        `follow_symlinks=False`). Raises `FileNotFoundError`."""
        return await self.call("stat", path, follow_symlinks=follow_symlinks)

    async def exists(self, path: str) -> bool:
        """False for a symlink whose target is missing, as `os.path.exists`."""
        return await self.call("exists", path)

    async def move(self, source: str, target: str) -> None:
        """Rename `source` (a symlink itself, not its target) to `target`, replacing a file
        there; missing parents are made. Raises `IsADirectoryError` if a directory is there."""
        await self.call("move", source, target)

    async def delete_file(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, a symlink (not its target), or a directory: an empty one, or any
        with `recursive=True`. Raises `FileNotFoundError` if there is nothing to delete."""
        await self.call("delete_file", path, recursive=recursive)

    # --- the shell -----------------------------------------------------------------------------

    async def exec(
        self,
        command: str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run `command` as `bash -c` in a new process would: fresh shell state, the VM's files.
        A non-zero exit code is a result, not an exception."""
        return await self.call("exec", command, env=env, cwd=cwd, stdin=stdin, timeout=timeout)

    # --- agent sessions ------------------------------------------------------------------------

    async def create_session(
        self,
        agent_type: str = "pi",
        *,
        model: Any = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        additional_instructions: str | None = None,
        permissions: PermissionPolicy | Sequence[str] | None = None,
        mcp_servers: Sequence[McpServer] | None = None,
    ) -> SessionInfo:
        """Start a conversation with an agent of `agent_type` in this VM. `model`: a
        pydantic-ai model or model name (else chosen by the keys in `env` or the host's
        environment, else the offline model); `env` stays on the host. `permissions`: the
        tools the session asks about before using (`["write", "host:review.submit"]`).
        `mcp_servers`: `McpStdioServer`s and `McpHttpServer`s whose tools the agent may call
        (a stdio one is started on the host; over HTTP only `McpHttpServer`s are accepted)."""
        return await self.call(
            "create_session",
            agent_type,
            model=model,
            env=env,
            cwd=cwd,
            additional_instructions=additional_instructions,
            permissions=permissions,
            mcp_servers=mcp_servers,
        )

    async def send_prompt(self, session_id: str, text: str) -> PromptResult:
        """Run one turn and return its final text, after any turn of the session still running."""
        return await self.call("send_prompt", session_id, text)

    def stream_prompt(self, session_id: str, text: str) -> ActionCall[list[SessionUpdate], SessionUpdate]:
        """Run one turn, yielding its updates as they happen; the last is `turn_ended`. Leaving
        the loop early (or closing the call) cancels the turn."""
        return ActionCall(self, "stream_prompt", session_id, text)

    async def cancel_prompt(self, session_id: str) -> bool:
        """Stop the running turn; True once it has stopped, False if none was running."""
        return await self.call("cancel_prompt", session_id)

    async def respond_permission(self, session_id: str, request_id: str, option: str) -> None:
        """Answer a `permission_request` the session's turn waits on: `allow_once`,
        `allow_always`, `reject_once` or `reject_always` ("always" holds for the session and is
        saved with it). Raises `PermissionRequestNotFound` for a request not waiting."""
        await self.call("respond_permission", session_id, request_id, option)

    async def set_mode(self, session_id: str, mode: str) -> SessionInfo:
        """Switch the session to `default`, `plan` (read-only: write, edit, host tools and bash
        that may change anything are refused) or `accept_edits` (write and edit never ask)."""
        return await self.call("set_mode", session_id, mode)

    async def set_model(self, session_id: str, model: Any) -> SessionInfo:
        """Use `model` from the session's next turn on, with the conversation so far; a model
        that cannot be used (an unknown name, no key) is refused now."""
        return await self.call("set_model", session_id, model)

    async def close_session(self, session_id: str) -> None:
        """Stop the session's turn, if any, and free its agent; its info and updates stay
        readable. Closing a closed session does nothing."""
        await self.call("close_session", session_id)

    async def list_sessions(self, *, include_closed: bool = False) -> list[SessionInfo]:
        """The VM's open sessions, oldest first; with `include_closed`, the closed ones it still
        keeps too."""
        return await self.call("list_sessions", include_closed=include_closed)

    async def get_session(self, session_id: str) -> SessionInfo:
        """Open or closed; raises `SessionNotFound` for one never created or long closed."""
        return await self.call("get_session", session_id)

    async def get_session_events(self, session_id: str, *, since: int = 0) -> list[SessionUpdate]:
        """The session's updates numbered after `since`, oldest first."""
        return await self.call("get_session_events", session_id, since=since)

    async def list_agents(self) -> list[AgentTypeInfo]:
        """The agent types `create_session` accepts in this VM."""
        return await self.call("list_agents")

    # --- cron ----------------------------------------------------------------------------------

    async def schedule_cron(
        self,
        expression: str,
        action: CronPrompt | CronExec,
        *,
        timezone: str = "UTC",
        missed: MissedRuns = "skip",
    ) -> CronSchedule:
        """Run `action` (a `CronPrompt` or a `CronExec`) whenever the cron `expression` (5
        fields, or 6 with seconds first) matches in `timezone` (an IANA name). Kept in the
        store: it wakes the VM and outlives a restart; a run missed while the kernel was down
        is skipped, or with `missed="run_once"` run once. Raises `ValidationError` for a bad
        expression, time zone or action."""
        return await self.call("schedule_cron", expression, action, timezone=timezone, missed=missed)

    async def list_schedules(self) -> list[CronSchedule]:
        """The VM's cron schedules, the next to run first, each with its last run."""
        return await self.call("list_schedules")

    async def cancel_schedule(self, schedule_id: str) -> None:
        """Stop and forget a cron schedule; raises `ScheduleNotFound` for one this VM lacks."""
        await self.call("cancel_schedule", schedule_id)

    async def run_schedule(
        self, schedule_id: str, *, planned_at: float | None = None, token: str | None = None
    ) -> CronRun | None:
        """Run a cron schedule's action now and return how it went; its next run stays as
        planned. (The schedule's own timer passes `planned_at` and `token`.)"""
        return await self.call("run_schedule", schedule_id, planned_at=planned_at, token=token)

    # --- terminals -----------------------------------------------------------------------------

    async def open_shell(self, *, cols: int = 80, rows: int = 24) -> Terminal:
        """An interactive shell (bashkit's terminal) of this size: `send` keys, read the
        `screen`, `resize`, `close`. At most 8 per VM; a terminal ends when its VM sleeps."""
        terminal = await self.call("open_shell", cols=cols, rows=rows)
        return Terminal.model_validate(terminal).bound_to(self)

    async def terminal_send(self, terminal_id: str, keys: str) -> None:
        """Type `keys` into the terminal, raw ("\\r" is Enter, "\\x03" Ctrl-C): at most 64 KiB."""
        await self.call("terminal_send", terminal_id, keys)

    async def terminal_screen(self, terminal_id: str) -> TerminalScreen:
        """What the terminal shows now, as text, with the cursor."""
        return await self.call("terminal_screen", terminal_id)

    def terminal_output(self, terminal_id: str) -> ActionCall[list[TerminalOutput], TerminalOutput]:
        """What the terminal wrote (as much as is kept) and writes, escape sequences and all,
        until it closes: what a terminal emulator shows."""
        return ActionCall(self, "terminal_output", terminal_id)

    async def resize_terminal(self, terminal_id: str, *, cols: int, rows: int) -> None:
        """Change the terminal's size (1 to 1000 each); a full-screen program redraws."""
        await self.call("resize_terminal", terminal_id, cols=cols, rows=rows)

    async def close_terminal(self, terminal_id: str) -> None:
        """End the terminal's shell; closing a closed terminal does nothing."""
        await self.call("close_terminal", terminal_id)

    async def list_terminals(self) -> list[Terminal]:
        """The VM's open terminals, each ready to use."""
        terminals = await self.call("list_terminals")
        return [Terminal.model_validate(terminal).bound_to(self) for terminal in terminals]

    # --- processes -----------------------------------------------------------------------------

    async def spawn(
        self,
        command: str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: str | bytes | None = None,
        keep_stdin_open: bool = False,
        timeout: float | None = None,
    ) -> ProcessInfo:
        """Start `command` as `bash -c` in a new process would and return at once (`.pid`).
        Its output comes as `process.output` events and from `process_output`. Its input is
        `stdin`, then its end; with `keep_stdin_open`, `write_stdin` adds to it until
        `close_stdin` (the engine hands most commands their whole stdin before they start, so
        until then only the shell's `read` sees lines as they come). No `timeout`: it runs until
        it ends, is killed, or its VM sleeps. Raises `TooManyProcesses` past
        `ShellLimits.max_processes` running at once."""
        return await self.call(
            "spawn",
            command,
            env=env,
            cwd=cwd,
            stdin=stdin,
            keep_stdin_open=keep_stdin_open,
            timeout=timeout,
        )

    async def write_stdin(self, pid: int, data: str | bytes) -> None:
        """Write to the process's stdin, waiting while 64 KiB of it are unread. Raises
        `BrokenPipeError` once its stdin is closed or it has ended, `ProcessNotFound` for an
        unknown `pid`."""
        await self.call("write_stdin", pid, data)

    async def close_stdin(self, pid: int) -> None:
        """End the process's stdin: it reads what is left, then the end."""
        await self.call("close_stdin", pid)

    async def kill(self, pid: int, signal: int | str = "SIGTERM") -> ProcessInfo:
        """Stop the process and return its info once it has stopped (exit code 128+N). SIGTERM,
        SIGKILL, SIGINT, SIGHUP and SIGQUIT (names or numbers) each end it at once; any other is
        a `ValueError`. An ended process is left as it is."""
        return await self.call("kill", pid, signal)

    async def wait(self, pid: int, *, timeout: float | None = None) -> int:
        """The process's exit code once it ends (128+N if killed by signal N). Raises
        `ActionTimeout` if it runs past `timeout` seconds (it goes on running), `ProcessLost`
        if it ended with its VM (a host crash, the VM's sleep)."""
        return await self.call("wait", pid, timeout=timeout)

    async def get_process(self, pid: int) -> ProcessInfo:
        """One process, running or recently ended; `ProcessNotFound` otherwise."""
        return await self.call("get_process", pid)

    async def list_processes(self) -> list[ProcessInfo]:
        """The VM's running processes and its last ended ones, oldest first."""
        return await self.call("list_processes")

    def process_output(self, pid: int, *, since: int = 0) -> ActionCall[list[ProcessOutput], ProcessOutput]:
        """The process's output after byte `since` (a chunk's `end`): what is kept of it (the
        last `ShellLimits.max_process_output` bytes; a chunk's `dropped` counts what was lost
        before it), then the rest as it comes, until the process ends."""
        return ActionCall(self, "process_output", pid, since=since)


class LocalVmHandle(ActorHandle, VmHandle):
    """The in-process handle of a VM: `registry.client().NAME...` for a type made by `agent_os`."""
