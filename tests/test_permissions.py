"""Permission requests: a session's policy makes its turn wait for the user's answer before a
tool runs; "always" is remembered (and saved with the session), a rejection is a result the
model reads, a cancel refuses what waits. The same through the HTTP face.

The offline model plays the agent (scripted), so every case runs with no key: the gate is at
the tool layer and applies to every model."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from pydantic import BaseModel
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentos_nb import agent_os, create_client, errors, host_tool, setup, toolkit
from agentos_nb.agents.offline import Bash, Reply, Write, offline_model
from agentos_nb.software import Pi, common, pi
from agentos_nb.vm.session_models import PermissionRequest, PermissionResponse
from conftest import next_event, wait_until

pytestmark = pytest.mark.anyio


async def waiting_requests(vm, session_id: str) -> list[PermissionRequest]:
    """The session's permission requests that have no response yet."""
    updates = await vm.get_session_events(session_id)
    answered = {u.request_id for u in updates if isinstance(u, PermissionResponse)}
    return [u for u in updates if isinstance(u, PermissionRequest) and u.request_id not in answered]


async def next_request(vm, session_id: str) -> PermissionRequest:
    found: list[PermissionRequest] = []

    async def one_waits() -> bool:
        found[:] = await waiting_requests(vm, session_id)
        return bool(found)

    await wait_until(one_waits)
    assert len(found) == 1
    return found[0]


def results_model(*calls: tuple[str, dict], final: str = "results") -> FunctionModel:
    """A model that makes `calls` one per request, then replies with every tool result it read."""

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        responses = sum(isinstance(m, ModelResponse) for m in messages)
        if responses < len(calls):
            name, args = calls[responses]
            from pydantic_ai.messages import ToolCallPart

            return ModelResponse(parts=[ToolCallPart(name, args)])
        read = [
            str(p.content)
            for m in messages
            if isinstance(m, ModelRequest)
            for p in m.parts
            if isinstance(p, ToolReturnPart)
        ]
        return ModelResponse(parts=[TextPart(final + ": " + json.dumps(read))])

    return FunctionModel(answer, model_name="results")


@pytest.fixture
async def writer(start_registry):
    registry = await start_registry(writer=agent_os(software=[common, pi]))
    return registry.client().writer.get_or_create(["perm"])


async def test_a_write_waits_for_approval_and_is_asked_again_after_allow_once(writer):
    model = offline_model([Write("a.txt", "one\n"), Write("b.txt", "two\n"), Reply("both written")])
    session = await writer.create_session("pi", model=model, permissions=["write"])
    assert session.permissions.ask == ["write"]
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "write two files"))

    first = await next_request(writer, session.session_id)
    assert first.tool_call.title == "write a.txt"
    assert first.tool_call.kind == "edit"
    assert first.tool_call.raw_input == {"path": "a.txt", "content": "one\n"}
    assert [o.option_id for o in first.options] == [
        "allow_once",
        "allow_always",
        "reject_once",
        "reject_always",
    ]
    assert [o.kind for o in first.options] == [o.option_id for o in first.options]
    assert first.model_dump(by_alias=True)["sessionUpdate"] == "permission_request"
    await asyncio.sleep(0.05)
    assert not turn.done()  # the turn waits, and nothing was written
    assert not await writer.exists("a.txt")
    assert (await writer.get_session(session.session_id)).busy

    await writer.respond_permission(session.session_id, first.request_id, "allow_once")
    second = await next_request(writer, session.session_id)  # asked again: once was once
    assert second.request_id != first.request_id
    assert second.tool_call.title == "write b.txt"
    assert await writer.read_file("a.txt", encoding="utf-8") == "one\n"
    await writer.respond_permission(session.session_id, second.request_id, "allow_once")

    result = await turn
    assert (result.stop_reason, result.text) == ("end_turn", "both written")
    assert await writer.read_file("b.txt", encoding="utf-8") == "two\n"
    kinds = [u.session_update for u in await writer.get_session_events(session.session_id)]
    assert kinds.count("permission_request") == kinds.count("permission_response") == 2
    with pytest.raises(errors.PermissionRequestNotFound, match="not waiting"):
        await writer.respond_permission(session.session_id, first.request_id, "allow_once")


async def test_allow_always_is_not_asked_again_also_after_sleep_and_wake(start_registry):
    model = offline_model(
        [Write("a.txt", "1"), Write("b.txt", "2"), Reply("first"), Write("c.txt", "3"), Reply("second")]
    )
    registry = await start_registry(
        writer=agent_os(software=[common, Pi(model=model)], options={"sleep_timeout": 0.2})
    )
    writer = registry.client().writer.get_or_create(["always"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await writer.create_session("pi", permissions=["write", "bash"])
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    await writer.respond_permission(session.session_id, request.request_id, "allow_always")
    assert (await turn).text == "first"
    assert await writer.read_file("b.txt", encoding="utf-8") == "2"  # not asked for the second write

    await next_event(slept, "actor.slept")
    saved = json.loads(await registry.store.load_blob(await writer.resolve(), "sessions"))
    assert saved[0]["permissions"]["remembered"] == {"write": "allow"}
    result = await writer.send_prompt(session.session_id, "once more")  # wakes the VM
    assert result.text == "second"
    assert await writer.read_file("c.txt", encoding="utf-8") == "3"
    kinds = [u.session_update for u in await writer.get_session_events(session.session_id)]
    assert kinds.count("permission_request") == 1


async def test_reject_gives_the_model_a_refusal_and_the_turn_goes_on(writer):
    model = results_model(
        ("write", {"path": "no.txt", "content": "x"}),
        ("bash", {"command": "echo still going"}),
        ("write", {"path": "never.txt", "content": "x"}),
        ("write", {"path": "never2.txt", "content": "x"}),
    )
    session = await writer.create_session("pi", model=model, permissions=["write"])
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    await writer.respond_permission(session.session_id, request.request_id, "reject_once")
    second = await next_request(writer, session.session_id)  # only once: the next write asks
    await writer.respond_permission(session.session_id, second.request_id, "reject_always")

    result = await turn
    assert result.stop_reason == "end_turn"
    refused_once, ran, refused_always, refused_remembered = json.loads(result.text.split(": ", 1)[1])
    assert refused_once.startswith("Error: permission denied: the user refused this call.")
    assert ran == "still going\n"
    assert "for the rest of the session" in refused_always
    assert refused_remembered == "Error: permission denied: the user refused write for this session."
    assert not await writer.exists("no.txt")
    assert not await writer.exists("never2.txt")
    updates = await writer.get_session_events(session.session_id)
    failed = [u for u in updates if u.session_update == "tool_call_update" and u.status == "failed"]
    assert len(failed) == 3
    assert [u.session_update for u in updates].count("permission_request") == 2


async def test_a_cancel_refuses_the_waiting_request_and_the_session_goes_on(writer):
    model = offline_model([Write("a.txt", "x"), Reply("never"), Reply("next turn")])
    session = await writer.create_session("pi", model=model, permissions=["write"])
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    assert await writer.cancel_prompt(session.session_id) is True
    result = await turn
    assert result.stop_reason == "cancelled"
    assert not await writer.exists("a.txt")
    [response] = [
        u for u in await writer.get_session_events(session.session_id) if isinstance(u, PermissionResponse)
    ]
    assert (response.request_id, response.outcome, response.option_id) == (
        request.request_id,
        "cancelled",
        None,
    )
    with pytest.raises(errors.PermissionRequestNotFound):
        await writer.respond_permission(session.session_id, request.request_id, "allow_once")
    assert await waiting_requests(writer, session.session_id) == []
    assert (await writer.send_prompt(session.session_id, "again")).stop_reason == "end_turn"


async def test_closing_the_session_refuses_its_waiting_request(writer):
    session = await writer.create_session(
        "pi", model=offline_model([Write("a.txt", "x"), Reply("never")]), permissions=["write"]
    )
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    await next_request(writer, session.session_id)
    await writer.close_session(session.session_id)
    assert (await turn).stop_reason == "cancelled"
    assert not await writer.exists("a.txt")


async def test_bad_answers_and_bad_policies_are_refused_clearly(writer):
    session = await writer.create_session(
        "pi", model=offline_model([Write("a.txt", "x"), Reply("done")]), permissions=["write"]
    )
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    with pytest.raises(ValueError, match="unknown permission option 'yes'; the options are allow_once"):
        await writer.respond_permission(session.session_id, request.request_id, "yes")
    with pytest.raises(errors.PermissionRequestNotFound, match="'perm-nope'.*waiting: " + request.request_id):
        await writer.respond_permission(session.session_id, "perm-nope", "allow_once")
    with pytest.raises(errors.SessionNotFound):
        await writer.respond_permission("s-missing", request.request_id, "allow_once")
    assert not turn.done()  # none of it answered the request
    await writer.respond_permission(session.session_id, request.request_id, "allow_once")
    assert (await turn).text == "done"

    with pytest.raises(ValueError, match="'wrte' names no tool"):
        await writer.create_session("pi", permissions=["wrte"])
    with pytest.raises(TypeError, match="not the single str 'write'"):
        await writer.create_session("pi", permissions="write")
    with pytest.raises(ValueError, match=r"'host:review\.submit' names no host tool of this VM"):
        await writer.create_session("pi", permissions=["host:review.submit"])
    assert len(await writer.list_sessions()) == 1  # nothing half-made


class Path(BaseModel):
    path: str


async def submitted(input: Path, ctx) -> dict[str, str]:
    return {"got": input.path}


async def test_a_host_tool_by_name_asks_before_bash_runs_it_however_it_is_spelled(start_registry):
    review = toolkit(
        name="review",
        description="Send code to the reviewer",
        tools={
            "submit": host_tool(description="Submit a file", input_schema=Path, execute=submitted),
            "peek": host_tool(description="Look", input_schema=Path, execute=submitted),
        },
    )
    registry = await start_registry(writer=agent_os(software=[common, pi], toolkits=[review]))
    writer = registry.client().writer.get_or_create(["tools"])
    commands = [
        "ls /home",  # no host tool: not asked
        "agentos-review peek --path a",  # another tool of the kit: not asked
        "agentos-review submit --path a",
        'eval "agentos-review submit --path b"',  # hidden: may reach any host tool
        'T=submit; agentos-review "$T" --path c',  # a computed tool name: any of the kit
        "echo --path d | xargs agentos-review submit",  # a launcher
    ]
    model = offline_model([*(Bash(command) for command in commands), Reply("done")])
    session = await writer.create_session("pi", model=model, permissions=["host:review.submit"])
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    asked = []
    for _ in range(4):
        request = await next_request(writer, session.session_id)
        asked.append(request.tool_call.raw_input["command"])
        await writer.respond_permission(session.session_id, request.request_id, "reject_once")
    assert (await turn).text == "done"
    assert asked == commands[2:]


async def test_an_agent_type_may_bring_its_own_policy_and_a_session_may_override_it(start_registry):
    model = offline_model([Write("a.txt", "x"), Reply("done"), Write("b.txt", "y"), Reply("done")])
    registry = await start_registry(
        writer=agent_os(software=[common, Pi(model=model, permissions=["write"])])
    )
    writer = registry.client().writer.get_or_create(["typed"])
    gated = await writer.create_session("pi")
    assert gated.permissions.ask == ["write"]
    turn = asyncio.ensure_future(writer.send_prompt(gated.session_id, "go"))
    request = await next_request(writer, gated.session_id)
    await writer.respond_permission(gated.session_id, request.request_id, "allow_once")
    assert (await turn).text == "done"
    free = await writer.create_session("pi", permissions=[])
    assert (await writer.send_prompt(free.session_id, "go")).text == "done"
    assert await waiting_requests(writer, free.session_id) == []


async def test_accept_edits_lets_writes_through_but_still_asks_for_bash(writer):
    model = offline_model([Write("a.txt", "x"), Bash("echo hi"), Reply("done")])
    session = await writer.create_session("pi", model=model, permissions=["write", "edit", "bash"])
    await writer.set_mode(session.session_id, "accept_edits")
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    assert request.tool_call.kind == "execute"
    assert await writer.read_file("a.txt", encoding="utf-8") == "x"
    await writer.respond_permission(session.session_id, request.request_id, "allow_once")
    assert (await turn).text == "done"


async def test_plan_mode_chosen_while_a_request_waits_still_refuses_the_write(writer):
    model = results_model(("write", {"path": "a.txt", "content": "x"}))
    session = await writer.create_session("pi", model=model, permissions=["write"])
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    await writer.set_mode(session.session_id, "plan")
    await writer.respond_permission(session.session_id, request.request_id, "allow_once")
    (refusal,) = json.loads((await turn).text.removeprefix("results: "))
    assert "the session is in plan mode" in refusal
    assert not await writer.exists("a.txt")


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
async def served(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTOS_NB_TOKEN", raising=False)
    registry = setup(use={"writer": agent_os(software=[common, pi])}, name="permissions-http-test")
    info = await registry.serve(port=0)
    async with httpx.AsyncClient(
        base_url=info.url, headers={"Authorization": f"Bearer {info.token.get_secret_value()}"}, timeout=30
    ) as http:
        http.remote_url = info.url  # type: ignore[attr-defined]
        yield http
    await registry.stop(grace=0)


async def sse(response: httpx.Response):
    """(event, data) pairs of a server-sent-events reply, as they come."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


async def test_a_permission_request_over_http_streams_and_is_answered_by_its_route(served):
    http = served
    base = "/actors/writer/web"
    created = await http.post(f"{base}/sessions", json={"model": "offline", "permissions": ["write"]})
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    assert created.json()["permissions"] == {"ask": ["write"]}
    session = f"{base}/sessions/{session_id}"
    prompt = {"text": "Write a hello world in hello.py"}
    kinds = []
    async with http.stream("POST", f"{session}/prompt/stream", json=prompt) as response:
        assert response.status_code == 200
        async for event, data in sse(response):
            if event != "update":
                continue
            kinds.append(data["session_update"])
            if data["session_update"] == "permission_request":
                assert data["tool_call"]["title"] == "write hello.py"
                assert next(o["option_id"] for o in data["options"]) == "allow_once"
                bad = await http.post(f"{session}/permissions/{data['request_id']}", json={"option": "maybe"})
                assert bad.status_code == 422
                assert "unknown permission option 'maybe'" in bad.json()["message"]
                missing = await http.post(
                    f"{session}/permissions/perm-missing", json={"option": "allow_once"}
                )
                assert missing.status_code == 404
                assert missing.json()["error"] == "session.permission_request_not_found"
                answer = await http.post(
                    f"{session}/permissions/{data['request_id']}", json={"option": "allow_always"}
                )
                assert answer.status_code == 204, answer.text
            if data["session_update"] == "turn_ended":
                assert data["stop_reason"] == "end_turn"
    assert kinds.index("permission_request") < kinds.index("permission_response") < kinds.index("turn_ended")
    read = await http.get(f"{base}/files/home/user/hello.py")
    assert read.status_code == 200
    assert read.content  # written once allowed

    mode = await http.post(f"{session}/mode", json={"mode": "plan"})
    assert (mode.status_code, mode.json()["mode"]) == (200, "plan")
    wrong = await http.post(f"{session}/mode", json={"mode": "yolo"})
    assert wrong.status_code == 422
    assert "unknown session mode 'yolo'" in wrong.json()["message"]
    model = await http.post(f"{session}/model", json={"model": "nobody:nothing"})
    assert model.status_code == 422
    assert model.json()["error"] == "session.model_not_available"
    switched = await http.post(f"{session}/model", json={"model": "offline"})
    assert switched.status_code == 200, switched.text


async def test_always_survives_a_restart_on_sqlite(start_registry, tmp_path):
    store = f"sqlite:///{tmp_path / 'permissions.db'}"
    model = offline_model([Write("a.txt", "1"), Reply("one"), Write("b.txt", "2"), Reply("two")])
    use = {"writer": agent_os(software=[common, Pi(model=model, permissions=["write"])])}
    registry = await start_registry(store, **use)
    writer = registry.client().writer.get_or_create(["durable"])
    session = await writer.create_session("pi")
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    request = await next_request(writer, session.session_id)
    await writer.respond_permission(session.session_id, request.request_id, "allow_always")
    assert (await turn).text == "one"
    await registry.stop()

    registry = await start_registry(store, **use)
    writer = registry.client().writer.get_or_create(["durable"])
    result = await writer.send_prompt(session.session_id, "again")  # not asked: it would wait
    assert result.text == "two"
    assert await writer.read_file("b.txt", encoding="utf-8") == "2"
    kinds = [u.session_update for u in await writer.get_session_events(session.session_id)]
    assert kinds.count("permission_request") == 1


async def test_the_remote_client_answers_and_raises_the_same_errors(served):
    async with create_client(served.remote_url) as client:
        vm = client.writer.get_or_create(["remote"])
        session = await vm.create_session(
            "pi", model="offline", permissions=["write"], additional_instructions=None
        )
        with pytest.raises(errors.PermissionRequestNotFound):
            await vm.respond_permission(session.session_id, "perm-missing", "allow_once")
        info = await vm.set_mode(session.session_id, "accept_edits")
        assert info.mode == "accept_edits"
        with pytest.raises(errors.ModelNotAvailable):
            await vm.set_model(session.session_id, "nobody:nothing")
        result = await vm.send_prompt(session.session_id, "Write a hello world in hello.py")
        assert result.stop_reason == "end_turn"  # accept_edits: the write was not asked about
        assert await vm.exists("hello.py")
