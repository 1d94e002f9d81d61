"""`vm.terminal()`: a VM's shell in a notebook cell, as a real terminal you type into.

The view is xterm.js, bundled with its small anywidget glue into `static/terminal.js` by
`js/vendor-xterm/vendor` from the npm packages its lockfile pins, and shipped in the package:
nothing is fetched when it runs, so it works offline and on Binder. The view sends keys and
its width; the kernel side (this widget) forwards them to the VM in order and writes what the
terminal outputs back to every view. A view that opens later (a reload) gets what was kept.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from agentos_nb.jupyter.dashboard.cell_runs import made_by_this_cell
from agentos_nb.vm.handle import VmHandle
from agentos_nb.vm.terminal_models import Terminal, check_size
from agentos_nb.vm.tool_results import describe

STATIC = Path(__file__).parent / "static"
_REPLAY_KEPT = 256 * 1024  # characters of output kept for a view that opens later
_PENDING_MAX = 1000  # keystrokes and resizes waiting for the VM; more are dropped, and it says so

logger = logging.getLogger(__name__)


class TerminalWidget(anywidget.AnyWidget):
    """A shell in a VM (`vm.terminal()`), shown as a terminal in the cell: type into it.

    It opens the shell when made (on the running loop) and ends it when the widget is closed, or
    when the cell that made it runs again.
    `await widget.opened()` gives the `Terminal` to drive it from code as well."""

    _esm = STATIC / "terminal.js"
    _css = STATIC / "xterm.css"
    cols = traitlets.Int(80).tag(sync=True)
    rows = traitlets.Int(24).tag(sync=True)
    fit_width = traitlets.Bool(True).tag(sync=True)
    status = traitlets.Unicode("opening a shell…").tag(sync=True)

    def __init__(self, vm: VmHandle, *, cols: int = 80, rows: int = 24, fit_width: bool = True) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "a terminal needs a running event loop: make it in a notebook cell (the kernel's loop "
                "runs there), or inside async code"
            ) from None
        super().__init__(fit_width=fit_width)
        try:
            self.rows, self.cols = check_size(rows, cols)
        except (ValueError, TypeError):
            super().close()
            raise
        self._vm = vm
        self._shown = ""
        self._pending: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_PENDING_MAX)
        self._opened: asyncio.Future[Terminal] = loop.create_future()
        self._task = loop.create_task(self._run())
        self.on_msg(self._on_message)
        made_by_this_cell(self)  # running its cell again closes this one, and its shell

    async def opened(self) -> Terminal:
        """The terminal, once its shell is open (the error, if it could not be opened)."""
        return await asyncio.shield(self._opened)

    def close(self) -> None:
        """Close the widget and end its shell."""
        super().close()
        self._task.cancel()

    async def _run(self) -> None:
        terminal = None
        try:
            terminal = await self._vm.open_shell(cols=self.cols, rows=self.rows)
            self._opened.set_result(terminal)
            self.status = ""
            forwarding = asyncio.ensure_future(self._forward(terminal))
            try:
                async for chunk in terminal.output():
                    self._show(chunk.data)
            finally:
                forwarding.cancel()
            self.status = "the shell has ended"
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the view is where this can be seen
            if not self._opened.done():
                self._opened.set_exception(error)
            self.status = f"the terminal stopped: {describe(error)}"
        finally:
            if terminal is not None:
                await asyncio.shield(_close_quietly(terminal))

    def _show(self, data: str) -> None:
        self._shown = (self._shown + data)[-_REPLAY_KEPT:]
        self.send({"type": "output", "data": data})

    def _on_message(self, _: object, content: Any, buffers: object) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "hello":  # a view opened: show it what was kept
            self.send({"type": "reset"})
            self.send({"type": "output", "data": self._shown})
        elif kind in ("keys", "resize"):
            try:
                self._pending.put_nowait(content)
            except asyncio.QueueFull:
                self.status = "keys came faster than the VM took them: some were dropped"

    async def _forward(self, terminal: Terminal) -> None:
        """Keys and resizes, one at a time and in order; a bad one is said, not fatal."""
        while True:
            message = await self._pending.get()
            try:
                if message["type"] == "keys":
                    await terminal.send(str(message.get("data", "")))
                else:
                    rows, cols = check_size(self.rows, message.get("cols"))
                    await terminal.resize(cols=cols, rows=rows)
                    self.cols = cols
            except (ValueError, TypeError) as error:
                self.status = describe(error)


async def _close_quietly(terminal: Terminal) -> None:
    try:
        await terminal.close()
    except Exception:  # the VM slept or its host went away: the shell is gone either way
        logger.debug("closing terminal %s", terminal.terminal_id, exc_info=True)
