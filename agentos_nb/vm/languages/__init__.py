"""Real language runtimes in the VM: CPython on WASI (`python3`) and Deno (`node`, `deno`).

They run in the VM's host process, as programs of its shell (`Shell(programs=...)`); a VM type
gets them with the shell features "python" and "javascript" (the `common` package turns both on).
"""

from __future__ import annotations

from collections.abc import Iterable

from agentos_nb.vm.languages import deno, python_wasi
from agentos_nb.vm.network import Network
from agentos_nb.vm.outbound import Outbound
from agentos_nb.vm.shell import Feature, Program


def programs(features: Iterable[Feature], network: Network | None = None) -> dict[str, Program]:
    """The commands the runtimes answer for a VM with `features`; Deno's `fetch` reaches what
    `network` allows (nothing without one). Made in the VM's host, which holds the credentials."""
    wanted = set(features)
    found: dict[str, Program] = {}
    if "python" in wanted:
        found.update(python_wasi.PROGRAMS)
    if "javascript" in wanted:
        found.update(deno.programs(None if network is None else Outbound(network)))
    return found
