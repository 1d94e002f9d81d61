"""Terminals in a VM (`open_shell`): keys in, the screen out, full-screen programs, resize,
close, the VM's files kept in step; and hostile use: floods, bad sizes, too many terminals."""

from __future__ import annotations

import asyncio
import contextlib
import json

import anyio
import httpx
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from agentos_nb import agent_os, create_client, setup
from agentos_nb.software import common
from agentos_nb.vm import terminal_models
from agentos_nb.vm.terminal_models import MAX_KEYS, MAX_TERMINALS, Terminal
from tests.conftest import next_event, wait_until

pytestmark = pytest.mark.anyio


async def test_keys_in_and_the_screen_out(vm):
    term = await vm.open_shell(cols=60, rows=12)
    assert isinstance(term, Terminal)
    assert (term.cols, term.rows) == (60, 12)
    await term.send("echo hi\r")
    screen = await term.wait_for("\nhi\n")
    assert screen.text.splitlines()[:2] == ["$ echo hi", "hi"]
    assert (screen.rows, screen.cols, screen.state) == (12, 60, "prompt")
    assert screen.cursor_row == 2
    await term.close()


async def test_the_shell_keeps_its_state_between_lines(vm):
    async with await vm.open_shell() as term:
        await term.send("cd /tmp && X=kept\r")
        await term.wait_for("$ cd /tmp")
        await term.send("echo $X in $(pwd)\r")
        await term.wait_for("kept in /tmp")


async def test_vi_edits_a_file_that_the_vm_then_reads(vm):
    await vm.write_file("notes.txt", "first\n")
    async with await vm.open_shell(cols=80, rows=24) as term:
        await term.send("vi notes.txt\r")
        await wait_until(lambda: _alternate(term), timeout=10)
        assert "first" in await term.text()
        await term.send("Go" + "second" + "\x1b" + ":wq\r")
        await term.wait_for("$ vi notes.txt\n$")
        assert not (await term.screen()).alternate_screen
    assert await vm.read_file("notes.txt") == b"first\nsecond\n"


async def test_less_shows_a_file_page_by_page(vm):
    await vm.write_file("long.txt", "".join(f"line {n}\n" for n in range(1, 101)))
    async with await vm.open_shell(cols=40, rows=10) as term:
        await term.send("less long.txt\r")
        screen = await term.wait_for("line 9")
        assert "line 50" not in screen.text
        await term.send(" ")  # the next page
        await term.wait_for("line 15")
        await term.send("q")
        await term.wait_for("$ less long.txt\n$")


async def test_files_go_both_ways_between_the_vm_and_the_terminal(vm):
    async with await vm.open_shell() as term:
        await term.send("echo from-terminal > t.txt\r")
        await term.wait_for("$ echo from-terminal > t.txt\n$")
        assert await vm.read_file("t.txt") == b"from-terminal\n"  # written back when the line ended
        await vm.exec("echo from-exec > e.txt && rm t.txt")
        await term.send("cat e.txt; ls t.txt\r")
        await term.wait_for("No such file")
        assert "from-exec" in await term.text()


async def test_resize_changes_the_screen(vm):
    async with await vm.open_shell(cols=80, rows=24) as term:
        await term.resize(cols=30, rows=5)
        screen = await term.screen()
        assert (screen.cols, screen.rows) == (30, 5)
        await term.send("echo size=$COLUMNS/$LINES\r")
        await term.wait_for("size=30/5")


async def test_ctrl_c_stops_a_running_command(vm):
    async with await vm.open_shell() as term:
        await term.send("sleep 30\r")
        await wait_until(lambda: _state(term, "running"), timeout=5)
        await term.send("\x03")
        await wait_until(lambda: _state(term, "prompt"), timeout=5)
        await term.send("echo after\r")
        await term.wait_for("\nafter\n")


async def test_output_streams_what_a_terminal_emulator_needs(vm):
    term = await vm.open_shell()
    chunks: list[str] = []

    async def read() -> None:
        async for chunk in term.output():
            chunks.append(chunk.data)

    reading = asyncio.ensure_future(read())
    await term.send("printf '\\033[1mbold\\033[0m\\n'\r")
    await wait_until(lambda: "\x1b[1mbold\x1b[0m" in "".join(chunks), timeout=5)
    assert "".join(chunks).startswith("$ ")  # the first prompt, kept for a late reader
    await term.close()
    await asyncio.wait_for(reading, 10)  # the stream ends with the terminal


async def test_close_ends_the_terminal_and_exit_does_too(vm):
    term = await vm.open_shell()
    await term.close()
    await term.close()  # closing twice does nothing
    with pytest.raises(ValueError, match="no open terminal"):
        await term.send("echo hi\r")
    other = await vm.open_shell()
    await other.send("exit\r")
    await wait_until(lambda: _state(other, "exited"), timeout=5)
    assert [t.terminal_id for t in await vm.list_terminals()] in ([other.terminal_id], [])


async def test_a_terminal_ends_when_its_vm_sleeps(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["sleepy"])
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        term = await vm.open_shell()
        await term.send("echo kept > k.txt\r")
        await term.wait_for("$ echo kept > k.txt\n$")
        await next_event(slept, "actor.slept", timeout=10)
    assert await vm.list_terminals() == []
    with pytest.raises(ValueError, match="no open terminal"):
        await term.screen()
    assert await vm.read_file("k.txt") == b"kept\n"  # its files were synchronised, then saved


# --- hostile use ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "named"),
    [
        ({"cols": 0, "rows": 24}, "cols"),
        ({"cols": 80, "rows": -1}, "rows"),
        ({"cols": 10**9, "rows": 24}, "cols"),
        ({"cols": "80", "rows": 24}, "cols"),
        ({"cols": 80, "rows": True}, "rows"),
        ({"cols": 80.5, "rows": 24}, "cols"),
    ],
)
async def test_bad_sizes_are_refused_naming_what_was_wrong(vm, size, named):
    with pytest.raises(ValueError, match=f"terminal {named} must be a whole number from 1 to 1000"):
        await vm.open_shell(**size)
    async with await vm.open_shell() as term:
        with pytest.raises(ValueError, match=f"terminal {named}"):
            await term.resize(**size)
        assert (await term.screen()).cols == 80  # unchanged


async def test_a_keystroke_flood_is_bounded_and_the_terminal_survives(vm):
    async with await vm.open_shell() as term:
        with pytest.raises(ValueError, match=f"at most {MAX_KEYS} characters"):
            await term.send("x" * (MAX_KEYS + 1))
        with pytest.raises(TypeError, match="terminal keys are a str"):
            await term.send(b"echo hi\r")  # type: ignore[arg-type]
        for _ in range(20):  # 1.3 MB typed at a prompt, in the largest pieces allowed
            await term.send("y" * MAX_KEYS)
        await term.send("\x03")
        await term.send("echo still-here\r")
        await term.wait_for("\nstill-here\n", timeout=30)
    assert (await vm.exec("echo fine")).stdout == "fine\n"


async def test_an_output_flood_keeps_only_the_last_output_and_says_how_much_was_dropped(vm):
    async with await vm.open_shell() as term:
        await term.send("for i in $(seq 1 3000); do printf 'line-%s-%0100d\\n' $i 0; done\r")
        await term.wait_for("line-3000", timeout=60)
        first = None
        async with contextlib.aclosing(term.output()) as chunks:
            async for chunk in chunks:
                first = chunk
                break
        assert first is not None
        assert first.dropped > 0
        assert len(first.data.encode()) <= 256 * 1024


async def test_a_runaway_loop_ends_on_its_own_and_the_vm_stays_usable(vm):
    async with await vm.open_shell() as term:
        await term.send("while :; do :; done\r")
        await term.wait_for("maximum command count exceeded", timeout=30)
        await term.send("echo alive\r")
        await term.wait_for("\nalive\n")
    assert (await vm.exec("echo fine")).stdout == "fine\n"


async def test_terminals_per_vm_are_capped(vm):
    terminals = [await vm.open_shell(cols=20, rows=5) for _ in range(MAX_TERMINALS)]
    with pytest.raises(ValueError, match=f"at most {MAX_TERMINALS} terminals open"):
        await vm.open_shell()
    await terminals[0].close()
    replacement = await vm.open_shell()
    for term in [*terminals[1:], replacement]:
        await term.close()
    assert await vm.list_terminals() == []


async def test_an_unknown_terminal_is_refused(vm):
    with pytest.raises(ValueError, match="no open terminal 'nope'"):
        await vm.terminal_send("nope", "ls\r")
    unbound = Terminal(terminal_id="x", rows=1, cols=1)
    with pytest.raises(ValueError, match="no VM handle"):
        await unbound.send("ls\r")


async def _alternate(term: Terminal) -> bool:
    return (await term.screen()).alternate_screen


async def _state(term: Terminal, state: str) -> bool:
    return (await term.screen()).state == state


# --- over HTTP: the terminal as a WebSocket ---------------------------------------------------------


@pytest.fixture
async def served_vm(tmp_path, monkeypatch):
    """A served registry's VM, its URL and token."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"vm": agent_os(software=[common])}, name=f"terminal-sockets-{id(tmp_path)}")
    info = await registry.serve(port=0)
    yield registry.client().vm.get_or_create(["box"]), info.url, info.token.get_secret_value()
    await registry.stop(grace=0)


def _socket_request(url: str, path: str, token: str | None, **headers: str) -> HTTPRequest:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return HTTPRequest(url.replace("http://", "ws://") + path, headers=headers)


async def _next_output(connection, text: str, *, timeout: float = 10.0) -> str:
    seen = ""
    with anyio.fail_after(timeout):
        while text not in seen:
            message = await connection.read_message()
            assert message is not None, f"the socket closed; seen: {seen!r}"
            seen += json.loads(message)["output"]
    return seen


async def test_a_terminal_over_a_websocket_takes_keys_and_sends_output(served_vm):
    vm, url, token = served_vm
    term = await vm.open_shell(cols=60, rows=10)
    path = f"/actors/vm/box/terminals/{term.terminal_id}"
    connection = await websocket_connect(_socket_request(url, path, token))
    assert (await _next_output(connection, "$ ")).startswith("$ ")  # what was kept comes first
    await connection.write_message(json.dumps({"keys": "echo over-the-wire\r"}))
    await _next_output(connection, "over-the-wire\r\n")
    await connection.write_message(json.dumps({"resize": {"cols": 40, "rows": 8}}))
    await wait_until(lambda: _size(term, (40, 8)), timeout=5)
    await connection.write_message("not json")
    assert "error" in json.loads(await connection.read_message())
    await connection.write_message(json.dumps({"resize": {"cols": 0, "rows": 8}}))
    assert "terminal cols must be" in json.loads(await connection.read_message())["error"]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        screen = (await http.get(url + path)).json()  # without the upgrade: the screen
        assert "over-the-wire" in screen["text"]
    await term.close()
    with anyio.fail_after(10):
        while await connection.read_message() is not None:  # the socket closes with the terminal
            pass


async def test_a_websocket_needs_the_token_and_an_open_terminal_and_the_same_origin(served_vm):
    vm, url, token = served_vm
    term = await vm.open_shell()
    path = f"/actors/vm/box/terminals/{term.terminal_id}"
    for request in (
        _socket_request(url, path, None),
        _socket_request(url, path, "wrong-token"),
        _socket_request(url, path, token, Origin="http://evil.example"),
    ):
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(request)
        assert refused.value.code in (401, 403)
    connection = await websocket_connect(_socket_request(url, "/actors/vm/box/terminals/nope", token))
    assert await connection.read_message() is None
    assert connection.close_code == 4404
    await term.close()


async def _size(term: Terminal, size: tuple[int, int]) -> bool:
    screen = await term.screen()
    return (screen.cols, screen.rows) == size


async def test_a_remote_client_drives_a_terminal_as_the_in_process_handle_does(served_vm):
    _, url, token = served_vm
    async with create_client(url, token) as client:
        vm = client.vm.get_or_create(["box"])
        term = await vm.open_shell(cols=50, rows=8)
        assert isinstance(term, Terminal)
        await term.send("echo remote\r")
        await term.wait_for("\nremote\n")
        assert [t.terminal_id for t in await vm.list_terminals()] == [term.terminal_id]
        await term.close()


async def test_a_vm_too_large_to_copy_is_refused_a_terminal(vm, monkeypatch):
    await vm.write_file("big.bin", b"x" * 4096)
    monkeypatch.setattr(terminal_models, "MAX_COPIED_BYTES", 4000)
    with pytest.raises(ValueError, match=r"the VM's files take \d+ bytes; a terminal copies"):
        await vm.open_shell()
    assert await vm.list_terminals() == []


async def test_a_websocket_frame_flood_is_cut_off_and_the_terminal_survives(served_vm):
    vm, url, token = served_vm
    term = await vm.open_shell()
    path = f"/actors/vm/box/terminals/{term.terminal_id}"
    connection = await websocket_connect(_socket_request(url, path, token))
    await connection.write_message(json.dumps({"keys": "y" * (MAX_KEYS * 5)}))  # past the frame limit
    with anyio.fail_after(10):
        while await connection.read_message() is not None:
            pass
    assert connection.close_code == 1009  # message too big: the socket is closed, nothing typed
    again = await websocket_connect(_socket_request(url, path, token))
    await again.write_message(json.dumps({"keys": "echo still-here\r"}))
    await _next_output(again, "still-here\r\n")
    assert "yyyy" not in await term.text()
    again.close()
    await term.close()


@pytest.fixture
async def served_with_scoped_token(tmp_path, monkeypatch):
    """A served registry with the victim VM `other` and `team,other` (terminals open), and a
    token whose actor patterns match the percent-encoded forms of their id and key."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"vm": agent_os(software=[common])}, name=f"terminal-scopes-{id(tmp_path)}")
    scoped = {"token": "scoped-token-terminal-0123456789", "routes": ["actions", "read"]}
    scoped["actors"] = ["vm/box", "vm/%40*", "vm/team%2C*"]
    info = await registry.serve(port=0, tokens=[scoped])
    yield registry.client(), info.url, scoped["token"]
    await registry.stop(grace=0)


async def test_a_scoped_token_opens_no_other_vms_terminal_through_an_encoded_segment(
    served_with_scoped_token,
):
    client, url, token = served_with_scoped_token
    own = await client.vm.get_or_create(["box"]).open_shell()
    mine = await websocket_connect(_socket_request(url, f"/actors/vm/box/terminals/{own.terminal_id}", token))
    await _next_output(mine, "$ ")  # the token opens its own VM's terminal
    mine.close()
    for key, segment in ((["other"], "%40{id}"), (["team", "other"], "team%2Cother")):
        victim = client.vm.get_or_create(key)
        term = await victim.open_shell()
        segment = segment.format(id=await victim.resolve())
        path = f"/actors/vm/{segment}/terminals/{term.terminal_id}"
        connection = await websocket_connect(_socket_request(url, path, token))
        assert await connection.read_message() is None, f"{segment} opened another VM's terminal"
        assert connection.close_code == 4404  # opened as the actor authorised, which has no such terminal
        await term.close()
    await own.close()


async def test_a_websocket_frame_of_too_many_keys_closes_the_socket_saying_why(served_vm):
    vm, url, token = served_vm
    term = await vm.open_shell()
    path = f"/actors/vm/box/terminals/{term.terminal_id}"
    connection = await websocket_connect(_socket_request(url, path, token))
    await connection.write_message(json.dumps({"keys": "y" * (MAX_KEYS + 1)}))  # under the frame limit
    with anyio.fail_after(10):
        while await connection.read_message() is not None:
            pass
    assert connection.close_code == 1009
    assert str(MAX_KEYS) in (connection.close_reason or "")
    assert "yyyy" not in await term.text()
    await term.close()
