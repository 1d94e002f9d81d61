"""`vm.terminal()`: the terminal widget's kernel side (keys in order, output to every view, a
late view replayed, closing ends the shell), and the xterm.js it ships, which must be what the
lockfile pins (tests/test_browser.py types into it in a real JupyterLab)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agentos_nb import agent_os
from agentos_nb.jupyter.terminal_widget import STATIC, TerminalWidget
from agentos_nb.software import common
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

VENDOR = Path(__file__).parent.parent / "js" / "vendor-xterm"


def test_the_shipped_xterm_is_what_the_lockfile_pins():
    shipped = json.loads((STATIC / "versions.json").read_text())
    lock = json.loads((VENDOR / "package-lock.json").read_text())
    wanted = json.loads((VENDOR / "package.json").read_text())["dependencies"]
    for name, version in wanted.items():
        locked = lock["packages"][f"node_modules/{name}"]
        assert locked["version"] == version, name
        assert shipped["packages"][name] == {"version": version, "integrity": locked["integrity"]}, name
    assert shipped["packages"]["@xterm/xterm"]["version"] == "6.0.0"
    for name, digest in shipped["files"].items():
        found = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()
        assert found == digest, f"{name} was changed by hand: run js/vendor-xterm/vendor"
    bundle = (STATIC / "terminal.js").read_text()
    assert "export" in bundle
    assert "http://" not in bundle.replace("http://www.w3.org", "")  # nothing fetched at run time
    assert "https://" not in bundle.replace("https://github.com", "")


@pytest.fixture
async def vm(start_registry):
    registry = await start_registry(vm=agent_os(software=[common]))
    return registry.client().vm.get_or_create(["widget"])


class Views:
    """What the widget sends to its views, as a browser would receive it."""

    def __init__(self, widget: TerminalWidget) -> None:
        self.messages: list[dict] = []
        widget.send = lambda content, buffers=None: self.messages.append(content)  # type: ignore[method-assign]

    @property
    def shown(self) -> str:
        text = ""
        for message in self.messages:
            if message["type"] == "reset":
                text = ""
            else:
                text += message["data"]
        return text


async def test_typing_into_the_widget_runs_commands_and_shows_their_output(vm):
    widget = vm.terminal(cols=70, rows=12)
    views = Views(widget)
    terminal = await widget.opened()
    assert widget.get_state()["status"] == ""
    assert (terminal.cols, terminal.rows) == (70, 12)
    for key in "echo hi\r":  # one message per keystroke, as xterm.js sends them
        widget._on_message(widget, {"type": "keys", "data": key}, [])
    await wait_until(lambda: "\r\nhi\r\n" in views.shown, timeout=10)
    assert "hi" in await terminal.text()
    widget.close()
    await wait_until(lambda: _closed(vm), timeout=10)


async def test_a_view_that_opens_later_is_shown_what_was_kept(vm):
    widget = vm.terminal()
    views = Views(widget)
    await widget.opened()
    widget._on_message(widget, {"type": "keys", "data": "echo before\r"}, [])
    await wait_until(lambda: "before\r\n" in views.shown, timeout=10)
    views.messages.clear()
    widget._on_message(widget, {"type": "hello"}, [])  # a reload
    assert views.messages[0] == {"type": "reset"}
    assert "before\r\n" in views.shown
    widget.close()


async def test_the_width_follows_the_view_and_a_bad_one_is_said(vm):
    widget = vm.terminal(cols=80, rows=10)
    terminal = await widget.opened()
    widget._on_message(widget, {"type": "resize", "cols": 120, "rows": 10}, [])
    await wait_until(lambda: widget.cols == 120, timeout=10)
    assert (await terminal.screen()).cols == 120
    widget._on_message(widget, {"type": "resize", "cols": 0, "rows": 10}, [])
    await wait_until(lambda: "terminal cols must be a whole number" in widget.status, timeout=10)
    assert widget.cols == 120
    widget._on_message(widget, "not a dict", [])  # ignored
    widget.close()


async def test_a_widget_that_cannot_open_a_shell_says_why(vm):
    terminals = [await vm.open_shell(cols=10, rows=2) for _ in range(8)]
    widget = vm.terminal()
    with pytest.raises(ValueError, match="at most 8 terminals"):
        await widget.opened()
    assert "at most 8 terminals" in widget.status
    for term in terminals:
        await term.close()


async def test_bad_sizes_are_refused_before_anything_opens(vm):
    with pytest.raises(ValueError, match="terminal rows"):
        vm.terminal(rows=0)
    with pytest.raises(ValueError, match="terminal cols"):
        TerminalWidget(vm, cols=10**6)
    assert await vm.list_terminals() == []


async def _closed(vm) -> bool:
    return await vm.list_terminals() == []


async def test_running_its_cell_again_closes_the_terminal_and_its_shell(vm, monkeypatch):
    from agentos_nb.jupyter.dashboard import cell_runs

    monkeypatch.setattr(cell_runs, "current_run", lambda: ("cell-7", "run-1"))
    first = vm.terminal()
    opened = await first.opened()
    monkeypatch.setattr(cell_runs, "current_run", lambda: ("cell-7", "run-2"))
    second = vm.terminal()
    await second.opened()
    assert first.comm is None
    await wait_until(lambda: _gone(vm, opened.terminal_id), timeout=10)
    second.close()


async def _gone(vm, terminal_id: str) -> bool:
    return terminal_id not in [t.terminal_id for t in await vm.list_terminals()]
