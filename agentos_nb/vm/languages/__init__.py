"""Real language runtimes in the VM: CPython on WASI (`python3`) and Deno (`node`, `deno`).

They run in the VM's host process, as programs of its shell (`Shell(programs=...)`); a VM type
gets them with the shell features "python" and "javascript" (the `common` package turns both on).
The kernel only needs their names (`program_names`): the runtimes themselves, with wasmtime,
Deno's proxy and its TLS, load in the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from agentos_nb.vm.shell import Feature, Program

if TYPE_CHECKING:
    from agentos_nb.vm.network import Network

PROGRAM_NAMES: dict[Feature, tuple[str, ...]] = {
    "python": ("python3", "python", "pip", "pip3"),
    "javascript": ("node", "deno", "tsx", "ts-node", "npx"),
}
"""The commands each feature's runtime answers."""


def program_names(features: Iterable[Feature]) -> tuple[str, ...]:
    """The commands the runtimes answer for a VM with `features`."""
    wanted = set(features)
    return tuple(name for feature, names in PROGRAM_NAMES.items() if feature in wanted for name in names)


def programs(features: Iterable[Feature], network: Network | None = None) -> dict[str, Program]:
    """The commands the runtimes answer for a VM with `features`; Deno's `fetch` reaches what
    `network` allows (nothing without one). Made in the VM's host, which holds the credentials."""
    wanted = set(features)
    found: dict[str, Program] = {}
    if "python" in wanted:
        from agentos_nb.vm.languages import python_wasi

        found.update(python_wasi.PROGRAMS)
    if "javascript" in wanted:
        from agentos_nb.vm.languages import deno
        from agentos_nb.vm.outbound import Outbound

        found.update(deno.programs(None if network is None else Outbound(network)))
    return found
