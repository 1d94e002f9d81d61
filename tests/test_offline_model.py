"""The offline model, driven directly through pydantic-ai's direct API, without a VM.

A tiny fake VM (a dict of files) answers the tool calls in the formats the session loop uses, so a
test plays whole turns: the seed writer and reviewer, seed 002's prompts, scripts, and failures.
"""

from __future__ import annotations

import json
import re
import shlex
import string
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic
import pydantic_ai.models
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import FunctionModel

from agentos_nb.agents.offline import (
    OFFLINE_MODEL_NAME,
    Bash,
    Edit,
    Read,
    Reply,
    ToolCall,
    Write,
    offline_model,
)
from agentos_nb.agents.tool_inputs import TOOL_INPUTS
from agentos_nb.errors import ValidationError
from agentos_nb.vm.tool_cli import tool_reference
from agentos_nb.vm.tool_results import error_result, ok_result
from agentos_nb.vm.toolkits import host_tool, toolkit


@pytest.fixture(autouse=True)
def no_real_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", False)


class SubmitInput(BaseModel):
    path: str = Field(description="Path to the file to review")


async def _submit(input: SubmitInput, ctx: Any) -> dict[str, str]:
    return {"review": "never called: the fake VM answers"}


REVIEW_KIT = toolkit(
    name="review",
    description="Send code to the reviewer agent",
    tools={
        "submit": host_tool(
            description="Submit a file for code review", input_schema=SubmitInput, execute=_submit
        )
    },
)
OS_INSTRUCTIONS = "You are a coding agent in a sandboxed Linux VM. The working directory is /home/user."
INSTRUCTIONS = f"{OS_INSTRUCTIONS}\n\nHost tools, run as commands:\n\n{tool_reference([REVIEW_KIT])}"
REVIEW_TEXT = "- Line 10: `any` loses type safety.\n- Line 45: JSON.parse is unguarded."
CWD = "/home/user"

WRITER_PROMPT = "Write a REST API at /home/user/api.ts, then submit it for review."
REVIEWER_PROMPT = "Review the code at /home/user/api.ts and list any issues."
BULLET = re.compile(r"^- Line (\d+): (`+) ?(.*?) ?\2 — ", re.M)

TS_CODE = """\
import express from "express";

const app = express();
const users: any[] = [];

app.post("/users", (req, res) => {
  const user = JSON.parse(req.body);
  if (user.id == null) console.log("no id");
  users.push(user);
  res.send(user);
});

app.listen(8080);
"""


# --- a fake VM and a fake loop --------------------------------------------------------------------


@dataclass
class FakeVM:
    """Files in a dict, and the four tools answering as the session loop does."""

    files: dict[str, str] = field(default_factory=dict)
    review_output: str = ok_result({"review": REVIEW_TEXT})
    read_only: bool = False
    bash_log: list[str] = field(default_factory=list)
    host_tool: Callable[[list[str]], Awaitable[str]] | None = None
    """Answers `agentos-review ...` in place of `review_output`, as a host tool would."""

    def path(self, path: str) -> str:
        return path if path.startswith("/") else f"{CWD}/{path.removeprefix('./')}"

    async def run(self, tool: str, args: Mapping[str, Any]) -> str:
        if tool == "bash" and self.host_tool and args["command"].startswith("agentos-review "):
            return await self.host_tool(shlex.split(args["command"]))
        return getattr(self, tool)(**args)

    def read(self, path: str, offset: int | None = None, limit: int | None = None) -> str:
        full = self.path(path)
        if full not in self.files:
            return f"Error: {full}: No such file or directory"
        lines = self.files[full].splitlines(keepends=True)
        first = offset or 1
        last = min(len(lines), first - 1 + (limit or 2000))
        text = "".join(lines[first - 1 : last])
        if last < len(lines):
            text += f"{'' if text.endswith(chr(10)) else chr(10)}[lines {first}-{last} of {len(lines)}; "
            text += f"continue with offset={last + 1}]"
        return text

    def write(self, path: str, content: str) -> str:
        full = self.path(path)
        if self.read_only:
            return f"Error: {full}: Read-only file system"
        self.files[full] = content
        return f"Wrote {len(content.encode())} bytes to {full}"

    def edit(self, path: str, old_text: str, new_text: str) -> str:
        full = self.path(path)
        self.files[full] = self.files.get(full, "").replace(old_text, new_text, 1)
        return f"Edited {full}\n--- a{full}\n+++ b{full}\n-{old_text}\n+{new_text}"

    def bash(self, command: str, timeout: float | None = None) -> str:
        self.bash_log.append(command)
        words = shlex.split(command)
        if words[:2] == ["ls", "-la"]:
            folder = self.path(words[2]) if len(words) > 2 else CWD
            names = sorted(
                {p[len(folder) + 1 :].split("/")[0] for p in self.files if p.startswith(folder + "/")}
            )
            rows = []
            for name in names:
                is_folder = f"{folder}/{name}" not in self.files
                size = 0 if is_folder else len(self.files[f"{folder}/{name}"])
                rows.append(
                    f"{'drwxr-xr-x' if is_folder else '-rw-r--r--'} {size:>8} 2026-01-01 00:00 {name}"
                )
            return "\n".join(rows) + "\n" if rows else "(no output)"
        if words[:2] == ["agentos-review", "submit"]:
            return self.review_output
        return "(no output)"


@dataclass
class Turn:
    text: str
    calls: list[tuple[str, dict[str, Any]]]
    responses: list[ModelResponse]


class Session:
    """The loop, reduced: send the history, run the tool calls the model returns, until it replies."""

    def __init__(self, model: FunctionModel, vm: FakeVM, instructions: str = INSTRUCTIONS) -> None:
        self.model = model
        self.vm = vm
        self.instructions = instructions
        self.history: list[ModelMessage] = []

    async def request(self, *, stream: bool = False) -> ModelResponse:
        if not stream:
            return await model_request(self.model, self.history)
        async with model_request_stream(self.model, self.history) as streamed:
            async for _ in streamed:
                pass
            return streamed.get()

    async def turn(self, prompt: str, *, stream: bool = False, max_requests: int = 5) -> Turn:
        self.history.append(ModelRequest(parts=[UserPromptPart(prompt)], instructions=self.instructions))
        calls: list[tuple[str, dict[str, Any]]] = []
        responses: list[ModelResponse] = []
        for _ in range(max_requests):
            response = await self.request(stream=stream)
            self.history.append(response)
            responses.append(response)
            tool_calls = [part for part in response.parts if isinstance(part, ToolCallPart)]
            if not tool_calls:
                text = "".join(part.content for part in response.parts if isinstance(part, TextPart))
                return Turn(text, calls, responses)
            returns = []
            for call in tool_calls:
                calls.append((call.tool_name, call.args_as_dict()))
                output = await self.vm.run(call.tool_name, call.args_as_dict())
                returns.append(ToolReturnPart(call.tool_name, output, call.tool_call_id))
            self.history.append(ModelRequest(parts=returns, instructions=self.instructions))
        pytest.fail(f"the turn took more than {max_requests} model requests")


def cited(review: str) -> Iterator[tuple[int, str]]:
    """(line number, quoted text) of every finding of a review."""
    for match in BULLET.finditer(review):
        yield int(match.group(1)), match.group(3)


def assert_cites_real_lines(review: str, code: str, *, at_least: int = 2) -> None:
    lines = code.split("\n")
    findings = list(cited(review))
    assert len(findings) >= at_least, review
    for number, text in findings:
        assert text.removesuffix("…") in lines[number - 1], (number, text, lines[number - 1])


# --- seed 000: the writer and the reviewer ------------------------------------------------------


@pytest.mark.anyio
async def test_the_writer_writes_then_submits_for_review_then_quotes_the_review() -> None:
    vm = FakeVM()
    turn = await Session(offline_model(), vm).turn(WRITER_PROMPT)

    assert [tool for tool, _ in turn.calls] == ["write", "bash"]
    assert turn.calls[0][1]["path"] == "/home/user/api.ts"
    assert turn.calls[1][1] == {"command": "agentos-review submit --path /home/user/api.ts"}
    code = vm.files["/home/user/api.ts"]
    assert 30 <= code.count("\n") <= 80
    assert "createServer" in code
    assert "/home/user/api.ts" in turn.text
    assert f"({code.count(chr(10))} lines)" in turn.text
    assert REVIEW_TEXT in turn.text


@pytest.mark.anyio
async def test_the_reviewer_reads_the_file_and_cites_its_real_lines() -> None:
    vm = FakeVM()
    await Session(offline_model(), vm).turn(WRITER_PROMPT)
    turn = await Session(offline_model(), vm).turn(REVIEWER_PROMPT)

    assert turn.calls == [("read", {"path": "/home/user/api.ts"})]
    first, _, findings = turn.text.partition("\n\n")
    assert first.startswith("Summary:")
    assert "/home/user/api.ts" in first
    code = vm.files["/home/user/api.ts"]
    assert_cites_real_lines(findings, code, at_least=4)
    quoted = dict(cited(turn.text))
    assert any("any[]" in text for text in quoted.values())
    assert any("JSON.parse" in text for text in quoted.values())


@pytest.mark.anyio
async def test_the_seed_writer_and_reviewer_together() -> None:
    """Seed 000 with the host tool played by the test: copy the file to the reviewer's VM, prompt a
    reviewer session, and hand its reply back as the tool's result."""
    writer_vm, reviewer_vm = FakeVM(), FakeVM()
    reviews: list[str] = []

    async def submit(argv: list[str]) -> str:
        path = argv[argv.index("--path") + 1]
        reviewer_vm.files[path] = writer_vm.files[path]
        reviewer = Session(offline_model(), reviewer_vm)
        reviews.append((await reviewer.turn(f"Review the code at {path} and list any issues.")).text)
        return ok_result({"review": reviews[-1]})

    writer_vm.host_tool = submit
    turn = await Session(offline_model(), writer_vm).turn(WRITER_PROMPT)

    assert [tool for tool, _ in turn.calls] == ["write", "bash"]
    assert len(reviews) == 1
    assert reviews[0].startswith("Summary:")
    assert reviews[0] in turn.text
    assert_cites_real_lines(reviews[0], writer_vm.files["/home/user/api.ts"], at_least=4)


@pytest.mark.anyio
async def test_the_review_command_quotes_the_path_for_the_shell() -> None:
    vm = FakeVM()
    turn = await Session(offline_model(), vm).turn(
        "Write a REST API at `/home/user/my api.ts`, then submit it for review."
    )
    assert turn.calls[1][1]["command"] == "agentos-review submit --path '/home/user/my api.ts'"
    assert "/home/user/my api.ts" in vm.files


@pytest.mark.anyio
async def test_a_failed_review_is_reported_with_its_error() -> None:
    vm = FakeVM(review_output=error_result("EXECUTION_ERROR", "the reviewer crashed") + "[exit code 1]")
    turn = await Session(offline_model(), vm).turn(WRITER_PROMPT)
    assert "EXECUTION_ERROR" in turn.text
    assert "the reviewer crashed" in turn.text


@pytest.mark.anyio
async def test_a_review_command_without_json_is_reported() -> None:
    vm = FakeVM(review_output="bash: agentos-review: command not found\n[exit code 127]")
    turn = await Session(offline_model(), vm).turn(WRITER_PROMPT)
    assert "failed" in turn.text
    assert "command not found" in turn.text


@pytest.mark.anyio
async def test_a_result_of_another_shape_is_shown_whole() -> None:
    vm = FakeVM(review_output=ok_result({"score": 7, "notes": ["tidy"]}))
    turn = await Session(offline_model(), vm).turn(WRITER_PROMPT)
    assert '"score": 7' in turn.text
    assert "tidy" in turn.text


@pytest.mark.anyio
async def test_without_a_review_tool_the_writer_writes_and_says_so() -> None:
    vm = FakeVM()
    turn = await Session(offline_model(), vm, instructions=OS_INSTRUCTIONS).turn(WRITER_PROMPT)
    assert [tool for tool, _ in turn.calls] == ["write"]
    assert "no review tool" in turn.text
    assert "/home/user/api.ts" in vm.files


@pytest.mark.anyio
async def test_the_review_tool_is_found_by_name_and_flag() -> None:
    class CheckInput(BaseModel):
        file: str
        strict: bool = False

    kits = [
        toolkit("lint", "Linters", {"run": host_tool("Run the linters", CheckInput, _submit)}),
        toolkit("code-review", "Reviews", {"request": host_tool("Ask for a review", CheckInput, _submit)}),
    ]
    vm = FakeVM()
    vm.bash = lambda command, timeout=None: ok_result({"review": command})  # type: ignore[method-assign]
    instructions = f"{OS_INSTRUCTIONS}\n\n{tool_reference(kits)}"
    turn = await Session(offline_model(), vm, instructions).turn(WRITER_PROMPT)
    assert turn.calls[1][1]["command"] == "agentos-code-review request --file /home/user/api.ts"


@pytest.mark.anyio
async def test_asked_only_to_write_it_writes_then_replies() -> None:
    vm = FakeVM()
    turn = await Session(offline_model(), vm).turn("Write a todo service at /home/user/app.py")
    assert [tool for tool, _ in turn.calls] == ["write"]
    code = vm.files["/home/user/app.py"]
    compile(code, "app.py", "exec")
    assert "todos" in code
    assert "/home/user/app.py" in turn.text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/home/user/api.ts", ["createServer", ": any[]"]),
        ("/home/user/server.js", ["createServer", "JSON.parse"]),
        ("/home/user/app.py", ["http.server", "dataclass"]),
    ],
)
@pytest.mark.anyio
async def test_code_drafts_are_realistic_by_extension(path: str, words: list[str]) -> None:
    vm = FakeVM()
    await Session(offline_model(), vm).turn(f"Write a REST API for books at {path}.")
    code = vm.files[path]
    assert 30 <= code.count("\n") <= 80
    assert "books" in code
    for word in words:
        assert word in code
    if path.endswith(".js"):
        assert ": any" not in code
        assert "interface" not in code


@pytest.mark.parametrize("path", ["/home/user/notes.md", "/home/user/plan.txt", "/home/user/run.sh"])
@pytest.mark.anyio
async def test_other_extensions_get_a_sensible_text(path: str) -> None:
    vm = FakeVM()
    turn = await Session(offline_model(), vm).turn(f"Create a plan at {path}")
    assert vm.files[path].strip()
    assert "plan" in vm.files[path].lower() or "run" in vm.files[path]
    assert path in turn.text


@pytest.mark.anyio
async def test_a_json_draft_is_valid_json() -> None:
    vm = FakeVM()
    await Session(offline_model(), vm).turn("Create a config at /home/user/config.json")
    assert json.loads(vm.files["/home/user/config.json"])["name"] == "config"


@pytest.mark.parametrize(
    ("prompt", "path"),
    [
        ("Write a REST API in Node.js at /home/user/api.ts.", "/home/user/api.ts"),
        ('Write a REST API at "/home/user/a b.ts", then submit it.', "/home/user/a b.ts"),
        ("Write a REST API at 'src/api.js'.", "src/api.js"),
        ("Write a REST API at api.ts", "api.ts"),
        ("Please implement a small server in `./server.py`, thanks!", "./server.py"),
        ("Write a REST API (GET /users/:id) at /home/user/api.ts;", "/home/user/api.ts"),
    ],
)
@pytest.mark.anyio
async def test_the_target_path_is_found_in_the_prompt(prompt: str, path: str) -> None:
    turn = await Session(offline_model(), FakeVM()).turn(prompt)
    assert turn.calls[0] == ("write", {"path": path, "content": turn.calls[0][1]["content"]})


@pytest.mark.anyio
async def test_a_path_that_is_not_a_target_is_not_overwritten() -> None:
    vm = FakeVM(files=dict(PROJECT))
    turn = await Session(offline_model(), vm).turn("Create a summary of /home/user/README.md for me")
    assert [tool for tool, _ in turn.calls] == ["bash", "read"]
    assert vm.files == PROJECT


@pytest.mark.anyio
async def test_review_in_the_words_of_a_file_is_not_a_request_to_submit() -> None:
    vm = FakeVM()
    turn = await Session(offline_model(), vm).turn("Write a code review checklist at /home/user/review.md")
    assert [tool for tool, _ in turn.calls] == ["write"]
    assert vm.bash_log == []


@pytest.mark.anyio
async def test_a_failed_write_is_reported() -> None:
    turn = await Session(offline_model(), FakeVM(read_only=True)).turn(WRITER_PROMPT)
    assert [tool for tool, _ in turn.calls] == ["write"]
    assert "could not write" in turn.text
    assert "Read-only file system" in turn.text


# --- reviewing ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_review_cites_python_problems() -> None:
    code = (
        "import json\n\n"
        "def load(text, cache={}):\n"
        "    try:\n"
        "        return json.loads(text)\n"
        "    except:\n"
        "        print('bad')\n"
    )
    vm = FakeVM(files={"/home/user/load.py": code})
    turn = await Session(offline_model(), vm).turn(
        "Review the code at /home/user/load.py and list any issues."
    )
    assert_cites_real_lines(turn.text, code, at_least=3)
    numbers = {number for number, _ in cited(turn.text)}
    assert {3, 6, 7} <= numbers  # the mutable default, the bare except, the print
    assert 5 not in numbers  # json.loads is guarded by the try


@pytest.mark.anyio
async def test_a_review_of_a_missing_file_says_why() -> None:
    turn = await Session(offline_model(), FakeVM()).turn(REVIEWER_PROMPT)
    assert "could not read" in turn.text
    assert "No such file or directory" in turn.text


@pytest.mark.anyio
async def test_a_review_of_a_long_file_uses_the_first_page() -> None:
    lines = [f"const value{n} = {n};" for n in range(1, 2501)]
    lines[1499] = "// TODO: tidy this up"
    lines[2399] = "console.log(value1);"
    code = "\n".join(lines) + "\n"
    vm = FakeVM(files={"/home/user/big.js": code})
    turn = await Session(offline_model(), vm).turn("Review the code at /home/user/big.js")
    assert "lines 1-2000 of 2500" in turn.text
    assert_cites_real_lines(turn.text, code)
    numbers = {number for number, _ in cited(turn.text)}
    assert 1500 in numbers
    assert 2400 not in numbers


@pytest.mark.anyio
async def test_an_empty_file_has_nothing_to_review() -> None:
    vm = FakeVM(files={"/home/user/empty.ts": ""})
    turn = await Session(offline_model(), vm).turn("Review /home/user/empty.ts")
    assert "empty" in turn.text
    assert not list(cited(turn.text))


@pytest.mark.anyio
async def test_inline_code_is_reviewed_and_the_summary_written_to_the_path() -> None:
    """Seed 002's completable reviewer: the caller then reads /home/user/review.txt."""
    vm = FakeVM()
    prompt = f"Review this code and write a summary to /home/user/review.txt:\n\n{TS_CODE}"
    turn = await Session(offline_model(), vm).turn(prompt)

    assert [(tool, args["path"]) for tool, args in turn.calls] == [("write", "/home/user/review.txt")]
    summary = vm.files["/home/user/review.txt"]
    assert summary.startswith("Summary:")
    assert_cites_real_lines(summary, TS_CODE, at_least=5)
    assert "/home/user/review.txt" in turn.text
    assert summary.splitlines()[0] in turn.text


@pytest.mark.anyio
async def test_inline_code_in_a_fence_is_reviewed_in_the_reply() -> None:
    turn = await Session(offline_model(), FakeVM()).turn(f"Please review this:\n\n```ts\n{TS_CODE}```\n")
    assert turn.calls == []
    assert_cites_real_lines(turn.text, TS_CODE, at_least=5)


@pytest.mark.anyio
async def test_a_file_reviewed_into_another_file() -> None:
    vm = FakeVM(files={"/home/user/api.ts": TS_CODE})
    turn = await Session(offline_model(), vm).turn(
        "Review /home/user/api.ts and save the review to /home/user/notes/review.md."
    )
    assert [(tool, args["path"]) for tool, args in turn.calls] == [
        ("read", "/home/user/api.ts"),
        ("write", "/home/user/notes/review.md"),
    ]
    assert_cites_real_lines(vm.files["/home/user/notes/review.md"], TS_CODE)


@pytest.mark.anyio
async def test_a_failed_summary_write_still_gives_the_review() -> None:
    vm = FakeVM(read_only=True)
    turn = await Session(offline_model(), vm).turn(
        f"Review this code and write a summary to /out.txt:\n\n{TS_CODE}"
    )
    assert "could not write the review" in turn.text
    assert_cites_real_lines(turn.text, TS_CODE)


@pytest.mark.anyio
async def test_cited_text_with_backticks_stays_one_code_span() -> None:
    code = "const a = `x ${y}`;\nconst b = a == 1;\n"
    turn = await Session(offline_model(), FakeVM()).turn(f"Review this code:\n\n{code}")
    assert_cites_real_lines(turn.text, code)
    assert "``const a = `x ${y}`;``" in turn.text


CODE_LINE = st.text(
    alphabet=st.sampled_from(
        string.ascii_letters + string.digits + string.punctuation.replace("`", "") + " \t"
    ),
    max_size=150,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(CODE_LINE, min_size=1, max_size=25))
def test_any_code_with_two_lines_gets_two_findings_citing_real_lines(lines: list[str]) -> None:
    code = "\n".join(lines)
    assume(code.strip())
    prompt = f"Review this code:\n\n{code}"
    messages = [ModelRequest(parts=[UserPromptPart(prompt)], instructions=OS_INSTRUCTIONS)]
    reply = anyio.run(model_request, offline_model(), messages).parts[0].content
    body = prompt.strip().partition("\n\n")[2]
    non_blank = sum(1 for line in body.split("\n") if line.strip())
    assert_cites_real_lines(reply, body, at_least=2 if non_blank >= 2 else 0)


ANY_PROMPT = st.text(max_size=200) | st.builds(
    "".join,
    st.tuples(
        st.sampled_from(
            ["Write a REST API", "Review", "Create", "Fix", "Review this code and save it to r.txt:\n\n"]
        ),
        st.text(max_size=60),
        st.sampled_from(
            [" at /home/user/x.ts", " api.py.", " `a b.js`", " 'q.txt'", " ./src", ", then submit it."]
        ),
    ),
)


@settings(max_examples=80, deadline=None)
@given(ANY_PROMPT)
def test_any_prompt_gets_valid_tool_calls_and_a_reply_within_five_requests(prompt: str) -> None:
    async def play() -> Turn:
        return await Session(offline_model(), FakeVM(files=dict(PROJECT))).turn(prompt)

    turn = anyio.run(play)
    for tool, args in turn.calls:
        TOOL_INPUTS[tool].model_validate(args)
    assert turn.text


# --- looking around: seed 002's other prompts -----------------------------------------------------

PROJECT = {
    "/home/user/auth.test.ts": 'import { login } from "./auth";\n\ntest("login", async () => {});\n',
    "/home/user/README.md": "# Project\n\nA demo.\n",
    "/home/user/src/auth.ts": "export function login() {}\n",
}


@pytest.mark.parametrize(
    ("prompt", "calls", "words"),
    [
        ("Review PR #123", [("bash", {"command": "ls -la"})], ["pull request"]),
        (
            "Fix the flaky test in auth.test.ts",
            [("bash", {"command": "ls -la"}), ("read", {"path": "auth.test.ts", "limit": 200})],
            ["`auth.test.ts` has 3 lines", 'import { login } from "./auth";'],
        ),
        (
            "Update the README",
            [("bash", {"command": "ls -la"}), ("read", {"path": "README.md", "limit": 200})],
            ["`README.md` has 3 lines", "# Project"],
        ),
        (
            "Investigate and fix this issue:\n\nTitle: Login redirect broken\n\n"
            "Users are redirected to /undefined after login on mobile",
            [("bash", {"command": "ls -la"})],
            ["Login redirect broken", "reproduce the problem"],
        ),
        (
            "What does ./src look like?",
            [("bash", {"command": "ls -la"}), ("bash", {"command": "ls -la ./src"})],
            ["`./src/` holds 1 entry"],
        ),
    ],
)
@pytest.mark.anyio
async def test_other_prompts_look_around_and_say_it_is_the_offline_model(
    prompt: str, calls: list[tuple[str, dict[str, Any]]], words: list[str]
) -> None:
    turn = await Session(offline_model(), FakeVM(files=dict(PROJECT))).turn(prompt)
    assert turn.calls == calls
    assert "offline model" in turn.text
    assert "ANTHROPIC_API_KEY" in turn.text
    assert "holds 3 entries: `README.md`, `auth.test.ts`, `src/`." in turn.text
    for word in words:
        assert word in turn.text


@pytest.mark.anyio
async def test_asked_to_explain_a_file_it_reads_it_and_explains_it() -> None:
    turn = await Session(offline_model(), FakeVM(files=dict(PROJECT))).turn("Explain /home/user/src/auth.ts")
    assert turn.calls == [("read", {"path": "/home/user/src/auth.ts", "limit": 400})]
    assert "TypeScript program of 1 line" in turn.text
    assert "`login`" in turn.text


@pytest.mark.anyio
async def test_looking_around_names_files_that_are_not_there() -> None:
    turn = await Session(offline_model(), FakeVM()).turn("Fix the flaky test in auth.test.ts")
    assert turn.calls == [("bash", {"command": "ls -la"})]
    assert "/home/user is empty" in turn.text
    assert "I don't see `auth.test.ts`" in turn.text


@pytest.mark.anyio
async def test_a_failed_listing_is_reported() -> None:
    vm = FakeVM()
    vm.bash = lambda command, timeout=None: (
        "ls: cannot open directory '.': Permission denied\n[exit code 2]\n"
    )  # type: ignore[method-assign]
    turn = await Session(offline_model(), vm).turn("Fix the flaky test in auth.test.ts")
    assert turn.calls == [("bash", {"command": "ls -la"})]
    assert "`ls -la` failed: ls: cannot open directory '.': Permission denied" in turn.text


@pytest.mark.anyio
async def test_looking_around_reads_gnu_ls_output() -> None:
    vm = FakeVM(files=dict(PROJECT))
    gnu = (
        "total 12\n"
        "drwxr-xr-x 3 user user 4096 Jan  1 00:00 .\n"
        "drwxr-xr-x 3 root root 4096 Jan  1  2024 ..\n"
        "-rw-r--r-- 1 user user   60 Jan  1 00:00 auth.test.ts\n"
        "lrwxrwxrwx 1 user user    9 Jan  1 00:00 docs -> README.md\n"
    )
    vm.bash = lambda command, timeout=None: gnu  # type: ignore[method-assign]
    turn = await Session(offline_model(), vm).turn("Fix the flaky test in auth.test.ts")
    assert turn.calls[1] == ("read", {"path": "auth.test.ts", "limit": 200})
    assert "holds 2 entries: `auth.test.ts`, `docs`" in turn.text


# --- scripts ------------------------------------------------------------------------------------

SCRIPT_OBJECTS = [
    Bash("echo hi", timeout=5),
    Read("/home/user/a.txt", offset=2, limit=3),
    Write("/home/user/b.txt", "x\n"),
    Edit("/home/user/b.txt", "x", "y"),
    ToolCall("bash", {"command": "pwd"}),
    Reply("All done."),
]
SCRIPT_DICTS = [
    {"bash": {"command": "echo hi", "timeout": 5}},
    {"read": {"path": "/home/user/a.txt", "offset": 2, "limit": 3}},
    {"write": {"path": "/home/user/b.txt", "content": "x\n"}},
    {"edit": {"path": "/home/user/b.txt", "old_text": "x", "new_text": "y"}},
    {"tool_call": {"tool": "bash", "args": {"command": "pwd"}}},
    {"reply": "All done."},
]
SCRIPTED_CALLS = [
    ("bash", {"command": "echo hi", "timeout": 5}),
    ("read", {"path": "/home/user/a.txt", "offset": 2, "limit": 3}),
    ("write", {"path": "/home/user/b.txt", "content": "x\n"}),
    ("edit", {"path": "/home/user/b.txt", "old_text": "x", "new_text": "y"}),
    ("bash", {"command": "pwd"}),
]


@pytest.mark.parametrize("script", [SCRIPT_OBJECTS, SCRIPT_DICTS], ids=["objects", "dicts"])
@pytest.mark.anyio
async def test_a_script_is_played_step_by_step(script: Sequence[Any]) -> None:
    vm = FakeVM(files={"/home/user/a.txt": "1\n2\n3\n4\n5\n"})
    turn = await Session(offline_model(script), vm).turn("Anything at all", max_requests=6)
    assert turn.calls == SCRIPTED_CALLS
    assert turn.text == "All done."
    assert vm.files["/home/user/b.txt"] == "y\n"


@pytest.mark.anyio
async def test_short_dict_forms_and_mixed_steps() -> None:
    model = offline_model([{"bash": "ls"}, {"read": "/home/user/a.txt"}, Reply("ok"), {"reply": "second"}])
    session = Session(model, FakeVM(files={"/home/user/a.txt": "a\n"}))
    first = await session.turn("one")
    assert first.calls == [("bash", {"command": "ls"}), ("read", {"path": "/home/user/a.txt"})]
    assert first.text == "ok"
    assert (await session.turn("two")).text == "second"


@pytest.mark.anyio
async def test_when_the_script_runs_out_the_default_takes_over() -> None:
    vm = FakeVM()
    session = Session(offline_model([Bash("echo warming up")]), vm)
    turn = await session.turn(WRITER_PROMPT)
    assert [tool for tool, _ in turn.calls] == ["bash", "write", "bash"]
    assert turn.calls[0][1] == {"command": "echo warming up"}
    assert REVIEW_TEXT in turn.text

    again = await session.turn("Review PR #123")
    assert again.calls == [("bash", {"command": "ls -la"})]
    assert "offline model" in again.text


@pytest.mark.anyio
async def test_a_script_spans_turns() -> None:
    session = Session(offline_model([Reply("first"), Bash("true"), Reply("second")]), FakeVM())
    assert (await session.turn("a")).text == "first"
    second = await session.turn("b")
    assert (second.calls, second.text) == ([("bash", {"command": "true"})], "second")
    assert "offline model" in (await session.turn("c")).text


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ([{"bsh": "ls"}], ["step 0", "bsh"]),
        ([Bash("ls"), {"write": {"path": "/a"}}], ["step 1", "content"]),
        ([{"bash": "ls", "reply": "x"}], ["step 0", "exactly one"]),
        ([{}], ["step 0", "exactly one"]),
        ([Reply("a"), Reply("b"), 42], ["step 2", "int"]),
        ([{"tool_call": {"tool": "read", "args": {}}}], ["step 0", "path"]),
        ([{"tool_call": {"tool": "rm", "args": {}}}], ["step 0", "tool"]),
        ([{"read": {"path": "/a", "offset": 0}}], ["step 0", "offset"]),
        ([{"bash": {"command": "ls", "timeout": -1}}], ["step 0", "timeout"]),
        ("ls", ["list of steps"]),
    ],
)
def test_a_bad_step_is_a_clear_error_naming_it(script: Any, words: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        offline_model(script)
    for word in words:
        assert word in str(caught.value)


def test_bad_step_objects_fail_when_made() -> None:
    with pytest.raises(pydantic.ValidationError, match="offset"):
        Read("/a", offset=0)
    with pytest.raises(pydantic.ValidationError, match="command"):
        ToolCall("bash", {"cmd": "ls"})
    with pytest.raises(pydantic.ValidationError, match="Unexpected keyword argument"):
        Write("/a", "x", mode="w")  # type: ignore[call-arg]


# --- the model itself ---------------------------------------------------------------------------


def test_the_model_is_a_function_model_named_agentos_offline() -> None:
    model = offline_model()
    assert isinstance(model, FunctionModel)
    assert model.model_name == OFFLINE_MODEL_NAME == "agentos-offline"
    assert model.function is not None
    assert model.stream_function is not None
    assert pydantic_ai.models.ALLOW_MODEL_REQUESTS is False


@pytest.mark.anyio
async def test_the_same_history_gives_the_same_response() -> None:
    vm = FakeVM()
    session = Session(offline_model(), vm)
    await session.turn(WRITER_PROMPT)
    for end in range(1, len(session.history) + 1):
        if not isinstance(session.history[end - 1], ModelRequest):
            continue
        history = session.history[:end]
        first = await model_request(offline_model(), history)
        second = await model_request(session.model, history)
        assert first.parts == second.parts
        assert first.usage == second.usage
        assert first.model_name == second.model_name == OFFLINE_MODEL_NAME


@pytest.mark.parametrize(
    ("prompt", "files"),
    [
        (WRITER_PROMPT, {}),
        (REVIEWER_PROMPT, {"/home/user/api.ts": TS_CODE}),
        (f"Review this code and write a summary to /home/user/review.txt:\n\n{TS_CODE}", {}),
        ("Update the README", PROJECT),
    ],
)
@pytest.mark.anyio
async def test_streaming_gives_the_same_responses(prompt: str, files: dict[str, str]) -> None:
    plain = await Session(offline_model(), FakeVM(files=dict(files))).turn(prompt)
    streamed_session = Session(offline_model(), FakeVM(files=dict(files)))
    streamed = await streamed_session.turn(prompt, stream=True)
    assert [response.parts for response in streamed.responses] == [
        response.parts for response in plain.responses
    ]
    assert streamed.text == plain.text


@pytest.mark.anyio
async def test_a_long_reply_streams_in_a_few_chunks_and_a_call_in_two() -> None:
    vm = FakeVM(files={"/home/user/api.ts": TS_CODE})
    session = Session(offline_model(), vm)
    session.history = [ModelRequest(parts=[UserPromptPart(REVIEWER_PROMPT)], instructions=INSTRUCTIONS)]
    async with model_request_stream(session.model, session.history) as streamed:
        events = [event async for event in streamed]
    assert sum(isinstance(event, PartDeltaEvent) for event in events) == 1  # the arguments
    call = streamed.get().parts[0]
    assert isinstance(call, ToolCallPart)
    session.history += [
        streamed.get(),
        ModelRequest(parts=[ToolReturnPart("read", TS_CODE, call.tool_call_id)]),
    ]
    async with model_request_stream(session.model, session.history) as streamed:
        deltas = [event async for event in streamed if isinstance(event, PartDeltaEvent)]
    assert 1 <= len(deltas) <= 10


@pytest.mark.anyio
async def test_usage_is_estimated_from_the_text() -> None:
    session = Session(offline_model(), FakeVM())
    turn = await session.turn(WRITER_PROMPT)
    write, submit, reply = turn.responses
    for response in turn.responses:
        assert response.usage.input_tokens > len(INSTRUCTIONS) // 5
        assert response.usage.output_tokens > 0
    assert write.usage.output_tokens > 300  # the file's content
    assert write.usage.input_tokens < submit.usage.input_tokens < reply.usage.input_tokens


@pytest.mark.anyio
async def test_a_failed_outcome_counts_as_a_failure_even_without_error_text() -> None:
    history: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart(REVIEWER_PROMPT)], instructions=INSTRUCTIONS)
    ]
    model = offline_model()
    call = (await model_request(model, history)).parts[0]
    assert isinstance(call, ToolCallPart)
    history += [
        ModelResponse(parts=[call]),
        ModelRequest(
            parts=[ToolReturnPart("read", "permission denied", call.tool_call_id, outcome="failed")]
        ),
    ]
    reply = (await model_request(model, history)).parts[0]
    assert isinstance(reply, TextPart)
    assert "could not read" in reply.content
    assert "permission denied" in reply.content


@pytest.mark.anyio
async def test_a_prompt_given_as_a_list_of_texts_is_read() -> None:
    history = [ModelRequest(parts=[UserPromptPart(["Write a REST API", "at /home/user/api.ts"])])]
    call = (await model_request(offline_model(), history)).parts[0]
    assert isinstance(call, ToolCallPart)
    assert call.args_as_dict()["path"] == "/home/user/api.ts"
