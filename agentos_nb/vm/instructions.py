"""/etc/agentos/instructions.md: what an agent in the VM should know about where it is.

Sessions put this text in their system prompt, so it says only what is true of this VM type:
the packages it has, the host tools it can call, the host directories and URLs it reaches, and
the user's own instructions.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentos_nb.vm import tool_cli
from agentos_nb.vm.mounts import Mount
from agentos_nb.vm.network import Network
from agentos_nb.vm.shell import HOME, USERNAME
from agentos_nb.vm.software import VmSetup
from agentos_nb.vm.toolkits import Toolkit

INSTRUCTIONS_PATH = "/etc/agentos/instructions.md"

_ENVIRONMENT = f"""\
# agentOS

You are working inside an agentOS VM: a sandboxed bash shell over an in-memory filesystem.
Your home and working directory is {HOME}, and you are the user `{USERNAME}`. Files persist
between commands. Nothing here reaches the host's files, processes or network."""

_PYTHON = """\
- `python3` (and `python`) is CPython 3.15 with its standard library and pytest
  (`python3 -m pytest`), plus numpy, pandas, scipy, scikit-learn and matplotlib. It runs on this
  VM's files, with no subprocesses, sockets or threads; `pip` cannot install anything."""

_JAVASCRIPT = """\
- `node`, `deno`, `tsx` and `npx tsx` run JavaScript and TypeScript (through Deno) on a copy of
  the working directory, so run them from the project's own directory: files there are read and
  written back, nothing else is reachable, and there is no environment and no subprocess (no
  network either, unless this VM has one: see Network). `node --test` and `deno test` run
  tests; `deno check FILE` type-checks."""

_HOST_TOOLS = """\
## Host tools

These commands run on the host, outside the VM. Each prints one JSON line:
{"ok": true, "result": ...} or {"ok": false, "error": CODE, "message": ...}, and exits 0 on
success, 2 on a usage or validation error, 1 when the tool failed or timed out. Run
`agentos list-tools` for the list and `<command> <tool> --help` for a tool's flags."""


_MOUNTS = """\
## Host directories

These directories are the host's own, mounted here. Changes to a writable one are made on the
host at once; they are not part of this VM's saved state. A read-only one refuses changes."""

_NETWORK = """\
## Network

`curl`, `wget`, `http` and `fetch` in `node`/`deno` programs reach these URLs (a final `*`
means anything below), and nothing else; other programs have no network:"""


def os_instructions(
    setup: VmSetup,
    toolkits: Sequence[Toolkit],
    additional: str | None,
    *,
    mounts: Sequence[Mount] = (),
    network: Network | None = None,
) -> str:
    environment = _ENVIRONMENT
    if mounts or network is not None:
        environment = environment.removesuffix(".") + ", except as the sections below say."
    languages = [
        text
        for feature, text in (("python", _PYTHON), ("javascript", _JAVASCRIPT))
        if feature in setup.features
    ]
    if languages:
        environment += "\n\nYou can run programs:\n" + "\n".join(languages)
    sections = [environment, *setup.instructions]
    if toolkits:
        sections += [_HOST_TOOLS, tool_cli.tool_reference(toolkits)]
    if mounts:
        listed = "\n".join(
            f"- {item.vm_path} ({'read-only' if item.read_only else 'writable'})" for item in mounts
        )
        sections.append(f"{_MOUNTS}\n\n{listed}")
    if network is not None:
        allowed = "\n".join(f"- {pattern}" for pattern in network.allow)
        sections.append(f"{_NETWORK}\n\n{allowed}")
        if network.credentials:
            patterns = ", ".join(network.credentials)
            sections.append(
                f"Requests to {patterns} are authenticated by the host on the way out: send them "
                "without credentials; there are no API keys to look for in this VM."
            )
    if additional:
        sections.append(f"## Additional instructions\n\n{additional.strip()}")
    return "\n\n".join(sections) + "\n"
