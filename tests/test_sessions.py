"""Agent sessions in a VM: the pi loop and its tools, updates, turns, cancellation, failures.

The models here are scripted pydantic-ai `FunctionModel`s given explicitly, so each test
says exactly what the model does; the offline model's own behaviour is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentos_nb import agent_os, errors, host_tool, toolkit
from agentos_nb.agents import harness
from agentos_nb.agents.retry import RetryPolicy
from agentos_nb.software import Pi, common, pi
from conftest import next_event, notices_of, prompts_of, wait_until

pytestmark = pytest.mark.anyio

Step = Callable[[list[ModelMessage], AgentInfo], ModelResponse]


def tool(name: str, **args: Any) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(name, args)])


def reply(text: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(text)])


def tool_results(messages: list[ModelMessage]) -> list[str]:
    """What the tools returned in the current turn, in order."""
    turn_start = max(
        i
        for i, m in enumerate(messages)
        if isinstance(m, ModelRequest) and any(isinstance(p, UserPromptPart) for p in m.parts)
    )
    return [
        str(p.content)
        for m in messages[turn_start:]
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart)
    ]


def all_tool_results(messages: list[ModelMessage]) -> list[str]:
    return [
        str(p.content)
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart)
    ]


def scripted(*steps: ModelResponse | Callable[[list[ModelMessage]], ModelResponse]) -> FunctionModel:
    """A model that answers request n of the session with steps[n]; a callable step sees the history."""
    seen: list[list[ModelMessage]] = []

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        step = steps[len(seen) - 1]
        return step(messages) if callable(step) else step

    model = FunctionModel(answer, model_name="scripted")
    model.seen = seen  # type: ignore[attr-defined]
    return model


@pytest.fixture
async def writer(start_registry):
    registry = await start_registry(writer=agent_os(software=[common, pi]))
    return registry.client().writer.get_or_create(["test"])


async def test_a_turn_runs_the_tools_in_the_vm_and_returns_the_final_text(writer):
    model = scripted(
        tool("write", path="notes/todo.md", content="- one\n- two\n"),
        tool("bash", command="wc -l notes/todo.md"),
        tool("read", path="/home/user/notes/todo.md"),
        tool("edit", path="notes/todo.md", old_text="- two", new_text="- 2"),
        lambda messages: reply("results: " + " | ".join(tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    result = await writer.send_prompt(session.session_id, "make a list")

    assert result.stop_reason == "end_turn"
    assert result.text.startswith("results: Wrote 12 bytes to /home/user/notes/todo.md | 2 notes/todo.md")
    assert "| - one\n- two\n |" in result.text
    assert "Edited /home/user/notes/todo.md\n--- a/home/user/notes/todo.md" in result.text
    assert "-- two\n+- 2\n" in result.text
    assert await writer.read_file("notes/todo.md", encoding="utf-8") == "- one\n- 2\n"
    assert result.usage.requests == 5
    assert result.usage.tool_calls == 4
    assert result.usage.input_tokens > 0


async def test_the_session_keeps_its_history_and_its_system_prompt(start_registry):
    review = toolkit(
        name="review",
        description="Send code to the reviewer",
        tools={"submit": host_tool(description="Submit a file", input_schema=Path, execute=echo_path)},
    )
    registry = await start_registry(writer=agent_os(software=[common, pi], toolkits=[review]))
    writer = registry.client().writer.get_or_create(["test"])
    model = scripted(reply("first"), reply("second"))
    session = await writer.create_session("pi", model=model, additional_instructions="Answer in French.")
    await writer.send_prompt(session.session_id, "one")
    await writer.send_prompt(session.session_id, "two")

    second_request = model.seen[1]  # type: ignore[attr-defined]
    prompts = [p.content for m in second_request if isinstance(m, ModelRequest) for p in m.parts]
    assert prompts == ["one", "two"]
    assert isinstance(second_request[1], ModelResponse)
    instructions = second_request[-1].instructions
    assert "You are pi, a coding agent" in instructions
    assert "agentos-review submit" in instructions  # the tool reference
    assert "/home/user" in instructions  # the OS instructions
    assert instructions.rstrip().endswith("Answer in French.")


class Path(BaseModel):
    path: str


async def echo_path(input: Path, ctx) -> dict[str, str]:
    return {"got": input.path}


async def test_bash_keeps_its_shell_and_reaches_host_tools(start_registry):
    review = toolkit(
        name="review",
        description="Send code to the reviewer",
        tools={"submit": host_tool(description="Submit a file", input_schema=Path, execute=echo_path)},
    )
    registry = await start_registry(writer=agent_os(software=[common, pi], toolkits=[review]))
    writer = registry.client().writer.get_or_create(["test"])
    model = scripted(
        tool("bash", command="cd /tmp && export WHO=pi"),
        tool("bash", command='echo "$WHO in $PWD"'),
        tool("bash", command="agentos-review submit --path api.ts"),
        tool("bash", command="exit 3"),
        lambda messages: reply(json.dumps(tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    result = await writer.send_prompt(session.session_id, "go")
    assert json.loads(result.text) == [
        "(no output)",
        "pi in /tmp\n",
        '{"ok": true, "result": {"got": "api.ts"}}\n',
        "[exit code 3]\n",
    ]


async def test_tool_failures_are_results_the_model_reads(writer):
    await writer.write_file("twice.txt", "x = 1\nx = 1\n")
    model = scripted(
        tool("read", path="missing.txt"),
        tool("edit", path="twice.txt", old_text="x = 1", new_text="x = 2"),
        tool("edit", path="twice.txt", old_text="y = 1", new_text="x = 2"),
        tool("write", path="/../../etc/x", content="no"),
        tool("bash", timeout=-1),
        tool("launch", what="rockets"),
        ModelResponse(parts=[ToolCallPart("read", "{not json")]),
        lambda messages: reply(json.dumps(tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    result = await writer.send_prompt(session.session_id, "go")
    failures = json.loads(result.text)
    assert all(text.startswith("Error: ") for text in failures), failures
    assert "missing.txt" in failures[0]
    assert "not found" in failures[0]
    assert "occurs 2 times" in failures[1]
    assert "was not found" in failures[2]
    assert "outside" in failures[3] or "Permission" in failures[3] or "escape" in failures[3]
    assert "command: Field required" in failures[4]
    assert "timeout: Input should be greater than 0" in failures[4]
    assert "no tool 'launch'" in failures[5]
    assert "not valid JSON" in failures[6]
    assert await writer.read_file("twice.txt", encoding="utf-8") == "x = 1\nx = 1\n"


async def test_read_pages_through_long_files(writer):
    await writer.write_file("long.txt", "".join(f"line {n}\n" for n in range(1, 3001)))
    model = scripted(
        tool("read", path="long.txt"),
        tool("read", path="long.txt", offset=2999),
        tool("read", path="long.txt", offset=10, limit=2),
        tool("read", path="long.txt", offset=5000),
        lambda messages: reply(json.dumps(tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    first, last, middle, past = json.loads((await writer.send_prompt(session.session_id, "go")).text)
    assert first.endswith("line 2000\n[lines 1-2000 of 3000; continue with offset=2001]")
    assert last == "line 2999\nline 3000\n"
    assert middle == "line 10\nline 11\n[lines 10-11 of 3000; continue with offset=12]"
    assert past.startswith("Error: ") and "past the end" in past  # noqa: PT018


async def test_updates_are_acp_shaped_numbered_kept_and_published(writer):
    registry_events = writer._registry.bus.subscribe(types=["session.updated"])
    model = scripted(tool("bash", command="echo hi"), reply("done"))
    session = await writer.create_session("pi", model=model)
    await writer.send_prompt(session.session_id, "say hi")

    updates = await writer.get_session_events(session.session_id)
    kinds = [u.session_update for u in updates]
    assert kinds == [
        "notice",
        "user_message_chunk",
        "tool_call",
        "tool_call_update",
        "agent_message_chunk",
        "turn_ended",
    ]
    assert [u.seq for u in updates] == [1, 2, 3, 4, 5, 6]
    assert {u.session_id for u in updates} == {session.session_id}
    call, finished = updates[2], updates[3]
    assert call.model_dump(by_alias=True, mode="json") | {"at": 0} == {
        "seq": 3,
        "sessionId": session.session_id,
        "at": 0,
        "sessionUpdate": "tool_call",
        "toolCallId": call.tool_call_id,
        "title": "bash: echo hi",
        "kind": "execute",
        "status": "in_progress",
        "rawInput": {"command": "echo hi"},
        "locations": [],
    }
    assert finished.tool_call_id == call.tool_call_id
    assert finished.status == "completed"
    assert finished.raw_output == "hi\n"
    assert updates[-1].stop_reason == "end_turn"
    assert [u.seq for u in await writer.get_session_events(session.session_id, since=4)] == [5, 6]

    published = []
    for _ in range(6):
        published.append((await anext(aiter(registry_events))).update.seq)
    assert published == [1, 2, 3, 4, 5, 6]


async def test_stream_prompt_yields_the_turn_live(writer):
    gate = asyncio.Event()

    async def slow_then_reply(messages: list[ModelMessage]) -> ModelResponse:
        return reply("streamed")

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if not any(isinstance(p, ToolReturnPart) for m in messages for p in m.parts):
            return tool("bash", command="echo working")
        await gate.wait()
        return reply("streamed")

    session = await writer.create_session("pi", model=FunctionModel(answer))
    seen = []
    async for update in writer.stream_prompt(session.session_id, "go"):
        seen.append(update)
        if update.session_update == "tool_call_update":
            gate.set()  # the turn is still running: the update arrived live
    assert [u.session_update for u in seen] == [
        "user_message_chunk",
        "tool_call",
        "tool_call_update",
        "agent_message_chunk",
        "turn_ended",
    ]
    assert seen[-1].stop_reason == "end_turn"
    assert seen[0].seq == 2  # the session's opening notice came before this turn


async def test_cancel_prompt_stops_the_turn_and_the_session_goes_on(writer):
    model = scripted(
        tool("bash", command="echo started > started.txt; sleep 30; echo finished > finished.txt"),
        lambda messages: reply("after cancel, I saw: " + " | ".join(all_tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "long job"))
    await wait_until(lambda: writer.exists("started.txt"))
    assert await writer.cancel_prompt(session.session_id) is True
    assert turn.done()  # cancel_prompt returned only once the turn had stopped
    result = turn.result()
    assert result.stop_reason == "cancelled"
    assert not await writer.exists("finished.txt")
    assert await writer.cancel_prompt(session.session_id) is False

    follow_up = await writer.send_prompt(session.session_id, "what happened?")
    assert follow_up.text == "after cancel, I saw: " + harness._CANCELLED
    info = await writer.get_session(session.session_id)
    assert info.turns == 2
    assert not info.busy


async def test_leaving_a_stream_early_cancels_its_turn(writer):
    model = scripted(tool("bash", command="sleep 30"), reply("never"))
    session = await writer.create_session("pi", model=model)
    async for update in writer.stream_prompt(session.session_id, "go"):
        if update.session_update == "tool_call":
            break
    await wait_until(
        lambda: _last_kind(writer, session.session_id, "turn_ended"),
    )
    events = await writer.get_session_events(session.session_id)
    assert events[-1].stop_reason == "cancelled"


async def _last_kind(writer, session_id: str, kind: str) -> bool:
    events = await writer.get_session_events(session_id)
    return events[-1].session_update == kind


async def test_a_second_prompt_waits_for_the_running_turn(writer):
    gate = asyncio.Event()

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = [p.content for m in messages if isinstance(m, ModelRequest) for p in m.parts][-1]
        if prompt == "first":
            await gate.wait()
        return reply(f"answer to {prompt}")

    session = await writer.create_session("pi", model=FunctionModel(answer))
    first = asyncio.ensure_future(writer.send_prompt(session.session_id, "first"))
    second = asyncio.ensure_future(writer.send_prompt(session.session_id, "second"))
    await asyncio.sleep(0.05)
    assert not first.done()
    assert not second.done()
    gate.set()
    assert (await first).text == "answer to first"
    assert (await second).text == "answer to second"
    assert await prompts_of(writer, session.session_id) == ["first", "second"]


async def test_provider_failures_are_retried_then_end_the_turn_with_an_error(start_registry):
    registry = await start_registry(
        writer=agent_os(
            software=[common, Pi(retry=RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02))]
        )
    )
    writer = registry.client().writer.get_or_create(["test"])
    failures = [ModelHTTPError(429, "scripted", body={"error": "slow down"}), None]

    async def flaky(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        failure = failures.pop(0) if failures else None
        if failure is not None:
            raise failure
        return reply("made it")

    session = await writer.create_session("pi", model=FunctionModel(flaky))
    result = await writer.send_prompt(session.session_id, "go")
    assert result.text == "made it"
    notices = await notices_of(writer, session.session_id)
    assert "retrying in" in notices[-1]
    assert "attempt 2 of 3" in notices[-1]

    async def refused(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ModelHTTPError(401, "scripted", body={"error": "invalid x-api-key"})

    session = await writer.create_session("pi", model=FunctionModel(refused))
    result = await asyncio.wait_for(writer.send_prompt(session.session_id, "go"), 5)
    assert result.stop_reason == "error"
    assert "401" in result.error
    updates = await writer.get_session_events(session.session_id)
    assert updates[-1].error == result.error
    # The conversation is still well formed: the next prompt reaches the model again.
    result = await writer.send_prompt(session.session_id, "again")
    assert result.stop_reason == "error"


async def test_a_turn_ends_after_too_many_model_requests(writer, monkeypatch):
    monkeypatch.setattr(harness, "MAX_REQUESTS_PER_TURN", 3)

    async def forever(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return tool("bash", command="true")

    session = await writer.create_session("pi", model=FunctionModel(forever))
    result = await writer.send_prompt(session.session_id, "loop")
    assert result.stop_reason == "max_turn_requests"
    assert result.usage.requests == 3


async def test_bad_session_calls_are_clear_errors(writer):
    with pytest.raises(errors.UnknownAgentType, match=r"no agent type 'claude' \(installed: pi\)"):
        await writer.create_session("claude")
    with pytest.raises(errors.SessionNotFound, match="no session 's-nope'"):
        await writer.send_prompt("s-nope", "hi")
    with pytest.raises(TypeError, match="env must map str names to str values"):
        await writer.create_session("pi", env={"KEY": 1})
    with pytest.raises(FileNotFoundError):
        await writer.create_session("pi", cwd="/nowhere")
    with pytest.raises(errors.ModelNotAvailable, match="martian"):
        await writer.create_session("pi", model="martian:big-brain")
    session = await writer.create_session("pi", model=scripted())
    with pytest.raises(ValueError, match="non-empty str"):
        await writer.send_prompt(session.session_id, "  ")
    with pytest.raises(ValueError, match="since must be"):
        await writer.get_session_events(session.session_id, since=-1)
    assert [a.name for a in await writer.list_agents()] == ["pi"]


async def test_closed_sessions_keep_their_events_and_take_no_prompts(writer):
    session = await writer.create_session("pi", model=scripted(reply("bye")))
    await writer.send_prompt(session.session_id, "hello")
    await writer.close_session(session.session_id)
    await writer.close_session(session.session_id)  # closing twice is fine
    with pytest.raises(errors.SessionClosed, match="is closed"):
        await writer.send_prompt(session.session_id, "again")
    assert await writer.list_sessions() == []
    [closed] = await writer.list_sessions(include_closed=True)
    assert closed.closed
    assert [u.session_update for u in await writer.get_session_events(session.session_id)][-1] == "turn_ended"


async def test_a_vm_without_pi_has_no_agent_types(start_registry):
    registry = await start_registry(plain=agent_os(software=[common]))
    plain = registry.client().plain.get_or_create(["x"])
    assert await plain.list_agents() == []
    with pytest.raises(errors.UnknownAgentType, match="install one"):
        await plain.create_session("pi")


async def test_sessions_outlive_sleep(start_registry):
    model = scripted(reply("first answer"), reply("second answer"))
    registry = await start_registry(
        writer=agent_os(software=[common, Pi(model=model)], options={"sleep_timeout": 0.2})
    )
    writer = registry.client().writer.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await writer.create_session("pi")
    await writer.send_prompt(session.session_id, "hello there")
    await next_event(slept, "actor.slept")

    [info] = await writer.list_sessions()  # wakes the VM, which reopens the session
    assert info.session_id == session.session_id
    assert info.turns == 1
    result = await writer.send_prompt(session.session_id, "and again")
    assert result.text == "second answer"
    history = model.seen[1]  # type: ignore[attr-defined]
    assert [type(m).__name__ for m in history] == ["ModelRequest", "ModelResponse", "ModelRequest"]
    assert history[1].parts[0].content == "first answer"
    updates = await writer.get_session_events(session.session_id)
    assert [u.seq for u in updates] == list(range(1, len(updates) + 1))
    assert [u.session_update for u in updates].count("turn_ended") == 2


# --- races, failures and lifecycles -----------------------------------------------------------


def gated(gate: asyncio.Event, text: str = "done") -> FunctionModel:
    """A model whose first answer waits for `gate`; later ones answer at once."""
    calls = []

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(1)
        if len(calls) == 1:
            await gate.wait()
        return reply(text)

    return FunctionModel(answer)


async def test_closing_a_session_refuses_the_prompt_waiting_behind_its_turn(writer):
    gate = asyncio.Event()
    session = await writer.create_session("pi", model=gated(gate))
    running = asyncio.ensure_future(writer.send_prompt(session.session_id, "first"))
    waiting = asyncio.ensure_future(writer.send_prompt(session.session_id, "second"))
    await wait_until(lambda: _busy(writer, session.session_id))
    await asyncio.gather(writer.close_session(session.session_id), writer.close_session(session.session_id))
    assert (await running).stop_reason == "cancelled"
    with pytest.raises(errors.SessionClosed, match="closed while this prompt waited"):
        await waiting
    assert await prompts_of(writer, session.session_id) == ["first"]


async def _busy(writer, session_id: str) -> bool:
    return (await writer.get_session(session_id)).busy


async def test_a_cancel_before_the_turn_has_begun_ends_it_cancelled(start_registry):
    registry = await start_registry(writer=agent_os(software=[common, pi]))
    writer = registry.client().writer.get_or_create(["test"])
    model = scripted(reply("first real answer"))
    session = await writer.create_session("pi", model=model)
    sessions = registry._instances[await writer.resolve()].vars.sessions
    prompt = asyncio.ensure_future(sessions.prompt(session.session_id, "go"))
    await asyncio.sleep(0)  # the prompt has made its turn task, which has not run yet
    assert await sessions.cancel(session.session_id) is True
    result = await prompt
    assert result.stop_reason == "cancelled"
    assert model.seen == []  # type: ignore[attr-defined]  # the model was never asked
    follow_up = await writer.send_prompt(session.session_id, "again")
    assert follow_up.text == "first real answer"


async def test_leaving_a_stream_that_waits_cancels_only_its_own_prompt(writer):
    gate = asyncio.Event()
    session = await writer.create_session("pi", model=gated(gate, "first done"))
    first = asyncio.ensure_future(writer.send_prompt(session.session_id, "first"))
    await wait_until(lambda: _busy(writer, session.session_id))

    async def read_the_stream() -> None:
        async for _ in writer.stream_prompt(session.session_id, "second"):
            pass

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read_the_stream(), 0.2)
    gate.set()
    assert (await first).text == "first done"  # the other caller's turn went on
    await asyncio.sleep(0.05)
    assert await prompts_of(writer, session.session_id) == ["first"]


async def test_a_tool_that_fails_unexpectedly_is_a_failed_result(writer):
    model = scripted(
        tool("read", path=""),
        tool("write", path="a\x00b", content="x"),
        lambda messages: reply(json.dumps(tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    result = await writer.send_prompt(session.session_id, "go")
    assert result.stop_reason == "end_turn"
    assert json.loads(result.text) == [
        "Error: a VM path cannot be empty",
        "Error: a VM path cannot contain a NUL character: 'a\\x00b'",
    ]


async def test_an_unexpected_model_error_ends_the_turn_without_showing_keys(writer):
    secret = "sk-test-0123456789abcdef"

    async def leaky(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise RuntimeError(f"bad header x-api-key: {secret}")

    session = await writer.create_session("pi", model=FunctionModel(leaky), env={"OTHER_API_KEY": secret})
    result = await writer.send_prompt(session.session_id, "go")
    assert result.stop_reason == "error"
    assert "RuntimeError: bad header x-api-key" in result.error
    for update in await writer.get_session_events(session.session_id):
        assert secret not in update.model_dump_json()


async def test_a_cancel_between_two_tool_calls_leaves_a_conversation_that_goes_on(writer):
    model = scripted(
        ModelResponse(
            parts=[
                ToolCallPart("bash", {"command": "echo one > one.txt"}, tool_call_id="c1"),
                ToolCallPart("bash", {"command": "sleep 30"}, tool_call_id="c2"),
                ToolCallPart("bash", {"command": "echo three > three.txt"}, tool_call_id="c3"),
            ]
        ),
        lambda messages: reply(" | ".join(all_tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    await wait_until(lambda: writer.exists("one.txt"))
    await asyncio.sleep(0.05)
    assert await writer.cancel_prompt(session.session_id)
    assert (await turn).stop_reason == "cancelled"
    assert not await writer.exists("three.txt")
    follow_up = await writer.send_prompt(session.session_id, "what happened?")
    assert follow_up.text == f"(no output) | {harness._CANCELLED} | {harness._CANCELLED}"


async def test_a_vm_stopping_mid_turn_ends_the_turn_in_the_transcript(start_registry):
    registry = await start_registry(writer=agent_os(software=[common, pi]))
    writer = registry.client().writer.get_or_create(["test"])
    session = await writer.create_session("pi", model=scripted(tool("bash", command="sleep 30")))
    updates = registry.bus.subscribe(types=["session.updated"])
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "go"))
    await wait_until(lambda: _busy(writer, session.session_id))
    await registry.stop(grace=0)
    with pytest.raises(errors.AgentOSError):
        await turn
    seen = []
    async for event in updates:
        seen.append(event.update)
        if event.update.session_update == "turn_ended":
            break
    assert seen[-1].stop_reason == "cancelled"
    assert "VM stopped" in seen[-1].error


async def test_read_cuts_a_single_huge_line_and_write_replaces_binary_files(writer):
    await writer.write_file("one-line.txt", "x" * 200_000)
    await writer.write_file("blob.bin", b"\xff\xfe\x00binary")
    model = scripted(
        tool("read", path="one-line.txt"),
        tool("write", path="blob.bin", content="text now\n"),
        tool("bash", command="sleep 5", timeout=0.2),
        lambda messages: reply(json.dumps(tool_results(messages))),
    )
    session = await writer.create_session("pi", model=model)
    long_line, written, slept = json.loads((await writer.send_prompt(session.session_id, "go")).text)
    assert len(long_line) < 51_000
    assert "line 1 is 200000 characters long and was cut" in long_line
    assert written == "Wrote 9 bytes to /home/user/blob.bin"
    assert await writer.read_file("blob.bin") == b"text now\n"
    assert "timed out after 0.2 s" in slept


async def test_a_sleeping_vm_closes_its_sessions_clients_and_reopens_them_with_their_model(start_registry):
    closed = []
    model = scripted(reply("one"), reply("two"))
    registry = await start_registry(writer=agent_os(software=[common, pi], options={"sleep_timeout": 0.2}))
    writer = registry.client().writer.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await writer.create_session("pi", model=model, env={"SOME_KEY": "value-kept-in-memory"})
    instance = registry._instances[await writer.resolve()]
    agent = instance.vars.sessions._live[session.session_id].agent
    original_close = agent.close

    async def recording_close() -> None:
        closed.append(session.session_id)
        await original_close()

    agent.close = recording_close
    await writer.send_prompt(session.session_id, "one")
    await next_event(slept, "actor.slept")
    assert closed == [session.session_id]
    saved = await registry.store.load_blob(await writer.resolve(), "sessions")
    assert b"value-kept-in-memory" not in saved
    result = await writer.send_prompt(session.session_id, "two")  # the same model object, kept in memory
    assert result.text == "two"


async def test_a_cancelled_first_session_neither_cancels_nor_poisons_the_agent_loops_import(
    tmp_path, monkeypatch
):
    from agentos_nb.agents import pi as pi_module

    (tmp_path / "agentos_slow_import.py").write_text("import time\ntime.sleep(0.3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = asyncio.ensure_future(asyncio.wrap_future(pi_module._imported_once("agentos_slow_import")))
    await asyncio.sleep(0.05)  # the import is under way
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wrap_future(pi_module._imported_once("agentos_slow_import"))  # not cancelled for the next
    with pytest.raises(ImportError):
        await asyncio.wrap_future(pi_module._imported_once("agentos_nb_no_such_module"))
    assert ("agentos_nb_no_such_module",) not in pi_module._imports  # tried again after an install
