"""One awake VM: its shell and files (on a host process, see `agentos_nb.vm.host`), and the
host commands reachable inside it."""

from __future__ import annotations

import asyncio
import errno
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from agentos_nb.actors.context import ActorContext
from agentos_nb.events import ShellCommandRun, VmHostCrashed
from agentos_nb.vm.cron import CronTable
from agentos_nb.vm.files import resolve_path
from agentos_nb.vm.host.client import HostedShell
from agentos_nb.vm.host.frames import VmLayout
from agentos_nb.vm.host.pool import pool_for
from agentos_nb.vm.host.process import HostExit
from agentos_nb.vm.host_calls import HostCalls
from agentos_nb.vm.instructions import INSTRUCTIONS_PATH, os_instructions
from agentos_nb.vm.models import ExecResult
from agentos_nb.vm.mounts import Mount
from agentos_nb.vm.network import Network
from agentos_nb.vm.processes import Processes
from agentos_nb.vm.sessions import Sessions
from agentos_nb.vm.shell import HOME, HOSTNAME, USERNAME, ShellLimits, ShellRun
from agentos_nb.vm.software import VmSetup
from agentos_nb.vm.terminals import VmTerminals
from agentos_nb.vm.toolkits import Toolkit

FILESYSTEM_BLOB = "filesystem"
SESSIONS_BLOB = "sessions"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_OS_FILES: dict[str, tuple[str, int]] = {
    "/etc/hostname": (f"{HOSTNAME}\n", 0o644),
    "/etc/passwd": (
        f"root:x:0:0:root:/root:/bin/bash\n{USERNAME}:x:1000:1000:{USERNAME}:{HOME}:/bin/bash\n",
        0o644,
    ),
    "/etc/group": (f"root:x:0:\n{USERNAME}:x:1000:\n", 0o644),
    "/etc/os-release": ('NAME="agentOS"\nID=agentos\nPRETTY_NAME="agentOS (agentos_nb)"\n', 0o644),
}


@dataclass(frozen=True, slots=True)
class VmSpec:
    """A VM type, as `agent_os(...)` defined it."""

    setup: VmSetup
    toolkits: tuple[Toolkit, ...]
    limits: ShellLimits
    boot_files: Mapping[str, tuple[bytes, int]]
    """Laid down by every boot, over whatever is there; so never worth saving."""
    snapshot_every: float | None
    """Seconds from a change to the snapshot that saves it (None: on sleep only)."""
    hosts: int | None
    """How many host processes the VMs of this type share (None: one each)."""
    memory_limit: int
    """Bytes of address space each host process may use (RLIMIT_AS)."""
    mounts: tuple[Mount, ...] = ()
    """Host directories shown in the VM, their paths real (`mounts.py`)."""
    mount_roots: tuple[str, ...] = ()
    """The host's allow-list: real directories the mounts must lie under."""
    network: Network | None = None
    """What its `curl`, `wget` and `http` may reach (None: nothing)."""

    @property
    def laid_down(self) -> frozenset[str]:
        return frozenset(self.boot_files) | frozenset(self.setup.links)


def vm_spec(
    setup: VmSetup,
    toolkits: tuple[Toolkit, ...],
    limits: ShellLimits,
    additional_instructions: str | None,
    snapshot_every: float | None = None,
    hosts: int | None = 2,
    memory_limit: int = 2 * 1024**3,
    *,
    mounts: tuple[Mount, ...] = (),
    mount_roots: tuple[str, ...] = (),
    network: Network | None = None,
) -> VmSpec:
    """The VM type, with its boot files made once: the OS's, the packages', a stub per host
    command, and the instructions that describe them (and what the VM reaches of the host)."""
    files = {path: (text.encode(), mode) for path, (text, mode) in _OS_FILES.items()}
    files.update(setup.files)
    for kit in toolkits:
        # An empty PATH: where the host command is missing, a PATH lookup would find this very
        # file again, and bashkit 0.20 has no depth limit there (the process crashes).
        stub = f'#!/bin/sh\n# {kit.description}\nPATH= exec {kit.command} "$@"\n'
        files[f"/usr/local/bin/{kit.command}"] = (stub.encode(), 0o755)
    instructions = os_instructions(setup, toolkits, additional_instructions, mounts=mounts, network=network)
    files[INSTRUCTIONS_PATH] = (instructions.encode(), 0o644)
    return VmSpec(
        setup,
        toolkits,
        limits,
        files,
        snapshot_every,
        hosts,
        memory_limit,
        mounts=mounts,
        mount_roots=mount_roots,
        network=network,
    )


class AgentVm:
    def __init__(self, c: ActorContext, spec: VmSpec) -> None:
        self._c = c
        self.spec = spec
        host_calls = HostCalls(c, spec.toolkits, self._read_text)
        commands = host_calls.commands()
        layout = VmLayout(
            limits=spec.limits,
            features=list(spec.setup.features),
            commands=list(commands),
            mounts=list(spec.mounts),
            mount_roots=list(spec.mount_roots),
            network=spec.network,
        )
        pool = pool_for(spec.hosts, spec.memory_limit)
        self.shell = HostedShell(pool, layout, host_calls.handle, self._restart)
        self.files = self.shell.files
        self.sessions = Sessions(c, self, spec.setup.agent_types)
        self.cron = CronTable(c, self)
        self.terminals = VmTerminals(self.shell, self.changed)
        self.processes = Processes(c, self.shell, spec.limits, self.checked_cwd, self.changed)
        self._snapshot_timer: asyncio.TimerHandle | None = None

    async def snapshot(self) -> None:
        """Save the files and the open sessions, for the next wake (or the next process)."""
        self.cancel_snapshot()
        files = await self.pack()
        sessions = self.sessions.export()
        await self._c.save_blob(FILESYSTEM_BLOB, files)
        await self._c.save_blob(SESSIONS_BLOB, sessions)

    def changed(self) -> None:
        """The files or sessions may have changed. A snapshot follows `snapshot_every` seconds
        later, one for a whole burst of changes; so a killed kernel (with a durable store) or a
        crashed host (with any store) loses at most that much. The wait does not hold the VM awake."""
        c = self._c
        if self._snapshot_timer is not None or self.spec.snapshot_every is None or c.stopping:
            return
        loop = asyncio.get_running_loop()
        self._snapshot_timer = loop.call_later(self.spec.snapshot_every, self._snapshot_now)

    def cancel_snapshot(self) -> None:
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
            self._snapshot_timer = None

    def _snapshot_now(self) -> None:
        self._snapshot_timer = None
        if not self._c.stopping:
            self._c.keep_awake(self._background_snapshot())

    async def _background_snapshot(self) -> None:
        """A snapshot taken while commands run may catch a tree mid-change; every command's end
        asks for another, and a failed one (a directory removed mid-walk) is retried the same way."""
        try:
            await self.snapshot()
        except Exception:
            self.changed()

    @property
    def instructions(self) -> str:
        """/etc/agentos/instructions.md as this VM type wrote it, for agents' system prompts."""
        return self.spec.boot_files[INSTRUCTIONS_PATH][0].decode()

    async def boot(self, saved: bytes | None) -> None:
        """Place the VM on a host, bring back the files of the last life, then lay the OS and
        packages over them, replacing whatever a command of that life put in their way."""
        await self.shell.open()
        await self.shell.boot(saved, self.spec.boot_files, self.spec.setup.links)

    async def close(self) -> None:
        """Free the VM's place on its host (the files are gone: snapshot first)."""
        self.cancel_snapshot()
        self.terminals.forget()
        await self.processes.stop_all()  # no process outlives its VM's life on its host
        await self.shell.close()

    async def _restart(self, exit: HostExit) -> None:
        """The host died and the shell is on a new one: the files come back from the last
        snapshot, and the bus hears which command was running."""
        c = self._c
        self.terminals.forget()
        await self.shell.boot(await c.load_blob(FILESYSTEM_BLOB), self.spec.boot_files, self.spec.setup.links)
        if c.events.active:
            c.events.publish(
                VmHostCrashed(
                    actor=c.ref,
                    command=exit.running.get(self.shell.vm_id),
                    exit_code=exit.exit_code,
                    signal=exit.signal,
                )
            )

    async def pack(self) -> bytes:
        """The files of this life, less those the next boot lays down anyway (and /dev, whose
        devices the engine provides)."""
        return await self.shell.pack(self.spec.laid_down | {"/dev"})

    async def exec(
        self,
        command: str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        if not isinstance(command, str):
            raise TypeError(f"exec takes the command as one str, not {type(command).__name__}")
        for name, value in (env or {}).items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise ValueError(f"exec env: {name!r} is not a valid variable name")
            if not isinstance(value, str):
                raise TypeError(f"exec env: the value of {name} must be a str, not {type(value).__name__}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"exec timeout must be a positive number of seconds, not {timeout!r}")
        directory = HOME if cwd is None else await self.checked_cwd(cwd)
        if isinstance(stdin, bytes):
            try:
                stdin = stdin.decode()
            except UnicodeDecodeError as error:
                raise ValueError(f"exec stdin must be text (UTF-8); byte {error.start} is not") from None
        started = time.monotonic()
        run = await self.shell.run(command, cwd=directory, env=env, stdin=stdin, timeout=timeout)
        self.note_command(command, directory, run, time.monotonic() - started)
        self.changed()
        return ExecResult(
            exit_code=run.exit_code,
            stdout=run.stdout,
            stderr=run.stderr,
            truncated=run.truncated,
            timed_out=run.timed_out,
        )

    def note_command(self, command: str, cwd: str, run: ShellRun, duration: float) -> None:
        """Tell the bus a command ran, whoever ran it (`exec`, or a session's bash tool)."""
        c = self._c
        if c.events.active:
            c.events.publish(
                ShellCommandRun(
                    actor=c.ref,
                    command=command,
                    cwd=cwd,
                    exit_code=run.exit_code,
                    duration=duration,
                    timed_out=run.timed_out,
                )
            )

    async def checked_cwd(self, cwd: str) -> str:
        """A cwd that is not there is the caller's mistake, said on the host. (Home is not
        checked: a command that removed it leaves later ones where a terminal would be.)"""
        found = await self.files.stat(cwd)
        if found.kind != "directory":
            raise NotADirectoryError(errno.ENOTDIR, "cwd is not a directory", found.path)
        return found.path

    async def _read_text(self, path: str, cwd: str) -> str:
        return str(await self.files.read_file(resolve_path(path, cwd), encoding="utf-8"))
