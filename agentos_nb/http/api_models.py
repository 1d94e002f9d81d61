"""The JSON the HTTP API takes and gives, as pydantic models: they validate requests, shape
replies, and are where the OpenAPI document's schemas come from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.actors.handles import DeadLetter
from agentos_nb.actors.overview import ActorView
from agentos_nb.http.values import Encoding
from agentos_nb.vm.mcp_servers import McpServer

_Request = ConfigDict(extra="forbid")


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx: a stable code, a readable message, and details that depend on it."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A runtime error's code (agentos_nb.errors) or an HTTP one (http.*).")
    message: str
    errors: list[ErrorField] | None = Field(None, description="With validation_error: each field at fault.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ActorInfo(BaseModel):
    name: str
    key: list[str]
    actor_id: str


class ActorList(BaseModel):
    actors: list[ActorView]


class ActorInput(BaseModel):
    """The body of a create (optional): what the new actor's `on_create` receives."""

    model_config = _Request

    input: Any = None


class ActionCall(BaseModel):
    model_config = _Request

    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    binary: list[str] = Field(
        default_factory=list,
        description="Arguments sent as base64 that the action receives as bytes: positions in "
        '`args` ("0") or names in `kwargs`.',
    )


class ActionReply(BaseModel):
    result: Any = Field(description="What the action returned, as JSON.")
    model: str | None = Field(
        None, description="The agentos_nb model the result is (e.g. SessionInfo, list[DirEntry]), if one."
    )
    encoding: Encoding = Field("json", description="base64: the result is bytes.")


class SendQuery(BaseModel):
    model_config = _Request

    wait: bool = Field(
        False, description="Reply when a consumer completes the message, not when it is stored."
    )
    timeout: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="With wait: seconds before the reply says timed_out."
    )


class WaitQuery(BaseModel):
    model_config = _Request

    timeout: float | None = Field(None, ge=0, allow_inf_nan=False)


class ProcessOutputQuery(BaseModel):
    model_config = _Request

    since: int = Field(0, ge=0, description="A byte offset: the `end` of the last chunk read, to resume.")


class DeadLettersQuery(BaseModel):
    model_config = _Request

    queue: str | None = None


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]


class EventsQuery(BaseModel):
    model_config = _Request

    type: list[str] = Field(
        default_factory=list,
        description='Event types to keep; one ending in "." keeps a family ("message.").',
    )
    actor: list[str] = Field(default_factory=list, description="Actor types whose events to keep.")
    buffer: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Events held for a slow reader; past it, events.dropped says how many.",
    )


class ExecRequest(BaseModel):
    model_config = _Request

    command: str
    env: dict[str, str] | None = None
    cwd: str | None = None
    stdin: str | None = None
    timeout: float | None = Field(None, gt=0, allow_inf_nan=False)


class SessionRequest(BaseModel):
    model_config = _Request

    agent_type: str = "pi"
    model: str | None = Field(
        None, description="A model name such as anthropic:claude-sonnet-4-5, or offline."
    )
    env: dict[str, str] | None = Field(
        None, description="Keys and settings for the model client; they stay on the host, never in the VM."
    )
    cwd: str | None = None
    additional_instructions: str | None = None
    permissions: list[str] | None = Field(
        None,
        description="Tools the session asks about before using: read, write, edit, bash, "
        "host:TOOLKIT.TOOL, host:TOOLKIT, mcp:SERVER.TOOL ... (default: the agent type's policy).",
    )
    mcp_servers: list[McpServer] | None = Field(
        None,
        description="MCP servers whose tools the agent may call; over HTTP only `type: http` ones "
        "(a stdio server would start a program on the host, and is refused with 403).",
    )


class PermissionAnswer(BaseModel):
    model_config = _Request

    option: str = Field(description="allow_once, allow_always, reject_once or reject_always.")


class ModeRequest(BaseModel):
    model_config = _Request

    mode: str = Field(description="default, plan (read-only) or accept_edits.")


class ModelChoice(BaseModel):
    model_config = _Request

    model: str = Field(
        min_length=1, description="A model name such as anthropic:claude-sonnet-4-5, or offline."
    )


class PromptRequest(BaseModel):
    model_config = _Request

    text: str = Field(min_length=1)


class CancelReply(BaseModel):
    cancelled: bool = Field(description="False when no turn was running.")
