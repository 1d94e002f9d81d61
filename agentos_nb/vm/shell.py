"""The adapter over bashkit, the sandboxed bash engine. It is the only module that imports
bashkit, so the engine stays replaceable: the rest of the VM sees paths, bytes, `OSError`s
and `ShellRun`s.

Three facts about bashkit shape it:
- Interpreters keep shell state (cwd, variables, aliases, options) between `execute` calls,
  and one interpreter runs one script at a time. A VM's `exec` must behave like a new
  process, so every script runs in a subshell of an idle interpreter (its state never
  changes) and a second concurrent script gets an interpreter of its own.
- A running script holds its interpreter's lock, so reading that interpreter's filesystem
  from a host tool the script called would deadlock. The VM's files therefore live in one
  standalone `FileSystem` mounted at `/` of every interpreter; the host reads it directly.
- `cancel()` stops a script at its next command boundary and poisons the interpreter until
  `clear_cancel()`. A cancelled or timed-out interpreter is dropped instead, so the next
  script starts at once on a fresh one.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import secrets
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import bashkit
from pydantic import BaseModel, ConfigDict, Field

Feature = Literal["python", "sqlite"]
EntryKind = Literal["file", "directory", "symlink"]

HOME = "/home/user"
USERNAME = "user"
HOSTNAME = "agentos"
BASE_ENV: Mapping[str, str] = {
    "HOME": HOME,
    "USER": USERNAME,
    "LOGNAME": USERNAME,
    "SHELL": "/bin/bash",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}
_STDIN_COMMAND = "__agentos_stdin"
_TIMED_OUT_EXIT = 124  # what coreutils' `timeout` exits with
_BACKSTOP = 2.0  # seconds past bashkit's own timeout before the host gives up on a script

T = TypeVar("T")


class ShellLimits(BaseModel):
    """Per-script limits of a VM's shell. Every script gets them afresh."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float = Field(120.0, gt=0, description="Wall seconds a script may run, unless exec gives one.")
    max_commands: int = Field(100_000, ge=1, description="Commands one script may run.")
    max_loop_iterations: int = Field(100_000, ge=1, description="Iterations of one loop.")
    max_output_bytes: int = Field(1_000_000, ge=1, description="Stdout (and stderr) kept; the rest is cut.")


@dataclass(frozen=True, slots=True)
class CommandCall:
    """A host command invoked inside the shell: what a process would see."""

    name: str
    argv: list[str]
    stdin: str | None
    env: dict[str, str]
    cwd: str


@dataclass(frozen=True, slots=True)
class CommandReply:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


CommandHandler = Callable[[CommandCall], Awaitable[CommandReply]]


@dataclass(frozen=True, slots=True)
class ShellRun:
    exit_code: int
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool


@dataclass(frozen=True, slots=True)
class EntryInfo:
    kind: EntryKind
    size: int
    mode: int
    modified: float
    created: float


class Shell:
    """One VM's shell: a shared in-memory filesystem and the interpreters that run scripts on it."""

    def __init__(
        self,
        *,
        limits: ShellLimits,
        commands: Mapping[str, CommandHandler],
        features: frozenset[Feature] = frozenset(),
    ) -> None:
        self.limits = limits
        self._fs = bashkit.FileSystem()
        self._fs.mkdir(HOME, recursive=True)
        self._stdin_by_token: dict[str, str] = {}
        self._builtins = {name: _builtin(handler) for name, handler in commands.items()}
        self._builtins[_STDIN_COMMAND] = self._feed_stdin
        self._features = features
        self._idle: bashkit.Bash | None = None

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
        reusable = timeout == self.limits.timeout
        interpreter = (self._idle if reusable else None) or self._interpreter(timeout)
        if interpreter is self._idle:
            self._idle = None
        token = None
        if stdin is not None:
            token = secrets.token_hex(8)
            self._stdin_by_token[token] = stdin
        try:
            async with asyncio.timeout(timeout + _BACKSTOP):
                result = await interpreter.execute(
                    _wrap(script, cwd, env or {}, token), capture=self.limits.max_output_bytes
                )
        except TimeoutError:  # bashkit's own timeout did not fire: the interpreter is dropped
            return ShellRun(_TIMED_OUT_EXIT, "", _timed_out_message(timeout), False, True)
        finally:
            if token is not None:
                self._stdin_by_token.pop(token, None)
        timed_out = result.error is not None and "execution timeout" in result.error
        if reusable and not timed_out and self._idle is None:
            self._idle = interpreter
        if timed_out:
            return ShellRun(_TIMED_OUT_EXIT, result.stdout, _timed_out_message(timeout), False, True)
        return ShellRun(
            result.exit_code,
            result.stdout,
            result.stderr,
            bool(result.stdout_truncated or result.stderr_truncated),
            False,
        )

    def _interpreter(self, timeout: float) -> bashkit.Bash:
        interpreter = bashkit.Bash(
            username=USERNAME,
            hostname=HOSTNAME,
            cwd=HOME,
            env=dict(BASE_ENV),
            max_commands=self.limits.max_commands,
            max_loop_iterations=self.limits.max_loop_iterations,
            timeout_seconds=timeout,
            python="python" in self._features,
            sqlite="sqlite" in self._features,
            custom_builtins=self._builtins,
            profile=bashkit.ExecutionProfile.Interactive,
        )
        interpreter.mount("/", self._fs)
        return interpreter

    def _feed_stdin(self, context: bashkit.BuiltinContext) -> str:
        return self._stdin_by_token.pop(context.argv[0], "") if context.argv else ""

    # --- files: absolute, normalised paths; errors are OSErrors that name the path ---------------

    def read(self, path: str) -> bytes:
        return _fs_call(path, self._fs.read_file, path)

    def write(self, path: str, content: bytes) -> None:
        _fs_call(path, self._fs.write_file, path, content)

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        _fs_call(path, self._fs.mkdir, path, parents)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        _fs_call(path, self._fs.remove, path, recursive)

    def rename(self, source: str, target: str) -> None:
        _fs_call(source, self._fs.rename, source, target)

    def symlink(self, target: str, link: str) -> None:
        _fs_call(link, self._fs.symlink, target, link)

    def read_link(self, path: str) -> str:
        return _fs_call(path, self._fs.read_link, path)

    def chmod(self, path: str, mode: int) -> None:
        _fs_call(path, self._fs.chmod, path, mode)

    def info(self, path: str) -> EntryInfo | None:
        """What is at `path` (a symlink itself, not its target), or None."""
        try:
            return _entry_info(_fs_call(path, self._fs.stat, path))
        except FileNotFoundError:
            return None

    def list_dir(self, path: str) -> list[tuple[str, EntryInfo]]:
        entries = _fs_call(path, self._fs.read_dir, path)
        return [(entry["name"], _entry_info(entry["metadata"])) for entry in entries]


# Parts of the shell language rather than programs: real systems have no /usr/bin entry for them.
_SHELL_BUILTIN_WORDS = (
    "alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs "
    "disown enable eval exec exit export fc fg getopts hash help history jobs let local mapfile popd "
    "pushd read readarray readonly return set shift shopt source times trap type typeset ulimit "
    "umask unalias unset wait"
)
_SHELL_BUILTINS = frozenset(_SHELL_BUILTIN_WORDS.split())


@functools.cache
def engine_commands() -> tuple[str, ...]:
    """The programs bashkit itself provides (python3 and sqlite3 included), builtins left out."""
    probe = bashkit.Bash(python=True, sqlite=True)
    names = probe.capabilities().builtins
    return tuple(sorted(n for n in names if n[0].isalpha() and n not in _SHELL_BUILTINS))


def _builtin(handler: CommandHandler) -> Callable[[bashkit.BuiltinContext], Awaitable[bashkit.BuiltinResult]]:
    async def call(context: bashkit.BuiltinContext) -> bashkit.BuiltinResult:
        reply = await handler(
            CommandCall(context.name, list(context.argv), context.stdin, dict(context.env), context.cwd)
        )
        return bashkit.BuiltinResult(stdout=reply.stdout, stderr=reply.stderr, exit_code=reply.exit_code)

    return call


def _wrap(script: str, cwd: str, env: Mapping[str, str], stdin_token: str | None) -> str:
    """The script in a subshell that starts in `cwd` with `env` exported; the user's text
    keeps line 1 so that bash's error messages point at the right line."""
    exports = "".join(f"export {name}={shlex.quote(value)}; " for name, value in env.items())
    wrapped = f"( cd -- {shlex.quote(cwd)} || exit 1; {exports}{script}\n)"
    if stdin_token is not None:
        wrapped = f"{_STDIN_COMMAND} {stdin_token} | {wrapped}"
    return wrapped


def _timed_out_message(timeout: float) -> str:
    return f"agentos: command timed out after {timeout:g} s and was stopped\n"


def _entry_info(metadata: Mapping[str, object]) -> EntryInfo:
    return EntryInfo(
        kind=metadata["file_type"],  # type: ignore[arg-type]
        size=int(metadata["size"]),  # type: ignore[call-overload]
        mode=int(metadata["mode"]) & 0o7777,  # type: ignore[call-overload]
        modified=float(metadata["modified"]),  # type: ignore[arg-type]
        created=float(metadata["created"]),  # type: ignore[arg-type]
    )


# bashkit reports filesystem errors as RuntimeError("io error: <reason>"); the reason decides the errno.
_ERRNO_BY_REASON: tuple[tuple[str, int], ...] = (
    ("parent directory not found", errno.ENOENT),
    ("not found", errno.ENOENT),
    ("is a directory", errno.EISDIR),
    ("not a directory", errno.ENOTDIR),
    ("exists", errno.EEXIST),
    ("directory not empty", errno.ENOTEMPTY),
    ("too large", errno.EFBIG),
    ("filesystem full", errno.ENOSPC),
    ("read-only", errno.EROFS),
    ("permission denied", errno.EACCES),
)


def _fs_call(path: str, operation: Callable[..., T], *args: object) -> T:
    try:
        return operation(*args)
    except RuntimeError as error:
        reason = str(error).removeprefix("io error: ")
        for fragment, code in _ERRNO_BY_REASON:
            if fragment in reason:
                raise OSError(code, reason, path) from None
        raise OSError(errno.EIO, reason, path) from None
