"""Host tools: defined on the host, called as `agentos-<toolkit> <tool>` inside a VM."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from enum import StrEnum
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from agentos_nb import ToolContext, agent_os, errors, host_tool, toolkit
from agentos_nb.software import common
from agentos_nb.vm.host_calls import read_request
from agentos_nb.vm.shell import CommandCall
from agentos_nb.vm.tool_cli import HELP_TOKENS, render_argv
from agentos_nb.vm.tool_results import ToolFailure
from tests.conftest import next_event
from tests.test_tool_cli import SUBMIT_VALUES, Submit, _junk, review_toolkit

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[1]


class SubmitInput(BaseModel):
    path: str = Field(description="Path to the file to review")


async def submit(input: SubmitInput, ctx: ToolContext) -> dict[str, object]:
    """The seed's review tool, as far as files go (sessions come with the agents)."""
    writer = ctx.client.writer.get_or_create(["my-project"])
    reviewer = ctx.client.reviewer.get_or_create(["my-project"])
    content = await writer.read_file(input.path)
    await reviewer.write_file(input.path, content)
    return {"copied": input.path, "bytes": len(content)}


review = toolkit(
    name="review",
    description="Send code to the reviewer agent",
    tools={
        "submit": host_tool(
            description="Submit a file for code review",
            input_schema=SubmitInput,
            execute=submit,
            examples=[{"path": "/home/user/api.ts"}],
        )
    },
)


@pytest.fixture
async def seed(start_registry):
    registry = await start_registry(
        writer=agent_os(software=[common], toolkits=[review]), reviewer=agent_os(software=[common])
    )
    client = registry.client()
    return (
        registry,
        client.writer.get_or_create(["my-project"]),
        client.reviewer.get_or_create(["my-project"]),
    )


def _json(stdout: str) -> dict:
    assert stdout.endswith("\n"), stdout
    assert stdout.count("\n") == 1, stdout
    return json.loads(stdout)


async def test_the_seed_review_tool_copies_the_writers_file_into_the_reviewer(seed):
    _, writer, reviewer = seed
    await writer.write_file("/home/user/api.ts", "export const api = 1;\n")
    result = await writer.exec("agentos-review submit --path /home/user/api.ts")
    assert result.exit_code == 0, result
    assert _json(result.stdout) == {"ok": True, "result": {"copied": "/home/user/api.ts", "bytes": 22}}
    assert await reviewer.read_file("/home/user/api.ts") == b"export const api = 1;\n"


async def test_only_the_vm_given_the_toolkit_has_its_command(seed):
    _, writer, reviewer = seed
    assert (await writer.exec("which agentos-review")).stdout == "/usr/local/bin/agentos-review\n"
    await writer.write_file("/home/user/a.ts", "a")
    by_path = await writer.exec("/usr/local/bin/agentos-review submit --path /home/user/a.ts")
    assert (by_path.exit_code, _json(by_path.stdout)["ok"]) == (0, True)
    assert (await reviewer.exec("agentos-review submit --path x")).exit_code == 127


async def test_input_comes_by_equals_json_json_file_and_stdin(seed):
    _, writer, reviewer = seed
    await writer.write_file("/home/user/a.ts", "a")
    await writer.write_file("/home/user/req/input.json", '{"path": "/home/user/a.ts"}')
    commands = [
        "agentos-review submit --path=/home/user/a.ts",
        'agentos-review submit --json \'{"path": "/home/user/a.ts"}\'',
        "cd req && agentos-review submit --json-file input.json",
        'echo \'{"path": "/home/user/a.ts"}\' | agentos-review submit',
    ]
    for command in commands:
        result = await writer.exec(command)
        assert (result.exit_code, _json(result.stdout)["ok"]) == (0, True), (command, result)
    assert await reviewer.read_file("/home/user/a.ts") == b"a"


@pytest.mark.parametrize(
    ("command", "code", "exit_code", "named"),
    [
        ("agentos-review submit", "VALIDATION_ERROR", 2, "--path"),
        ("agentos-review submit --path", "VALIDATION_ERROR", 2, "--path"),
        ("agentos-review submit --path a --colour red", "VALIDATION_ERROR", 2, "--colour"),
        ("agentos-review submit stray", "VALIDATION_ERROR", 2, "stray"),
        ("agentos-review submit --json '{bad'", "VALIDATION_ERROR", 2, "--json"),
        ("agentos-review approve --path a", "TOOL_NOT_FOUND", 2, "approve"),
        ("agentos-review", "VALIDATION_ERROR", 2, "submit"),
        ("agentos-review submit --path /home/user/missing.ts", "EXECUTION_ERROR", 1, "/home/user/missing.ts"),
        ("agentos frobnicate", "VALIDATION_ERROR", 2, "frobnicate"),
    ],
)
async def test_failures_print_json_and_exit_non_zero(seed, command, code, exit_code, named):
    _, writer, _ = seed
    result = await writer.exec(command)
    body = _json(result.stdout)
    assert (result.exit_code, body["ok"], body["error"]) == (exit_code, False, code)
    assert named in body["message"]


async def test_help_for_the_toolkit_the_tool_and_list_tools(seed):
    _, writer, _ = seed
    kit_help = await writer.exec("agentos-review --help")
    assert kit_help.exit_code == 0
    assert "Send code to the reviewer agent" in kit_help.stdout
    assert "submit" in kit_help.stdout
    tool_help = (await writer.exec("agentos-review submit --help")).stdout
    for expected in (
        "--path",
        "Path to the file to review",
        "required",
        "agentos-review submit --path /home/user/api.ts",
    ):
        assert expected in tool_help
    listed = await writer.exec("agentos list-tools")
    assert listed.exit_code == 0
    assert "agentos-review submit" in listed.stdout
    instructions = await writer.read_file("/etc/agentos/instructions.md", encoding="utf-8")
    assert "agentos-review submit --path" in instructions


class Mode(StrEnum):
    fast = "fast"
    slow = "slow"


class ProbeInput(BaseModel):
    target: str = "."
    mode: Mode = Mode.fast
    retries: int = 0
    tags: list[str] = []
    dry_run: bool = False


def _probe_kit(execute, *, timeout: float = 30.0):
    return toolkit(
        name="probe",
        description="Tools that show what a host tool sees",
        tools={
            "run": host_tool(
                description="Run the probe", input_schema=ProbeInput, execute=execute, timeout=timeout
            )
        },
    )


async def test_ctx_names_the_caller_its_cwd_and_reaches_the_registry(start_registry):
    seen: list[ToolContext] = []

    async def execute(input: ProbeInput, ctx: ToolContext) -> dict[str, object]:
        seen.append(ctx)
        mine = await ctx.vm.read_file(ctx.resolve_path(input.target), encoding="utf-8")
        other = await ctx.client.other.get_or_create(["o"]).exists("/home/user")
        return {"mine": mine, "other_home": other, **input.model_dump(mode="json")}

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute)]), other=agent_os())
    vm = registry.client().vm.get_or_create(["caller"])
    await vm.write_file("/srv/data/note.txt", "hello")
    result = await vm.exec(
        "cd /srv/data && agentos-probe run --target note.txt --mode slow --tags a --tags b --dry-run"
    )
    assert result.exit_code == 0, result
    assert _json(result.stdout)["result"] == {
        "mine": "hello",
        "other_home": True,
        "target": "note.txt",
        "mode": "slow",
        "retries": 0,
        "tags": ["a", "b"],
        "dry_run": True,
    }
    (ctx,) = seen
    assert (ctx.key, ctx.cwd, ctx.toolkit, ctx.tool) == (("caller",), "/srv/data", "probe", "run")
    assert ctx.vm.name == "vm"


async def test_an_exception_in_execute_is_an_execution_error_not_a_crash(start_registry):
    async def execute(input: ProbeInput, ctx: ToolContext) -> None:
        if input.dry_run:
            raise errors.ToolError("nothing to do in a dry run")
        raise KeyError("missing-key")

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute)]))
    vm = registry.client().vm.get_or_create(["v"])
    with registry.bus.subscribe(types=["actor.crashed"]) as crashes:
        plain = await vm.exec("agentos-probe run")
        clean = await vm.exec("agentos-probe run --dry-run")
        assert crashes.get_nowait() == []
    assert plain.exit_code == 1
    assert _json(plain.stdout) == {
        "ok": False,
        "error": "EXECUTION_ERROR",
        "message": "KeyError: 'missing-key'",
    }
    assert _json(clean.stdout)["message"] == "nothing to do in a dry run"
    assert (await vm.exec("echo fine")).stdout == "fine\n"


def _sleeper(states: list[str]):
    """An execute that never finishes by itself, and records whether it was cancelled."""

    async def execute(input: ProbeInput, ctx: ToolContext) -> None:
        states.append("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            states.append("cancelled")
            raise

    return execute


async def test_a_timeout_cancels_execute_and_exits_1(start_registry):
    states: list[str] = []
    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(_sleeper(states), timeout=0.2)]))
    vm = registry.client().vm.get_or_create(["v"])
    result = await vm.exec("agentos-probe run; echo after=$?")
    assert result.stdout.splitlines()[1] == "after=1"
    body = json.loads(result.stdout.splitlines()[0])
    assert (body["error"], "0.2 s" in body["message"]) == ("TIMEOUT", True)
    assert states == ["started", "cancelled"]


async def test_stopping_the_calling_command_cancels_the_tool(start_registry):
    states: list[str] = []
    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(_sleeper(states))]))
    vm = registry.client().vm.get_or_create(["v"])
    result = await vm.exec("agentos-probe run", timeout=0.3)
    assert result.timed_out
    assert states == ["started", "cancelled"]


async def test_a_result_that_is_not_json_is_an_execution_error(start_registry):
    async def execute(input: ProbeInput, ctx: ToolContext) -> object:
        return object()

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute)]))
    vm = registry.client().vm.get_or_create(["v"])
    result = await vm.exec("agentos-probe run")
    assert (result.exit_code, _json(result.stdout)["error"]) == (1, "EXECUTION_ERROR")


async def test_tool_calls_are_events_with_caller_input_result_and_duration(seed):
    registry, writer, _ = seed
    await writer.write_file("/home/user/api.ts", "x")
    with registry.bus.subscribe(types=["tool."]) as calls:
        await writer.exec("agentos-review submit --path /home/user/api.ts")
        await writer.exec("agentos-review submit --path /home/user/none.ts")
        events = [await next_event(calls, "tool.call_started"), await next_event(calls, "tool.call_finished")]
        failed = [await next_event(calls, "tool.call_started"), await next_event(calls, "tool.call_finished")]
    started, finished = events
    assert (started.actor.name, started.actor.key, started.toolkit, started.tool) == (
        "writer",
        ("my-project",),
        "review",
        "submit",
    )
    assert started.input == finished.input == {"path": "/home/user/api.ts"}
    assert (finished.ok, finished.result, finished.call_id) == (
        True,
        {"copied": "/home/user/api.ts", "bytes": 1},
        started.call_id,
    )
    assert finished.duration >= 0
    assert (failed[1].ok, failed[1].error) == (False, "EXECUTION_ERROR")
    assert "/home/user/none.ts" in failed[1].message


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (lambda: toolkit(name="Review", description="d", tools={"t": _tool()}), "lowercase"),
        (lambda: toolkit(name="re_view", description="d", tools={"t": _tool()}), "hyphens"),
        (lambda: toolkit(name="review-", description="d", tools={"t": _tool()}), "hyphens"),
        (lambda: toolkit(name="review", description="d", tools={"Bad Tool": _tool()}), "tool name"),
        (lambda: toolkit(name="review", description="x" * 201, tools={"t": _tool()}), "200"),
        (lambda: toolkit(name="review", description="d", tools={}), "no tools"),
        (lambda: toolkit(name="review", description="d", tools={"t": "nope"}), "host_tool"),
        (lambda: host_tool(description="x" * 201, input_schema=SubmitInput, execute=submit), "200"),
        (lambda: host_tool(description="d", input_schema=dict, execute=submit), "pydantic"),
        (lambda: host_tool(description="d", input_schema=SubmitInput, execute=submit, timeout=0), "timeout"),
        (
            lambda: host_tool(description="d", input_schema=SubmitInput, execute=submit, examples=[{"p": 1}]),
            "example 1",
        ),
        (lambda: agent_os(toolkits=[review, review]), "twice"),
    ],
)
def test_definitions_are_checked_when_made(make, complaint):
    with pytest.raises(errors.InvalidDefinition, match=complaint):
        make()


def _tool():
    return host_tool(description="A tool", input_schema=SubmitInput, execute=submit)


async def test_a_tool_may_run_commands_in_the_vm_that_called_it(start_registry):
    async def execute(input: ProbeInput, ctx: ToolContext) -> dict[str, object]:
        inner = await ctx.vm.exec(f"cat {input.target} | wc -c", cwd=ctx.cwd)
        return {"inner": inner.stdout.strip()}

    registry = await start_registry(vm=agent_os(software=[common], toolkits=[_probe_kit(execute)]))
    vm = registry.client().vm.get_or_create(["v"])
    await vm.write_file("/home/user/five.txt", "12345")
    result = await vm.exec("agentos-probe run --target five.txt", timeout=5)
    assert _json(result.stdout) == {"ok": True, "result": {"inner": "5"}}


@settings(max_examples=150, deadline=None)
@given(SUBMIT_VALUES, _junk(), st.booleans())
def test_malformed_argv_exits_2_with_a_json_error_naming_the_culprit(values, junk, first):
    """The parser's property, as the VM shows it: the command's stdout and exit code."""
    fault, culprit = junk
    assume(culprit not in HELP_TOKENS)  # those ask for help, as the next test shows
    valid = render_argv(Submit, values)
    argv = ["submit", *fault, *valid] if first else ["submit", *valid, *fault]
    call = CommandCall(name="agentos-review", argv=argv, stdin=None, env={}, cwd="/home/user")
    with pytest.raises(ToolFailure) as rejected:
        read_request(review_toolkit(), call, read_text=lambda path, cwd: "{}")
    body = _json(rejected.value.stdout)
    assert (rejected.value.exit_code, body["ok"], body["error"]) == (2, False, "VALIDATION_ERROR")
    assert culprit in body["message"] or repr(culprit) in body["message"]


async def test_help_is_asked_where_a_flag_stands_not_as_a_value(seed):
    _, writer, reviewer = seed
    await writer.write_file("/home/user/-h", "odd name")
    asked = await writer.exec("agentos-review submit --path x --help")
    assert asked.exit_code == 0
    assert asked.stdout.startswith("usage: agentos-review submit")
    assert (await writer.exec("agentos-review submit -h")).stdout == asked.stdout
    as_value = await writer.exec("agentos-review submit --path -h")
    assert _json(as_value.stdout)["ok"] is True
    assert await reviewer.read_file("/home/user/-h") == b"odd name"


async def test_what_execute_may_do_wrong_is_an_execution_error(start_registry):
    import sys

    async def execute(input: ProbeInput, ctx: ToolContext) -> object:
        if input.target == "exit":
            sys.exit(3)
        return float("nan")

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute)]))
    vm = registry.client().vm.get_or_create(["v"])
    with registry.bus.subscribe(types=["tool.call_finished"]) as finished:
        exited = await vm.exec("agentos-probe run --target exit")
        event = await next_event(finished, "tool.call_finished")
    assert (exited.exit_code, _json(exited.stdout)["message"]) == (1, "SystemExit: 3")
    assert (event.ok, event.error) == (False, "EXECUTION_ERROR")
    nan = await vm.exec("agentos-probe run")
    assert (nan.exit_code, _json(nan.stdout)["error"]) == (1, "EXECUTION_ERROR")


async def test_a_plain_function_may_be_a_tool(start_registry):
    def execute(input: ProbeInput, ctx: ToolContext) -> dict[str, object]:
        return {"where": ctx.resolve_path(input.target)}

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute)]))
    vm = registry.client().vm.get_or_create(["v"])
    result = await vm.exec("agentos-probe run --target sub/x", cwd="/tmp")
    assert _json(result.stdout) == {"ok": True, "result": {"where": "/tmp/sub/x"}}
    escaping = await vm.exec("agentos-probe run --target ../../../etc")
    assert "outside the VM" in _json(escaping.stdout)["message"]


async def test_rejected_calls_are_events_too(seed):
    registry, writer, _ = seed
    with registry.bus.subscribe(types=["tool.call_finished"]) as finished:
        await writer.exec("agentos-review submit --colour red")
        event = await next_event(finished, "tool.call_finished")
    assert (event.tool, event.ok, event.error, event.input) == (
        "submit",
        False,
        "VALIDATION_ERROR",
        {"argv": ["--colour", "red"]},
    )


async def test_an_unreadable_json_file_is_a_usage_error(seed):
    _, writer, _ = seed
    for flag in ("--json-file=''", "--json-file /../x", "--json-file /nope.json"):
        result = await writer.exec(f"agentos-review submit {flag}")
        assert (result.exit_code, _json(result.stdout)["error"]) == (2, "VALIDATION_ERROR"), flag


def test_a_tool_stub_run_where_host_commands_are_missing_fails_without_recursing(tmp_path):
    """The engine has no depth limit for a script on PATH that runs itself: a stub that
    `exec`ed its own name would crash the whole process. It runs in a child to be safe."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import asyncio\n"
        "from agentos_nb.vm.shell import Shell, ShellLimits\n"
        "from agentos_nb.vm.machine import vm_spec\n"
        "from agentos_nb.vm.software import VmSetup\n"
        "from agentos_nb.vm import archive\n"
        "from tests.test_host_tools import review\n"
        "async def main():\n"
        "    spec = vm_spec(VmSetup(), (review,), ShellLimits(), None)\n"
        "    shell = Shell(limits=ShellLimits(), commands={})\n"
        "    for path, (content, mode) in spec.boot_files.items():\n"
        "        archive.place_file(shell, path, content, mode)\n"
        "    run = await shell.run('/usr/local/bin/agentos-review submit --path x')\n"
        "    print(run.exit_code, run.stderr.strip())\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("127 ")
    assert "agentos-review" in done.stdout


async def test_a_blocking_plain_function_times_out_without_stopping_the_runtime(start_registry):
    import threading

    release = threading.Event()

    def execute(input: ProbeInput, ctx: ToolContext) -> dict[str, object]:
        release.wait(5)  # blocks its thread, never the loop
        return {}

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute, timeout=0.3)]))
    vm = registry.client().vm.get_or_create(["v"])
    call = asyncio.ensure_future(vm.exec("agentos-probe run"))
    ticks = 0
    while not call.done():
        await asyncio.sleep(0.01)
        ticks += 1
    release.set()
    assert _json(call.result().stdout)["error"] == "TIMEOUT"
    assert ticks > 10  # the loop kept turning while the tool blocked


async def test_a_cancelled_error_raised_by_the_tool_itself_is_an_execution_error(start_registry):
    async def execute(input: ProbeInput, ctx: ToolContext) -> None:
        raise asyncio.CancelledError

    registry = await start_registry(vm=agent_os(toolkits=[_probe_kit(execute)]))
    vm = registry.client().vm.get_or_create(["v"])
    result = await vm.exec("agentos-probe run")
    assert (result.exit_code, _json(result.stdout)["error"]) == (1, "EXECUTION_ERROR")


_CALLS_THE_TOOL = "agentos-review submit --path /home/user/a.ts"


@pytest.mark.parametrize(
    "command",
    [
        "sh run.sh",
        "bash run.sh",
        "source run.sh",
        ". ./run.sh",
        "cat run.sh | bash",
        "./run.sh",
        "/home/user/run.sh",
        "mytool",
        "mytool; mytool() { :; }",
        "$(cat name.txt) submit --path /home/user/a.ts",
        'tool=$(cat name.txt); "$tool" submit --path /home/user/a.ts',
        "xargs -a args.txt $(cat name.txt)",
        "f() { $(cat name.txt) submit --path /home/user/a.ts; }; f",
        "awk -f t.awk",
        'awk \'BEGIN { system("agent" "os-review submit --path /home/user/a.ts") }\'',
        'c=$(cat hook); trap "$c" EXIT',
        'x=$(cat hook.p); echo "${x@P}" > /dev/null',
    ],
)
async def test_tools_are_reachable_however_the_command_is_spelled(seed, command):
    """Scripts that name only the engine's commands run on a lighter interpreter without the
    host commands; every way of reaching a host command must still find them."""
    registry, writer, reviewer = seed
    await writer.write_files(
        {
            "/home/user/a.ts": "a",
            "/home/user/run.sh": f"#!/bin/sh\n{_CALLS_THE_TOOL}\n",
            "/usr/local/bin/mytool": f"#!/bin/sh\n{_CALLS_THE_TOOL}\n",
            "/home/user/name.txt": "agentos-review",
            "/home/user/args.txt": "submit --path /home/user/a.ts",
            "/home/user/t.awk": f'BEGIN {{ system("{_CALLS_THE_TOOL}") }}\n',
            "/home/user/hook": _CALLS_THE_TOOL,
            "/home/user/hook.p": f"$({_CALLS_THE_TOOL})",
        }
    )
    await writer.exec("chmod +x run.sh /usr/local/bin/mytool")
    with registry.bus.subscribe(types=["tool.call_finished"]) as calls:
        result = await writer.exec(command)
        finished = await next_event(calls, "tool.call_finished")
    assert finished.ok, (command, result)
    assert await reviewer.read_file("/home/user/a.ts") == b"a"


DEEP = "[" * 3000 + "]" * 3000
HUGE = "9" * 5000


async def test_hostile_json_is_a_usage_error_with_one_json_line_and_an_event(seed):
    """Deep nesting and huge numbers, by every way JSON comes in: exit 2, one JSON line naming
    the source, and a tool event; never a Python traceback."""
    registry, writer, _ = seed
    await writer.write_file("/home/user/deep.json", '{"path": ' + DEEP + "}")
    await writer.write_file("/home/user/huge.json", '{"path": "a", "extra": ' + HUGE + "}")
    cases = [
        ("agentos-review submit --json-file deep.json", "--json-file"),
        ("agentos-review submit --json-file huge.json", "--json-file"),
        (f"agentos-review submit --json '{{\"path\": {DEEP}}}'", "--json"),
        ("agentos-review submit < deep.json", "stdin"),
        ("agentos-review submit < huge.json", "stdin"),
    ]
    with registry.bus.subscribe(types=["tool.call_finished"]) as finished:
        for command, source in cases:
            result = await writer.exec(command)
            assert len(result.stdout.splitlines()) == 1, command
            body = _json(result.stdout)
            assert (result.exit_code, body["ok"], body["error"]) == (2, False, "VALIDATION_ERROR"), command
            assert source in body["message"], command
            assert len(body["message"]) < 400, command
            assert "Traceback" not in result.stderr, command
            event = await next_event(finished, "tool.call_finished")
            assert event.error == "VALIDATION_ERROR", command


_FLAG_WORDS = st.sampled_from(["--path", "--json", "--json-file", "--no-path", "--path=", "-h", "--"])
_WORDS = st.one_of(
    _FLAG_WORDS,
    st.text(max_size=12),
    st.just(DEEP),
    st.just(HUGE),
    st.just("{" + '"path": ' + HUGE + "}"),
)
_STDIN = st.one_of(st.none(), st.text(max_size=40), st.just(DEEP), st.just('{"path": ' + HUGE + "}"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=6), _STDIN)
def test_any_argv_and_stdin_gives_a_request_help_or_one_json_line_with_exit_1_or_2(argv, stdin):
    """The command's contract for whatever an agent types: a tool call, help, or a failure that
    is exactly one JSON line with exit 1 or 2; no other exception escapes."""
    call = CommandCall(name="agentos-review", argv=["submit", *argv], stdin=stdin, env={}, cwd="/home/user")
    try:
        read_request(review_toolkit(), call, read_text=lambda path, cwd: DEEP)
    except ToolFailure as failure:
        failed: ToolFailure | None = failure
    else:
        failed = None  # a tool call or help: the command goes on
    if failed is not None:
        [line] = failed.stdout.splitlines()
        body = json.loads(line)
        assert (set(body), body["ok"]) == ({"ok", "error", "message"}, False)
        assert failed.exit_code in (1, 2)


async def test_a_tool_that_names_its_callers_refuses_the_others_with_forbidden(start_registry):
    ran: list[tuple[str, ...]] = []

    async def execute(input: ProbeInput, ctx: ToolContext) -> str:
        ran.append(ctx.key)
        return "ran"

    kit = toolkit(
        name="guarded",
        description="Tools for some callers only",
        tools={
            "by-name": host_tool(
                description="Writers only", input_schema=ProbeInput, execute=execute, callers=["writer"]
            ),
            "by-key": host_tool(
                description="Trusted keys only",
                input_schema=ProbeInput,
                execute=execute,
                callers=lambda name, key: key == ("trusted",),
            ),
        },
    )
    registry = await start_registry(
        writer=agent_os(software=[common], toolkits=[kit]),
        stranger=agent_os(software=[common], toolkits=[kit]),
    )
    client = registry.client()
    writer, stranger = client.writer.get_or_create(["w"]), client.stranger.get_or_create(["trusted"])
    assert _json((await writer.exec("agentos-guarded by-name --target x")).stdout)["result"] == "ran"
    assert _json((await stranger.exec("agentos-guarded by-key --target x")).stdout)["result"] == "ran"
    with registry.bus.subscribe(types=["tool.call_rejected", "tool.call_started"]) as seen:
        refused = await stranger.exec("agentos-guarded by-name --target x")
        event = await next_event(seen, "tool.call_rejected")
        also = await writer.exec("agentos-guarded by-key --json '[[[['")  # refused before its input is read
    body = _json(refused.stdout)
    assert (refused.exit_code, body["ok"], body["error"]) == (2, False, "FORBIDDEN")
    assert "stranger/trusted" in body["message"]
    assert (event.actor.name, event.toolkit, event.tool) == ("stranger", "guarded", "by-name")
    assert (also.exit_code, _json(also.stdout)["error"]) == (2, "FORBIDDEN")
    assert ran == [("w",), ("trusted",)]


def test_callers_must_be_names_or_a_function():
    for callers in ("writer", [1, 2]):
        with pytest.raises(errors.InvalidDefinition, match="callers must be"):
            host_tool(description="A tool", input_schema=SubmitInput, execute=submit, callers=callers)
