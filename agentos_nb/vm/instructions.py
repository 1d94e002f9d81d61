"""/etc/agentos/instructions.md: what an agent in the VM should know about where it is.

Sessions put this text in their system prompt, so it says only what is true of this VM type:
the packages it has, the host tools it can call, and the user's own instructions.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentos_nb.vm import tool_cli
from agentos_nb.vm.shell import HOME, USERNAME
from agentos_nb.vm.software import VmSetup
from agentos_nb.vm.toolkits import Toolkit

INSTRUCTIONS_PATH = "/etc/agentos/instructions.md"

_ENVIRONMENT = f"""\
# agentOS

You are working inside an agentOS VM: a sandboxed bash shell over an in-memory filesystem.
Your home and working directory is {HOME}, and you are the user `{USERNAME}`. Files persist
between commands. Nothing here reaches the host's files, processes or network."""

_HOST_TOOLS = """\
## Host tools

These commands run on the host, outside the VM. Each prints one JSON line:
{"ok": true, "result": ...} or {"ok": false, "error": CODE, "message": ...}, and exits 0 on
success, 2 on a usage or validation error, 1 when the tool failed or timed out. Run
`agentos list-tools` for the list and `<command> <tool> --help` for a tool's flags."""


def os_instructions(setup: VmSetup, toolkits: Sequence[Toolkit], additional: str | None) -> str:
    sections = [_ENVIRONMENT, *setup.instructions]
    if toolkits:
        sections += [_HOST_TOOLS, tool_cli.tool_reference(toolkits)]
    if additional:
        sections.append(f"## Additional instructions\n\n{additional.strip()}")
    return "\n\n".join(sections) + "\n"
