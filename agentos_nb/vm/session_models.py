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


class _Acp(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


class Usage(_Acp):
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    tool_calls: int = 0


class SessionInfo(_Acp):
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


class PromptResult(_Acp):
    session_id: str
    text: str
    """The agent's final reply: the text of its last message in the turn."""
    stop_reason: StopReason
    usage: Usage
    error: str | None = None
    """Why the turn ended with `stop_reason="error"`."""


class AgentTypeInfo(_Acp):
    name: str
    description: str


# --- updates -------------------------------------------------------------------------------


class _Update(_Acp):
    seq: int = 0
    """Numbered per session from 1, in the order they happened; set when the update is kept."""
    session_id: str = ""
    at: float = Field(default_factory=time.time)


class TextContent(_Acp):
    type: Literal["text"] = "text"
    text: str


class DiffContent(_Acp):
    type: Literal["diff"] = "diff"
    path: str
    old_text: str | None
    new_text: str


class ToolCallContent(_Acp):
    """ACP's wrapper around content a tool call produced."""

    type: Literal["content"] = "content"
    content: TextContent


class ToolCallLocation(_Acp):
    path: str
    line: int | None = None


class UserMessageChunk(_Update):
    session_update: Literal["user_message_chunk"] = "user_message_chunk"
    content: TextContent


class AgentMessageChunk(_Update):
    session_update: Literal["agent_message_chunk"] = "agent_message_chunk"
    content: TextContent


class AgentThoughtChunk(_Update):
    session_update: Literal["agent_thought_chunk"] = "agent_thought_chunk"
    content: TextContent


class ToolCall(_Update):
    session_update: Literal["tool_call"] = "tool_call"
    tool_call_id: str
    title: str
    kind: ToolKind
    status: ToolCallStatus = "pending"
    raw_input: dict[str, Any] = Field(default_factory=dict)
    locations: list[ToolCallLocation] = Field(default_factory=list)


class ToolCallUpdate(_Update):
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


class TurnEnded(_Update):
    """The end of a turn: ACP's prompt response, kept as an update so a transcript has it."""

    session_update: Literal["turn_ended"] = "turn_ended"
    stop_reason: StopReason
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None


SessionUpdate = Annotated[
    UserMessageChunk | AgentMessageChunk | AgentThoughtChunk | ToolCall | ToolCallUpdate | Notice | TurnEnded,
    Field(discriminator="session_update"),
]


# --- events on the registry's bus --------------------------------------------------------


class SessionCreated(ActorEvent):
    type: Literal["session.created"] = "session.created"
    session: SessionInfo


class SessionUpdated(ActorEvent):
    type: Literal["session.updated"] = "session.updated"
    update: SessionUpdate


class SessionClosed(ActorEvent):
    type: Literal["session.closed"] = "session.closed"
    session_id: str
