"""`%load_ext agentos_nb`: the magics, the input transformer that makes their cells await, and
the rich displays; `%unload_ext agentos_nb` takes all of it away again.

IPython turns `%%agent` into a synchronous `run_cell_magic` call, which cannot wait for a turn
without blocking the very loop the agents run on. So a cleanup transformer, which runs before
IPython's own, rewrites the cell into a top-level await:

    %%agent writer my-project          ->  await get_ipython().magics_manager.registry[
    Write a REST API.                          'AgentosMagics'].run_agent('writer my-project',
                                               'Write a REST API.\\n')

and likewise a `%agentos` line that starts at the left margin (optionally assigned: `x = %agentos
cat ...`). The line and the body travel as string literals, never formatted. ipykernel runs a
cell with a top-level await as a coroutine on its loop, so the cell waits and the actors run.

This module is imported by `import agentos_nb`; it imports IPython only when the extension is
loaded, so a script pays nothing for it.
"""

from __future__ import annotations

import re
import tokenize
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentos_nb.jupyter import displays

if TYPE_CHECKING:
    from agentos_nb.jupyter.magics import AgentosMagics

MAGICS = "get_ipython().magics_manager.registry['AgentosMagics']"
"""How transformed cells reach the magics: through IPython's own names, so the extension puts
nothing in the user's namespace (and `%reset` cannot break it)."""
AGENT_CELL = re.compile(r"%%agent(?=\s|$)(?P<line>.*)")
AGENTOS_LINE = re.compile(r"(?P<assign>[A-Za-z_]\w*\s*=\s*)?%agentos(?=\s|$)(?P<line>.*)")
MAGIC_NAMES = (("cell", "agent"), ("line", "agentos"))


def await_magics(lines: list[str]) -> list[str]:
    """The cleanup transformer: a `%%agent` cell, or `%agentos` lines, as awaits."""
    if not lines:
        return lines
    cell = AGENT_CELL.match(lines[0].rstrip("\r\n"))
    if cell is not None:
        body = "".join(lines[1:])
        return [f"await {MAGICS}.run_agent({cell['line'].strip()!r}, {body!r})\n"]
    if lines[0].startswith("%%") or not any("%agentos" in line for line in lines):
        return lines  # another cell magic's body is its own business
    return [
        _await_line(line) if index in _statement_starts(lines) else line for index, line in enumerate(lines)
    ]


# IPython's check_complete skips transformers with side effects: skipping this one keeps the rule
# of cell magics in terminals, where a `%%agent` cell ends at a blank line.
await_magics.has_side_effects = True  # type: ignore[attr-defined]


def _await_line(line: str) -> str:
    found = AGENTOS_LINE.match(line.rstrip("\r\n"))
    if found is None:
        return line
    return f"{found['assign'] or ''}await {MAGICS}.run_agentos({found['line'].strip()!r})\n"


def _statement_starts(lines: list[str]) -> set[int]:
    """Indexes of the lines that begin a statement at the left margin: not inside a string or
    brackets, and not indented (an await inside a `def` would not compile)."""
    from IPython.core.inputtransformer2 import make_tokens_by_line

    starts = set()
    for statement in make_tokens_by_line(lines):
        first = next((t for t in statement if t.type not in (tokenize.INDENT, tokenize.DEDENT)), None)
        if first is not None and first.start[1] == 0:
            starts.add(first.start[0] - 1)
    return starts


@dataclass
class _Loaded:
    magics: AgentosMagics
    replaced: dict[tuple[str, str], Any]
    """What the magics table held under our names before (None: nothing)."""
    registered_displays: bool
    """Whether loading registered the displays: `import agentos_nb` in a running shell registers
    them first, and then they stay after unloading, as they were before loading."""


_loaded: weakref.WeakKeyDictionary[Any, _Loaded] = weakref.WeakKeyDictionary()


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext agentos_nb`."""
    from agentos_nb.jupyter.magics import AgentosMagics

    if shell in _loaded:
        return
    registered_displays = displays.register(shell)
    table = shell.magics_manager.magics
    replaced = {(kind, name): table[kind].get(name) for kind, name in MAGIC_NAMES}
    magics = AgentosMagics(shell)
    shell.register_magics(magics)
    shell.input_transformers_cleanup.append(await_magics)
    _loaded[shell] = _Loaded(magics, replaced, registered_displays)


def unload_ipython_extension(shell: Any) -> None:
    """`%unload_ext agentos_nb`: tasks cancelled, dashboards closed, the transformer, magics and
    (if loading registered them) displays removed, and whatever they had replaced put back."""
    loaded = _loaded.pop(shell, None)
    if loaded is None:
        return
    loaded.magics.close()
    while await_magics in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(await_magics)
    manager = shell.magics_manager
    for (kind, name), before in loaded.replaced.items():
        if before is None:
            manager.magics[kind].pop(name, None)
        else:
            manager.magics[kind][name] = before
    manager.registry.pop(type(loaded.magics).__name__, None)
    if loaded.registered_displays:
        displays.unregister(shell)


displays.register_in_running_shell()
