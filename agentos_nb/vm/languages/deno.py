"""`node`, `deno`, `tsx` and `npx tsx` in the VM: JavaScript and TypeScript through Deno (the
official binary, from the `deno` package), in a child process of the VM's host.

Deno runs on the host, so it cannot see the VM's in-memory files: the working directory is
copied out to a private host folder (the working copy), Deno runs there, and what it changed is
copied back. The child gets nothing of the host: an environment of its own (no variable of the
kernel's), Deno's permissions to read and write the working copy only (no network, no
subprocesses, no environment, no FFI), Landlock under those (`confine.py`: Deno reads imported
files without asking its permissions), and limits on CPU time, heap, file size, output and wall
time; the working copy's total size is watched while Deno runs, and one VM runs at most
`MAX_CONCURRENT_RUNS` Deno children at once (each holds memory outside the host's own limit).
Arguments are checked the same way: flags that widen permissions or read host files are refused,
and every path must lie in the working directory.

A VM with a network (`network(allow=...)`) lets `fetch` reach the URLs its rules allow, and only
those: through a proxy in the host process that makes each request as `curl` does, with the
host's credentials (`deno_proxy.py`); Deno may name the rules' hosts, and Landlock lets it
connect to the proxy's port alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import posixpath
import signal
import stat
import sys
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentos_nb.vm.languages import confine
from agentos_nb.vm.languages.deno_proxy import DenoProxy
from agentos_nb.vm.network import Rule
from agentos_nb.vm.outbound import MAX_BODY, Outbound
from agentos_nb.vm.shell import CommandCall, CommandReply, Program, Shell

MAX_FILES = 20_000
"""The most files a working copy holds: a bigger working directory is refused, not half-copied."""
MAX_CONCURRENT_RUNS = 2
"""The most Deno children one VM runs at once (each may hold `max_memory` outside the host's own
limits); more wait their turn, within their own timeout."""
TIMED_OUT_EXIT = 124
USAGE_EXIT = 2
OUTGROWN_EXIT = 153  # as a process past its file-size limit (SIGXFSZ): the working copy outgrew the VM
_WATCH_INTERVAL = 0.1  # seconds between two measures of the working copy while Deno runs
_OPEN_FILES = 512
_RUNTIME_DATA = 512 * 1024 * 1024  # what Deno itself writes besides the script's heap
_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache", "/dev/urandom", "/dev/null")
_NODE_VERSION_SCRIPT = "console.log(process.version)"
# Flags a user may pass to Deno: none widens a permission or names a host file.
_PLAIN_FLAGS = frozenset(
    {"-q", "--quiet", "--check", "--no-check", "--fail-fast", "--doc", "--all", "--parallel"}
)
_VALUED_FLAGS = frozenset({"--filter", "--ext", "--reporter"})
_SUBCOMMANDS = frozenset({"run", "test", "check", "fmt", "lint", "eval"})
_ISOLATION = {  # what each subcommand takes of: no prompt, no remote modules, no npm, no lockfile, no config
    "run": ["--no-prompt", "--no-remote", "--no-npm", "--no-lock", "--no-config"],
    "test": ["--no-prompt", "--no-remote", "--no-npm", "--no-lock", "--no-config"],
    "check": ["--no-remote", "--no-npm", "--no-lock", "--no-config"],
    "fmt": ["--no-config"],
    "lint": ["--no-config"],
}
_RUNS_CODE = frozenset({"run", "test", "check"})  # the subcommands that start V8 on the user's code
_TS_RUNNERS = frozenset({"tsx", "ts-node"})


class _Refused(Exception):
    """The command line asks for something Deno is not allowed here; the message says what."""


class _Outgrown(Exception):
    """The working copy grew past the VM's memory limit while Deno ran: the child was killed."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to run: a Deno subcommand, its flags, its paths (VM paths), the program's args,
    and code to run from a file of its own (`-e`, `-p`, stdin)."""

    subcommand: str
    flags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    program_args: tuple[str, ...] = ()
    code: str | None = None


@dataclass(frozen=True, slots=True)
class _Net:
    """The network of one run: its proxy's URL (with the run's secret) and port, the certificate
    Deno trusts, the hosts it may name."""

    url: str
    port: int
    ca_file: Path
    rules: tuple[Rule, ...]


def deno_binary() -> str:
    """The Deno executable the `deno` package installed."""
    from deno import find_deno_bin  # type: ignore[import-untyped]  # ships no types

    return find_deno_bin()


async def run_node(
    shell: Shell, timeout: float, call: CommandCall, *, outbound: Outbound | None = None
) -> CommandReply:
    """`node FILE ARGS`, `node -e CODE`, `node -p EXPR`, `node --test`, `node --version`;
    `fetch` reaches what `outbound` allows (nothing without one)."""
    try:
        plan = _node_plan(call.argv, call.stdin)
    except _Refused as refused:
        return CommandReply(stderr=f"{call.name}: {refused}\n", exit_code=USAGE_EXIT)
    return await _run(shell, timeout, call, plan, outbound)


async def run_deno(
    shell: Shell, timeout: float, call: CommandCall, *, outbound: Outbound | None = None
) -> CommandReply:
    """`deno run|test|check|fmt|lint|eval ...` with the working copy's permissions only."""
    try:
        plan = _deno_plan(call.argv)
    except _Refused as refused:
        return CommandReply(stderr=f"{call.name}: {refused}\n", exit_code=USAGE_EXIT)
    if plan is None:
        return CommandReply(stdout=f"deno {_deno_version()}\n")
    return await _run(shell, timeout, call, plan, outbound)


async def run_tsx(
    shell: Shell, timeout: float, call: CommandCall, *, outbound: Outbound | None = None
) -> CommandReply:
    """`tsx FILE ARGS` (and `ts-node`): a TypeScript file, as `deno run` runs it."""
    try:
        plan = _script_plan(call.argv, call.stdin)
    except _Refused as refused:
        return CommandReply(stderr=f"{call.name}: {refused}\n", exit_code=USAGE_EXIT)
    return await _run(shell, timeout, call, plan, outbound)


async def run_npx(
    shell: Shell, timeout: float, call: CommandCall, *, outbound: Outbound | None = None
) -> CommandReply:
    """`npx tsx FILE` and `npx ts-node FILE`; other packages cannot be fetched here."""
    argv = [arg for arg in call.argv if arg not in ("-y", "--yes")]
    if not argv or argv[0] not in _TS_RUNNERS:
        return CommandReply(
            stderr=f"{call.name}: only `npx tsx` and `npx ts-node` are available (run by Deno); "
            "there is no npm registry in this VM\n",
            exit_code=1,
        )
    tsx_call = CommandCall(argv[0], argv[1:], call.stdin, call.env, call.cwd)
    return await run_tsx(shell, timeout, tsx_call, outbound=outbound)


# --- reading command lines -------------------------------------------------------------------


def _node_plan(argv: list[str], stdin: str | None) -> _Plan:
    if argv and argv[0] in ("-v", "--version"):
        return _Plan("run", code=_NODE_VERSION_SCRIPT)
    if argv and argv[0] == "--test":
        return _Plan("test", paths=tuple(argv[1:]))
    if argv and argv[0] in ("-e", "--eval", "-p", "--print"):
        if len(argv) < 2:
            raise _Refused(f"{argv[0]} needs the code to run")
        code = argv[1] if argv[0] in ("-e", "--eval") else f"console.log({argv[1]})"
        return _Plan("run", code=code, program_args=tuple(argv[2:]))
    return _script_plan(argv, stdin)


def _script_plan(argv: list[str], stdin: str | None) -> _Plan:
    if argv and argv[0].startswith("-") and argv[0] != "-":
        raise _Refused(f"option {argv[0]} is not supported here")
    if not argv or argv[0] == "-":
        return _Plan("run", code=stdin or "", program_args=tuple(argv[1:]))
    return _Plan("run", paths=(argv[0],), program_args=tuple(argv[1:]))


def _deno_plan(argv: list[str]) -> _Plan | None:
    if not argv or argv[0] in ("-V", "--version"):
        return None
    subcommand, rest = argv[0], argv[1:]
    if subcommand not in _SUBCOMMANDS:
        raise _Refused(f"`deno {subcommand}` is not available here; use run, test, check, fmt, lint or eval")
    flags: list[str] = []
    positional: list[str] = []
    words = iter(rest)
    for word in words:
        if positional and subcommand in ("run", "eval"):
            positional.append(word)  # the program's own arguments
        elif word in _PLAIN_FLAGS:
            flags.append(word)
        elif word.split("=", 1)[0] in _VALUED_FLAGS:
            flags.append(word if "=" in word else f"{word}={next(words, '')}")
        elif word.startswith("-") and word != "-":
            raise _Refused(f"option {word} is not allowed here (permissions are fixed: the working copy)")
        else:
            positional.append(word)
    if subcommand == "eval":
        if not positional:
            raise _Refused("eval needs the code to run")
        return _Plan("run", tuple(flags), code=positional[0], program_args=tuple(positional[1:]))
    if subcommand == "run":
        if not positional:
            raise _Refused("run needs a script")
        return _Plan("run", tuple(flags), (positional[0],), tuple(positional[1:]))
    return _Plan(subcommand, tuple(flags), tuple(positional))


# --- running ---------------------------------------------------------------------------------


async def _run(
    shell: Shell, timeout: float, call: CommandCall, plan: _Plan, outbound: Outbound | None
) -> CommandReply:
    try:
        local = _local_paths(plan.paths, call.cwd)
    except _Refused as refused:
        return CommandReply(stderr=f"{call.name}: {refused}\n", exit_code=USAGE_EXIT)
    if confine.landlock_abi() < 4:
        return CommandReply(
            stderr=f"{call.name}: unavailable: this machine's kernel cannot confine Deno (Landlock 4+)\n",
            exit_code=1,
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    turn = _turns(shell)
    try:
        async with asyncio.timeout(timeout):
            await turn.acquire()
    except TimeoutError:
        message = f"{call.name}: stopped after {timeout:g} s, waiting for the VM's other Deno runs\n"
        return CommandReply(stderr=message, exit_code=TIMED_OUT_EXIT)
    try:
        return await _run_in_turn(shell, deadline - loop.time(), call, plan, outbound, local)
    finally:
        turn.release()


async def _run_in_turn(
    shell: Shell,
    timeout: float,
    call: CommandCall,
    plan: _Plan,
    outbound: Outbound | None,
    local: list[str],
) -> CommandReply:
    with tempfile.TemporaryDirectory(prefix="agentos-deno-") as scratch:
        copy = Path(scratch) / "work"
        try:
            before = await asyncio.to_thread(_copy_out, shell, call.cwd, copy)
        except _Refused as refused:
            return CommandReply(stderr=f"{call.name}: {refused}\n", exit_code=1)
        arguments = list(local)
        read = [str(copy)]
        if plan.code is not None:
            code = Path(scratch) / "eval" / "main.ts"
            code.parent.mkdir()
            code.write_text(plan.code)
            arguments = [str(code)]
            read.append(str(code.parent))
        stdin = b"" if plan.code is not None or call.stdin is None else call.stdin.encode()
        try:
            if outbound is None or plan.subcommand not in ("run", "test"):
                reply = await _deno(shell, timeout, plan, arguments, copy, read, stdin, None)
            else:
                proxy = DenoProxy(
                    outbound,
                    Path(scratch) / "proxy",  # beside the working copy, not in it: nothing comes back
                    timeout=timeout,
                    max_body=min(MAX_BODY, shell.limits.max_memory),
                )
                async with proxy:
                    net = _Net(proxy.url, proxy.port, proxy.ca_file, outbound.rules)
                    reply = await _deno(shell, timeout, plan, arguments, copy, read, stdin, net)
        except _Outgrown:
            message = (
                f"{call.name}: stopped: the files it wrote pass the VM's memory limit "
                f"({shell.limits.max_memory} bytes); none were kept\n"
            )
            return CommandReply(stderr=message, exit_code=OUTGROWN_EXIT)
        left = await asyncio.to_thread(_copy_back, shell, call.cwd, copy, before)
    stderr = _shown(reply.stderr, copy, call.cwd) + left
    if outbound is not None and "Requires net access to" in reply.stdout + reply.stderr:
        patterns = ", ".join(rule.pattern for rule in outbound.rules)
        stderr += f"agentos: this VM's network reaches only the URLs of its rules ({patterns})\n"
    return CommandReply(_shown(reply.stdout, copy, call.cwd), stderr, reply.exit_code)


async def _deno(
    shell: Shell,
    timeout: float,
    plan: _Plan,
    arguments: list[str],
    copy: Path,
    read: list[str],
    stdin: bytes,
    net: _Net | None,
) -> CommandReply:
    limits = shell.limits
    binary = deno_binary()
    cache = _deno_dir(shell)
    spec = {
        "read": [binary, *_LIBRARIES, *read, *([] if net is None else [str(net.ca_file.parent)])],
        "write": [str(copy), cache],
        "cpu_seconds": math.ceil(timeout) + 1,
        "file_bytes": limits.max_memory,
        "data_bytes": limits.max_memory + _RUNTIME_DATA,
        "open_files": _OPEN_FILES,
        "connect_ports": [] if net is None else [net.port],
    }
    granted = plan.subcommand in ("run", "test")
    permissions = [f"--allow-read={copy}", f"--allow-write={copy}"] if granted else []
    if net is not None:
        permissions.append(f"--allow-net={_net_allowed(net)}")
    isolation = _ISOLATION[plan.subcommand]
    megabytes = max(limits.max_memory // (1024 * 1024), 16)
    heap = [f"--v8-flags=--max-old-space-size={megabytes}"] if plan.subcommand in _RUNS_CODE else []
    command = [
        sys.executable,
        "-I",
        "-S",
        confine.__file__,
        json.dumps(spec),
        binary,
        plan.subcommand,
        *isolation,
        *permissions,
        *heap,
        *plan.flags,
        *arguments,
        *plan.program_args,
    ]
    # Nothing of the host's environment: Deno's cache, a home in the working copy, plain output.
    environment = {
        "DENO_DIR": cache,
        "HOME": str(copy),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "DENO_NO_UPDATE_CHECK": "1",
    }
    if net is not None:  # fetch goes to the proxy, which alone reaches out; Deno trusts its certificates
        environment.update({"HTTP_PROXY": net.url, "HTTPS_PROXY": net.url, "DENO_CERT": str(net.ca_file)})
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=copy,
        env=environment,
        start_new_session=True,
    )
    cap = limits.max_output_bytes + 1  # one byte over, so that the shell cuts it and says so
    outgrown = asyncio.create_task(_outgrown(copy, limits.max_memory))
    ran = asyncio.gather(_capped(process.stdout, cap), _capped(process.stderr, cap), _feed(process, stdin))
    try:
        async with asyncio.timeout(timeout):
            await asyncio.wait((ran, outgrown), return_when=asyncio.FIRST_COMPLETED)
            if outgrown.done():
                raise _Outgrown
            stdout, stderr, _ = ran.result()
            code = await process.wait()
    except TimeoutError:
        _kill(process)
        await process.wait()
        return CommandReply("", f"stopped after {timeout:g} s\n", TIMED_OUT_EXIT)
    finally:
        outgrown.cancel()
        if process.returncode is None:
            _kill(process)
            await asyncio.shield(process.wait())
        if not ran.done():
            ran.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ran
    return CommandReply(stdout.decode(errors="replace"), stderr.decode(errors="replace"), _exit_code(code))


async def _feed(process: asyncio.subprocess.Process, stdin: bytes) -> None:
    """Give the program its standard input, whole, then end it."""
    assert process.stdin is not None
    with contextlib.suppress(ConnectionError):
        process.stdin.write(stdin)
        await process.stdin.drain()
    process.stdin.close()


async def _capped(stream: asyncio.StreamReader | None, cap: int) -> bytes:
    """The stream's first `cap` bytes; the rest is read and dropped, so the child never blocks."""
    assert stream is not None
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    return bytes(kept)


async def _outgrown(copy: Path, limit: int) -> None:
    """Returns once the working copy holds more than `limit` bytes: the file-size limit holds
    each file, this holds their sum while Deno runs (so the host's disk does not fill)."""
    while True:
        if await asyncio.to_thread(_size, copy) > limit:
            return
        await asyncio.sleep(_WATCH_INTERVAL)


def _size(root: Path) -> int:
    """The bytes of every file under `root` (symlinks not followed)."""
    total = 0
    pending = [str(root)]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
    return total


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


def _net_allowed(net: _Net) -> str:
    """`--allow-net`'s list: the proxy, and the host and port of each rule (what `fetch` names;
    Landlock still lets Deno connect to the proxy alone). A short list also keeps DNS queries
    (`Deno.resolveDns`, UDP, which Landlock does not cover) to the rules' hosts."""
    names = [f"127.0.0.1:{net.port}"]
    for rule in net.rules:
        host = f"[{rule.host}]" if ":" in rule.host else rule.host
        if f"{host}:{rule.port}" not in names:
            names.append(f"{host}:{rule.port}")
    return ",".join(names)


_DENO_DIRS: weakref.WeakKeyDictionary[Shell, tempfile.TemporaryDirectory[str]] = weakref.WeakKeyDictionary()


def _deno_dir(shell: Shell) -> str:
    """Deno's cache (type-checked modules) for this VM alone, removed with the VM's shell."""
    directory = _DENO_DIRS.get(shell)
    if directory is None:
        directory = _DENO_DIRS[shell] = tempfile.TemporaryDirectory(prefix="agentos-deno-cache-")
    return directory.name


_TURNS: weakref.WeakKeyDictionary[Shell, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _turns(shell: Shell) -> asyncio.Semaphore:
    """This VM's turns at running Deno: `MAX_CONCURRENT_RUNS` at once."""
    turns = _TURNS.get(shell)
    if turns is None:
        turns = _TURNS[shell] = asyncio.Semaphore(MAX_CONCURRENT_RUNS)
    return turns


def _deno_version() -> str:
    from importlib.metadata import version

    return version("deno")


# --- the working copy ------------------------------------------------------------------------


def _local_paths(paths: Sequence[str], cwd: str) -> list[str]:
    """Each path relative to the working directory, which is all Deno sees."""
    local = []
    for path in paths:
        if path.startswith("-"):  # Deno would read it as a flag (`node --test --allow-all`)
            raise _Refused(f"option {path} is not allowed here (permissions are fixed: the working copy)")
        if ":" in path.split("/", 1)[0]:
            raise _Refused(f"{path}: only files of the working directory can be run (no URLs, npm: or jsr:)")
        joined = posixpath.normpath(posixpath.join(cwd, path))
        relative = posixpath.relpath(joined, cwd)
        if relative == ".." or relative.startswith("../"):
            raise _Refused(f"{path} is outside the working directory {cwd}, which is all Deno sees")
        local.append(relative)
    return local


@dataclass(slots=True)
class _Copied:
    """What went into the working copy, by path relative to it."""

    files: dict[str, bytes]
    directories: set[str]


def _copy_out(shell: Shell, cwd: str, copy: Path) -> _Copied:
    """Copy the VM's `cwd` into `copy`."""
    copied: dict[str, bytes] = {}
    directories: set[str] = set()
    total = 0
    copy.mkdir()
    pending = [""]
    while pending:
        relative = pending.pop()
        for name, info in shell.list_dir(posixpath.join(cwd, relative) if relative else cwd):
            inner = posixpath.join(relative, name) if relative else name
            if info.kind == "directory":
                (copy / inner).mkdir()
                directories.add(inner)
                pending.append(inner)
            elif info.kind == "file":
                data = shell.read(posixpath.join(cwd, inner))
                total += len(data)
                if len(copied) >= MAX_FILES or total > shell.limits.max_memory:
                    raise _Refused(
                        f"the working directory {cwd} is too big to run Deno in (at most {MAX_FILES} "
                        "files); cd into the project's own directory first"
                    )
                (copy / inner).write_bytes(data)
                copied[inner] = data
    return _Copied(copied, directories)


def _copy_back(shell: Shell, cwd: str, copy: Path, before: _Copied) -> str:
    """Write what Deno made or changed back into the VM, and remove what it deleted. Only
    regular files and directories come back; a symlink Deno made is not followed. Returns a
    note for stderr when not everything could come back."""
    seen: set[str] = set()
    seen_directories: set[str] = set()
    budget = shell.limits.max_memory
    for root, directories, files in os.walk(copy):
        relative_root = os.path.relpath(root, copy)
        for name in directories:
            inner = _relative(relative_root, name)
            seen_directories.add(inner)
            if not (copy / inner).is_symlink() and shell.info(posixpath.join(cwd, inner)) is None:
                shell.mkdir(posixpath.join(cwd, inner))
        for name in files:
            inner = _relative(relative_root, name)
            seen.add(inner)
            data = _regular_file(copy / inner)
            if data is None or before.files.get(inner) == data:
                continue
            budget -= len(data)
            if budget < 0:
                return "agentos: the files Deno wrote pass the VM's memory limit; not all were kept\n"
            shell.write(posixpath.join(cwd, inner), data)
    for inner in before.files.keys() - seen:
        with contextlib.suppress(FileNotFoundError):
            shell.remove(posixpath.join(cwd, inner))
    for inner in sorted(before.directories - seen_directories, reverse=True):
        with contextlib.suppress(FileNotFoundError):
            shell.remove(posixpath.join(cwd, inner), recursive=True)
    return ""


def _relative(root: str, name: str) -> str:
    return name if root == "." else posixpath.join(root, name)


def _regular_file(path: Path) -> bytes | None:
    """The file's bytes if it is a regular file (never through a symlink), else None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        return file.read() if stat.S_ISREG(os.fstat(descriptor).st_mode) else None


def _shown(text: str, copy: Path, cwd: str) -> str:
    """Output as seen from the VM: the working copy's host path is the VM's directory."""
    return text.replace(f"file://{copy}", f"file://{cwd}").replace(str(copy), cwd)


_RUNNERS = {"node": run_node, "deno": run_deno, "tsx": run_tsx, "ts-node": run_tsx, "npx": run_npx}
PROGRAMS: dict[str, Program] = dict(_RUNNERS)


def programs(outbound: Outbound | None) -> dict[str, Program]:
    """The commands, their `fetch` reaching what `outbound` allows (nothing when it is None)."""
    if outbound is None:
        return dict(PROGRAMS)
    return {name: functools.partial(runner, outbound=outbound) for name, runner in _RUNNERS.items()}
