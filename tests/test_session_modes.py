"""Session modes and model switches: `plan` refuses what may change anything (and says why),
`accept_edits` never asks before a write or an edit, `set_model` takes effect from the next
turn and the transcript says so; bad modes and models are refused clearly."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from test_permissions import Path, submitted

from agentos_nb import agent_os, errors, host_tool, toolkit
from agentos_nb.agents.bash_effects import ScriptFacts, host_tools_used, plan_mode_problem
from agentos_nb.agents.offline import Bash, Reply, Write, offline_model
from agentos_nb.software import Pi, common, pi
from agentos_nb.vm.sessions import _UNSAVED, AgentSession, SessionRequest
from agentos_nb.vm.shell import analyze
from agentos_nb.vm.toolkits import Toolkit
from conftest import next_event, notices_of

pytestmark = pytest.mark.anyio


def results_model(*calls: tuple[str, dict]) -> FunctionModel:
    """A model that makes `calls` one per request, then replies with the JSON list of results."""

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        responses = sum(isinstance(m, ModelResponse) for m in messages)
        if responses < len(calls):
            name, args = calls[responses]
            return ModelResponse(parts=[ToolCallPart(name, args)])
        read = [
            str(p.content)
            for m in messages
            if isinstance(m, ModelRequest)
            for p in m.parts
            if isinstance(p, ToolReturnPart)
        ]
        return ModelResponse(parts=[TextPart(json.dumps(read))])

    return FunctionModel(answer, model_name="results")


REVIEW = toolkit(
    name="review",
    description="Send code to the reviewer",
    tools={"submit": host_tool(description="Submit a file", input_schema=Path, execute=submitted)},
)


@pytest.fixture
async def writer(start_registry):
    registry = await start_registry(writer=agent_os(software=[common, pi], toolkits=[REVIEW]))
    vm = registry.client().writer.get_or_create(["modes"])
    await vm.write_file("notes.txt", "alpha\nbeta\n")
    return vm


async def test_plan_mode_refuses_writes_edits_and_changing_bash_but_reads(writer):
    model = results_model(
        ("write", {"path": "notes.txt", "content": "gone"}),
        ("edit", {"path": "notes.txt", "old_text": "alpha", "new_text": "omega"}),
        ("read", {"path": "notes.txt"}),
        ("bash", {"command": "grep -n beta notes.txt | wc -l"}),
        ("bash", {"command": "rm notes.txt"}),
        ("bash", {"command": "echo hi > other.txt"}),
        ("bash", {"command": "sed -i s/alpha/omega/ notes.txt"}),
        ("bash", {"command": 'eval "rm notes.txt"'}),
        ("bash", {"command": "agentos-review submit --path notes.txt"}),
        ("bash", {"command": "ls > /dev/null && agentos list-tools | head -1"}),
    )
    session = await writer.create_session("pi", model=model)
    info = await writer.set_mode(session.session_id, "plan")
    assert info.mode == "plan"
    result = await writer.send_prompt(session.session_id, "look around")
    assert result.stop_reason == "end_turn"
    (write, edit, read, grep, rm, redirect, sed, hidden, host, listing) = json.loads(result.text)
    for refused in (write, edit, rm, redirect, sed, hidden, host):
        assert refused.startswith("Error: permission denied: the session is in plan mode"), refused
    assert "write may change files" in write
    assert "rm is a command that may change things" in rm
    assert "it writes to other.txt" in redirect
    assert "sed -i edits files" in sed
    assert "hides what it runs" in hidden
    assert "agentos-review is a host tool" in host
    assert read == "alpha\nbeta\n"
    assert grep == "1\n"
    assert listing.strip()  # a read-only host command (its help) may run
    assert await writer.read_file("notes.txt", encoding="utf-8") == "alpha\nbeta\n"
    assert not await writer.exists("other.txt")
    updates = await writer.get_session_events(session.session_id)
    [mode_update] = [u for u in updates if u.session_update == "current_mode_update"]
    assert mode_update.current_mode_id == "plan"
    assert mode_update.model_dump(by_alias=True)["currentModeId"] == "plan"


async def test_plan_mode_runs_bash_in_a_fresh_shell_so_a_function_cannot_pose_as_ls(writer):
    model = offline_model(
        [
            Bash("ls() { rm -f /home/user/notes.txt; echo removed; }"),
            Reply("defined"),
            Bash("ls /home/user"),
            Reply("listed"),
        ]
    )
    session = await writer.create_session("pi", model=model)
    assert (await writer.send_prompt(session.session_id, "one")).text == "defined"
    await writer.set_mode(session.session_id, "plan")
    assert (await writer.send_prompt(session.session_id, "two")).text == "listed"
    updates = await writer.get_session_events(session.session_id)
    outputs = [u.raw_output for u in updates if u.session_update == "tool_call_update"]
    assert "notes.txt" in outputs[-1]
    assert "removed" not in outputs[-1]
    assert await writer.exists("notes.txt")


async def test_going_back_to_default_mode_lets_the_agent_write_again(writer):
    model = offline_model([Write("a.txt", "x"), Reply("refused"), Write("a.txt", "x"), Reply("written")])
    session = await writer.create_session("pi", model=model)
    await writer.set_mode(session.session_id, "plan")
    assert (await writer.send_prompt(session.session_id, "one")).text == "refused"
    assert not await writer.exists("a.txt")
    await writer.set_mode(session.session_id, "default")
    assert (await writer.send_prompt(session.session_id, "two")).text == "written"
    assert await writer.read_file("a.txt", encoding="utf-8") == "x"


async def test_an_unknown_mode_is_refused_naming_the_modes(writer):
    session = await writer.create_session("pi")
    with pytest.raises(
        ValueError, match="unknown session mode 'yolo'; the modes are default, plan, accept_edits"
    ):
        await writer.set_mode(session.session_id, "yolo")
    assert (await writer.get_session(session.session_id)).mode == "default"
    with pytest.raises(errors.SessionNotFound):
        await writer.set_mode("s-missing", "plan")


async def test_the_mode_and_the_policy_outlive_sleep(start_registry):
    registry = await start_registry(writer=agent_os(software=[common, pi], options={"sleep_timeout": 0.2}))
    writer = registry.client().writer.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await writer.create_session("pi", permissions=["bash"])
    await writer.set_mode(session.session_id, "accept_edits")
    await next_event(slept, "actor.slept")
    [info] = await writer.list_sessions()
    assert (info.mode, info.permissions.ask) == ("accept_edits", ["bash"])


# --- set_model ----------------------------------------------------------------------------------


async def test_set_model_changes_the_model_from_the_next_turn_and_the_transcript_says_so(writer):
    first = offline_model([Reply("from the first model"), Reply("still the first")])
    session = await writer.create_session("pi", model=first)

    async def second_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts = [m for m in messages if isinstance(m, ModelRequest)]
        return ModelResponse(parts=[TextPart(f"second model, seeing {len(prompts)} requests")])

    second = FunctionModel(second_answer, model_name="second")
    turn = asyncio.ensure_future(writer.send_prompt(session.session_id, "one"))
    info = await writer.set_model(session.session_id, second)
    assert info.model == "function:agentos-offline"  # unchanged until the next turn
    assert (await turn).text == "from the first model"
    result = await writer.send_prompt(session.session_id, "two")
    assert result.text == "second model, seeing 2 requests"  # the conversation went on
    now = await writer.get_session(session.session_id)
    assert now.model == "function:second"
    notices = await notices_of(writer, session.session_id)
    assert "the model will be function:second from the next turn (given explicitly)" in notices
    assert "model changed from function:agentos-offline to function:second" in notices


async def test_set_model_refuses_a_model_it_cannot_use_and_keeps_the_old_one(writer):
    session = await writer.create_session("pi")
    with pytest.raises(errors.ModelNotAvailable, match="cannot tell which provider serves model 'gpt4all'"):
        await writer.set_model(session.session_id, "gpt4all")
    with pytest.raises(errors.ModelNotAvailable, match="unknown model provider 'nobody'"):
        await writer.set_model(session.session_id, "nobody:nothing")
    with pytest.raises(errors.ModelNotAvailable, match="needs an API key"):
        await writer.set_model(session.session_id, "anthropic:claude-sonnet-4-5")
    with pytest.raises(TypeError, match="model must be"):
        await writer.set_model(session.session_id, 42)
    assert (await writer.send_prompt(session.session_id, "hello")).stop_reason == "end_turn"
    assert (await writer.get_session(session.session_id)).model == "offline:agentos"


class PiWhoseProbeWaits(Pi):
    """`pi`, whose next session opened for a model alone (set_model's probe) waits to be let go."""

    def __init__(self) -> None:
        super().__init__()
        self.probing = asyncio.Event()
        self.let_go = asyncio.Event()

    async def open_session(self, request: SessionRequest) -> AgentSession:
        if not self.let_go.is_set() and request.model == "offline":
            self.probing.set()
            await self.let_go.wait()
        return await super().open_session(request)


async def test_a_session_closed_while_set_model_probes_keeps_no_keys_in_the_process(start_registry):
    slow = PiWhoseProbeWaits()
    registry = await start_registry(writer=agent_os(software=[common, slow]))
    writer = registry.client().writer.get_or_create(["probe"])
    session = await writer.create_session("pi", env={"SOME_API_KEY": "secret-0451"})
    assert _UNSAVED[session.session_id].env == {"SOME_API_KEY": "secret-0451"}
    changing = asyncio.ensure_future(writer.set_model(session.session_id, "offline"))
    await asyncio.wait_for(slow.probing.wait(), 10)
    await writer.close_session(session.session_id)
    assert session.session_id not in _UNSAVED
    slow.let_go.set()
    await changing
    assert session.session_id not in _UNSAVED  # the probe's end did not put the keys back


async def test_a_model_set_before_sleep_is_used_after_wake(start_registry):
    registry = await start_registry(
        writer=agent_os(software=[common, Pi(model="offline")], options={"sleep_timeout": 0.2})
    )
    writer = registry.client().writer.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    session = await writer.create_session("pi")
    await writer.send_prompt(session.session_id, "hello")

    async def new_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("the new model answers")])

    replacement = FunctionModel(new_answer, model_name="replacement")
    await writer.set_model(session.session_id, replacement)
    await next_event(slept, "actor.slept")
    result = await writer.send_prompt(session.session_id, "again")
    assert result.text == "the new model answers"


# --- how bash is judged (the host's parse, judged here) -----------------------------------------


def facts(command: str) -> ScriptFacts:
    return ScriptFacts.model_validate(analyze(command))


KITS: list[Toolkit] = [REVIEW]


@pytest.mark.parametrize(
    "command",
    [
        "ls -la",
        "cat a.txt | grep x | sort | uniq -c | head",
        "find . -name '*.py' -type f",
        "sed -n '1,20p' notes.txt",
        "sed -nE -e 's/a+/b/p' --expression='2p' /work/web/events.txt",
        "sort -u -k1,1 -t, in",
        "wc -l notes.txt 2>/dev/null",
        "cd src && ls",
        "f() { cat a; }; f",
        "agentos-review submit --help",
    ],
)
def test_plainly_read_only_commands_pass_plan_mode(command: str) -> None:
    assert plan_mode_problem(facts(command), KITS) is None


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("touch a", "touch is a command"),
        ("echo x >> log", "it writes to log"),
        ("cat a | tee b", "tee is a command"),
        ("sed -i 's/a/b/' f", "sed -i edits files"),
        ("sed 's/a/b/w out' f", "writes a file or runs a command"),
        ("sed '1w out' f", "writes a file or runs a command"),
        ("find . -delete", "find -delete"),
        ("find . -exec rm {} +", "find -exec"),
        ("sort -o out in", "sort -o writes a file"),
        ("sed -Ei 's/a/Z/' f", "sed -i edits files"),
        ("sed -ni '1p' f", "sed -i edits files"),
        ("sed --in-place=.bak 's/a/b/' f", "sed -i edits files"),
        ("sed -n '$!w out' f", "writes a file or runs a command"),
        ("sed -n '/a/Iw out' f", "writes a file or runs a command"),
        ("sed 'w/tmp/x' f", "writes a file or runs a command"),
        ("sed --expression='w out' f", "writes a file or runs a command"),
        ("sed --expression 'w out' f", "writes a file or runs a command"),
        ("sed -n -e '1p' -e'1w out' f", "writes a file or runs a command"),
        ("sed 's/a/b/gw out' f", "writes a file or runs a command"),
        ("sed -f prog.sed f", "sed -f runs a script from a file"),
        ("sed --file=prog.sed f", "sed -f runs a script from a file"),
        ("sed -s '1p' f", "sed -s is not known to be read-only"),
        ("sed --follow-symlinks '1p' f", "sed --follow-symlinks is not known"),
        ("sort -uo out in", "sort -o writes a file"),
        ("sort --out=o in", "sort -o writes a file"),
        ("sort --output=o in", "sort -o writes a file"),
        ("yq -i '.a = 1' f.yaml", "yq is a command"),
        ("yq --inplace '.a = 1' f.yaml", "yq is a command"),
        ("uniq in out", "uniq with two files"),
        ("$CMD a", "hides what it runs"),
        ("bash -c 'rm a'", "hides what it runs"),
        ("source ./script.sh", "hides what it runs"),
        ("echo $(rm a)", "rm is a command"),
        ('python3 -c \'open("a","w")\'', "python3 is a command"),
        ("xargs rm < list", "xargs is a command"),
        ("agentos-review submit --path a", "agentos-review is a host tool"),
        ("if then", "does not parse"),
    ],
)
def test_anything_that_may_change_things_is_refused_in_plan_mode(command: str, why: str) -> None:
    problem = plan_mode_problem(facts(command), KITS)
    assert problem is not None
    assert why in problem


def test_which_host_tools_a_command_may_use() -> None:
    assert host_tools_used(facts("ls; cat a"), KITS) == []
    assert host_tools_used(facts("agentos-review submit --path a"), KITS) == ["host:review.submit"]
    assert host_tools_used(facts("/usr/local/bin/agentos-review submit --path a"), KITS) == [
        "host:review.submit"
    ]
    assert host_tools_used(facts("eval agentos-review submit"), KITS) == ["host:review.submit"]
    assert host_tools_used(facts("my_function"), KITS) == ["host:review.submit"]
    assert host_tools_used(None, KITS) == ["host:review.submit"]


async def test_a_command_built_to_choke_the_judge_is_refused_and_the_vm_goes_on(writer):
    nested = "echo $(" * 3000 + ")" * 3000
    model = results_model(("bash", {"command": nested}), ("bash", {"command": "a|" * 100_000 + "b"}))
    session = await writer.create_session("pi", model=model)
    await writer.set_mode(session.session_id, "plan")
    deep, long = json.loads((await writer.send_prompt(session.session_id, "go")).text)
    assert "the command does not parse" in deep
    assert "nesting too deep" in deep
    assert "the command does not parse" in long
    assert (await writer.exec("echo alive")).stdout == "alive\n"
