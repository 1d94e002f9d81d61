"""The adapter over bashkit, the sandboxed bash engine. It is the only module that imports
bashkit, so the engine stays replaceable: the rest of the VM sees paths, bytes, `OSError`s
and `ShellRun`s. It runs in VM host processes only (`agentos_nb.vm.host`), never in the
kernel: bashkit can crash its process, or compute on past a timeout.

Four facts about bashkit shape it:
- Interpreters keep shell state (cwd, variables, aliases, options) between `execute` calls,
  and one interpreter runs one script at a time. A VM's `exec` must behave like a new
  process, so every script runs in a subshell of an idle interpreter (its state never
  changes) and a second concurrent script gets an interpreter of its own.
- A running script holds its interpreter's lock, so reading that interpreter's filesystem
  from a host tool the script called would deadlock. The VM's files therefore live in one
  standalone `FileSystem` mounted at `/` of every interpreter; the host reads it directly.
- Cancelling the task that awaits `execute` stops the script at once, even inside `sleep` or
  python3. The interpreter of a cancelled or timed-out script is dropped, not reused (what a
  stopped script left in it is unknown), so the next script starts at once on a fresh one.
  Timeouts are both the host's (`asyncio.timeout`) and bashkit's own (`timeout_seconds`, fixed
  when an interpreter is made, so idle interpreters are kept per timeout): cancelling does not
  stop every builtin (a `jq` recursion allocates on), and bashkit's own alone lets a script's
  `sleep` run on. What neither stops, the host's supervisor does (`agentos_nb.vm.host`).
- An interpreter given Python builtins (the host commands) makes bashkit compile a small
  module on every `execute`, about 250 µs; scripts that cannot reach a host command run on an
  interpreter without them.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import secrets
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import bashkit
from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.vm.mounts import Mount, is_mounted
from agentos_nb.vm.pipes import InputPipe
from agentos_nb.vm.tool_results import describe

Feature = Literal["python", "sqlite", "javascript"]
EntryKind = Literal["file", "directory", "symlink", "other"]

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
_PIPE_IN = "__agentos_pipe_in"  # a spawned process's stdin, as it is written
_PIPE_END = "__agentos_pipe_end"  # the script ended: its stdin has no reader left
_TIMED_OUT_EXIT = 124  # what coreutils' `timeout` exits with
_ENGINE_OUTPUT_CAP = 10 * 1024 * 1024  # bashkit's Interactive profile keeps no more of either stream
_SYNTAX_ERROR_EXIT = 2  # what bash exits with when `bash -c` cannot parse its script
_ENGINE_TIMEOUT = "execution timeout"  # in bashkit's error when its own timeout stopped a script
# bashkit's own timeout stops only the builtin running then (the script goes on), so it comes
# after the host's, which stops the whole script, and catches what that one could not stop.
_ENGINE_TIMEOUT_MARGIN = 0.5
_ENGINE_TIMEOUT_MAX = 1e9  # bashkit panics on a timeout its durations cannot hold

T = TypeVar("T")


class ShellLimits(BaseModel):
    """Per-script limits of a VM's shell. Every script gets them afresh."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float = Field(120.0, gt=0, description="Wall seconds a script may run, unless exec gives one.")
    max_commands: int = Field(100_000, ge=1, description="Commands one script may run.")
    max_loop_iterations: int = Field(100_000, ge=1, description="Iterations of one loop.")
    max_output_bytes: int = Field(
        1_000_000, ge=1, le=_ENGINE_OUTPUT_CAP, description="Stdout (and stderr) kept; the rest is cut."
    )
    max_memory: int = Field(
        512 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes the engine lets one script's files and data take.",
    )
    max_processes: int = Field(16, ge=1, le=1024, description="Processes (`spawn`) one VM may run at once.")
    max_process_output: int = Field(
        1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Output bytes the kernel keeps per process."
    )


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
    """What a host command answers, as a process would: its output and exit code."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


CommandHandler = Callable[[CommandCall], Awaitable[CommandReply]]
ByteSink = Callable[[bytes], Awaitable[None]]
"""Where a streamed script's stdout or stderr goes, chunk by chunk (awaited: backpressure)."""
Program = Callable[["Shell", float, CommandCall], Awaitable[CommandReply]]
"""A program the host runs itself on the VM's files (CPython, Deno: `agentos_nb.vm.languages`),
given the shell, the script's timeout in seconds and the call."""


@dataclass(frozen=True, slots=True)
class ShellRun:
    """How a script ended, as the shell ran it; `exec` turns it into an `ExecResult`."""

    exit_code: int
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """What the filesystem holds at a path: permission bits, times as Unix timestamps."""

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
        mounts: Sequence[Mount] = (),
        programs: Mapping[str, Program] | None = None,
    ) -> None:
        self.limits = limits
        self._programs = dict(programs or {})
        self._fs = bashkit.FileSystem()
        self._fs.mkdir(HOME, recursive=True)
        # Host directories (`mounts.py` checked them), deepest first so the innermost one answers.
        self._mounts = [
            _Mounted(
                item.vm_path,
                bashkit.FileSystem.real(item.host_path, writable=not item.read_only),
                item.read_only,
            )
            for item in sorted(mounts, key=lambda item: -len(item.vm_path))
        ]
        self.make_mount_points()
        self._stdin_by_token: dict[str, str] = {}
        self._commands = dict(commands)
        self._features = features
        # One idle interpreter of each kind (with or without the host commands, and the engine's
        # own timeout, which is set when an interpreter is made), for the next script.
        self._idle: dict[tuple[bool, float], _Interpreter] = {}

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
        # Checked alone, before it is wrapped: a script that does not parse by itself could
        # otherwise close the wrapping subshell and leave state behind for later scripts.
        analysis = _parse(script)
        if isinstance(analysis, ShellRun):
            return analysis
        with_commands = stdin is not None or self._may_call_commands(script, analysis)
        timeout = self.limits.timeout if timeout is None else timeout
        kind = (with_commands, timeout)
        interpreter = self._idle.pop(kind, None) or self._interpreter(
            with_commands=with_commands, timeout=timeout
        )
        token = None
        if stdin is not None:
            token = secrets.token_hex(8)
            self._stdin_by_token[token] = stdin
        try:
            run = await self._execute(interpreter, _wrap(script, cwd, env or {}, token), timeout)
        finally:
            if token is not None:
                self._stdin_by_token.pop(token, None)
        if not run.timed_out:
            self._idle.setdefault(kind, interpreter)
        return run

    async def stream(
        self,
        script: str,
        *,
        cwd: str = HOME,
        env: Mapping[str, str] | None = None,
        stdin: InputPipe,
        stdout: ByteSink,
        stderr: ByteSink,
        timeout: float | None = None,
    ) -> ShellRun:
        """Run `script` as `run` does, as a long-lived process: its output goes to `stdout` and
        `stderr` as it comes (none of it is kept here, nor in the `ShellRun`), and it reads its
        stdin from `stdin` as that is written. No `timeout` is no time limit.

        The script reads a pipe fed by a command of its own, and a second one tells the pipe
        when the script has ended (else bashkit would wait for the feeding end). Commands given
        as Python callbacks (host commands) get their whole stdin before they start, so one that
        inherits an open stdin waits for it to close."""
        analysis = _parse(script)
        if isinstance(analysis, ShellRun):
            return analysis
        limit = _ENGINE_TIMEOUT_MAX if timeout is None else timeout
        interpreter = self._interpreter(with_commands=True, timeout=limit)
        interpreter.bash.add_command(_PIPE_IN, functools.partial(_pipe_in, stdin))
        interpreter.bash.add_command(_PIPE_END, functools.partial(_pipe_end, stdin))
        move = "" if cwd == HOME else f"cd -- {shlex.quote(cwd)} || exit 1; "
        exports = "".join(f"export {name}={shlex.quote(value)}; " for name, value in (env or {}).items())
        wrapped = f"{_PIPE_IN} | {{ ( {move}{exports}{script}\n); {_PIPE_END} $?; }}"
        try:
            return await self._execute(interpreter, wrapped, limit, sinks=(stdout, stderr))
        finally:
            await stdin.end()

    def persistent(self, cwd: str = HOME) -> PersistentShell:
        """A shell whose state (cwd, variables, functions) lasts from one script to the next."""
        return PersistentShell(self, cwd)

    async def _execute(
        self,
        interpreter: _Interpreter,
        script: str,
        timeout: float | None,
        *,
        sinks: tuple[ByteSink, ByteSink] | None = None,
    ) -> ShellRun:
        """Run `script` as given on `interpreter`, within `timeout` (the limit's by default).

        On timeout (or cancellation) bashkit stops the script, even inside sleep or python3;
        the caller must drop the interpreter, since what a stopped script left in it is unknown.
        The engine's own timeout (the interpreter's) stops the builtins that cancelling does not.
        """
        timeout = self.limits.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                if sinks is None:
                    result = await interpreter.bash.execute(script)
                else:  # streamed: none of the output is kept
                    to_stdout, to_stderr = sinks
                    result = await interpreter.bash.execute(
                        script, stdout=to_stdout, stderr=to_stderr, capture=0
                    )
        except TimeoutError:
            await interpreter.stop_commands()
            return ShellRun(_TIMED_OUT_EXIT, "", _timed_out_message(timeout), False, True)
        except asyncio.CancelledError:
            await asyncio.shield(interpreter.stop_commands())
            raise
        if result.error is not None and _ENGINE_TIMEOUT in result.error:
            await interpreter.stop_commands()
            return ShellRun(_TIMED_OUT_EXIT, "", _timed_out_message(timeout), False, True)
        stdout, stdout_cut = _cut(result.stdout, self.limits.max_output_bytes)
        stderr, stderr_cut = _cut(result.stderr, self.limits.max_output_bytes)
        truncated = sinks is None and (
            stdout_cut or stderr_cut or result.stdout_truncated or result.stderr_truncated
        )
        return ShellRun(result.exit_code, stdout, stderr, bool(truncated), False)

    def _may_call_commands(self, script: str, analysis: bashkit.ScriptAnalysis) -> bool:
        """Whether `script` may reach a host command, and so needs an interpreter that has them.

        When in doubt (a command computed at run time, a nested shell, a program that runs
        other programs), the answer is yes.
        """
        return (
            any(name in script for name in (*self._commands, *self._programs))
            or "@P" in script  # ${x@P} expands a prompt string, which may run commands
            or analysis.is_opaque
            or analysis.has_interpreter_reentry
            # a program that runs others, a script run by its path, a script on PATH, a function
            or not _plain_commands().issuperset(analysis.command_names)
        )

    def _interpreter(self, *, with_commands: bool, timeout: float, cwd: str = HOME) -> _Interpreter:
        running: set[asyncio.Task[object]] = set()
        engine: list[bashkit.Bash] = []  # the builtins stop the interpreter made below (`_builtin`)
        builtins: dict[str, Callable[[bashkit.BuiltinContext], str | Awaitable[bashkit.BuiltinResult]]] = {
            name: _builtin(handler, running, engine) for name, handler in self._commands.items()
        }
        for name, program in self._programs.items():
            builtins[name] = _builtin(functools.partial(program, self, timeout), running, engine)
        builtins[_STDIN_COMMAND] = self._feed_stdin
        bash = bashkit.Bash(
            username=USERNAME,
            hostname=HOSTNAME,
            cwd=cwd,
            env=dict(BASE_ENV),
            max_commands=self.limits.max_commands,
            max_loop_iterations=self.limits.max_loop_iterations,
            max_memory=self.limits.max_memory,
            timeout_seconds=min(timeout + _ENGINE_TIMEOUT_MARGIN, _ENGINE_TIMEOUT_MAX),
            python="python" in self._features and "python3" not in self._programs,  # Monty, else CPython
            sqlite="sqlite" in self._features,
            custom_builtins=builtins if with_commands else None,
            profile=bashkit.ExecutionProfile.Interactive,
        )
        bash.mount("/", self._fs)
        for mounted in self._mounts:
            bash.mount(mounted.vm_path, mounted.fs, read_only=mounted.read_only)
        engine.append(bash)
        return _Interpreter(bash, running)

    def _feed_stdin(self, context: bashkit.BuiltinContext) -> str:
        return self._stdin_by_token.pop(context.argv[0], "") if context.argv else ""

    # --- files: absolute, normalised paths; errors are OSErrors that name the path ---------------
    # A path inside a mount goes to the host directory's filesystem, the rest to the VM's own.

    @property
    def mount_points(self) -> tuple[str, ...]:
        """Where host directories are mounted: their files are the host's, never packed."""
        return tuple(mounted.vm_path for mounted in self._mounts)

    def make_mount_points(self) -> None:
        """Make each mount point (and its parents) a directory of the VM's own filesystem, so
        that listing its parent shows it."""
        for mounted in self._mounts:
            if not self._fs.exists(mounted.vm_path):
                fs_call(mounted.vm_path, self._fs.mkdir, mounted.vm_path, True)

    def read(self, path: str) -> bytes:
        """The file's bytes. Paths are taken as given here, symlinks unresolved: the VM's
        file API (`agentos_nb.vm.files`) resolves them first."""
        fs, inner = self._at(path)
        return fs_call(path, fs.read_file, inner)

    def write(self, path: str, content: bytes) -> None:
        """Create or replace the file; its directory must exist (`FileNotFoundError`)."""
        fs, inner = self._at(path, changing=True)
        fs_call(path, fs.write_file, inner, content)

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        """Make a directory; with `parents`, the missing ones above it too."""
        fs, inner = self._at(path, changing=True)
        fs_call(path, fs.mkdir, inner, parents)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Remove a file, a symlink, or a directory (a non-empty one only if `recursive`)."""
        if any(is_mounted(point, [path]) for point in self.mount_points):  # the point, or above it
            raise OSError(errno.EBUSY, "a host directory is mounted there", path)
        fs, inner = self._at(path, changing=True)
        fs_call(path, fs.remove, inner, recursive)

    def rename(self, source: str, target: str) -> None:
        """Move `source` to `target`, replacing a file there."""
        (fs, inner), (target_fs, target_inner) = (
            self._at(source, changing=True),
            self._at(target, changing=True),
        )
        if fs is not target_fs:
            raise OSError(errno.EXDEV, "cannot move between a mount and the rest of the VM", source)
        fs_call(source, fs.rename, inner, target_inner)

    def symlink(self, target: str, link: str) -> None:
        """Make `link` point at `target`, which need not exist."""
        fs, inner = self._at(link, changing=True)
        fs_call(link, fs.symlink, target, inner)

    def read_link(self, path: str) -> str:
        """Where the symlink at `path` points, as it was written."""
        fs, inner = self._at(path)
        return fs_call(path, fs.read_link, inner)

    def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits."""
        fs, inner = self._at(path, changing=True)
        fs_call(path, fs.chmod, inner, mode)

    def info(self, path: str) -> EntryInfo | None:
        """What is at `path` (a symlink itself, not its target), or None."""
        fs, inner = self._at(path)
        try:
            return entry_info(fs_call(path, fs.stat, inner))
        except FileNotFoundError:
            return None

    def list_dir(self, path: str) -> list[tuple[str, EntryInfo]]:
        """The names in a directory with what each holds, in no particular order."""
        fs, inner = self._at(path)
        entries = fs_call(path, fs.read_dir, inner)
        return [(entry["name"], entry_info(entry["metadata"])) for entry in entries]

    def _at(self, path: str, *, changing: bool = False) -> tuple[bashkit.FileSystem, str]:
        """The filesystem that holds `path`, and the path within it."""
        for mounted in self._mounts:
            if is_mounted(path, [mounted.vm_path]):
                if changing and mounted.read_only:
                    raise OSError(errno.EROFS, "read-only mount of a host directory", path)
                return mounted.fs, "/" + path[len(mounted.vm_path) :].lstrip("/")
        return self._fs, path


class PersistentShell:
    """A shell that keeps its state between scripts, as a terminal does: an agent session's
    `bash` tool, where `cd` and variables carry over. Host commands are always reachable.

    A script that times out or is cancelled costs the shell its state: its interpreter is
    dropped, and the next script starts afresh in the first working directory.
    """

    def __init__(self, shell: Shell, cwd: str) -> None:
        self._shell = shell
        self._cwd = cwd
        self._interpreter: _Interpreter | None = None

    async def run(self, script: str, *, timeout: float | None = None) -> ShellRun:
        """Run `script` in this shell, after the scripts before it; `timeout` in seconds, the
        limits' by default."""
        analysis = _parse(script)
        if isinstance(analysis, ShellRun):
            return analysis
        if self._interpreter is None:
            self._interpreter = self._shell._interpreter(
                with_commands=True, timeout=self._shell.limits.timeout, cwd=self._cwd
            )
        interpreter = self._interpreter
        try:
            run = await self._shell._execute(interpreter, script, timeout)
        except asyncio.CancelledError:
            self._interpreter = None
            raise
        if run.timed_out:
            self._interpreter = None
        return run


def analyze(script: str) -> dict[str, Any]:
    """What `script` would run, found without running it, for a session's permissions:
    bashkit's analysis (`commands`, `redirects`, `functions`), `parsed`, `opaque` (it hides
    work: a computed command, eval, a nested shell, `${x@P}`), and `foreign`, the commands it
    names that are not the engine's own (host commands, functions, paths, launchers)."""
    analysis = _parse(script)
    if isinstance(analysis, ShellRun):
        return {"parsed": False, "error": analysis.stderr.strip()}
    facts: dict[str, Any] = analysis.to_dict()
    facts["parsed"] = True
    facts["opaque"] = bool(
        analysis.is_opaque
        or analysis.has_dynamic_commands
        or analysis.has_interpreter_reentry
        or analysis.truncated
        or "@P" in script
    )
    facts["foreign"] = sorted(set(analysis.command_names) - _plain_commands())
    return facts


def _parse(script: str) -> bashkit.ScriptAnalysis | ShellRun:
    """The script's analysis, or the run bash would report for a script that does not parse."""
    try:
        return _analyzer().analyze(_for_analysis(script))
    except bashkit.BashError as error:
        return ShellRun(_SYNTAX_ERROR_EXIT, "", f"bash: {error}\n", False, False)


# Parts of the shell language rather than programs: real systems have no /usr/bin entry for them.
_SHELL_BUILTIN_WORDS = (
    "alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs "
    "disown enable eval exec exit export fc fg getopts hash help history jobs let local mapfile popd "
    "pushd read readarray readonly return set shift shopt source times trap type typeset ulimit "
    "umask unalias unset wait"
)
_SHELL_BUILTINS = frozenset(_SHELL_BUILTIN_WORDS.split())


# Commands that run other commands given as arguments or strings, where static analysis cannot
# follow: programs (xargs, find -exec, awk's system()) and builtins (trap, complete -C, declare).
_LAUNCHER_WORDS = (
    "awk busybox builtin command compgen complete declare env exec find flock gawk local make mawk "
    "nawk nice nohup parallel retry sudo time timeout trap typeset watch xargs"
)
_LAUNCHERS = frozenset(_LAUNCHER_WORDS.split())


@functools.cache
def _analyzer() -> bashkit.Bash:
    """Parses scripts without running them; shared, since analysis changes no state."""
    return bashkit.Bash(profile=bashkit.ExecutionProfile.Interactive)


@functools.cache
def _engine_builtins() -> frozenset[str]:
    """Every command bashkit itself provides, python3 and sqlite3 included."""
    return frozenset(bashkit.Bash(python=True, sqlite=True).capabilities().builtins)


@functools.cache
def _plain_commands() -> frozenset[str]:
    """Commands that can only ever run the engine's own code: a script naming nothing else
    cannot reach a host command."""
    return _engine_builtins() - _LAUNCHERS


@functools.cache
def engine_commands() -> tuple[str, ...]:
    """The programs bashkit itself provides (python3 and sqlite3 included), builtins left out."""
    names = _engine_builtins()
    return tuple(sorted(n for n in names if n[0].isalpha() and n not in _SHELL_BUILTINS))


@dataclass(frozen=True, slots=True)
class _Mounted:
    """A host directory as the engine shows it at `vm_path`."""

    vm_path: str
    fs: bashkit.FileSystem
    read_only: bool


@dataclass(frozen=True, slots=True)
class _Interpreter:
    """A bashkit interpreter, and the host commands its current script is running."""

    bash: bashkit.Bash
    running: set[asyncio.Task[object]]

    async def stop_commands(self) -> None:
        """Cancel the host commands of a script that was stopped, and wait until they are gone:
        bashkit would cancel them too, but only later."""
        for task in self.running:
            task.cancel()
        if self.running:
            await asyncio.wait(set(self.running))


def _builtin(
    handler: CommandHandler, running: set[asyncio.Task[object]], engine: list[bashkit.Bash]
) -> Callable[[bashkit.BuiltinContext], Awaitable[bashkit.BuiltinResult]]:
    async def call(context: bashkit.BuiltinContext) -> bashkit.BuiltinResult:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
        try:
            reply = await handler(
                CommandCall(context.name, list(context.argv), context.stdin, dict(context.env), context.cwd)
            )
        except Exception as error:  # a host command must fail like a program, never take the shell down
            reply = CommandReply(stderr=f"{context.name}: {describe(error)}\n", exit_code=1)
        except asyncio.CancelledError:
            # The script was stopped. bashkit may see this command end before it notices, and run
            # the next one (`python3 ...; echo after` wrote `after` about 1 time in 5): say it first.
            for bash in engine:
                bash.cancel()
            raise
        finally:
            running.discard(task)
        return bashkit.BuiltinResult(stdout=reply.stdout, stderr=reply.stderr, exit_code=reply.exit_code)

    return call


async def _pipe_in(pipe: InputPipe, context: bashkit.CommandContext) -> int:
    while (chunk := await pipe.read()) is not None:
        try:
            await context.stdout.write(chunk)
        except BrokenPipeError:  # the script stopped reading
            break
    return 0


async def _pipe_end(pipe: InputPipe, context: bashkit.CommandContext) -> int:
    await pipe.end()
    status = context.argv[0] if context.argv else ""
    return int(status) if status.isdigit() else 1


def _for_analysis(script: str) -> str:
    """`script` as bashkit's analyzer accepts it: it refuses a few control bytes that `execute`
    runs (inside words and strings, where a letter in their place parses the same)."""
    return script.translate(_RESERVED_BYTES)


_RESERVED_BYTES = str.maketrans({code: "_" for code in (0x00, 0x01, 0x02, 0x1E, 0x1F)})


def _wrap(script: str, cwd: str, env: Mapping[str, str], stdin_token: str | None) -> str:
    """The script in a subshell that starts in `cwd` with `env` exported; the user's text
    keeps line 1 so that bash's error messages point at the right line. `history -c` and
    `complete -r` come first: interpreters are reused, and their history and completion
    specs (which a subshell does not scope) would show earlier scripts. Every
    interpreter starts in (and, its scripts running in subshells, stays in) the home
    directory, so a script run there needs no `cd`, which costs bashkit a tenth of an `exec`."""
    move = "" if cwd == HOME else f"cd -- {shlex.quote(cwd)} || exit 1; "
    exports = "".join(f"export {name}={shlex.quote(value)}; " for name, value in env.items())
    feed = "" if stdin_token is None else f"{_STDIN_COMMAND} {stdin_token} | "
    return f"history -c; complete -r; {feed}( {move}{exports}{script}\n)"


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    if len(text) <= limit // 4:
        return text, False
    data = text.encode()
    if len(data) <= limit:
        return text, False
    return data[:limit].decode(errors="ignore"), True


def _timed_out_message(timeout: float) -> str:
    return f"agentos: command timed out after {timeout:g} s and was stopped\n"


_KINDS = frozenset({"file", "directory", "symlink"})


def entry_info(metadata: Mapping[str, object]) -> EntryInfo:
    """bashkit's stat of an entry, as the VM's own `EntryInfo`."""
    return EntryInfo(
        kind=metadata["file_type"] if metadata["file_type"] in _KINDS else "other",  # type: ignore[arg-type]
        size=int(metadata["size"]),  # type: ignore[call-overload]
        mode=int(metadata["mode"]) & 0o7777,  # type: ignore[call-overload]
        modified=float(metadata["modified"]),  # type: ignore[arg-type]
        created=float(metadata["created"]),  # type: ignore[arg-type]
    )


# bashkit reports filesystem errors as RuntimeError("io error: <reason>"); the reason decides the errno.
_ERRNO_BY_REASON: tuple[tuple[str, int], ...] = (
    ("parent directory not found", errno.ENOENT),
    ("no such file or directory", errno.ENOENT),  # a mounted host directory's own errors
    ("not found", errno.ENOENT),
    ("is a directory", errno.EISDIR),
    ("not a directory", errno.ENOTDIR),
    ("exists", errno.EEXIST),
    ("directory not empty", errno.ENOTEMPTY),
    ("too large", errno.EFBIG),
    ("filesystem full", errno.ENOSPC),
    ("read-only", errno.EROFS),
    ("readonly", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("escapes", errno.EACCES),  # a symlink in a mounted host directory that leads out of it
)


def fs_call(path: str, operation: Callable[..., T], *args: object) -> T:
    """A bashkit filesystem call whose failure is the `OSError` naming `path` that Python's own would be."""
    try:
        return operation(*args)
    except RuntimeError as error:
        reason = str(error).removeprefix("io error: ")
        for fragment, code in _ERRNO_BY_REASON:
            if fragment in reason.lower():
                raise OSError(code, reason, path) from None
        raise OSError(errno.EIO, reason, path) from None
