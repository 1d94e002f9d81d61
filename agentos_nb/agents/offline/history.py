"""Reading the message history: where this turn starts, its prompt, and what its tool calls gave back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    TextContent,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)


@dataclass(frozen=True, slots=True)
class Result:
    """A tool call of this turn and what the loop sent back for it; a failure is an `Error: ` text,
    a bash command's `[exit code N]` line, or a return whose outcome is not a success."""

    tool: str
    output: str
    ok: bool


def turn_start(messages: Sequence[ModelMessage]) -> int:
    """The index of the last request holding a user prompt, or -1."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, ModelRequest) and any(isinstance(p, UserPromptPart) for p in message.parts):
            return index
    return -1


def prompt_text(request: ModelMessage) -> str:
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


def results(messages: Sequence[ModelMessage], start: int) -> list[Result]:
    calls: dict[str, str] = {}
    results: list[Result] = []
    for message in messages[start:]:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls[part.tool_call_id] = part.tool_name
            elif isinstance(part, ToolReturnPart) and part.tool_call_id in calls:
                tool = calls.pop(part.tool_call_id)
                output = part.content if isinstance(part.content, str) else part.model_response_str()
                exited = tool == "bash" and (output.startswith("[exit code ") or "\n[exit code " in output)
                ok = part.outcome == "success" and not output.startswith("Error: ") and not exited
                results.append(Result(tool, output, ok))
    return results
