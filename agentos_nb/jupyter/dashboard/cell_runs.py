"""Dashboards a notebook cell made the last time it ran, closed when it runs again.

Running a cell again replaces its output, so the dashboards its earlier run showed are gone
from the screen; left alone, each would keep its bus subscription and a renderer folding every
event until its registry stops, and a cell run ten times would slow the runtime ten times as
much. The kernel names the cell of each execution request (JupyterLab and Notebook 7 send a
`cellId`); where it does not, nothing is closed.
"""

from __future__ import annotations

from typing import Protocol

from IPython import get_ipython


class Closable(Protocol):
    def close(self) -> None: ...


_made: dict[str, tuple[str, list[Closable]]] = {}
"""Cell id -> (the execution request that last ran it, the dashboards that run made)."""


def current_run() -> tuple[str, str] | None:
    """(cell id, execution request id) of the cell running now, if the kernel says."""
    get_parent = getattr(get_ipython(), "get_parent", None)  # ipykernel's shell has it
    if get_parent is None:
        return None
    parent = get_parent() or {}
    cell = (parent.get("metadata") or {}).get("cellId")
    run = (parent.get("header") or {}).get("msg_id")
    return (cell, run) if isinstance(cell, str) and isinstance(run, str) else None


def made_by_this_cell(dashboard: Closable) -> None:
    """Remember `dashboard` as its cell's, closing those an earlier run of the cell made (a
    cell that makes several in one run keeps them all)."""
    where = current_run()
    if where is None:
        return
    cell, run = where
    earlier = _made.get(cell)
    if earlier is None or earlier[0] != run:
        for replaced in earlier[1] if earlier else ():
            replaced.close()
        earlier = _made[cell] = (run, [])
    earlier[1].append(dashboard)
