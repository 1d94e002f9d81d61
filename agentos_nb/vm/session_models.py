"""What sessions say: their info, their turns' results, and their updates, shaped as in the
Agent Client Protocol (ACP), so a transcript reads the same here, over HTTP and in a widget.

`update.model_dump(by_alias=True)` gives ACP's own JSON (`sessionUpdate`, `toolCallId`, ...).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from agentos_nb.events import ActorEvent

StopReason = Literal["end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled", "error"]
"""ACP's stop reasons, and `error`: the model's provider failed (the update says why)."""

ToolKind = Literal["read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"]
ToolCallStatus = Literal["pending", "in_progress", "completed", "failed"]

SessionMode = Literal["default", "plan", "accept_edits"]
"""How a session's tools behave: `default` asks as its permission policy says; `plan` is
read-only (write, edit, host tools and bash that may change anything are refused); and
`accept_edits` never asks before a write or an edit."""
SESSION_MODES: tuple[SessionMode, ...] = ("default", "plan", "accept_edits")

PermissionOptionKind = Literal["allow_once", "allow_always", "reject_once", "reject_always"]
"""ACP's answers to a permission request; "always" is remembered for the session."""
PERMISSION_OPTIONS: tuple[PermissionOptionKind, ...] = (
    "allow_once",
    "allow_always",
    "reject_once",
    "reject_always",
)


class _Acp(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


class Usage(_Acp):
    """What a turn cost: tokens in and out as the model's provider counted them, model
    requests, and tool calls. A turn cancelled, or whose agent crashed, reports zeros."""

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    tool_calls: int = 0


class PermissionPolicy(_Acp):
    """Which tools a session asks the user about before using them.

    `ask` names them: `read`, `write`, `edit`, `bash`; a host tool as `host:TOOLKIT.TOOL`, a
    whole toolkit as `host:TOOLKIT`, every host tool as `host:*`; an MCP server's tools as
    `mcp:SERVER.TOOL`, `mcp:SERVER` or `mcp:*`. A bash command that runs a host tool asks for
    that tool (and for `bash`, if it is named too)."""

    ask: list[str] = Field(default_factory=list)

    def gated(self, name: str) -> bool:
        """Whether a call of the tool `name` needs the user's approval."""
        return any(_names_match(entry, name) for entry in self.ask)


def _names_match(entry: str, name: str) -> bool:
    if entry == name:
        return True
    if entry.endswith(":*"):
        return name.startswith(entry[:-1])
    return ":" in entry and name.startswith(entry + ".")


class SessionInfo(_Acp):
    """A session of a VM: which agent, which model and why, and whether it is closed."""

    session_id: str
    agent_type: str
    model: str
    """The model's name, as `provider:name` (`offline:agentos` for the offline model)."""
    model_reason: str
    """Why this model: given explicitly, picked by an API key, or the offline fallback."""
    offline: bool
    """True when replies come from the offline model rather than a real one."""
    cwd: str
    created_at: float
    closed: bool = False
    turns: int = 0
    busy: bool = False
    """A turn is running."""
    mode: SessionMode = "default"
    permissions: PermissionPolicy = Field(default_factory=PermissionPolicy)
    mcp_servers: list[str] = Field(default_factory=list)
    """The names of the MCP servers whose tools the session offers."""


class PromptResult(_Acp):
    """What `send_prompt` returns: how the turn ended, its final text and its usage."""

    session_id: str
    text: str
    """The agent's final reply: the text of its last message in the turn."""
    stop_reason: StopReason
    usage: Usage
    error: str | None = None
    """Why the turn ended with `stop_reason="error"`."""


class AgentTypeInfo(_Acp):
    """An agent type a VM's software installs: a name `create_session` accepts, and what
    that agent is for."""

    name: str
    description: str


# --- updates -------------------------------------------------------------------------------


class _Update(_Acp):
    seq: int = 0
    """Numbered per session from 1, in the order they happened; set when the update is kept."""
    session_id: str = ""
    at: float = Field(default_factory=time.time)


class TextContent(_Acp):
    """Plain text in an update: a chunk of a message, or what a tool call produced."""

    type: Literal["text"] = "text"
    text: str


class DiffContent(_Acp):
    """A file a tool call changed: its text before (None if it was new) and after."""

    type: Literal["diff"] = "diff"
    path: str
    old_text: str | None
    new_text: str


class ToolCallContent(_Acp):
    """ACP's wrapper around content a tool call produced."""

    type: Literal["content"] = "content"
    content: TextContent


class ToolCallLocation(_Acp):
    """The file a tool call works on (its absolute path in the VM), so a client can follow along."""

    path: str
    line: int | None = None


class UserMessageChunk(_Update):
    """The prompt the turn answers, as the first update of the turn."""

    session_update: Literal["user_message_chunk"] = "user_message_chunk"
    content: TextContent


class AgentMessageChunk(_Update):
    """A piece of the agent's reply, streamed as the model writes it."""

    session_update: Literal["agent_message_chunk"] = "agent_message_chunk"
    content: TextContent


class AgentThoughtChunk(_Update):
    """A piece of the model's thinking, for models that show it."""

    session_update: Literal["agent_thought_chunk"] = "agent_thought_chunk"
    content: TextContent


class ToolCall(_Update):
    """A tool call starting: what it is called, what kind of work it does, and its input."""

    session_update: Literal["tool_call"] = "tool_call"
    tool_call_id: str
    title: str
    kind: ToolKind
    status: ToolCallStatus = "pending"
    raw_input: dict[str, Any] = Field(default_factory=dict)
    locations: list[ToolCallLocation] = Field(default_factory=list)


class ToolCallUpdate(_Update):
    """A tool call's progress or end (`status`), with what it produced."""

    session_update: Literal["tool_call_update"] = "tool_call_update"
    tool_call_id: str
    status: ToolCallStatus
    content: list[ToolCallContent | DiffContent] = Field(default_factory=list)
    raw_output: str | None = None


class Notice(_Update):
    """Something the user should see that is not the agent speaking: the offline model
    announcing itself, a retry after a provider failure. (ACP has no such update.)"""

    session_update: Literal["notice"] = "notice"
    level: Literal["info", "warning", "error"] = "info"
    text: str


class PermissionOption(_Acp):
    """One answer the user may give to a permission request."""

    option_id: PermissionOptionKind
    name: str
    kind: PermissionOptionKind


class PermissionToolCall(_Acp):
    """The tool call a permission request is about, as ACP shows it."""

    tool_call_id: str
    title: str
    kind: ToolKind
    raw_input: dict[str, Any] = Field(default_factory=dict)
    locations: list[ToolCallLocation] = Field(default_factory=list)


class PermissionRequest(_Update):
    """The turn waits for the user: may this tool call go ahead? Answered with
    `respond_permission(session_id, request_id, option)`; a cancel refuses it. (ACP's
    `session/request_permission`, kept as an update so every transcript shows it.)"""

    session_update: Literal["permission_request"] = "permission_request"
    request_id: str
    tool_call: PermissionToolCall
    options: list[PermissionOption]
    reason: str = ""
    """Why it asks: which tools of the session's policy the call uses."""


class PermissionResponse(_Update):
    """How a permission request was answered: an option chosen, or `cancelled` with the turn."""

    session_update: Literal["permission_response"] = "permission_response"
    request_id: str
    tool_call_id: str
    outcome: Literal["selected", "cancelled"]
    option_id: PermissionOptionKind | None = None


class CurrentModeUpdate(_Update):
    """The session's mode changed (ACP's `current_mode_update`)."""

    session_update: Literal["current_mode_update"] = "current_mode_update"
    current_mode_id: SessionMode


class TurnEnded(_Update):
    """The end of a turn: ACP's prompt response, kept as an update so a transcript has it."""

    session_update: Literal["turn_ended"] = "turn_ended"
    stop_reason: StopReason
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None


SessionUpdate = Annotated[
    UserMessageChunk
    | AgentMessageChunk
    | AgentThoughtChunk
    | ToolCall
    | ToolCallUpdate
    | PermissionRequest
    | PermissionResponse
    | CurrentModeUpdate
    | Notice
    | TurnEnded,
    Field(discriminator="session_update"),
]
"""One update of a session, told apart by `session_update`: what `stream_prompt` yields and
`get_session_events` returns."""


# --- events on the registry's bus --------------------------------------------------------


class SessionCreated(ActorEvent):
    """A VM started a session."""

    type: Literal["session.created"] = "session.created"
    session: SessionInfo


class SessionUpdated(ActorEvent):
    """A session had an update (each one of a turn, as it happens)."""

    type: Literal["session.updated"] = "session.updated"
    update: SessionUpdate


class SessionClosed(ActorEvent):
    """A session was closed; its transcript stays readable."""

    type: Literal["session.closed"] = "session.closed"
    session_id: str
