"""VM processes over HTTP: spawned and fed through the VM's actions, their output a server-sent
event stream that a reader can resume, and the remote client's handle doing the same."""

from __future__ import annotations

import json

import httpx
import pytest

from agentos_nb import agent_os, create_client, errors, setup
from agentos_nb.http.sse import read_events
from agentos_nb.software import common

pytestmark = pytest.mark.anyio


@pytest.fixture
async def served(tmp_path, monkeypatch):
    """A registry with one VM type, serving on 127.0.0.1, and an httpx client with its token."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"vm": agent_os(software=[common])}, name="http-processes-test")
    info = await registry.serve(port=0)
    token = info.token.get_secret_value()
    http = httpx.AsyncClient(base_url=info.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield http, info.url, token
    await http.aclose()
    await registry.stop(grace=0)


async def _action(http: httpx.AsyncClient, action: str, *args, **kwargs):
    reply = await http.post(f"/actors/vm/v/actions/{action}", json={"args": list(args), "kwargs": kwargs})
    assert reply.status_code == 200, reply.text
    return reply.json()["result"]


async def _events(http: httpx.AsyncClient, url: str) -> list[tuple[str, dict]]:
    async with http.stream("GET", url) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        return [(e.event, json.loads(e.data)) async for e in read_events(reply.aiter_lines())]


async def test_the_output_is_an_sse_stream_ending_with_the_exit(served):
    http, _, _ = served
    process = await _action(http, "spawn", "echo one; sleep 0.2; echo two >&2; exit 5")
    events = await _events(http, f"/actors/vm/v/processes/{process['pid']}/output")
    assert [(kind, data.get("stream"), data.get("data")) for kind, data in events[:2]] == [
        ("output", "stdout", "one\n"),
        ("output", "stderr", "two\n"),
    ]
    assert events[2][0] == "exit"
    assert (events[2][1]["status"], events[2][1]["exit_code"]) == ("exited", 5)
    assert events[3] == ("end", {})
    resumed = await _events(
        http, f"/actors/vm/v/processes/{process['pid']}/output?since={events[0][1]['end']}"
    )
    assert [data.get("data") for kind, data in resumed if kind == "output"] == ["two\n"]


async def test_stdin_and_kill_through_the_actions(served):
    http, _, _ = served
    process = await _action(http, "spawn", "while read l; do echo got $l; done", keep_stdin_open=True)
    pid = process["pid"]
    await _action(http, "write_stdin", pid, "hi\n")
    await _action(http, "close_stdin", pid)
    assert await _action(http, "wait", pid, timeout=10) == 0
    events = await _events(http, f"/actors/vm/v/processes/{pid}/output")
    assert events[0][1]["data"] == "got hi\n"
    sleeper = await _action(http, "spawn", "sleep 30")
    killed = await _action(http, "kill", sleeper["pid"], "SIGKILL")
    assert (killed["status"], killed["exit_code"]) == ("killed", 137)


async def test_bad_requests_are_4xx_naming_the_problem(served):
    http, _, _ = served
    await _action(http, "list_processes")  # the VM exists
    reply = await http.get("/actors/vm/v/processes/42/output")
    assert (reply.status_code, reply.json()["error"]) == (404, "vm.process_not_found")
    reply = await http.get("/actors/vm/v/processes/one/output")
    assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")
    reply = await http.get("/actors/vm/v/processes/1/output?since=-1")
    assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")
    sleeper = await _action(http, "spawn", "sleep 30")
    reply = await http.post("/actors/vm/v/actions/kill", json={"args": [sleeper["pid"], "SIGSTOP"]})
    assert (reply.status_code, reply.json()["error"]) == (422, "value_error")
    assert "kill takes one of SIGTERM" in reply.json()["message"]
    await _action(http, "kill", sleeper["pid"])
    codes = [
        (await http.post("/actors/vm/v/actions/spawn", json={"args": ["sleep 30"]})).status_code
        for _ in range(17)
    ]
    assert codes == [200] * 16 + [429]  # ShellLimits.max_processes, by default


async def test_the_remote_client_spawns_streams_and_hears_the_same_errors(served):
    _, url, token = served
    async with create_client(url, token=token) as client:
        vm = client.vm.get_or_create(["v"])
        process = await vm.spawn("echo remote")
        chunks = [chunk async for chunk in vm.process_output(process.pid)]
        assert [chunk.data for chunk in chunks] == ["remote\n"]
        assert await vm.wait(process.pid) == 0
        with pytest.raises(errors.ProcessNotFound):
            await vm.wait(99)
        with pytest.raises(ValueError, match="kill takes one of"):
            await vm.kill(process.pid, "SIGSTOP")
