"""What the terminal actions (`open_shell` and the rest) take and return, and their limits:
shared by the kernel, which checks what it is given, and the host, which checks it again."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from agentos_nb.actors.calls import ActionCall
    from agentos_nb.vm.handle import VmHandle

MAX_SIZE = 1000
"""Rows or columns a terminal may have at most."""
MAX_KEYS = 64 * 1024
"""Characters one `send` may carry; more is refused, not cut."""
MAX_TERMINALS = 8
"""Terminals one VM may have open at once."""
MAX_COPIED_BYTES = 128 * 1024 * 1024
"""The most bytes of files a terminal copies from its VM (each open terminal holds a copy)."""

TerminalState = Literal["prompt", "running", "exited"]
"""At a prompt (or in a full-screen program waiting for keys), running a command, or ended."""


class TerminalScreen(BaseModel):
    """What a terminal shows now: the visible screen as plain text (trailing blank lines left
    out), the cursor (zero-based), and whether a full-screen program (`vi`, `less`) is open."""

    model_config = ConfigDict(frozen=True)

    text: str
    rows: int
    cols: int
    cursor_row: int
    cursor_col: int
    alternate_screen: bool
    state: TerminalState
    exit_code: int | None = None


class TerminalOutput(BaseModel):
    """A chunk of what the terminal wrote, escape sequences and all, as a terminal emulator
    (xterm.js) takes it. `dropped` bytes before it were no longer kept (a reader that fell
    behind a flood)."""

    model_config = ConfigDict(frozen=True)

    data: str
    dropped: int = 0


def check_size(rows: object, cols: object) -> tuple[int, int]:
    """(rows, cols) as given, or a `ValueError` that names what was wrong."""
    return _dimension("rows", rows), _dimension("cols", cols)


def check_keys(keys: object) -> str:
    """`keys` as given, or the error that says what was wrong with them."""
    if not isinstance(keys, str):
        raise TypeError(f"terminal keys are a str, not {type(keys).__name__}")
    if len(keys) > MAX_KEYS:
        raise ValueError(f"terminal keys: at most {MAX_KEYS} characters at once, not {len(keys)}")
    return keys


def _dimension(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
        raise ValueError(f"terminal {name} must be a whole number from 1 to {MAX_SIZE}, not {value!r}")
    return value


class Terminal(BaseModel):
    """An interactive shell in a VM (`await vm.open_shell()`): type keys, read the screen.

        async with await vm.open_shell(cols=100, rows=30) as term:
            await term.send("ls -la\\r")
            screen = await term.wait_for("$ ")  # screen.text: what the terminal shows

    Keys are raw, as a terminal sends them: "\\r" is Enter, "\\x03" Ctrl-C, "\\x1b" Escape.
    Full-screen programs (`vi`, `less`) work. The shell works on the VM's files (a copy kept in
    step: what a command changes reaches the VM when it ends); it has no host commands.

    Its fields are what crosses HTTP (the id in its VM, the size it opened with); the handle
    that gave it (`vm`) is what it talks through.
    """

    model_config = ConfigDict(frozen=True)

    terminal_id: str
    rows: int
    cols: int
    _vm: VmHandle | None = PrivateAttr(default=None)

    def bound_to(self, vm: VmHandle) -> Terminal:
        """This terminal, talking through `vm` (a handle of the VM it is in)."""
        bound = self.model_copy()
        bound._vm = vm
        return bound

    @property
    def vm(self) -> VmHandle:
        """The handle of the VM the terminal is in."""
        if self._vm is None:
            raise ValueError("this Terminal has no VM handle to talk through: get one from vm.open_shell()")
        return self._vm

    async def send(self, keys: str) -> None:
        """Type `keys`; returns once the terminal has them (not once a command has run)."""
        await self.vm.terminal_send(self.terminal_id, keys)

    async def screen(self) -> TerminalScreen:
        """What the terminal shows now."""
        return await self.vm.terminal_screen(self.terminal_id)

    async def text(self) -> str:
        """The visible screen as plain text."""
        return (await self.screen()).text

    async def wait_for(self, text: str, *, timeout: float = 10.0) -> TerminalScreen:
        """The screen, once it shows `text` (a command's output, a prompt). Raises
        `TimeoutError` if it does not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            screen = await self.screen()
            if text in screen.text:
                return screen
            if time.monotonic() >= deadline:
                shown = screen.text
                raise TimeoutError(f"the terminal did not show {text!r} in {timeout:g} s; it shows:\n{shown}")
            await asyncio.sleep(0.05)

    async def resize(self, *, cols: int, rows: int) -> None:
        """Change the size; a full-screen program redraws."""
        await self.vm.resize_terminal(self.terminal_id, cols=cols, rows=rows)

    def output(self) -> ActionCall[list[TerminalOutput], TerminalOutput]:
        """What the terminal wrote (the last 256 KiB) and writes, escape sequences and all,
        until it closes."""
        return self.vm.terminal_output(self.terminal_id)

    async def close(self) -> None:
        """End the shell; what its finished commands changed is in the VM's files."""
        await self.vm.close_terminal(self.terminal_id)

    async def __aenter__(self) -> Terminal:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Terminal {self.terminal_id} {self.cols}x{self.rows}>"
