"""Interactive shells in a VM (`open_shell`): the kernel's side.

A terminal lives on the VM's host (`shell_terminal.py`); here each use of it is a request
there. `VmTerminals` is the VM's (one per awake VM, in `AgentVm`); `Terminal` is what
`vm.open_shell()` gives a caller: keys in, the screen out, through the VM's handle, so the
same object works in-process and over HTTP.

A terminal ends when its VM sleeps or its host is restarted: an open terminal does not keep
the VM awake, but a reader of its output does (a streaming action under way).
"""

from __future__ import annotations

import codecs
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

from agentos_nb.vm import terminal_models
from agentos_nb.vm.host.client import HostedShell
from agentos_nb.vm.terminal_models import (
    MAX_TERMINALS,
    Terminal,
    TerminalOutput,
    TerminalScreen,
    check_keys,
    check_size,
)

_REQUEST_DEADLINE = 30.0  # a host whose terminal does not answer in this time is stuck: restarted
_READ_WAIT = 10.0  # seconds one read waits on the host for output before asking again


class VmTerminals:
    """The open terminals of one awake VM, as requests to its host. `changed` hears that a
    terminal's commands changed the VM's files (so that a snapshot follows)."""

    def __init__(self, shell: HostedShell, changed: Callable[[], None]) -> None:
        self._shell = shell
        self._changed = changed
        self._open: dict[str, Terminal] = {}

    async def open(self, *, rows: int, cols: int) -> Terminal:
        rows, cols = check_size(rows, cols)
        if len(self._open) >= MAX_TERMINALS:
            raise ValueError(f"a VM may have at most {MAX_TERMINALS} terminals open; close one first")
        info = Terminal(terminal_id=secrets.token_hex(6), rows=rows, cols=cols)
        args = {
            "terminal": info.terminal_id,
            "rows": rows,
            "cols": cols,
            "max_copy": terminal_models.MAX_COPIED_BYTES,
        }
        await self._request("terminal_open", args)
        self._open[info.terminal_id] = info
        return info

    async def send(self, terminal_id: str, keys: str) -> None:
        keys = check_keys(keys)
        result = await self._request("terminal_send", {"terminal": self._known(terminal_id), "keys": keys})
        self._note(result)

    async def screen(self, terminal_id: str) -> TerminalScreen:
        result = await self._request("terminal_screen", {"terminal": self._known(terminal_id)})
        return TerminalScreen.model_validate(result)

    async def resize(self, terminal_id: str, *, rows: int, cols: int) -> None:
        rows, cols = check_size(rows, cols)
        args = {"terminal": self._known(terminal_id), "rows": rows, "cols": cols}
        await self._request("terminal_resize", args)

    async def output(self, terminal_id: str) -> AsyncIterator[TerminalOutput]:
        """What the terminal wrote (as much as its host keeps) and writes, until it closes."""
        terminal = self._known(terminal_id)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        since = 0
        while True:
            args = {"terminal": terminal, "since": since, "wait": _READ_WAIT}
            result, blobs = await self._shell.request(
                "terminal_read", args, deadline=_READ_WAIT + _REQUEST_DEADLINE
            )
            self._note(result)
            if blobs[0] or result["dropped"]:
                yield TerminalOutput(data=decoder.decode(blobs[0]), dropped=result["dropped"])
            since = result["end"]
            if result["closed"]:
                self._open.pop(terminal_id, None)
                return

    async def close(self, terminal_id: str) -> None:
        """Closing a closed terminal does nothing."""
        if self._open.pop(terminal_id, None) is None:
            return
        self._note(await self._request("terminal_close", {"terminal": terminal_id}))

    def list(self) -> list[Terminal]:
        return list(self._open.values())

    def forget(self) -> None:
        """The host is gone, and its terminals with it."""
        self._open.clear()

    def _known(self, terminal_id: str) -> str:
        if terminal_id not in self._open:
            raise ValueError(f"no open terminal {terminal_id!r} in this VM (closed, or the VM slept)")
        return terminal_id

    async def _request(self, op: str, args: dict[str, Any]) -> Any:
        result, _ = await self._shell.request(op, args, deadline=_REQUEST_DEADLINE)
        return result

    def _note(self, result: Any) -> None:
        if isinstance(result, dict) and result.get("files_changed"):
            self._changed()
