"""Model resolution, the provider wiring against a fake Anthropic/OpenAI server on 127.0.0.1, and
the classification of provider failures. No test here reaches a real provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx2
import openai
import pydantic
import pytest
from fake_providers import DROP, HANG, Failure, FakeProvider, Reply, ToolCall
from pydantic_ai import exceptions as pai
from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters, override_allow_model_requests
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import ToolDefinition

from agentos_nb.agents.models import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    LOCAL_PLACEHOLDER_KEY,
    OFFLINE_NAME,
    REQUEST_TIMEOUT,
    ModelConfig,
    ProviderFailure,
    ResolvedModel,
    classify_failure,
    resolve_model,
)
from agentos_nb.errors import ModelNotAvailable

ANTHROPIC_KEY = "sk-ant-test-a1b2c3d4e5f6"
OPENAI_KEY = "sk-test-openai-f6e5d4c3b2a1"
KEYS = {"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY, "openai-chat": OPENAI_KEY}


def _offline_reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[TextPart("offline")])


def offline() -> Model:
    return FunctionModel(_offline_reply, model_name="agentos")


def resolve(
    model: Any, env: dict[str, str] | None = None, host_env: dict[str, str] | None = None
) -> ResolvedModel:
    return resolve_model(model, env=env, offline=offline, host_env={} if host_env is None else host_env)


def client_of(resolved: ResolvedModel) -> Any:
    assert isinstance(resolved.model, AnthropicModel | OpenAIChatModel | OpenAIResponsesModel)
    return resolved.model.client


# --- resolve_model -----------------------------------------------------------------------------------


def test_a_model_object_passes_through() -> None:
    given = TestModel()
    resolved = resolve(given, env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    assert resolved.model is given
    assert (resolved.name, resolved.provider, resolved.offline) == ("test:test", "test", True)
    assert resolved.reason == "given explicitly"

    real = resolve("anthropic:claude-x", env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY}).model
    again = resolve(real)
    assert again.model is real
    assert (again.name, again.provider, again.offline) == ("anthropic:claude-x", "anthropic", False)


@pytest.mark.parametrize("name", ["offline", "offline:anything", " offline "])
def test_offline_by_name(name: str) -> None:
    resolved = resolve(name, env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    assert isinstance(resolved.model, FunctionModel)
    assert (resolved.name, resolved.provider, resolved.offline) == (OFFLINE_NAME, "offline", True)
    assert resolved.reason == "given explicitly"


def test_no_key_anywhere_falls_back_to_offline() -> None:
    resolved = resolve(None, env=None, host_env={"PATH": "/bin"})
    assert resolved.offline
    assert resolved.name == OFFLINE_NAME
    assert resolved.provider == "offline"
    assert resolved.reason == "no ANTHROPIC_API_KEY or OPENAI_API_KEY: using the offline model"
    assert resolve(None, env={"ANTHROPIC_API_KEY": ""}).offline  # an empty key is no key


def test_anthropic_by_name_is_built_with_its_own_client() -> None:
    resolved = resolve("anthropic:claude-x", env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    assert isinstance(resolved.model, AnthropicModel)
    assert resolved.model.model_name == "claude-x"
    assert (resolved.name, resolved.provider, resolved.offline) == ("anthropic:claude-x", "anthropic", False)
    client = client_of(resolved)
    assert isinstance(client, anthropic.AsyncAnthropic)
    assert client.api_key == ANTHROPIC_KEY
    assert str(client.base_url).rstrip("/") == "https://api.anthropic.com"
    assert client.max_retries == 0
    assert client.timeout == REQUEST_TIMEOUT


@pytest.mark.parametrize(
    ("model", "api", "name"),
    [
        ("openai:gpt-x", OpenAIResponsesModel, "openai:gpt-x"),
        ("gpt-x", OpenAIResponsesModel, "openai:gpt-x"),
        ("openai-chat:gpt-x", OpenAIChatModel, "openai-chat:gpt-x"),
    ],
)
def test_openai_by_name_uses_the_api_its_prefix_names(model: str, api: type[Model], name: str) -> None:
    resolved = resolve(model, env={"OPENAI_API_KEY": OPENAI_KEY})
    assert type(resolved.model) is api
    assert resolved.model.model_name == "gpt-x"
    assert (resolved.name, resolved.provider) == (name, "openai")
    client = client_of(resolved)
    assert isinstance(client, openai.AsyncOpenAI)
    assert client.api_key == OPENAI_KEY
    assert str(client.base_url).rstrip("/") == "https://api.openai.com/v1"
    assert client.max_retries == 0
    assert client.timeout == REQUEST_TIMEOUT


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("claude-sonnet-5-5", "anthropic"),
        ("claude-haiku-4-5", "anthropic"),
        ("gpt-6.1-sol", "openai"),
        ("o1", "openai"),
        ("o3-mini", "openai"),
        ("o4-mini", "openai"),
    ],
)
def test_a_bare_name_infers_its_provider(name: str, provider: str) -> None:
    resolved = resolve(name, env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": OPENAI_KEY})
    assert (resolved.name, resolved.provider) == (f"{provider}:{name}", provider)


def test_a_bare_name_of_no_known_family_is_refused() -> None:
    with pytest.raises(ModelNotAvailable, match=r"cannot tell which provider.*'openai:NAME'"):
        resolve("llama3", env={"OPENAI_API_KEY": OPENAI_KEY})


@pytest.mark.parametrize("model", ["mistral:large", "gemini:pro", "bedrock:claude-x"])
def test_an_unknown_provider_prefix_is_named_and_the_known_ones_listed(model: str) -> None:
    with pytest.raises(ModelNotAvailable, match="unknown model provider") as caught:
        resolve(model, env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    message = str(caught.value)
    assert repr(model.split(":")[0]) in message
    assert all(known in message for known in ("anthropic", "openai", "offline"))
    assert isinstance(caught.value, ModelNotAvailable)


def test_an_empty_name_after_the_prefix_is_refused() -> None:
    with pytest.raises(ModelNotAvailable, match="names no model"):
        resolve("anthropic:", env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})


@pytest.mark.parametrize(
    ("model", "variable"), [("anthropic:claude-x", "ANTHROPIC_API_KEY"), ("gpt-x", "OPENAI_API_KEY")]
)
def test_a_missing_key_says_which_variable_to_set(model: str, variable: str) -> None:
    other = (
        {"OPENAI_API_KEY": OPENAI_KEY}
        if variable == "ANTHROPIC_API_KEY"
        else {"ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    )
    with pytest.raises(ModelNotAvailable, match=f"set {variable}") as caught:
        resolve(model, env=other)
    assert caught.value.details == {"variable": variable}
    assert ANTHROPIC_KEY not in str(caught.value)
    assert OPENAI_KEY not in str(caught.value)


def test_the_session_env_wins_over_the_host_env() -> None:
    host = {"ANTHROPIC_API_KEY": "sk-ant-host-000000", "ANTHROPIC_BASE_URL": "https://host-proxy.example"}
    resolved = resolve("anthropic:claude-x", env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY}, host_env=host)
    client = client_of(resolved)
    assert client.api_key == ANTHROPIC_KEY  # the session's key...
    assert str(client.base_url).startswith("https://host-proxy.example")  # ...and the host's base URL

    session = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": "https://session-proxy.example"}
    assert str(client_of(resolve("claude-x", env=session, host_env=host)).base_url).startswith(
        "https://session-proxy.example"
    )
    only_host = resolve(None, env=None, host_env=host)
    assert client_of(only_host).api_key == "sk-ant-host-000000"
    assert only_host.reason == "ANTHROPIC_API_KEY is set in the host environment"


def test_the_environment_picks_anthropic_then_openai() -> None:
    both = resolve(None, env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": OPENAI_KEY})
    assert both.name == f"anthropic:{DEFAULT_ANTHROPIC_MODEL}"
    assert both.reason.startswith("ANTHROPIC_API_KEY is set")
    assert both.reason == "ANTHROPIC_API_KEY is set in the session env"

    only_openai = resolve(None, env={"OPENAI_API_KEY": OPENAI_KEY})
    assert only_openai.name == f"openai:{DEFAULT_OPENAI_MODEL}"
    assert type(only_openai.model) is OpenAIResponsesModel  # its tools need it while it reasons
    assert only_openai.reason == "OPENAI_API_KEY is set in the session env"

    # A key given to the session says more than one the host happens to have.
    mixed = resolve(None, env={"OPENAI_API_KEY": OPENAI_KEY}, host_env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    assert mixed.provider == "openai"


def test_host_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    resolved = resolve_model(None, env=None, offline=offline)
    assert resolved.provider == "openai"
    assert client_of(resolved).api_key == OPENAI_KEY


def test_the_sdk_never_reads_the_host_base_url_behind_our_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://203.0.113.9")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://203.0.113.9/v1")
    env = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": OPENAI_KEY}
    assert "203.0.113.9" not in str(client_of(resolve("claude-x", env=env, host_env={})).base_url)
    assert "203.0.113.9" not in str(client_of(resolve("gpt-x", env=env, host_env={})).base_url)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:11434/v1",
        "http://127.0.0.1:8000/v1",
        "http://[::1]:8080/v1",
        "http://192.168.1.20:8000/v1",
    ],
)
def test_a_local_openai_compatible_server_needs_no_key(base_url: str) -> None:
    resolved = resolve(ModelConfig(provider="openai", name="llama3", base_url=base_url))
    assert (resolved.name, resolved.provider, resolved.reason) == (
        "openai:llama3",
        "openai",
        "given explicitly",
    )
    assert type(resolved.model) is OpenAIChatModel
    client = client_of(resolved)
    assert client.api_key == LOCAL_PLACEHOLDER_KEY
    assert str(client.base_url).rstrip("/") == base_url.rstrip("/")
    # The same through the environment, with a name, whose prefix says which API.
    for prefix, api in (("openai", OpenAIResponsesModel), ("openai-chat", OpenAIChatModel)):
        from_env = resolve(f"{prefix}:qwen3", env={"OPENAI_BASE_URL": base_url})
        assert type(from_env.model) is api
        assert client_of(from_env).api_key == LOCAL_PLACEHOLDER_KEY
        assert str(client_of(from_env).base_url).rstrip("/") == base_url.rstrip("/")


@pytest.mark.parametrize(
    ("base_url", "api", "expected"),
    [
        (None, None, OpenAIResponsesModel),
        ("https://proxy.example/v1", None, OpenAIChatModel),
        ("https://proxy.example/v1", "responses", OpenAIResponsesModel),
        (None, "chat", OpenAIChatModel),
    ],
)
def test_model_config_picks_the_openai_api(base_url: str | None, api: Any, expected: type[Model]) -> None:
    config = ModelConfig(provider="openai", name="gpt-x", base_url=base_url, api=api)
    resolved = resolve(config, env={"OPENAI_API_KEY": OPENAI_KEY})
    assert type(resolved.model) is expected
    assert resolved.name == "openai:gpt-x"


def test_a_remote_server_still_needs_a_key() -> None:
    with pytest.raises(ModelNotAvailable, match="OPENAI_API_KEY"):
        resolve(ModelConfig(provider="openai", name="llama3", base_url="https://llm.example.com/v1"))
    with pytest.raises(ModelNotAvailable, match="ANTHROPIC_API_KEY"):
        resolve(ModelConfig(provider="anthropic", name="claude-x", base_url="http://localhost:4000"))


def test_model_config_key_and_url_win_and_the_key_stays_out_of_its_repr() -> None:
    config = ModelConfig(
        provider="anthropic", name="claude-x", base_url="https://proxy.example", api_key=ANTHROPIC_KEY
    )
    assert ANTHROPIC_KEY not in repr(config)
    assert ANTHROPIC_KEY not in str(config)
    resolved = resolve(config, env={"ANTHROPIC_API_KEY": "sk-ant-other-99999999"})
    assert client_of(resolved).api_key == ANTHROPIC_KEY
    assert str(client_of(resolved).base_url).startswith("https://proxy.example")
    assert ANTHROPIC_KEY not in repr(resolved)


def test_model_config_is_strict() -> None:
    with pytest.raises(pydantic.ValidationError):
        ModelConfig(provider="openai", name="x", temperature=0.2)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        ModelConfig(provider="mistral", name="x")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        ModelConfig(provider="openai", name="")
    with pytest.raises(pydantic.ValidationError, match="OpenAI models only"):
        ModelConfig(provider="anthropic", name="claude-x", api="chat")
    with pytest.raises(pydantic.ValidationError):
        ModelConfig(provider="openai", name="x", api="completions")  # type: ignore[arg-type]


# --- wiring against the fake server ------------------------------------------------------------------

PROVIDERS = ["anthropic", "openai", "openai-chat"]
"""A model prefix each: `openai` goes over the Responses API, `openai-chat` over Chat Completions."""
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/responses", "openai-chat": "/v1/chat/completions"}
SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string", "description": "the file"}, "limit": {"type": "integer"}},
    "required": ["path"],
}
READ_TOOL = ToolDefinition(name="read", description="Read a file", parameters_json_schema=SCHEMA)
WITH_TOOLS = ModelRequestParameters(function_tools=[READ_TOOL])


@asynccontextmanager
async def wired(
    fake: FakeProvider, provider: str, model: str | None = None, **model_kwargs: Any
) -> AsyncIterator[ResolvedModel]:
    """A model resolved against the fake server, allowed to make requests (to 127.0.0.1 only)."""
    env = {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": fake.base_url_anthropic,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": fake.base_url_openai,
    }
    resolved = resolve(model or f"{provider}:{'claude' if provider == 'anthropic' else 'gpt'}-fake", env=env)
    client = client_of(resolved)
    assert urlsplit(str(client.base_url)).hostname == "127.0.0.1"
    try:
        with override_allow_model_requests(True):
            yield resolved
    finally:
        await client.close()


def sent_key(fake: FakeProvider) -> str | None:
    return fake.requests[-1].api_key


def last_body(fake: FakeProvider) -> dict[str, Any]:
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return body


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_text_reply(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(Reply(text="Hello from the fake.", input_tokens=21, output_tokens=5))
    async with wired(fake_provider, provider) as resolved:
        response = await model_request(resolved.model, [ModelRequest.user_text_prompt("Say hi")])
    assert [p.content for p in response.parts if isinstance(p, TextPart)] == ["Hello from the fake."]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 5)
    assert sent_key(fake_provider) == KEYS[provider]
    body = last_body(fake_provider)
    assert not body.get("stream")
    assert body["model"] == resolved.model.model_name
    sent = body["input"] if provider == "openai" else body["messages"]
    assert sent[-1]["role"] == "user"
    assert "Say hi" in str(sent[-1]["content"])
    assert fake_provider.requests[-1].path.split("?")[0] == PATHS[provider]


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_streamed_text_reply_arrives_in_deltas(fake_provider: FakeProvider, provider: str) -> None:
    text = "Streaming, one small piece at a time."
    fake_provider.script(Reply(text=text, chunk_size=5))
    async with (
        wired(fake_provider, provider) as resolved,
        model_request_stream(resolved.model, [ModelRequest.user_text_prompt("Stream")]) as stream,
    ):
        events = [event async for event in stream]
        response = stream.get()
    deltas = [
        e.delta.content_delta
        for e in events
        if isinstance(e, PartDeltaEvent) and isinstance(e.delta, TextPartDelta)
    ]
    assert len(deltas) >= 5
    assert [p.content for p in response.parts if isinstance(p, TextPart)] == [text]
    assert response.usage.output_tokens == 7
    assert last_body(fake_provider)["stream"] is True
    assert sent_key(fake_provider) == KEYS[provider]
    assert fake_provider.requests[-1].path.split("?")[0] == PATHS[provider]


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_tool_call(fake_provider: FakeProvider, provider: str, streamed: bool) -> None:
    call = ToolCall("read", {"path": "notes/todo.md", "limit": 20}, id="call-42")
    fake_provider.script(Reply(text="Let me look.", tool_calls=[call]))
    messages: list[ModelMessage] = [ModelRequest.user_text_prompt("What is left to do?")]
    async with wired(fake_provider, provider) as resolved:
        if streamed:
            async with model_request_stream(
                resolved.model, messages, model_request_parameters=WITH_TOOLS
            ) as stream:
                async for _ in stream:
                    pass
                response = stream.get()
        else:
            response = await model_request(resolved.model, messages, model_request_parameters=WITH_TOOLS)
    calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
    assert [(c.tool_name, c.args_as_dict(), c.tool_call_id) for c in calls] == [
        ("read", {"path": "notes/todo.md", "limit": 20}, "call-42")
    ]
    # The Responses API's status is `completed` with or without calls: pydantic-ai says "stop".
    assert response.finish_reason == ("stop" if provider == "openai" else "tool_call")
    tools = last_body(fake_provider)["tools"]
    if provider == "anthropic":
        assert [t["name"] for t in tools] == ["read"]
        schema, description = tools[0]["input_schema"], tools[0]["description"]
    elif provider == "openai":
        assert [(t["type"], t["name"]) for t in tools] == [("function", "read")]
        schema, description = tools[0]["parameters"], tools[0]["description"]
    else:
        assert [t["function"]["name"] for t in tools] == ["read"]
        schema, description = tools[0]["function"]["parameters"], tools[0]["function"]["description"]
    assert description == "Read a file"
    assert schema["properties"] == SCHEMA["properties"]
    assert schema["required"] == ["path"]


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_tool_result_goes_back(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(Reply(text="Two things are left."))
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("What is left to do?")]),
        ModelResponse(parts=[ToolCallPart("read", {"path": "notes/todo.md"}, tool_call_id="call-42")]),
        ModelRequest(parts=[ToolReturnPart("read", "- write tests\n- ship", tool_call_id="call-42")]),
    ]
    async with wired(fake_provider, provider) as resolved:
        response = await model_request(resolved.model, messages, model_request_parameters=WITH_TOOLS)
    assert [p.content for p in response.parts if isinstance(p, TextPart)] == ["Two things are left."]
    body = last_body(fake_provider)
    if provider == "openai":
        call, result = body["input"][-2], body["input"][-1]
        assert (call["type"], call["call_id"], call["name"]) == ("function_call", "call-42", "read")
        assert json.loads(call["arguments"]) == {"path": "notes/todo.md"}
        assert (result["type"], result["call_id"]) == ("function_call_output", "call-42")
        assert result["output"] == "- write tests\n- ship"
        return
    sent = body["messages"]
    if provider == "anthropic":
        assistant, result = sent[-2], sent[-1]
        assert assistant["role"] == "assistant"
        assert [(b["type"], b["id"], b["input"]) for b in assistant["content"]] == [
            ("tool_use", "call-42", {"path": "notes/todo.md"})
        ]
        assert result["role"] == "user"
        block = result["content"][0]
        assert (block["type"], block["tool_use_id"]) == ("tool_result", "call-42")
        assert block["content"] in (
            "- write tests\n- ship",
            [{"type": "text", "text": "- write tests\n- ship"}],
        )
    else:
        assistant, result = sent[-2], sent[-1]
        assert assistant["tool_calls"][0]["id"] == "call-42"
        assert assistant["tool_calls"][0]["function"]["name"] == "read"
        assert (result["role"], result["tool_call_id"]) == ("tool", "call-42")
        assert result["content"] == "- write tests\n- ship"


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_the_default_models_work_through_the_environment(
    fake_provider: FakeProvider, provider: str
) -> None:
    fake_provider.script("fine", Reply(text="also fine"))
    key_var, url_var = (
        ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
        if provider == "anthropic"
        else ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    )
    base_url = fake_provider.base_url_anthropic if provider == "anthropic" else fake_provider.base_url_openai
    resolved = resolve(None, env={key_var: KEYS[provider], url_var: base_url})
    assert (
        resolved.name
        == f"{provider}:{DEFAULT_ANTHROPIC_MODEL if provider == 'anthropic' else DEFAULT_OPENAI_MODEL}"
    )
    try:
        with override_allow_model_requests(True):
            response = await model_request(resolved.model, [ModelRequest.user_text_prompt("hi")])
            async with model_request_stream(resolved.model, [ModelRequest.user_text_prompt("hi")]) as stream:
                async for _ in stream:
                    pass
    finally:
        await client_of(resolved).close()
    assert response.parts[0].content == "fine"
    assert stream.get().parts[0].content == "also fine"
    assert [r.api_key for r in fake_provider.requests] == [KEYS[provider]] * 2
    assert {r.path for r in fake_provider.requests} == {PATHS[provider]}


@pytest.mark.anyio
async def test_requests_stay_blocked_unless_allowed(fake_provider: FakeProvider) -> None:
    fake_provider.script("never sent")
    resolved = resolve(
        "anthropic:claude-x",
        env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": fake_provider.base_url},
    )
    try:
        with override_allow_model_requests(False), pytest.raises(RuntimeError, match="ALLOW_MODEL_REQUESTS"):
            await model_request(resolved.model, [ModelRequest.user_text_prompt("hi")])
    finally:
        await client_of(resolved).close()
    assert fake_provider.requests == []


# --- failures from the fake server -------------------------------------------------------------------


async def fail(
    resolved: ResolvedModel, *, streamed: bool = False, timeout: float | None = None
) -> BaseException:
    """Make one request that must fail, and return what it raised."""
    settings: Any = {"timeout": timeout} if timeout else None
    messages = [ModelRequest.user_text_prompt("hi")]
    try:
        if streamed:
            async with model_request_stream(resolved.model, messages, model_settings=settings) as stream:
                async for _ in stream:
                    pass
        else:
            await model_request(resolved.model, messages, model_settings=settings)
    except Exception as error:
        return error
    raise AssertionError("the request succeeded")


def assert_clean(message: str) -> None:
    assert ANTHROPIC_KEY not in message
    assert OPENAI_KEY not in message
    assert "\n" not in message
    assert message


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_rejected_key_is_auth_and_not_transient(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(Failure(401))  # whose message echoes the key it got, unmasked
    async with wired(fake_provider, provider) as resolved:
        error = await fail(resolved)
    assert KEYS[provider] in str(error.__cause__)  # the raw error does carry it...
    failure = classify_failure(error)
    assert failure is not None
    assert (failure.kind, failure.transient, failure.retry_after) == ("auth", False, None)
    assert failure.message.startswith(f"{resolved.provider} rejected the API key (HTTP 401)")
    assert_clean(failure.message)  # ...the classified one never does


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("retry_after", ["7", 7.5])
async def test_a_rate_limit_is_transient_with_retry_after(
    fake_provider: FakeProvider, provider: str, retry_after: str | float
) -> None:
    fake_provider.script(Failure(429, retry_after=retry_after))
    async with wired(fake_provider, provider) as resolved:
        failure = classify_failure(await fail(resolved))
    assert failure is not None
    assert (failure.kind, failure.transient) == ("rate_limit", True)
    # pydantic-ai reads an integer Retry-After only; a fractional one (not valid HTTP) is dropped.
    assert failure.retry_after == (7.0 if retry_after == "7" else None)
    assert "HTTP 429" in failure.message
    assert_clean(failure.message)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (529, "overloaded", True),
        (500, "server", True),
        (503, "server", True),
        (400, "bad_request", False),
        (404, "bad_request", False),
        (403, "auth", False),
    ],
)
async def test_error_statuses(
    fake_provider: FakeProvider, provider: str, status: int, kind: str, transient: bool
) -> None:
    fake_provider.script(Failure(status))
    async with wired(fake_provider, provider) as resolved:
        failure = classify_failure(await fail(resolved))
    assert failure is not None
    assert (failure.kind, failure.transient) == (kind, transient)
    assert f"HTTP {status}" in failure.message
    assert f"fake {status} error" in failure.message
    assert_clean(failure.message)


@pytest.mark.anyio
async def test_anthropic_overloaded_error_type(fake_provider: FakeProvider) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake_provider.script(Failure(529, body=body))
    async with wired(fake_provider, "anthropic") as resolved:
        failure = classify_failure(await fail(resolved, streamed=True))
    assert failure is not None
    assert (failure.kind, failure.transient) == ("overloaded", True)
    assert failure.message == "anthropic is overloaded (HTTP 529): Overloaded"


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_dropped_connection_is_network(
    fake_provider: FakeProvider, provider: str, streamed: bool
) -> None:
    fake_provider.script(DROP)
    async with wired(fake_provider, provider) as resolved:
        failure = classify_failure(await fail(resolved, streamed=streamed))
    assert failure is not None
    assert (failure.kind, failure.transient) == ("network", True)
    assert failure.message.startswith(f"connection to {resolved.provider} failed")
    assert_clean(failure.message)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_cut_off_midway_is_network(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(Reply(text="this will not arrive whole", chunk_size=3, drop_after=4))
    async with wired(fake_provider, provider) as resolved:
        failure = classify_failure(await fail(resolved, streamed=True), provider=resolved.provider)
    assert failure is not None
    assert (failure.kind, failure.transient) == ("network", True)
    assert failure.message.startswith(f"connection to {resolved.provider} failed")


@pytest.mark.anyio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("where", ["before the answer", "mid-stream"])
async def test_a_hang_times_out(fake_provider: FakeProvider, provider: str, where: str) -> None:
    if where == "before the answer":
        fake_provider.script(HANG)
    else:
        fake_provider.script(Reply(text="slow and then nothing", stall_after=3))
    async with wired(fake_provider, provider) as resolved:
        with anyio_fail_after(10):
            error = await fail(resolved, streamed=where == "mid-stream", timeout=0.3)
    failure = classify_failure(error, provider=resolved.provider)
    assert failure is not None
    assert (failure.kind, failure.transient) == ("timeout", True)
    assert failure.message.startswith(f"{resolved.provider} did not answer in time")
    assert_clean(failure.message)


def anyio_fail_after(seconds: float) -> Any:
    import anyio

    return anyio.fail_after(seconds)


@pytest.mark.anyio
async def test_a_request_deadline_is_a_timeout(fake_provider: FakeProvider) -> None:
    fake_provider.script(HANG)
    async with wired(fake_provider, "openai") as resolved:
        try:
            await model_request(
                resolved.model, [ModelRequest.user_text_prompt("hi")], model_settings={"request_timeout": 0.3}
            )
        except pai.ModelRequestTimeout as error:
            failure = classify_failure(error, provider="openai")
        else:
            raise AssertionError("no timeout")
    assert failure is not None
    assert (failure.kind, failure.transient) == ("timeout", True)
    assert failure.message == "openai did not answer within 0.3 s"


# --- classify_failure on its own ---------------------------------------------------------------------

REQUEST = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        KeyError("x"),
        RuntimeError("ALLOW_MODEL_REQUESTS"),
        asyncio.CancelledError(),
        TimeoutError(),
    ],
)
def test_our_own_bugs_are_not_provider_failures(error: BaseException) -> None:
    assert classify_failure(error) is None


def test_raw_sdk_and_httpx2_errors_that_escape() -> None:
    response = httpx2.Response(429, headers={"retry-after-ms": "1500"}, request=REQUEST)
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    failure = classify_failure(anthropic.RateLimitError("rate limited", response=response, body=body))
    assert failure is not None
    assert (failure.kind, failure.transient, failure.retry_after) == ("rate_limit", True, 1.5)
    assert failure.message == "anthropic rate limit reached (HTTP 429): slow down"

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    response = httpx2.Response(429, headers={"retry-after": later}, request=REQUEST)
    failure = classify_failure(openai.RateLimitError("rate limited", response=response, body=None))
    assert failure is not None
    assert failure.retry_after is not None
    assert 50 < failure.retry_after <= 60

    overloaded = httpx2.Response(529, request=REQUEST)
    failure = classify_failure(anthropic.InternalServerError("overloaded", response=overloaded, body=None))
    assert failure is not None
    assert failure.kind == "overloaded"

    failure = classify_failure(openai.APITimeoutError(request=REQUEST))
    assert failure is not None
    assert (failure.kind, failure.message) == (
        "timeout",
        "openai did not answer in time: Request timed out.",
    )

    failure = classify_failure(httpx2.ConnectError("connection refused"), provider="openai")
    assert failure is not None
    assert (failure.kind, failure.message) == (
        "network",
        "connection to openai failed: connection refused",
    )
    failure = classify_failure(httpx2.ReadTimeout(""))
    assert failure is not None
    assert failure.kind == "timeout"
    status_error = httpx2.HTTPStatusError(
        "boom", request=REQUEST, response=httpx2.Response(502, request=REQUEST)
    )
    failure = classify_failure(status_error)
    assert failure is not None
    assert (failure.kind, failure.transient) == ("server", True)


def classified(error: BaseException, **kwargs: Any) -> ProviderFailure:
    failure = classify_failure(error, **kwargs)
    assert failure is not None, f"{error!r} was not classified"
    return failure


def test_pydantic_ai_categories() -> None:
    quota = pai.ModelHTTPError.for_category(pai.ModelQuotaExceededError, status_code=402, model_name="m")
    context = pai.ModelHTTPError.for_category(
        pai.ModelContextWindowExceededError, status_code=400, model_name="m"
    )
    plain = pai.ModelAPIError("m", "Failed to decode response as JSON")
    assert (classified(quota).kind, classified(quota).transient) == ("other", False)
    assert classified(context).kind == "bad_request"
    assert classified(plain).kind == "other"
    assert classified(plain).message == "the model provider request failed: Failed to decode response as JSON"
    assert classified(plain, provider="openai").message.startswith("openai request failed")


def test_a_wrapped_failure_is_found_through_its_cause() -> None:
    outer = RuntimeError("the turn failed")
    outer.__cause__ = httpx2.ConnectError("refused")
    assert classified(outer).kind == "network"
    implicit = RuntimeError("a bug while handling it")
    implicit.__context__ = httpx2.ConnectError("refused")  # not raised *from* it: still our bug
    assert classify_failure(implicit) is None


def test_exception_groups() -> None:
    rate = pai.ModelHTTPError.for_category(pai.ModelRateLimitError, status_code=429, model_name="m")
    assert classified(ExceptionGroup("g", [rate])).kind == "rate_limit"
    assert classified(BaseExceptionGroup("g", [rate, asyncio.CancelledError()])).kind == "rate_limit"
    assert classify_failure(ExceptionGroup("g", [rate, ValueError("our bug")])) is None


def test_secrets_never_reach_the_message() -> None:
    body = {
        "type": "error",
        "error": {"type": "authentication_error", "message": "bad key sk-live-0123456789abcdef"},
    }
    error = pai.ModelHTTPError.for_category(
        pai.ModelAuthenticationError, status_code=401, model_name="m", body=body
    )
    message = classified(error).message
    assert "0123456789abcdef" not in message
    assert "sk-[redacted]" in message

    bearer = pai.ModelAPIError("m", "proxy said: Authorization: Bearer abc.def.ghi was refused")
    assert "abc.def.ghi" not in classified(bearer).message

    custom = pai.ModelAPIError("m", "your token tok_very_private_value is wrong")
    assert "tok_very_private_value" in classified(custom).message
    assert "tok_very_private_value" not in classified(custom, secrets=["tok_very_private_value"]).message

    # Any key resolve_model has seen is redacted, whatever its shape.
    resolve(None, env={"OPENAI_API_KEY": "plainlongsecretvalue"})
    assert (
        "plainlongsecretvalue" not in classified(pai.ModelAPIError("m", "echo plainlongsecretvalue")).message
    )


def test_a_model_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match="not int"):
        resolve(42)
