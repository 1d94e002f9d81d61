"""MCP servers in sessions: a real server (tests/mcp_server.py, the `mcp` SDK's MCPServer) run as a
subprocess over stdio or streamable HTTP, its tools called by the offline model and by a model
behind the fake provider; and servers that crash, hang, answer too much, or cannot start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from fake_providers import Reply, ToolCall
from pydantic_ai.models import override_allow_model_requests

from agentos_nb import agent_os, create_client, setup
from agentos_nb.errors import McpServerFailed, ValidationError
from agentos_nb.http import host_commands
from agentos_nb.http.errors import Forbidden
from agentos_nb.software import common, pi
from agentos_nb.vm.mcp_servers import McpHttpServer, McpStdioServer
from conftest import next_event, wait_until

pytestmark = pytest.mark.anyio

SERVER = str(Path(__file__).with_name("mcp_server.py"))
KERNEL_SECRET = "kernel-secret-0451"


def notes(**options) -> McpStdioServer:
    return McpStdioServer(**{"name": "notes", "command": sys.executable, "args": [SERVER], **options})


@pytest.fixture
async def vm(start_registry):
    registry = await start_registry(vm=agent_os(software=[common, pi]))
    return registry.client().vm.get_or_create(["mcp"])


def servers_running() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if SERVER in child.cmdline() and "--http" not in child.cmdline():  # not the HTTP fixture's
                found.append(child)
    return found


async def turn(vm, session_id: str, prompt: str):
    updates = [update async for update in vm.stream_prompt(session_id, prompt)]
    calls = [u for u in updates if u.session_update == "tool_call"]
    results = [u for u in updates if u.session_update == "tool_call_update"]
    return updates, calls, results


async def test_the_offline_model_calls_a_stdio_servers_tool_the_prompt_names(vm):
    session = await vm.create_session("pi", mcp_servers=[notes()])
    assert session.mcp_servers == ["notes"]
    updates, calls, results = await turn(vm, session.session_id, 'Call notes__add with {"a": 2, "b": 3}.')
    assert [(c.title, c.kind, c.raw_input) for c in calls] == [("notes: add", "other", {"a": 2, "b": 3})]
    assert [(r.status, r.raw_output) for r in results] == [("completed", "5")]
    assert updates[-1].stop_reason == "end_turn"
    assert "It answered:\n\n5" in "".join(
        u.content.text for u in updates if u.session_update == "agent_message_chunk"
    )
    assert servers_running()
    await vm.close_session(session.session_id)
    assert servers_running() == []  # closing the session stops its server


async def test_a_model_behind_a_provider_sees_and_calls_the_servers_tools(vm, fake_provider):
    fake_provider.script(
        Reply(tool_calls=[ToolCall("notes__echo", {"text": "over MCP"}, id="call_1")]),
        Reply("The server echoed it."),
    )
    env = {"ANTHROPIC_API_KEY": "sk-ant-test-mcp", "ANTHROPIC_BASE_URL": fake_provider.base_url_anthropic}
    with override_allow_model_requests(True):
        session = await vm.create_session("pi", model="anthropic:fake", env=env, mcp_servers=[notes()])
        result = await vm.send_prompt(session.session_id, "Echo something.")
    assert result.text == "The server echoed it."
    offered = {tool["name"]: tool for tool in fake_provider.requests[0].body["tools"]}
    assert {"read", "write", "edit", "bash", "notes__add", "notes__echo"} <= set(offered)
    assert offered["notes__add"]["input_schema"]["required"] == ["a", "b"]
    assert "(MCP server notes)" in offered["notes__add"]["description"]
    sent_back = [
        block["content"]
        for message in fake_provider.requests[-1].body["messages"]
        for block in (message["content"] if isinstance(message["content"], list) else [])
        if block.get("type") == "tool_result"
    ]
    assert json.dumps(sent_back).count("over MCP") == 1


async def test_a_stdio_server_gets_a_scrubbed_environment_and_no_vm_files(vm, monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTOS_TEST_KERNEL_SECRET", KERNEL_SECRET)
    (tmp_path / "given.txt").write_text("a host file the user chose to share")
    await vm.write_file("/home/user/vm-only.txt", "in the VM")
    session = await vm.create_session(
        "pi", mcp_servers=[notes(env={"GIVEN_TOKEN": "passed explicitly"}, cwd=str(tmp_path))]
    )
    _, _, results = await turn(vm, session.session_id, "Call notes__environment.")
    names = results[0].raw_output.split("\n")
    assert "GIVEN_TOKEN" in names
    assert "AGENTOS_TEST_KERNEL_SECRET" not in names
    assert not any(name.endswith("_API_KEY") for name in names)
    _, _, results = await turn(vm, session.session_id, "Call notes__where.")
    assert results[0].raw_output == f"{tmp_path}: given.txt"  # its own directory, not the VM's files


async def test_a_server_that_crashes_mid_call_fails_that_call_and_the_turn_goes_on(vm):
    session = await vm.create_session("pi", mcp_servers=[notes()])
    updates, _, results = await turn(vm, session.session_id, "Call notes__crash now.")
    assert results[0].status == "failed"
    assert "crash (MCP server notes) failed: the server has stopped" in results[0].raw_output
    assert updates[-1].stop_reason == "end_turn"
    _, _, results = await turn(vm, session.session_id, 'Call notes__add with {"a": 1, "b": 1}.')
    assert results[0].status == "failed"
    assert "MCP server notes" in results[0].raw_output
    result = await vm.send_prompt(session.session_id, "What is in this directory?")
    assert result.stop_reason == "end_turn"  # the session's own tools still work
    await vm.close_session(session.session_id)
    assert servers_running() == []


async def test_a_call_that_hangs_times_out_and_the_server_still_answers(vm):
    session = await vm.create_session("pi", mcp_servers=[notes(timeout=0.5)])
    updates, _, results = await turn(vm, session.session_id, "Call notes__hang.")
    assert results[0].status == "failed"
    assert results[0].raw_output == "Error: hang (MCP server notes) did not answer within 0.5 s"
    assert updates[-1].stop_reason == "end_turn"
    _, _, results = await turn(vm, session.session_id, 'Call notes__add with {"a": 20, "b": 22}.')
    assert results[0].raw_output == "42"


async def test_a_huge_answer_is_cut_before_it_reaches_the_model_and_the_transcript(vm):
    session = await vm.create_session("pi", mcp_servers=[notes()])
    _, _, results = await turn(vm, session.session_id, 'Call notes__huge with {"megabytes": 8}.')
    output = results[0].raw_output
    assert len(output) < 60_000
    assert output.endswith("[output cut: it was too long]")


async def test_bad_server_specs_are_refused_before_anything_starts(vm):
    bad = [
        [{"type": "stdio", "name": "no command"}],
        [{"type": "stdio", "name": "ok", "command": "x", "shell": True}],
        [{"type": "http", "name": "web", "url": "ftp://example.com/mcp"}],
        [{"type": "carrier-pigeon", "name": "p"}],
        [notes(), notes()],
        "notes",
    ]
    for servers in bad:
        with pytest.raises(ValidationError, match="mcp_servers"):
            await vm.create_session("pi", mcp_servers=servers)
    assert await vm.list_sessions() == []


async def test_a_server_that_cannot_start_fails_create_session_naming_it(vm):
    missing = McpStdioServer(name="ghost", command="/nonexistent/mcp-server")
    with pytest.raises(McpServerFailed, match="'ghost' failed to start: no such command"):
        await vm.create_session("pi", mcp_servers=[missing])
    refusing = notes(args=[SERVER, "--crash-on-start"])
    with pytest.raises(McpServerFailed, match=r"(?s)'notes' failed to start.*this server refuses to start"):
        await vm.create_session("pi", mcp_servers=[refusing])
    silent = McpStdioServer(name="silent", command="sleep", args=["30"], startup_timeout=0.5)
    with pytest.raises(McpServerFailed, match=r"'silent' did not start and list its tools within 0\.5 s"):
        await vm.create_session("pi", mcp_servers=[silent])
    assert await vm.list_sessions() == []
    await asyncio.sleep(0)
    assert not [p for p in psutil.Process().children(recursive=True) if "sleep" in p.name()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_server():
    """tests/mcp_server.py serving streamable HTTP on a free port of 127.0.0.1: its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


async def test_the_offline_model_calls_a_streamable_http_servers_tool(vm, http_server):
    server = McpHttpServer(name="remote", url=http_server, headers={"Authorization": "Bearer t"})
    session = await vm.create_session("pi", mcp_servers=[server])
    _, calls, results = await turn(vm, session.session_id, 'Call remote__add with {"a": 40, "b": 2}.')
    assert calls[0].title == "remote: add"
    assert results[0].raw_output == "42"


async def test_an_http_server_that_is_not_there_fails_create_session(vm):
    server = McpHttpServer(name="away", url=f"http://127.0.0.1:{free_port()}/mcp", startup_timeout=5)
    with pytest.raises(McpServerFailed, match="'away'"):
        await vm.create_session("pi", mcp_servers=[server])


def test_importing_the_package_does_not_import_mcp():
    code = "import sys; from agentos_nb import setup, actor, queue; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
async def served(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTOS_NB_TOKEN", raising=False)
    registry = setup(use={"vm": agent_os(software=[common, pi])}, name="mcp-http-test")
    info = await registry.serve(port=0)
    yield info
    await registry.stop(grace=0)


async def test_over_http_an_http_server_is_taken_and_a_stdio_server_is_refused(served, http_server):
    async with create_client(served.url) as client:
        vm = client.vm.get_or_create(["remote"])
        server = McpHttpServer(name="remote", url=http_server)
        with pytest.MonkeyPatch.context() as patch:  # the test's server on 127.0.0.1 stands for a public one
            patch.setattr(host_commands, "is_public", lambda address: True)
            session = await vm.create_session("pi", mcp_servers=[server])
        assert session.mcp_servers == ["remote"]
        result = await vm.send_prompt(session.session_id, 'Call remote__add with {"a": 1, "b": 2}.')
        assert "It answered:\n\n3" in result.text
        with pytest.raises(Forbidden, match="'notes' is a stdio server"):
            await vm.create_session("pi", mcp_servers=[notes()])
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {served.token.get_secret_value()}"}
        ) as http:
            reply = await http.post(
                f"{served.url}/actors/vm/remote/sessions",
                json={"mcp_servers": [notes().model_dump()]},
            )
        assert reply.status_code == 403
        assert "stdio server" in reply.json()["message"]
    assert servers_running() == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}/mcp", "http://169.254.169.254/latest/meta-data", "http://localhost:{port}/mcp"],
)
async def test_over_http_an_http_server_on_a_private_address_is_refused(served, http_server, vm, url):
    url = url.format(port=http_server.split(":")[2].split("/")[0])
    private = McpHttpServer(name="inside", url=url, startup_timeout=5)
    async with create_client(served.url) as client:
        with pytest.raises(Forbidden, match="not a public address"):
            await client.vm.get_or_create(["private"]).create_session("pi", mcp_servers=[private])
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {served.token.get_secret_value()}"}
        ) as http:
            reply = await http.post(
                f"{served.url}/actors/vm/private/sessions", json={"mcp_servers": [private.model_dump()]}
            )
        assert reply.status_code == 403
        assert url in reply.json()["message"]
    if "169.254" not in url:  # in-process, the notebook's own code may name any server
        session = await vm.create_session("pi", mcp_servers=[private])
        assert session.mcp_servers == ["inside"]


async def test_mcp_tools_follow_the_permission_policy_and_plan_mode(vm):
    session = await vm.create_session("pi", mcp_servers=[notes()], permissions=["mcp:notes.add"])
    updates = []

    async def prompt() -> None:
        async for update in vm.stream_prompt(session.session_id, 'Call notes__add with {"a": 2, "b": 2}.'):
            updates.append(update)

    turn_task = asyncio.create_task(prompt())
    await wait_until(lambda: any(u.session_update == "permission_request" for u in updates), timeout=20)
    [request] = [u for u in updates if u.session_update == "permission_request"]
    assert request.tool_call.title == "notes: add"
    await vm.respond_permission(session.session_id, request.request_id, "allow_once")
    await turn_task
    assert [u.raw_output for u in updates if u.session_update == "tool_call_update"] == ["4"]

    await vm.set_mode(session.session_id, "plan")
    _, _, results = await turn(vm, session.session_id, 'Call notes__add with {"a": 1, "b": 1}.')
    assert results[0].status == "failed"
    assert "not marked read-only" in results[0].raw_output
    _, _, results = await turn(vm, session.session_id, 'Call notes__echo with {"text": "read-only"}.')
    assert results[0].raw_output == "read-only"  # marked read-only by its server: plan mode lets it run


async def test_a_vm_that_sleeps_stops_the_server_and_its_session_starts_it_again(start_registry):
    registry = await start_registry(vm=agent_os(software=[common, pi], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await vm.create_session("pi", mcp_servers=[notes()])
    await turn(vm, session.session_id, 'Call notes__add with {"a": 1, "b": 2}.')
    await next_event(slept, "actor.slept", timeout=20)
    await wait_until(lambda: servers_running() == [], timeout=10)  # stopped with the VM
    _, _, results = await turn(vm, session.session_id, 'Call notes__add with {"a": 3, "b": 4}.')
    assert results[0].raw_output == "7"  # started again when the session reopened


async def test_a_session_whose_model_changed_still_has_its_servers_after_sleep(start_registry):
    registry = await start_registry(vm=agent_os(software=[common, pi], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["changed"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await vm.create_session("pi", mcp_servers=[notes()])
    await vm.set_model(session.session_id, "offline")
    await next_event(slept, "actor.slept", timeout=20)
    _, _, results = await turn(vm, session.session_id, 'Call notes__add with {"a": 3, "b": 4}.')
    assert [r.raw_output for r in results] == ["7"]
    assert (await vm.get_session(session.session_id)).mcp_servers == ["notes"]
