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
from agentos_nb.vm.files import Content
from agentos_nb.vm.models import DirEntry, ExecResult, FileRead, FileStat, FileWrite
from agentos_nb.vm.session_models import AgentTypeInfo, PromptResult, SessionInfo, SessionUpdate
from agentos_nb.vm.shell import HOME


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
    ) -> SessionInfo:
        """Start a conversation with an agent of `agent_type` in this VM. `model`: a
        pydantic-ai model or model name (else chosen by the keys in `env` or the host's
        environment, else the offline model); `env` stays on the host."""
        return await self.call(
            "create_session",
            agent_type,
            model=model,
            env=env,
            cwd=cwd,
            additional_instructions=additional_instructions,
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


class LocalVmHandle(ActorHandle, VmHandle):
    """The in-process handle of a VM: `registry.client().NAME...` for a type made by `agent_os`."""
