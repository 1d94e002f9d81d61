"""The supervisor: which host a VM runs on, and a new host for VMs whose host died.

VMs of one placement (the same `hosts` and memory limit, on one event loop) share up to
`hosts` processes, each new VM going to the least busy; with `hosts=None` every VM gets a
process of its own. A host that ends is forgotten, and each VM that was on it is told, so it
can come back on another (`client.HostedShell`). A host with no VMs left is stopped: nothing
runs in the background when no VM is awake.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from agentos_nb.vm.host.process import CallHandler, HostExit, HostProcess

Lost = Callable[[HostExit], None]


@dataclass(eq=False, slots=True)
class _Host:
    process: HostProcess
    vms: dict[str, tuple[CallHandler, Lost]] = field(default_factory=dict)


class HostPool:
    """The hosts of one placement."""

    def __init__(self, hosts: int | None, memory_limit: int) -> None:
        self._size = hosts
        self._memory_limit = memory_limit
        self._hosts: list[_Host] = []
        self._starting: asyncio.Lock = asyncio.Lock()
        self._watching: set[asyncio.Task[None]] = set()

    async def place(self, vm: str, calls: CallHandler, lost: Lost) -> HostProcess:
        """A host for `vm`, whose host commands `calls` answers; `lost` hears if the host dies."""
        async with self._starting:
            host = self._choose()
            if host is None:
                process = await HostProcess.start(self._memory_limit, self._handler)
                host = _Host(process)
                self._hosts.append(host)
                watch = asyncio.create_task(self._watch(host))
                self._watching.add(watch)
                watch.add_done_callback(self._watching.discard)
            host.vms[vm] = (calls, lost)
            return host.process

    async def leave(self, vm: str, process: HostProcess) -> None:
        """`vm` no longer runs on `process`; a host left without VMs is stopped."""
        for host in self._hosts:
            if host.process is process:
                host.vms.pop(vm, None)
                if not host.vms:
                    self._hosts.remove(host)
                    await process.stop()
                return

    @property
    def processes(self) -> list[HostProcess]:
        return [host.process for host in self._hosts]

    def _choose(self) -> _Host | None:
        alive = [host for host in self._hosts if host.process.alive]
        if self._size is None or len(alive) < self._size:
            return None
        return min(alive, key=lambda host: len(host.vms))

    def _handler(self, vm: str) -> CallHandler | None:
        for host in self._hosts:
            if vm in host.vms:
                return host.vms[vm][0]
        return None

    async def _watch(self, host: _Host) -> None:
        exit = await host.process.ended
        if host in self._hosts:
            self._hosts.remove(host)
        for _, lost in host.vms.values():
            lost(exit)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int | None, int], HostPool]] = (
    weakref.WeakKeyDictionary()
)


def pool_for(hosts: int | None, memory_limit: int) -> HostPool:
    """The pool of this placement on the running loop (hosts cannot outlive their loop)."""
    pools = _pools.setdefault(asyncio.get_running_loop(), {})
    key = (hosts, memory_limit)
    if key not in pools:
        pools[key] = HostPool(hosts, memory_limit)
    return pools[key]
