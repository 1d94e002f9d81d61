"""The coding-agent loop of a `pi` session: ask the model, run the tools it calls, repeat.

It drives pydantic-ai models through their direct API (`pydantic_ai.direct`) rather than
`Agent.run`, for three reasons:
- speed: a five-step turn of a local model costs about 0.5 ms this way and 12.5 ms through
  `Agent.run` (measured with pydantic-ai-slim 2.68 on this project's 2-core machine), and a
  notebook may run a hundred sessions at once;
- control: every step becomes an ACP update as it happens, a cancelled turn leaves a
  conversation that can go on, and provider failures are retried here, visibly;
- the history stays plain pydantic-ai messages, which save and load as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from pydantic_ai import direct
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ThinkingPartDelta,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.function import FunctionModel

from agentos_nb.agents.models import ResolvedModel, classify_failure, redact
from agentos_nb.agents.permissions import PermissionGate
from agentos_nb.agents.retry import RetryPolicy
from agentos_nb.agents.tools import AgentTools
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    Notice,
    StopReason,
    TextContent,
    ToolCall,
    ToolCallUpdate,
    Usage,
)
from agentos_nb.vm.sessions import Emit, SessionRequest, TurnOutcome

if TYPE_CHECKING:
    from agentos_nb.agents.mcp import McpTools

MAX_REQUESTS_PER_TURN = 50
"""Model requests one turn may make before it ends with `max_turn_requests`."""

_CANCELLED = "The user cancelled this before it finished."
_INTERRUPTED = "This was interrupted by an error before it finished."


class _TurnFailed(Exception):
    """The model could not answer; the turn ends with stop reason `error`."""


class PiSession:
    """One conversation: its model, its history and its tools."""

    def __init__(
        self,
        request: SessionRequest,
        resolved: ResolvedModel,
        instructions: str,
        retry: RetryPolicy,
        *,
        owns_client: bool = False,
        mcp: McpTools | None = None,
    ) -> None:
        self.model = resolved.name
        self.offline = resolved.offline
        self.model_reason = resolved.reason
        self._model: Model = resolved.model
        self._instructions = instructions
        self._retry = retry
        self._owns_client = owns_client
        self._secrets = tuple(request.env.values())
        self._provider = resolved.provider
        self._tools = AgentTools(request.vm, request.cwd, mcp)
        self.gate = PermissionGate(request.permissions)
        """Every tool call goes through it before running (see `agents/permissions.py`)."""
        self._params = ModelRequestParameters(function_tools=self._tools.definitions, allow_text_output=True)
        # A local function gains nothing from streaming, which costs pydantic-ai 3-4x a plain
        # request; unless streaming is all it can do.
        model = self._model
        self._streams = not isinstance(model, FunctionModel) or model.function is None
        self._partial = False  # the response being streamed has shown some text
        self._history: list[ModelMessage] = (
            list(ModelMessagesTypeAdapter.validate_json(request.saved)) if request.saved else []
        )

    def export(self) -> bytes:
        return ModelMessagesTypeAdapter.dump_json(self._history)

    async def close(self) -> None:
        self._history = []
        await self._tools.close()
        client = getattr(self._model, "client", None)
        if self._owns_client and client is not None:
            await client.close()  # its connections, opened on this loop

    async def run_turn(self, text: str, emit: Emit) -> TurnOutcome:
        history = self._history
        history.append(ModelRequest(parts=[UserPromptPart(text)], instructions=self._instructions))
        usage = _Tally()
        reply = ""
        try:
            for _ in range(MAX_REQUESTS_PER_TURN):
                response = await self._request(history, emit)
                usage.add_response(response)
                history.append(response)
                reply = response.text or reply
                calls = response.tool_calls
                if not calls:
                    return TurnOutcome(reply, _stop_reason(response), usage.total())
                results: list[ToolReturnPart] = []
                try:
                    for call in calls:
                        results.append(await self._call_tool(call, emit))
                        usage.tool_calls += 1
                except BaseException as stopped:
                    # Every call gets a result, even when the turn stops midway: a conversation
                    # with an unanswered call cannot be sent again.
                    unanswered = _CANCELLED if isinstance(stopped, asyncio.CancelledError) else _INTERRUPTED
                    answered = {result.tool_call_id for result in results}
                    results += [
                        ToolReturnPart(call.tool_name, unanswered, tool_call_id=call.tool_call_id)
                        for call in calls
                        if call.tool_call_id not in answered
                    ]
                    raise
                finally:
                    history.append(ModelRequest(parts=list(results), instructions=self._instructions))
            return TurnOutcome(reply, "max_turn_requests", usage.total())
        except asyncio.CancelledError:
            _close_unanswered(history, f"({_CANCELLED})")
            raise
        except Exception as error:
            message = (
                str(error)
                if isinstance(error, _TurnFailed)
                else redact(f"the agent failed: {type(error).__name__}: {error}", self._secrets)
            )
            emit(Notice(level="error", text=message))
            _close_unanswered(history, f"(This turn ended with an error: {message})")
            return TurnOutcome(reply, "error", usage.total(), error=message)

    # --- the model -------------------------------------------------------------------------

    async def _request(self, history: list[ModelMessage], emit: Emit) -> ModelResponse:
        """One model response, with transient failures retried after a visible notice."""
        retry = 0
        while True:
            try:
                if self._streams:
                    return await self._streamed(history, emit)
                response = await direct.model_request(
                    self._model, history, model_request_parameters=self._params
                )
                for part in response.parts:
                    chunk = _chunk(PartStartEvent(index=0, part=part))
                    if chunk is not None:
                        emit(chunk)
                return response
            except NotImplementedError:
                if not self._streams:
                    raise
                self._streams = False  # a model that cannot stream answers in one piece
            except Exception as error:
                failure = classify_failure(error, provider=self._provider, secrets=self._secrets)
                if failure is None:
                    message = f"the model failed: {type(error).__name__}: {error}"
                    raise _TurnFailed(redact(message, self._secrets)) from error
                if not failure.transient or retry + 1 >= self._retry.attempts:
                    raise _TurnFailed(failure.message) from error
                delay = self._retry.delay(retry, failure.retry_after)
                retry += 1
                cut = "; the reply so far was cut off and starts again" if self._partial else ""
                emit(
                    Notice(
                        level="warning",
                        text=f"{failure.message}{cut}; retrying in {delay:.1f} s "
                        f"(attempt {retry + 1} of {self._retry.attempts})",
                    )
                )
                await asyncio.sleep(delay)

    async def _streamed(self, history: list[ModelMessage], emit: Emit) -> ModelResponse:
        self._partial = False
        async with direct.model_request_stream(
            self._model, history, model_request_parameters=self._params
        ) as stream:
            async for event in stream:
                chunk = _chunk(event)
                if chunk is not None:
                    emit(chunk)
                    self._partial = True
            return stream.get()

    # --- tools -----------------------------------------------------------------------------

    async def _call_tool(self, call: ToolCallPart, emit: Emit) -> ToolReturnPart:
        try:
            args = call.args_as_dict(raise_if_invalid=True)
        except ValueError:
            args = None
        plan = self._tools.plan(call.tool_name, args or {})
        emit(
            ToolCall(
                tool_call_id=call.tool_call_id,
                title=plan.title,
                kind=plan.kind,
                status="in_progress",
                raw_input=args or {"arguments": call.args},
                locations=plan.locations,
            )
        )
        if args is None:
            outcome = self._tools.invalid_json(call.tool_name)
        else:
            try:
                gated = await self._tools.gated_call(
                    call.tool_call_id, call.tool_name, args, plan, judge_bash=self.gate.wants_facts()
                )
                verdict = await self.gate.check(gated)  # may wait for the user
                if verdict.allowed:
                    outcome = await self._tools.run(call.tool_name, args, read_only=verdict.read_only)
                else:
                    outcome = self._tools.refused(verdict.refusal)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    emit(
                        ToolCallUpdate(tool_call_id=call.tool_call_id, status="failed", raw_output=_CANCELLED)
                    )
                raise
        emit(
            ToolCallUpdate(
                tool_call_id=call.tool_call_id,
                status=outcome.status,
                content=outcome.content,
                raw_output=outcome.text,
            )
        )
        return ToolReturnPart(call.tool_name, outcome.text, tool_call_id=call.tool_call_id)


class _Tally:
    def __init__(self) -> None:
        self.input_tokens = self.output_tokens = self.requests = self.tool_calls = 0

    def add_response(self, response: ModelResponse) -> None:
        self.requests += 1
        self.input_tokens += response.usage.input_tokens
        self.output_tokens += response.usage.output_tokens

    def total(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            requests=self.requests,
            tool_calls=self.tool_calls,
        )


def _chunk(event: Any) -> AgentMessageChunk | AgentThoughtChunk | None:
    """The live text of a streamed response, as ACP chunks; tool calls are shown when they run."""
    text = None
    if isinstance(event, PartStartEvent):
        if isinstance(event.part, TextPart | ThinkingPart) and event.part.content:
            text, thought = event.part.content, isinstance(event.part, ThinkingPart)
    elif isinstance(event, PartDeltaEvent):
        delta = event.delta
        if isinstance(delta, TextPartDelta) and delta.content_delta:
            text, thought = delta.content_delta, False
        elif isinstance(delta, ThinkingPartDelta) and delta.content_delta:
            text, thought = delta.content_delta, True
    if text is None:
        return None
    content = TextContent(text=text)
    return AgentThoughtChunk(content=content) if thought else AgentMessageChunk(content=content)


def _stop_reason(response: ModelResponse) -> StopReason:
    if response.finish_reason == "length":
        return "max_tokens"
    if response.finish_reason == "content_filter":
        return "refusal"
    return "end_turn"


def _close_unanswered(history: list[ModelMessage], note: str) -> None:
    """A turn that ended before the model answered still ends with an answer, so the next
    prompt follows a well-formed conversation."""
    if history and isinstance(history[-1], ModelRequest):
        history.append(ModelResponse(parts=[TextPart(note)]))
