"""A session's updates folded into what a reader sees: messages whose chunks are joined, each
tool call with its outcome, notices, and the end of every turn. The dashboard's Sessions tab and
the `%%agent` cell's live display both show these items, each in its own HTML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from agentos_nb.jupyter.wording import counted
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    CurrentModeUpdate,
    DiffContent,
    Notice,
    PermissionRequest,
    PermissionResponse,
    SessionUpdate,
    ToolCall,
    ToolCallUpdate,
    TurnEnded,
    UserMessageChunk,
)

ItemKind = Literal["user", "agent", "thought", "tool", "permission", "notice", "turn"]

PERMISSION_ENDINGS = {
    "allow_once": "allowed once",
    "allow_always": "allowed for this session",
    "reject_once": "rejected",
    "reject_always": "rejected for this session",
    "cancelled": "cancelled with the turn",
}
"""How an answered permission request reads."""


@dataclass(frozen=True, slots=True)
class TranscriptItem:
    key: str
    """Stable while the item grows: the seq of its first update, or its tool call id."""
    kind: ItemKind
    text: str = ""
    title: str = ""
    status: str = ""
    """A tool call's status, a notice's level, a turn's stop reason, or a permission request's
    answer (`waiting` until it has one)."""
    tool_kind: str = ""
    input: object = None
    output: str = ""
    detail: str = ""
    """A turn's usage."""
    started: float = 0.0
    duration: float | None = None


CHUNK_KINDS: dict[type, ItemKind] = {
    UserMessageChunk: "user",
    AgentMessageChunk: "agent",
    AgentThoughtChunk: "thought",
}


def transcript_items(updates: Sequence[SessionUpdate]) -> list[TranscriptItem]:
    items: list[TranscriptItem] = []
    tools: dict[str, int] = {}  # tool call id -> index in items
    permissions: dict[str, int] = {}  # request id -> index in items
    for update in updates:
        kind = CHUNK_KINDS.get(type(update))
        if kind is not None:
            text = update.content.text  # type: ignore[union-attr]
            last = items[-1] if items else None
            if last is not None and last.kind == kind:
                items[-1] = replace(last, text=last.text + text)
            else:
                items.append(TranscriptItem(key=f"seq-{update.seq}", kind=kind, text=text))
        elif isinstance(update, ToolCall):
            tools[update.tool_call_id] = len(items)
            items.append(
                TranscriptItem(
                    key=f"tool-{update.tool_call_id}-{update.seq}",
                    kind="tool",
                    title=update.title,
                    status=update.status,
                    tool_kind=update.kind,
                    input=update.raw_input,
                    started=update.at,
                )
            )
        elif isinstance(update, ToolCallUpdate):
            index = tools.get(update.tool_call_id)
            if index is None:  # its start was never received
                tools[update.tool_call_id] = index = len(items)
                items.append(
                    TranscriptItem(
                        key=f"tool-{update.tool_call_id}-{update.seq}", kind="tool", started=update.at
                    )
                )
            item = items[index]
            items[index] = replace(
                item,
                status=update.status,
                output=_output(update) or item.output,
                duration=max(update.at - item.started, 0.0) if item.started else None,
            )
        elif isinstance(update, PermissionRequest):
            permissions[update.request_id] = len(items)
            items.append(
                TranscriptItem(
                    key=f"perm-{update.request_id}",
                    kind="permission",
                    title=update.tool_call.title,
                    status="waiting",
                    tool_kind=update.tool_call.kind,
                    input=update.tool_call.raw_input,
                    detail=update.request_id,
                    started=update.at,
                )
            )
        elif isinstance(update, PermissionResponse):
            index = permissions.get(update.request_id)
            if index is not None:
                answer = update.option_id if update.outcome == "selected" else "cancelled"
                items[index] = replace(items[index], status=answer or "cancelled")
        elif isinstance(update, CurrentModeUpdate):
            items.append(
                TranscriptItem(
                    key=f"seq-{update.seq}",
                    kind="notice",
                    text=f"mode: {update.current_mode_id}",
                    status="info",
                )
            )
        elif isinstance(update, Notice):
            items.append(
                TranscriptItem(key=f"seq-{update.seq}", kind="notice", text=update.text, status=update.level)
            )
        elif isinstance(update, TurnEnded):
            usage = update.usage
            detail = (
                f"{counted(usage.requests, 'model request')} · {counted(usage.tool_calls, 'tool call')} · "
                f"{usage.input_tokens:,} tokens in, {usage.output_tokens:,} out"
            )
            items.append(
                TranscriptItem(
                    key=f"seq-{update.seq}",
                    kind="turn",
                    status=update.stop_reason,
                    text=update.error or "",
                    detail=detail,
                )
            )
    return items


def _output(update: ToolCallUpdate) -> str:
    if update.raw_output is not None:
        return update.raw_output
    parts = []
    for content in update.content:
        if isinstance(content, DiffContent):
            parts.append(f"{content.path}\n{content.new_text}")
        else:
            parts.append(content.content.text)
    return "\n".join(parts)
