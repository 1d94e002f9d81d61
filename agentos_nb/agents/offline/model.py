"""`offline_model` itself: the `FunctionModel`, its usage and stream chunks, and the choice of each
response, the script's next step or the default behaviour's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.usage import RequestUsage

from agentos_nb.agents.offline.actions import Action
from agentos_nb.agents.offline.flows import default
from agentos_nb.agents.offline.history import prompt_text, results, turn_start
from agentos_nb.agents.offline.named_tools import named_tool_call
from agentos_nb.agents.offline.prompts import plan
from agentos_nb.agents.offline.script import Step, checked_script

OFFLINE_MODEL_NAME = "agentos-offline"


def offline_model(script: Sequence[Step | Mapping[str, Any]] = ()) -> FunctionModel:
    """A model for one session that needs no API key and answers deterministically.

    `script` steps are answered first, one per model request, across the whole session; then the
    default behaviour takes over. The model keeps no state: the number of steps already answered
    is the number of model responses in the history, so replaying a history (after a kernel
    restart, or in a test) gives the same answers, and one model object could serve any number of
    sessions. A bad step raises `ValidationError` here, naming its index.
    """
    actions = checked_script(script)

    async def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        instructions = _instructions(messages, info)
        action = _decide(messages, instructions, actions, info.function_tools)
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
        action = _decide(messages, _instructions(messages, info), actions, info.function_tools)
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


def _decide(
    messages: Sequence[ModelMessage],
    instructions: str,
    script: tuple[Action, ...],
    tools: Sequence[ToolDefinition] = (),
) -> Action:
    turn = turn_start(messages)
    prompt = prompt_text(messages[turn]) if turn >= 0 else ""
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
    done = results(messages, own)
    return named_tool_call(prompt, done, tools) or default(plan(prompt), done, instructions)
