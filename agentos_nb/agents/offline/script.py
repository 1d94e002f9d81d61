"""Script steps, the public boundary: what a notebook user or a test tells the offline model to do,
checked when the model is made and turned into actions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, assert_never

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from agentos_nb.agents.offline.actions import Action, call, reply
from agentos_nb.agents.tool_inputs import TOOL_INPUTS
from agentos_nb.errors import ValidationError

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


def _action_of(step: Step) -> Action:
    match step:
        case Bash(command=command, timeout=timeout):
            return call("bash", command=command, timeout=timeout)
        case Read(path=path, offset=offset, limit=limit):
            return call("read", path=path, offset=offset, limit=limit)
        case Write(path=path, content=content):
            return call("write", path=path, content=content)
        case Edit(path=path, old_text=old_text, new_text=new_text):
            return call("edit", path=path, old_text=old_text, new_text=new_text)
        case ToolCall(tool=tool, args=args):
            return Action(tool, json.dumps(args, ensure_ascii=False))
        case Reply(text=text):
            return reply(text)
        case _:
            assert_never(step)


def checked_script(script: Sequence[Step | Mapping[str, Any]]) -> tuple[Action, ...]:
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
