"""The offline model: a deterministic, scriptable stand-in for an LLM, used when no API key is set.

Why it exists: Binder, CI and the tests have no API key, yet every seed example must run and mean
something. So a session without a key gets this model, a pydantic-ai `FunctionModel` that answers
each request from the message history alone: the same history always gives the same response.

By default it plays the seeds' parts: asked to write code at a path (and submit it for review) it
writes a small, plausible, slightly imperfect file and calls the review tool it finds in its tool
reference; asked to review code it reads it and lists findings that cite real lines; asked anything
else it looks around the working directory and says that it is the offline model. A script of
steps (`offline_model(script=[Bash("ls"), Reply("done")])`) takes precedence until it runs out.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import shlex
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, assert_never

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextContent,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.usage import RequestUsage

from agentos_nb.agents.tool_inputs import TOOL_INPUTS
from agentos_nb.errors import ValidationError

__all__ = [
    "OFFLINE_MODEL_NAME",
    "Bash",
    "Edit",
    "Read",
    "Reply",
    "Step",
    "ToolCall",
    "Write",
    "offline_model",
]

OFFLINE_MODEL_NAME = "agentos-offline"

_CWD = "/home/user"
_READ_LIMIT = 200  # lines the look-around reads of a file: enough to describe it
_QUOTE_WIDTH = 80  # longest line text quoted in a reply

# --- script steps: the public boundary ----------------------------------------------------------

_STRICT = ConfigDict(extra="forbid")


@pydantic_dataclass(frozen=True, config=_STRICT)
class Bash:
    """Run a shell command in the VM: `Bash("ls -la")`."""

    command: str
    timeout: float | None = Field(None, gt=0)


@pydantic_dataclass(frozen=True, config=_STRICT)
class Read:
    """Read a file, or `limit` lines of it from line `offset`: `Read("/home/user/api.ts")`."""

    path: str
    offset: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)


@pydantic_dataclass(frozen=True, config=_STRICT)
class Write:
    """Write a whole file: `Write("/home/user/a.txt", "hello\\n")`."""

    path: str
    content: str


@pydantic_dataclass(frozen=True, config=_STRICT)
class Edit:
    """Replace one exact, unique piece of a file's text."""

    path: str
    old_text: str
    new_text: str


@pydantic_dataclass(frozen=True, config=_STRICT)
class ToolCall:
    """Any of the four tools with raw arguments, checked against that tool's schema:
    `ToolCall("bash", {"command": "ls", "timeout": 5})`."""

    tool: Literal["read", "write", "edit", "bash"]
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _args_fit_the_tool(self) -> ToolCall:
        try:
            TOOL_INPUTS[self.tool].model_validate(self.args)
        except pydantic.ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, item['loc'])) or 'args'}: {item['msg']}"
                for item in error.errors(include_url=False)
            )
            raise ValueError(f"args do not fit the {self.tool} tool: {problems}") from None
        return self


@pydantic_dataclass(frozen=True, config=_STRICT)
class Reply:
    """Answer with text, which ends the turn: `Reply("Done.")`."""

    text: str


Step = Bash | Read | Write | Edit | ToolCall | Reply
_STEP_TYPES = (Bash, Read, Write, Edit, ToolCall, Reply)
_STEP_KEYS = ("bash", "read", "write", "edit", "tool_call", "reply")


class _StepMapping(BaseModel):
    """A step as a one-key dict, for notebook users: `{"bash": "ls"}`, `{"read": "/a.ts"}`,
    `{"reply": "done"}`, `{"write": {"path": ..., "content": ...}}`, `{"edit": {...}}`,
    `{"bash": {"command": ..., "timeout": 5}}`, `{"tool_call": {"tool": "bash", "args": {...}}}`."""

    model_config = _STRICT

    bash: Bash | None = None
    read: Read | None = None
    write: Write | None = None
    edit: Edit | None = None
    tool_call: ToolCall | None = None
    reply: Reply | None = None

    @field_validator("bash", "read", "reply", mode="before")
    @classmethod
    def _text_is_the_main_field(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if isinstance(value, str):
            return {{"bash": "command", "read": "path", "reply": "text"}[info.field_name or ""]: value}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> _StepMapping:
        if len(self._given()) != 1:
            raise ValueError(f"give exactly one of the keys {', '.join(_STEP_KEYS)}")
        return self

    def _given(self) -> list[Step]:
        return [step for key in _STEP_KEYS if (step := getattr(self, key)) is not None]

    def step(self) -> Step:
        return self._given()[0]


@dataclass(frozen=True, slots=True)
class _Action:
    """One response: a call of `tool` with `text` as its JSON arguments, or (tool None) a reply."""

    tool: str | None
    text: str


def _call(tool: str, **args: Any) -> _Action:
    return _Action(tool, json.dumps({k: v for k, v in args.items() if v is not None}, ensure_ascii=False))


def _reply(text: str) -> _Action:
    return _Action(None, text)


def _action_of(step: Step) -> _Action:
    match step:
        case Bash(command=command, timeout=timeout):
            return _call("bash", command=command, timeout=timeout)
        case Read(path=path, offset=offset, limit=limit):
            return _call("read", path=path, offset=offset, limit=limit)
        case Write(path=path, content=content):
            return _call("write", path=path, content=content)
        case Edit(path=path, old_text=old_text, new_text=new_text):
            return _call("edit", path=path, old_text=old_text, new_text=new_text)
        case ToolCall(tool=tool, args=args):
            return _Action(tool, json.dumps(args, ensure_ascii=False))
        case Reply(text=text):
            return _reply(text)
        case _:
            assert_never(step)


def _checked_script(script: Sequence[Step | Mapping[str, Any]]) -> tuple[_Action, ...]:
    if isinstance(script, str | bytes | Mapping):
        raise ValidationError("offline_model script must be a list of steps, not a single value")
    actions = []
    for index, step in enumerate(script):
        if isinstance(step, Mapping):
            try:
                step = _StepMapping.model_validate(dict(step)).step()
            except pydantic.ValidationError as error:
                raise ValidationError.from_pydantic(f"offline_model script step {index}", error) from None
        elif not isinstance(step, _STEP_TYPES):
            raise ValidationError(
                f"offline_model script step {index} is invalid: expected Bash, Read, Write, Edit, ToolCall "
                f"or Reply, or a one-key dict such as {{'bash': 'ls'}}; got {type(step).__name__}"
            )
        actions.append(_action_of(step))
    return tuple(actions)


# --- the model ----------------------------------------------------------------------------------


def offline_model(script: Sequence[Step | Mapping[str, Any]] = ()) -> FunctionModel:
    """A model for one session that needs no API key and answers deterministically.

    `script` steps are answered first, one per model request, across the whole session; then the
    default behaviour takes over. The model keeps no state: the number of steps already answered
    is the number of model responses in the history, so replaying a history (after a kernel
    restart, or in a test) gives the same answers, and one model object could serve any number of
    sessions. A bad step raises `ValidationError` here, naming its index.
    """
    actions = _checked_script(script)

    async def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        instructions = _instructions(messages, info)
        action = _decide(messages, instructions, actions)
        part = (
            TextPart(action.text)
            if action.tool is None
            else ToolCallPart(action.tool, action.text, _call_id(messages))
        )
        usage = RequestUsage(
            input_tokens=_input_tokens(messages, instructions), output_tokens=_tokens(action.text)
        )
        return ModelResponse(parts=[part], usage=usage)

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
        action = _decide(messages, _instructions(messages, info), actions)
        if action.tool is None:
            for chunk in _chunks(action.text):
                yield chunk
        else:
            yield {0: DeltaToolCall(name=action.tool, tool_call_id=_call_id(messages))}
            yield {0: DeltaToolCall(json_args=action.text)}

    return FunctionModel(respond, stream_function=stream, model_name=OFFLINE_MODEL_NAME)


def _call_id(messages: Sequence[ModelMessage]) -> str:
    """Unique within a session (its history only grows) and the same for the same history."""
    return f"offline-{len(messages)}"


def _instructions(messages: Sequence[ModelMessage], info: AgentInfo) -> str:
    if info.instructions:
        return info.instructions
    for message in reversed(messages):
        if isinstance(message, ModelRequest) and message.instructions:
            return message.instructions
    return ""


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def _input_tokens(messages: Sequence[ModelMessage], instructions: str) -> int:
    """About a token per four characters of everything a real model would be sent."""
    chars = len(instructions)
    for message in messages:
        for part in message.parts:
            if isinstance(part, UserPromptPart | ToolReturnPart):
                chars += len(part.content) if isinstance(part.content, str) else len(str(part.content))
            elif isinstance(part, TextPart):
                chars += len(part.content)
            elif isinstance(part, ToolCallPart):
                chars += len(part.args) if isinstance(part.args, str) else len(str(part.args))
    return chars // 4 + 1


def _chunks(text: str) -> list[str]:
    """A reply in a few pieces of whole lines (about 256 characters each), as a real stream comes."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        current += line
        if len(current) >= 256:
            chunks.append(current)
            current = ""
    if current or not chunks:
        chunks.append(current)
    return chunks


# --- reading the history ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Result:
    """A tool call of this turn and what the loop sent back for it; a failure is an `Error: ` text,
    a bash command's `[exit code N]` line, or a return whose outcome is not a success."""

    tool: str
    output: str
    ok: bool


def _decide(messages: Sequence[ModelMessage], instructions: str, script: tuple[_Action, ...]) -> _Action:
    turn = _turn_start(messages)
    prompt = _prompt_text(messages[turn]) if turn >= 0 else ""
    own = turn + 1
    if script:
        answered = 0
        before_turn = 0
        for index, message in enumerate(messages):
            if isinstance(message, ModelResponse):
                answered += 1
                before_turn += index < turn
        if answered < len(script):
            return script[answered]
        # The default behaviour's own steps start after the last scripted response of this turn.
        scripted_in_turn = max(0, len(script) - before_turn)
        while scripted_in_turn:
            if isinstance(messages[own], ModelResponse):
                scripted_in_turn -= 1
            own += 1
    return _default(_plan(prompt), _results(messages, own), instructions)


def _turn_start(messages: Sequence[ModelMessage]) -> int:
    """The index of the last request holding a user prompt, or -1."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, ModelRequest) and any(isinstance(p, UserPromptPart) for p in message.parts):
            return index
    return -1


def _prompt_text(request: ModelMessage) -> str:
    texts: list[str] = []
    for part in request.parts:
        if isinstance(part, UserPromptPart):
            if isinstance(part.content, str):
                texts.append(part.content)
            else:
                texts.extend(
                    item if isinstance(item, str) else item.content
                    for item in part.content
                    if isinstance(item, str | TextContent)
                )
    return "\n".join(texts)


def _results(messages: Sequence[ModelMessage], start: int) -> list[_Result]:
    calls: dict[str, str] = {}
    results: list[_Result] = []
    for message in messages[start:]:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls[part.tool_call_id] = part.tool_name
            elif isinstance(part, ToolReturnPart) and part.tool_call_id in calls:
                tool = calls.pop(part.tool_call_id)
                output = part.content if isinstance(part.content, str) else part.model_response_str()
                exited = tool == "bash" and (output.startswith("[exit code ") or "\n[exit code " in output)
                ok = part.outcome == "success" and not output.startswith("Error: ") and not exited
                results.append(_Result(tool, output, ok))
    return results


# --- understanding the prompt -------------------------------------------------------------------

_QUOTED_OR_WORD = re.compile(
    r"`([^`\n]+)`|\"([^\"\n]+)\"|(?<![\w'])'([^'\n]+)'(?!\w)|((?:~|\.{1,2})?/?[\w@+][\w.@+/-]*)"
)
_BARE_WORD = re.compile(r"(?:~|\.{1,2})?/?[\w@+][\w.@+/-]*")
_FILE_NAME = re.compile(r"[\w@+-][\w.@+-]*\.[A-Za-z][A-Za-z0-9]{0,7}")
_NOT_FILES = frozenset({"e.g", "i.e"})
_WORDS = re.compile(r"[a-z0-9]+")
_WRITE_VERB = re.compile(r"\b(?:write|create|implement|build|generate|scaffold|draft)\b")
_REVIEW_VERB = re.compile(r"\b(?:review|audit|critique)\b")
_OUTPUT_VERB = re.compile(r"\b(?:write|save|put|store|record)\b")
_SUBMIT = re.compile(r"\bsubmit\b|\bfor (?:a )?(?:code )?review\b|\b(?:get|have) it reviewed\b")
_WORD_BEFORE = re.compile(r"(\w+)[\s`'\"(]*\Z")
_TARGET_WORDS = frozenset(
    {"at", "to", "in", "into", "as", "called", "named", "file", "under"}
    | {"write", "create", "implement", "build", "generate", "scaffold", "draft"}
)
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_RESOURCES = frozenset(
    {
        "user",
        "todo",
        "task",
        "note",
        "book",
        "product",
        "item",
        "order",
        "post",
        "comment",
        "event",
        "message",
        "customer",
        "project",
        "article",
        "movie",
        "recipe",
    }
)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the prompt asks for, worked out once per prompt."""

    kind: Literal["write", "review", "explore"]
    prompt: str
    words: frozenset[str]
    paths: tuple[str, ...]
    target: str = ""  # the file to write, or to review
    submit: bool = False  # write, then submit it for review
    inline: str = ""  # code to review, given in the prompt
    output: str = ""  # where to write the review


def _paths(text: str) -> list[str]:
    """Path-like words, in order: absolute or containing a slash, or file names with an extension;
    quoted ones may hold spaces; a trailing period or comma is not part of a path."""
    found: list[str] = []
    for match in _QUOTED_OR_WORD.finditer(text):
        quoted = match.group(1) or match.group(2) or match.group(3)
        if quoted is None:
            candidates = [match.group(4)]
        elif _is_path(quoted.strip()):
            candidates = [quoted.strip()]
        else:
            candidates = _BARE_WORD.findall(quoted)
        for candidate in candidates:
            candidate = candidate.rstrip(".,:;!?)")
            if _is_path(candidate) and candidate not in found:
                found.append(candidate)
    return found


def _is_path(word: str) -> bool:
    if not word or "://" in word or word.endswith("/") or any(c in word for c in "\n\t"):
        return False
    name = word.rsplit("/", 1)[-1]
    has_extension = _FILE_NAME.fullmatch(name) is not None and name not in _NOT_FILES
    if "/" not in word:
        return has_extension
    if word.startswith("/"):
        return has_extension or word.count("/") >= 2
    return has_extension or word.startswith(("./", "../", "~/"))


def _is_target(header: str, path: str) -> bool:
    """Whether `path` is where to write: it follows "at", "to", "in", ... or the verb itself
    ("Write a REST API at api.ts", "Create notes.md"), unlike "a summary of api.ts"."""
    before = _WORD_BEFORE.search(header, 0, header.find(path))
    return before is not None and before.group(1).lower() in _TARGET_WORDS


def _ranked(paths: Sequence[str]) -> tuple[str, ...]:
    """Files in a folder first (`/home/user/api.ts`), then bare file names (`api.ts`), then the rest
    (folders): "an API in Node.js at /home/user/api.ts" is about api.ts."""

    def rank(path: str) -> int:
        is_file = _FILE_NAME.fullmatch(path.rsplit("/", 1)[-1]) is not None
        return 0 if is_file and "/" in path else 1 if is_file else 2

    return tuple(sorted(paths, key=rank))


@functools.lru_cache(maxsize=128)
def _plan(prompt: str) -> _Plan:
    header, _, body = prompt.strip().partition("\n\n")
    lower = header.lower()
    words = frozenset(_WORDS.findall(prompt.lower()))
    every_path = _ranked(_paths(prompt))
    explore = _Plan("explore", prompt, words, every_path)
    review = _REVIEW_VERB.search(lower)
    write = _WRITE_VERB.search(lower)
    if review and (write is None or review.start() < write.start()):
        output_verb = _OUTPUT_VERB.search(lower, review.end())
        output_paths = _paths(header[output_verb.end() :]) if output_verb else []
        output = output_paths[0] if output_paths else ""
        sources = [p for p in _ranked(_paths(header)) if p != output]
        if sources:
            return _Plan("review", prompt, words, every_path, target=sources[0], output=output)
        fenced = _FENCE.search(body)
        code = fenced.group(1) if fenced else body
        if code.strip():
            return _Plan("review", prompt, words, every_path, inline=code, output=output)
        return explore
    if write:
        targets = [path for path in _ranked(_paths(header)) if _is_target(header, path)]
        if targets:
            submit = _SUBMIT.search(lower, write.end()) is not None
            return _Plan("write", prompt, words, every_path, target=targets[0], submit=submit)
    return explore


# --- the default behaviour ----------------------------------------------------------------------


def _default(plan: _Plan, done: list[_Result], instructions: str) -> _Action:
    if plan.kind == "write":
        return _write_flow(plan, done, instructions)
    if plan.kind == "review":
        return _review_flow(plan, done)
    return _explore_flow(plan, done)


def _write_flow(plan: _Plan, done: list[_Result], instructions: str) -> _Action:
    """write → (bash: the review tool) → reply."""
    content, description = _draft(plan.target, plan.prompt)
    if not done:
        return _call("write", path=plan.target, content=content)
    if not done[0].ok:
        return _reply(f"I could not write `{plan.target}`: {_error_text(done[0].output)}")
    wrote = f"I wrote `{plan.target}` ({_line_count(content)} lines): {description}."
    if not plan.submit:
        return _reply(wrote)
    tool = _review_tool(instructions)
    if tool is None:
        return _reply(
            f"{wrote}\n\nYou asked me to submit it for review, but no review tool is installed in this VM "
            "(my tool reference lists no `agentos-*` review command), so I stopped there."
        )
    command = f"{tool} {shlex.quote(plan.target)}"
    if len(done) == 1:
        return _call("bash", command=command)
    return _reply(f"{wrote}\n\nI submitted it with `{command}`. {_review_outcome(done[1])}")


def _review_outcome(result: _Result) -> str:
    """What the review tool's JSON line says: the review, or why there is none."""
    line = next((line for line in result.output.splitlines() if line.startswith("{")), "")
    try:
        answer = json.loads(line) if line else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return f"The review command failed:\n\n{_fenced(result.output.strip() or '(no output)')}"
    if answer.get("ok") is not True:
        return f"The review failed ({answer.get('error', 'unknown error')}): {answer.get('message', '')}"
    review = answer.get("result")
    if isinstance(review, dict) and isinstance(review.get("review"), str):
        return f"The review:\n\n{review['review']}"
    text = review if isinstance(review, str) else json.dumps(review, indent=2, ensure_ascii=False)
    return f"The review tool answered:\n\n{text}"


def _review_flow(plan: _Plan, done: list[_Result]) -> _Action:
    """(read) → review → (write the review) → reply."""
    if plan.inline:
        review, summary = _review(plan.inline, "the code you sent", "", 1, "")
        after = done
    else:
        if not done:
            return _call("read", path=plan.target)
        if not done[0].ok:
            return _reply(
                f"I could not read `{plan.target}`, so I cannot review it: {_error_text(done[0].output)}"
            )
        code, first, note = _strip_paging(done[0].output)
        review, summary = _review(code, f"`{plan.target}`", _extension(plan.target), first, note)
        after = done[1:]
    if not plan.output:
        return _reply(review)
    if not after:
        return _call("write", path=plan.output, content=review + "\n")
    if not after[0].ok:
        return _reply(
            f"I could not write the review to `{plan.output}`: {_error_text(after[0].output)}\n\n{review}"
        )
    return _reply(f"I wrote the review to `{plan.output}`.\n\n{summary}")


def _explore_flow(plan: _Plan, done: list[_Result]) -> _Action:
    """bash `ls -la` → (read the file the prompt names, or list the folder) → reply."""
    if not done:
        return _call("bash", command="ls -la")
    entries = _ls_entries(done[0].output) if done[0].ok else {}
    target = _named_target(plan, entries)
    if len(done) == 1 and target is not None:
        path, is_folder = target
        if is_folder:
            return _call("bash", command=f"ls -la {shlex.quote(path)}")
        return _call("read", path=path, limit=_READ_LIMIT)
    seen = [_describe_listing(done[0], entries)]
    if target is not None and len(done) > 1:
        seen.append(_describe_target(target, done[1]))
    missing = [p for p in plan.paths if not p.startswith("/") and _first_part(p) not in entries]
    if missing and done[0].ok:
        seen.append(f"I don't see {_joined(missing)} in {_CWD}.")
    task = _shorten(" ".join(plan.prompt.split()), 100) or "(no prompt)"
    return _reply(
        "I'm agentos_nb's offline model (no ANTHROPIC_API_KEY or OPENAI_API_KEY is set), so I only "
        f"looked around instead of doing the task (“{task}”):\n\n"
        + "\n".join(f"- {line}" for line in seen)
        + f"\n\nA real model would next {_next_step(plan)}. To use one, set ANTHROPIC_API_KEY or "
        "OPENAI_API_KEY, or pass `model=` to `create_session`."
    )


_LS_NAME = re.compile(
    r"^([-dlbcps])[-rwxsStT]{9}\S*\s.*?"
    r"(?:\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}|[A-Z][a-z]{2}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s(.+)$",
    re.M,
)


def _ls_entries(listing: str) -> dict[str, bool]:
    """Name → is a folder, from `ls -la` output (bashkit's or GNU's long format)."""
    entries: dict[str, bool] = {}
    for match in _LS_NAME.finditer(listing):
        name = match.group(2).split(" -> ")[0]
        if name not in (".", ".."):
            entries[name] = match.group(1) == "d"
    return entries


def _named_target(plan: _Plan, entries: Mapping[str, bool]) -> tuple[str, bool] | None:
    """The file (or folder) the prompt names that is worth a look: an absolute path, a path whose
    first part `ls` showed, or a listed file whose capitalised stem is a word of the prompt
    ("Update the README")."""
    for path in plan.paths:
        if path.startswith("/"):
            return path, False
        first = _first_part(path)
        if first in entries:
            return path, entries[first] and first == path.removeprefix("./")
    for name, is_folder in entries.items():
        stem = name.split(".")[0]
        if len(stem) >= 3 and stem.isupper() and stem.lower() in plan.words:
            return name, is_folder
    return None


def _first_part(relative_path: str) -> str:
    return relative_path.removeprefix("./").split("/")[0]


def _describe_listing(result: _Result, entries: Mapping[str, bool]) -> str:
    if not result.ok:
        return f"`ls -la` failed: {_error_text(result.output)}"
    if not entries:
        printed = result.output.strip()
        if printed in ("", "(no output)"):
            return f"{_CWD} is empty."
        return f"`ls -la` printed {_line_count(printed)} lines in a format I do not know."
    names = [f"`{name}/`" if is_folder else f"`{name}`" for name, is_folder in entries.items()]
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    return f"{_CWD} holds {_entries(len(names))}: {shown}."


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _describe_target(target: tuple[str, bool], result: _Result) -> str:
    path, is_folder = target
    if not result.ok:
        return f"I could not read `{path}`: {_error_text(result.output)}"
    if is_folder:
        return f"`{path}/` holds {_entries(len(_ls_entries(result.output)))}."
    text, _, note = _strip_paging(result.output)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        return f"`{path}` is empty."
    size = note or f"{_line_count(text)} lines"
    return f"`{path}` has {size}; it starts with {_code_span(_shorten(first, _QUOTE_WIDTH))}."


_NEXT_STEPS = (
    (re.compile(r"\bpr\b|pull request"), "fetch the pull request's diff, read each change and comment on it"),
    (
        re.compile(r"\bflaky\b|\btests?\b"),
        "run the test several times to catch the failure, find the timing or shared state it depends "
        "on, fix that with `edit` and rerun the test",
    ),
    (
        re.compile(r"\bfix\b|\bbug\b|\bissue\b|\bbroken\b|\berror\b"),
        "reproduce the problem, trace it to its cause in the code, fix it with `edit` and check the fix "
        "with `bash`",
    ),
    (
        re.compile(r"\breadme\b|\bdocs?\b|\bdocumentation\b|\bupdate\b"),
        "read the current text, change it with `edit` and show you the diff",
    ),
)


def _next_step(plan: _Plan) -> str:
    lower = plan.prompt.lower()
    return next(
        (step for pattern, step in _NEXT_STEPS if pattern.search(lower)),
        "plan the work, then carry it out with the read, write, edit and bash tools",
    )


# --- the review tool in the tool reference ------------------------------------------------------

_TOOL_LINE = re.compile(r"^[ \t]+(agentos-[a-z0-9][a-z0-9-]*) ([a-z0-9][a-z0-9-]*)([^\n]*)$", re.M)
_STRING_FLAG = re.compile(r"(\[?)--([a-z0-9][a-z0-9-]*) <string>")


@functools.lru_cache(maxsize=64)
def _review_tool(instructions: str) -> str | None:
    """`agentos-review submit --path`: the command line, up to the path, of the tool in the
    reference (tool_cli.tool_reference's format) whose toolkit or name speaks of review or
    submitting, and that takes a path (or file) flag, or failing that a required string flag."""
    best: tuple[int, str] | None = None
    for match in _TOOL_LINE.finditer(instructions):
        command, tool, rest = match.groups()
        score = 2 * ("review" in command) + ("submit" in tool or "review" in tool)
        flag = _path_flag(rest.split(" — ")[0])
        if score and flag and (best is None or score > best[0]):
            best = (score, f"{command} {tool} --{flag}")
    return best[1] if best else None


def _path_flag(synopsis: str) -> str | None:
    flags = [(name, optional == "") for optional, name in _STRING_FLAG.findall(synopsis)]
    for wanted in ("path", "file"):
        for name, _ in flags:
            if wanted in name:
                return name
    return next((name for name, required in flags if required), None)


# --- files the writer writes --------------------------------------------------------------------

_TS_API = """\
// A small REST API for @items@, on Node's built-in http module.
import { createServer, IncomingMessage, ServerResponse } from "node:http";

interface @Item@ {
  id: number;
  name: string;
  createdAt: string;
}

const @items@: any[] = [];
let nextId = 1;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => resolve(data));
  });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  console.log(req.method, url.pathname);

  if (req.method === "GET" && url.pathname === "/@items@") {
    return sendJson(res, 200, @items@);
  }

  const match = url.pathname.match(/^\\/@items@\\/(\\d+)$/);
  if (req.method === "GET" && match) {
    const @item@ = @items@.find((entry) => entry.id == match[1]);
    if (!@item@) {
      res.end(JSON.stringify({ error: "not found" }));
      return;
    }
    return sendJson(res, 200, @item@);
  }

  if (req.method === "POST" && url.pathname === "/@items@") {
    const data = JSON.parse(await readBody(req));
    if (typeof data.name !== "string" || data.name.trim() === "") {
      return sendJson(res, 400, { error: "name is required" });
    }
    // TODO: limit the name's length and reject duplicates
    const @item@ = { id: nextId++, ...data, createdAt: new Date().toISOString() };
    @items@.push(@item@);
    return sendJson(res, 201, @item@);
  }

  if (req.method === "DELETE" && match) {
    const index = @items@.findIndex((entry) => entry.id == match[1]);
    if (index >= 0) @items@.splice(index, 1);
    return sendJson(res, 204, null);
  }

  sendJson(res, 404, { error: "no such route" });
});

server.listen(3000, () => {
  console.log("API listening on http://localhost:3000");
});
"""

# JavaScript: the same server without the type annotations.
_TS_TO_JS = (
    ("import { createServer, IncomingMessage, ServerResponse }", "import { createServer }"),
    ("interface @Item@ {\n  id: number;\n  name: string;\n  createdAt: string;\n}\n\n", ""),
    ("const @items@: any[] = [];", "const @items@ = [];"),
    ("(res: ServerResponse, status: number, body: unknown): void", "(res, status, body)"),
    ("(req: IncomingMessage): Promise<string>", "(req)"),
)

_PY_API = '''\
"""A small REST API for @items@, on the standard library's http.server."""

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

API_TOKEN = "dev-secret-123"


@dataclass
class @Item@:
    id: int
    name: str
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


@items@: dict[int, @Item@] = {}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        if self.path == "/@items@":
            return self._send(200, [asdict(entry) for entry in @items@.values()])
        if self.path.startswith("/@items@/"):
            try:
                entry = @items@[int(self.path.rsplit("/", 1)[1])]
            except:
                return self._send(404, {"error": "not found"})
            return self._send(200, asdict(entry))
        self._send(404, {"error": "no such route"})

    def do_POST(self):
        if self.path != "/@items@":
            return self._send(404, {"error": "no such route"})
        length = int(self.headers.get("Content-Length", 0))
        data = json.loads(self.rfile.read(length))
        # TODO: validate the fields and reject unknown ones
        entry = @Item@(id=len(@items@) + 1, name=data["name"])
        @items@[entry.id] = entry
        print("created", entry)
        self._send(201, asdict(entry))


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
'''

_SHELL = """\
#!/usr/bin/env bash
# @title@: @task@
set -euo pipefail

target="${1:-.}"

echo "Running @title@ on $target"
for file in "$target"/*; do
  [ -f "$file" ] || continue
  lines=$(wc -l < "$file")
  echo "$file: $lines lines"
done

# TODO: replace this draft with the real steps
echo "done"
"""

_TEXT = """\
# @title@

A first draft, written by agentos_nb's offline model for the request:

> @task@

## Goal

Say in one or two sentences what this is for and who reads it.

## Plan

1. Gather what is already known.
2. Write the main part.
3. Check it against the goal above.

## Open questions

- Anything the request leaves unclear.

A session with a real model (ANTHROPIC_API_KEY or OPENAI_API_KEY set) would write the real content.
"""

_TS_EXTENSIONS = frozenset({".ts", ".tsx", ".mts", ".cts"})
_JS_EXTENSIONS = frozenset({".js", ".jsx", ".mjs", ".cjs"})
_PY_EXTENSIONS = frozenset({".py", ".pyi"})
_SH_EXTENSIONS = frozenset({".sh", ".bash"})


@functools.lru_cache(maxsize=256)
def _draft(path: str, prompt: str) -> tuple[str, str]:
    """The file the writer writes at `path`, chosen by its extension and the prompt's words,
    and a phrase describing it."""
    extension = _extension(path)
    items = _resource(prompt)
    routes = f"GET /{items}, GET /{items}/:id, POST /{items} and DELETE /{items}/:id"
    if extension in _TS_EXTENSIONS or extension in _JS_EXTENSIONS:
        template = _TS_API
        if extension in _JS_EXTENSIONS:
            for typed, plain in _TS_TO_JS:
                template = template.replace(typed, plain)
        code = _fill(template, items)
        return code, f"a small REST API for {items} on Node's `http` module, kept in memory, with {routes}"
    if extension in _PY_EXTENSIONS:
        routes = f"GET /{items}, GET /{items}/<id> and POST /{items}"
        description = (
            f"a small REST API for {items} on `http.server` and dataclasses, kept in memory, with {routes}"
        )
        return _fill(_PY_API, items), description
    name = path.rsplit("/", 1)[-1]
    stem = name.split(".")[0] or name
    task = _shorten(" ".join(prompt.split()), 200)
    if extension == ".json":
        document = {"name": stem, "description": task, "version": "0.1.0", "todo": ["fill in the details"]}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n", "a JSON skeleton to fill in"
    if extension in _SH_EXTENSIONS:
        script = _SHELL.replace("@title@", stem).replace("@task@", task)
        return script, "a bash script that walks the files of a folder, as a starting point"
    title = stem.replace("-", " ").replace("_", " ").capitalize()
    text = _TEXT.replace("@title@", title).replace("@task@", task)
    return text, "a first draft with a goal, a plan and open questions"


def _fill(template: str, items: str) -> str:
    item = items[:-1]
    return template.replace("@items@", items).replace("@Item@", item.capitalize()).replace("@item@", item)


def _resource(prompt: str) -> str:
    """The plural noun the API serves: the first known one among the prompt's words (paths left
    out, so /home/user does not count), else "users"."""
    without_paths = prompt
    for path in _paths(prompt):
        without_paths = without_paths.replace(path, " ")
    for word in _WORDS.findall(without_paths.lower()):
        singular = word[:-1] if word.endswith("s") else word
        if singular in _RESOURCES:
            return singular + "s"
    return "users"


# --- reviewing code -----------------------------------------------------------------------------

_LANGUAGES = {"ts": "TypeScript", "js": "JavaScript", "py": "Python", "sh": "shell", "text": "text"}
_GUESS_PYTHON = re.compile(
    r"^(?:(?:async )?def \w+\(|class \w+.*:$|from [\w.]+ import \w|import [\w.]+$)", re.M
)
_GUESS_TYPESCRIPT = re.compile(r"^\s*interface \w|:\s*(?:string|number|boolean|any)\b")
_GUESS_JAVASCRIPT = re.compile(r"\b(?:const|let|function|require)\b|=>")
_COMMENT = re.compile(r"^\s*(?:#|//|/\*|\*|--|<!--)", re.M)
_DEFINITION = re.compile(r"^\s*(?:export\s+)?(?:async\s+)?(?:def|function|class)\s+(\w+)", re.M)
_ERROR_HANDLING = re.compile(r"\btry\b|\bcatch\b|\bexcept\b")
_BACKTICKS = re.compile(r"`+")
_PAGING = re.compile(r"\n?\[lines (\d+)-(\d+) of (\d+); continue with offset=\d+\]\n?\Z")


@dataclass(frozen=True, slots=True)
class _Rule:
    """A line-level smell: `pattern` on a line, unless `unless` matches within `lookback` lines
    above. Only lines holding one of `needles` (in the lowercased text when `fold`) are searched:
    finding a literal is far cheaper than running a regex over the whole file."""

    languages: frozenset[str]
    severity: int  # 0 is the most serious
    title: str
    message: str
    needles: tuple[str, ...]
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None
    lookback: int = 0
    fold: bool = False


_CODE = frozenset({"ts", "js", "py", "sh"})
_JS = frozenset({"ts", "js"})
_PY = frozenset({"py"})
_ALL = frozenset(_LANGUAGES)

_RULES = (
    _Rule(
        _JS,
        0,
        "an unguarded `JSON.parse`",
        "`JSON.parse` throws on malformed input and nothing catches it here, so one bad request "
        "becomes an unhandled rejection instead of a 400",
        ("JSON.parse(",),
        re.compile(r"JSON\.parse\("),
        re.compile(r"\btry\b"),
        8,
    ),
    _Rule(
        _PY,
        0,
        "an unguarded `json.loads`",
        "`json.loads` raises on malformed input and nothing catches it here, so a bad request gets "
        "a 500 instead of a 400",
        ("json.load",),
        re.compile(r"json\.loads?\("),
        re.compile(r"\btry\b"),
        8,
    ),
    _Rule(
        _JS,
        0,
        "the request body copied as-is",
        "spreads the whole request body into the record, so unknown or malicious fields are stored "
        "unchecked (and could even overwrite `id`); copy only the validated fields",
        ("...",),
        re.compile(r"\.\.\.(?:data|body|payload|input|req\.body)\b"),
    ),
    _Rule(
        _PY,
        0,
        "a bare `except:`",
        "a bare `except:` also catches KeyboardInterrupt and SystemExit and hides real bugs; catch "
        "the specific errors (KeyError, ValueError)",
        ("except",),
        re.compile(r"^\s*except\s*:"),
    ),
    _Rule(
        _ALL,
        0,
        "a hard-coded secret",
        "a secret is hard-coded in the source, so it ends up in version control; read it from the "
        "environment",
        ("password", "passwd", "secret", "key", "token"),
        re.compile(r"(?i)\b\w*(?:password|passwd|secret|api_?key|token)\w*\s*[:=]\s*[\"'][^\"']{3,}[\"']"),
        fold=True,
    ),
    _Rule(
        _CODE,
        0,
        "`eval`",
        "`eval` runs arbitrary code; parse the input instead",
        ("eval(",),
        re.compile(r"\beval\("),
    ),
    _Rule(
        _PY,
        1,
        "unvalidated input",
        "indexes the parsed body directly: a missing field raises KeyError (a 500) and its type is "
        "never checked; validate the input first",
        ("data[", "body[", "payload["),
        re.compile(r"\b(?:data|body|payload)\[[\"']"),
    ),
    _Rule(
        _JS,
        1,
        "a response without a status code",
        "answers without setting a status code, so this error goes out as 200 OK; send 404",
        ("res.end(",),
        re.compile(r"\bres\.end\("),
        re.compile(r"writeHead|statusCode|\.status\("),
        3,
    ),
    _Rule(
        frozenset({"ts"}),
        1,
        "`any`",
        "`any` turns off type checking for everything that touches this value; use the interface "
        "the file declares (or a new one)",
        ("any",),
        re.compile(r":\s*any\b|\bas any\b|<any>"),
    ),
    _Rule(
        _JS,
        1,
        "loose equality",
        "`==`/`!=` coerce types (a string id equals a number); use `===`/`!==` and convert explicitly",
        ("==", "!="),
        re.compile(r"[^=!<>]==[^=]|!=[^=]"),
    ),
    _Rule(
        _PY,
        1,
        "a mutable default argument",
        "a mutable default is shared between calls; default to None and create it inside",
        ("def ",),
        re.compile(r"^\s*def \w+\(.*=\s*(?:\[\]|\{\}|set\(\))"),
    ),
    _Rule(
        _ALL,
        1,
        "an open TODO",
        "an open TODO: the work it describes is not done yet",
        ("TODO", "FIXME", "XXX", "HACK"),
        re.compile(r"\b(?:TODO|FIXME|XXX|HACK)\b"),
    ),
    _Rule(
        _JS,
        2,
        "debug logging",
        "`console.log` left in: use a logger with levels, or remove it",
        ("console.",),
        re.compile(r"\bconsole\.(?:log|debug)\("),
    ),
    _Rule(
        _PY,
        2,
        "debug printing",
        "`print` left in: use `logging`, or remove it",
        ("print(",),
        re.compile(r"^\s*print\("),
    ),
    _Rule(
        _CODE,
        2,
        "a hard-coded port",
        "the port (and address) are hard-coded; read them from the environment or a setting",
        (".listen(", "((", "port"),
        re.compile(
            r"\.listen\(\s*\d{2,5}|\(\s*[\"'][\w.]*[\"']\s*,\s*\d{2,5}\s*\)|\bport\s*=\s*\d{2,5}\b", re.I
        ),
        fold=True,
    ),
    _Rule(
        _JS,
        2,
        "`var`",
        "`var` is function-scoped and hoisted; use `const` or `let`",
        ("var ",),
        re.compile(r"^\s*var\s"),
    ),
)
_LONG_LINE = 120


@dataclass(frozen=True, slots=True)
class _Finding:
    severity: int
    line: int  # index into the reviewed lines
    title: str
    message: str
    also: tuple[int, ...] = ()


@functools.lru_cache(maxsize=64)
def _review(code: str, label: str, extension: str, first_line: int, note: str) -> tuple[str, str]:
    """A markdown review of `code` (its first line numbered `first_line`) and its one-line summary:
    findings from simple per-language heuristics, each citing a real line by number and text, the
    most serious first; always two or more when the code has two or more non-blank lines."""
    lines = code.split("\n")
    if code.endswith("\n"):
        lines.pop()
    non_blank = [index for index, line in enumerate(lines) if line.strip()]
    language = _language(extension, code)
    size = f"{note or f'{len(lines)} lines'} of {_LANGUAGES[language]}"
    if not non_blank:
        summary = f"Summary: {label} is empty, so there is nothing to review."
        return summary, summary
    findings = _findings(code, lines, language)
    if len(non_blank) >= 2 and len(findings) < 2:
        findings += _fallbacks(code, lines, non_blank, language, {f.line for f in findings})[
            : 2 - len(findings)
        ]
    findings.sort(key=lambda f: (f.severity, f.line))
    if not findings:
        summary = f"Summary: nothing to flag in {label} ({size})."
        return summary, summary
    worst = findings[0]
    count = f"{len(findings)} issue{'s' if len(findings) != 1 else ''}"
    summary = (
        f"Summary: {count} in {label} ({size}); the most serious is {worst.title} "
        f"on line {worst.line + first_line}."
    )
    bullets = []
    for finding in findings:
        text = _code_span(_shorten(lines[finding.line].strip(), _QUOTE_WIDTH))
        also = ""
        if finding.also:
            numbers = ", ".join(str(index + first_line) for index in finding.also)
            also = f" (also line{'s' if len(finding.also) > 1 else ''} {numbers})"
        bullets.append(f"- Line {finding.line + first_line}: {text} — {finding.message}{also}.")
    return summary + "\n\n" + "\n".join(bullets), summary


def _findings(code: str, lines: list[str], language: str) -> list[_Finding]:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    folded = code.lower()
    findings = []
    for rule in _RULES:
        if language not in rule.languages:
            continue
        hits = [
            index
            for index in _lines_holding(folded if rule.fold else code, rule.needles, starts)
            if rule.pattern.search(lines[index])
            and not (
                rule.unless
                and any(rule.unless.search(line) for line in lines[max(0, index - rule.lookback) : index + 1])
            )
        ]
        if hits:
            findings.append(_Finding(rule.severity, hits[0], rule.title, rule.message, tuple(hits[1:4])))
    long_lines = [index for index, line in enumerate(lines) if len(line) > _LONG_LINE]
    if long_lines:
        length = len(lines[long_lines[0]])
        message = f"a very long line ({length} characters) is hard to read and to review; split it"
        findings.append(_Finding(2, long_lines[0], "a very long line", message, tuple(long_lines[1:4])))
    return findings


def _lines_holding(text: str, needles: tuple[str, ...], starts: list[int]) -> list[int]:
    """The indexes, in order, of the lines of `text` (which begin at `starts`) holding a needle."""
    found: set[int] = set()
    last = len(starts) - 2
    for needle in needles:
        position = text.find(needle)
        while position != -1:
            index = min(bisect.bisect_right(starts, position) - 1, last)
            found.add(index)
            position = text.find(needle, starts[index + 1])
    return sorted(found)


def _fallbacks(
    code: str, lines: list[str], non_blank: list[int], language: str, used: set[int]
) -> list[_Finding]:
    """Observations that hold for most code, for files the rules find little in."""
    candidates: list[_Finding] = []
    if language in _CODE and not _COMMENT.search(code):
        message = "nothing in the file says what it is for; start it with a short comment"
        candidates.append(_Finding(2, non_blank[0], "no header comment", message))
    if language in _CODE and not _ERROR_HANDLING.search(code):
        message = "nothing in the file handles errors; decide what should happen when this step fails"
        candidates.append(_Finding(1, non_blank[0], "no error handling", message))
    definition = _DEFINITION.search(code)
    if definition:
        index = code.count("\n", 0, definition.start())
        message = f"no test pins down what `{definition.group(1)}` should do; add one before changing it"
        candidates.append(_Finding(2, index, "no test", message))
    longest = max(non_blank, key=lambda index: len(lines[index]))
    message = "the densest line here; name its parts or add a comment so a reader can follow it"
    candidates.append(_Finding(2, longest, "a dense line", message))
    for index in non_blank:
        message = "no comment or test says what this line is for"
        candidates.append(_Finding(2, index, "an unexplained line", message))
    chosen: list[_Finding] = []
    for finding in candidates:
        if finding.line not in used:
            used.add(finding.line)
            chosen.append(finding)
    return chosen


def _language(extension: str, code: str) -> str:
    if extension in _TS_EXTENSIONS:
        return "ts"
    if extension in _JS_EXTENSIONS:
        return "js"
    if extension in _PY_EXTENSIONS:
        return "py"
    if extension in _SH_EXTENSIONS or (code.startswith("#!") and "sh" in code.split("\n", 1)[0]):
        return "sh"
    if extension or not code.strip():
        return "text"
    if _GUESS_PYTHON.search(code):
        return "py"
    if _GUESS_TYPESCRIPT.search(code):
        return "ts"
    return "js" if _GUESS_JAVASCRIPT.search(code) else "text"


def _strip_paging(output: str) -> tuple[str, int, str]:
    """The file text of a `read` result, its first line number, and "lines A-B of N" when the
    loop says more lines exist."""
    paging = _PAGING.search(output)
    if paging is None:
        return output, 1, ""
    first, last, total = paging.groups()
    return output[: paging.start()], int(first), f"lines {first}-{last} of {total}"


# --- small text helpers -------------------------------------------------------------------------


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name.lstrip(".") else ""


def _line_count(text: str) -> int:
    return text.count("\n") + (not text.endswith("\n") and bool(text))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _code_span(text: str) -> str:
    """`text` as inline markdown code, with a fence longer than any run of backticks inside."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def _fenced(text: str) -> str:
    return f"```\n{text}\n```"


def _error_text(output: str) -> str:
    return _shorten(output.strip().removeprefix("Error: ") or "(no output)", 300)


def _joined(paths: Sequence[str]) -> str:
    quoted = [f"`{path}`" for path in paths]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
