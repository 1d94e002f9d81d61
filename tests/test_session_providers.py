"""Sessions on real providers' wire formats, against the fake server on 127.0.0.1: keys reach
the model client and nothing else, tool calls round-trip, failures end turns clearly. OpenAI runs
over the Responses API (`openai:`) and over Chat Completions (`openai-chat:`, `ModelConfig(base_url=...)`).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fake_providers import DROP, Failure, FakeProvider, Reply, ToolCall
from pydantic_ai.models import override_allow_model_requests

from agentos_nb import agent_os, errors
from agentos_nb.agents.models import DEFAULT_OPENAI_MODEL, ModelConfig
from agentos_nb.software import Pi, RetryPolicy, common
from conftest import next_event, notices_of, wait_until

pytestmark = pytest.mark.anyio

ANTHROPIC_SECRET = "sk-ant-api03-SECRETSECRET-do-not-leak-0123456789"
OPENAI_SECRET = "sk-proj-SECRETSECRET-never-in-the-vm-9876543210"
PEEKS = [
    "env",
    "printenv",
    "cat /proc/self/environ",
    "echo $ANTHROPIC_API_KEY $OPENAI_API_KEY",
    "grep -r SECRETSECRET / 2>/dev/null; echo grep-done",
    "set",
]


@pytest.fixture
async def vm(start_registry):
    quick = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02)
    registry = await start_registry(vm=agent_os(software=[common, Pi(retry=quick)]))
    return registry.client().vm.get_or_create(["wired"])


@pytest.fixture
def allowed():
    """Model requests allowed for this test: every one goes to the fake server on 127.0.0.1."""
    with override_allow_model_requests(True):
        yield


PROVIDERS = ["anthropic", "openai", "openai-chat"]
PATHS = {"anthropic": "/v1/messages", "openai": "/v1/responses", "openai-chat": "/v1/chat/completions"}


def keys_for(fake: FakeProvider, *providers: str) -> dict[str, str]:
    """A session env whose keys and base URLs point the providers (both by default) at the fake."""
    env = {}
    if not providers or "anthropic" in providers:
        env |= {"ANTHROPIC_API_KEY": ANTHROPIC_SECRET, "ANTHROPIC_BASE_URL": fake.base_url_anthropic}
    if not providers or "openai" in providers:
        env |= {"OPENAI_API_KEY": OPENAI_SECRET, "OPENAI_BASE_URL": fake.base_url_openai}
    return env


def tool_results(fake: FakeProvider) -> list[str]:
    """The tool results the client sent back to the provider in its last request (each request
    carries the whole conversation), in the shape of the API it went to: Anthropic's `tool_result`
    blocks, Responses' `function_call_output` items, Chat Completions' `tool` messages."""
    request = fake.requests[-1]
    body = request.body or {}
    if request.path.endswith("/responses"):
        items = body.get("input", [])
        return [
            item["output"] if isinstance(item["output"], str) else json.dumps(item["output"])
            for item in items
            if item.get("type") == "function_call_output"
        ]
    if request.path.endswith("/chat/completions"):
        return [message["content"] for message in body.get("messages", []) if message.get("role") == "tool"]
    return [
        json.dumps(block)
        for message in body.get("messages", [])
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def paths(fake: FakeProvider) -> set[str]:
    return {request.path.split("?")[0] for request in fake.requests}


async def assert_vm_holds_no_secret(vm, *secrets: str) -> None:
    for command in PEEKS:
        result = await vm.exec(command)
        for secret in secrets:
            assert secret not in result.stdout + result.stderr, command
    for entry in await vm.readdir_recursive("/"):
        if entry.kind == "file":
            content = await vm.read_file(entry.path)
            for secret in secrets:
                assert secret.encode() not in content, entry.path


async def test_a_key_given_in_env_reaches_only_the_model_client(vm, fake_provider, allowed):
    fake_provider.script(
        *[Reply(tool_calls=[ToolCall("bash", {"command": command})]) for command in PEEKS],
        Reply("I looked everywhere and found no key."),
    )
    session = await vm.create_session(
        "pi",
        env=keys_for(fake_provider, "anthropic"),
    )
    assert session.model.startswith("anthropic:")
    assert not session.offline
    assert "session env" in session.model_reason
    result = await vm.send_prompt(session.session_id, "Find any API key you can.")
    assert result.text == "I looked everywhere and found no key."
    assert result.stop_reason == "end_turn"

    assert {r.api_key for r in fake_provider.requests} == {ANTHROPIC_SECRET}
    sent_back = tool_results(fake_provider)
    assert len(sent_back) == len(PEEKS)
    assert "grep-done" in sent_back[4]
    assert all(ANTHROPIC_SECRET not in text for text in sent_back)
    for update in await vm.get_session_events(session.session_id):
        assert ANTHROPIC_SECRET not in update.model_dump_json()
    await assert_vm_holds_no_secret(vm, ANTHROPIC_SECRET)


async def test_a_key_in_the_host_environment_picks_openai_and_stays_out(
    vm, fake_provider, allowed, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_provider.base_url_openai)
    fake_provider.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "printenv; echo $OPENAI_API_KEY"})]),
        Reply("Nothing here."),
    )
    session = await vm.create_session("pi")
    assert session.model.startswith("openai:")
    assert "host environment" in session.model_reason
    result = await vm.send_prompt(session.session_id, "Print your environment.")
    assert result.text == "Nothing here."
    assert paths(fake_provider) == {PATHS["openai"]}  # its tools need Responses while it reasons
    assert fake_provider.requests[0].body["model"] == DEFAULT_OPENAI_MODEL
    assert {r.api_key for r in fake_provider.requests} == {OPENAI_SECRET}
    [sent_back] = tool_results(fake_provider)
    assert "HOME=/home/user" in sent_back
    assert OPENAI_SECRET not in sent_back
    await assert_vm_holds_no_secret(vm, OPENAI_SECRET)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_calls_round_trip_and_text_streams_in_chunks(vm, fake_provider, allowed, provider):
    fake_provider.script(
        Reply(tool_calls=[ToolCall("write", {"path": "hello.py", "content": "print('hi')\n"}, id="call_1")]),
        Reply(tool_calls=[ToolCall("bash", {"command": "python3 hello.py"}, id="call_2")]),
        Reply("The script printed hi, as it should.", chunk_size=5),
    )
    env = keys_for(fake_provider)
    session = await vm.create_session("pi", model=f"{provider}:fake-model", env=env)
    assert session.model == f"{provider}:fake-model"
    updates = [u async for u in vm.stream_prompt(session.session_id, "Write hello.py and run it.")]
    assert updates[-1].stop_reason == "end_turn"
    chunks = [u.content.text for u in updates if u.session_update == "agent_message_chunk"]
    assert len(chunks) > 3
    assert "".join(chunks) == "The script printed hi, as it should."
    assert await vm.read_file("hello.py", encoding="utf-8") == "print('hi')\n"

    assert paths(fake_provider) == {PATHS[provider]}
    sent_back = tool_results(fake_provider)
    assert len(sent_back) == 2
    assert "Wrote 12 bytes to /home/user/hello.py" in sent_back[0]
    assert "hi" in sent_back[-1]
    if provider == "openai":  # Responses pairs each output with its call by `call_id`
        items = fake_provider.requests[-1].body["input"]
        answered = [item["call_id"] for item in items if item.get("type") == "function_call_output"]
        assert answered == ["call_1", "call_2"]
    first = fake_provider.requests[0].body
    tools = first["tools"]
    names = [t.get("name") or t["function"]["name"] for t in tools]
    assert names == ["read", "write", "edit", "bash"]
    system = json.dumps(first.get("system") or first.get("instructions") or first["messages"][0])
    assert "You are pi, a coding agent" in system
    assert "agentOS VM" in system


async def test_a_rejected_key_ends_the_turn_with_a_clear_error(vm, fake_provider, allowed):
    fake_provider.script(Failure(401))
    session = await vm.create_session(
        "pi",
        model="anthropic:claude-fake",
        env=keys_for(fake_provider, "anthropic"),
    )
    result = await vm.send_prompt(session.session_id, "hello")
    assert result.stop_reason == "error"
    assert "401" in result.error
    assert ANTHROPIC_SECRET not in result.error
    assert len(fake_provider.requests) == 1  # not retried


async def test_transient_failures_are_retried_with_notices(vm, fake_provider, allowed):
    fake_provider.script(Failure(429, retry_after="0"), DROP, Reply("finally"))
    session = await vm.create_session(
        "pi",
        model="openai:gpt-fake",
        env=keys_for(fake_provider, "openai"),
    )
    result = await vm.send_prompt(session.session_id, "hello")
    assert result.text == "finally"
    assert paths(fake_provider) == {PATHS["openai"]}
    notices = await notices_of(vm, session.session_id)
    assert len(notices) == 3  # the model announced, then two retries
    assert "attempt 2 of 3" in notices[1]
    assert "attempt 3 of 3" in notices[2]

    fake_provider.script(Failure(500), Failure(503), Failure(500))
    result = await vm.send_prompt(session.session_id, "again")
    assert result.stop_reason == "error"
    assert "500" in result.error


async def test_an_openai_compatible_local_server_needs_no_key(vm, fake_provider, allowed):
    fake_provider.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo from-the-vm"}, id="call_local")]),
        Reply("local answer"),
    )
    config = ModelConfig(provider="openai", name="llama3", base_url=fake_provider.base_url_openai)
    session = await vm.create_session("pi", model=config)
    assert session.model == "openai:llama3"
    assert (await vm.send_prompt(session.session_id, "hi")).text == "local answer"
    assert fake_provider.requests[0].body["model"] == "llama3"
    assert paths(fake_provider) == {PATHS["openai-chat"]}  # what every compatible server speaks
    [sent_back] = tool_results(fake_provider)
    assert "from-the-vm" in sent_back
    [call] = [m for m in fake_provider.requests[-1].body["messages"] if m.get("tool_calls")]
    assert call["tool_calls"][0]["id"] == "call_local"


async def test_a_model_config_can_ask_for_responses_on_its_server(vm, fake_provider, allowed):
    fake_provider.script(Reply("through a proxy"))
    config = ModelConfig(
        provider="openai", name="gpt-fake", base_url=fake_provider.base_url_openai, api="responses"
    )
    session = await vm.create_session("pi", model=config, env=keys_for(fake_provider, "openai"))
    assert (await vm.send_prompt(session.session_id, "hi")).text == "through a proxy"
    assert paths(fake_provider) == {PATHS["openai"]}


async def test_a_provider_without_its_key_is_a_clear_error(vm):
    with pytest.raises(errors.ModelNotAvailable, match="ANTHROPIC_API_KEY"):
        await vm.create_session("pi", model="anthropic:claude-sonnet")


async def test_with_no_key_the_offline_model_answers_and_says_so(vm):
    session = await vm.create_session("pi")
    assert session.offline
    assert session.model == "offline:agentos"
    [notice] = await vm.get_session_events(session.session_id)
    assert notice.session_update == "notice"
    assert notice.level == "warning"
    assert "offline" in notice.text
    result = await vm.send_prompt(session.session_id, "What is in this directory?")
    assert "offline model" in result.text


async def test_after_sleep_a_session_keeps_its_provider_and_keys_but_the_store_never_sees_them(
    start_registry, fake_provider, allowed
):
    registry = await start_registry(vm=agent_os(software=[common, Pi()], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    fake_provider.script(Reply("before"), Reply("after"))
    env = keys_for(fake_provider, "anthropic")
    session = await vm.create_session("pi", env=env)
    await vm.send_prompt(session.session_id, "one")
    await next_event(slept, "actor.slept")

    saved = await registry.store.load_blob(await vm.resolve(), "sessions")
    assert ANTHROPIC_SECRET.encode() not in saved
    result = await vm.send_prompt(session.session_id, "two")
    assert result.text == "after"
    assert (await vm.get_session(session.session_id)).model == session.model
    assert {r.api_key for r in fake_provider.requests} == {ANTHROPIC_SECRET}
    second = fake_provider.requests[-1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]


async def test_settings_with_a_key_are_saved_without_it(start_registry, fake_provider, allowed):
    registry = await start_registry(vm=agent_os(software=[common, Pi()], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["sleepy"])
    slept = registry.bus.subscribe(types=["actor.slept"])
    config = ModelConfig(
        provider="openai", name="gpt-fake", base_url=fake_provider.base_url_openai, api_key=OPENAI_SECRET
    )
    fake_provider.script(Reply("hi"))
    session = await vm.create_session("pi", model=config)
    await vm.send_prompt(session.session_id, "one")
    await next_event(slept, "actor.slept")
    saved = json.loads(await registry.store.load_blob(await vm.resolve(), "sessions"))
    assert saved[0]["model"] == {
        "provider": "openai",
        "name": "gpt-fake",
        "base_url": config.base_url,
        "api": None,
    }


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_retry_after_part_of_a_reply_says_the_reply_starts_again(
    vm, fake_provider, allowed, provider
):
    fake_provider.script(Reply("Hello, world, and more", chunk_size=3, drop_after=6), Reply("Hello again."))
    session = await vm.create_session("pi", model=f"{provider}:fake-model", env=keys_for(fake_provider))
    result = await vm.send_prompt(session.session_id, "hello")
    assert result.text == "Hello again."
    assert paths(fake_provider) == {PATHS[provider]}
    notices = await notices_of(vm, session.session_id)
    assert len(notices) == 2
    assert "the reply so far was cut off and starts again" in notices[1]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_cancelled_turn_leaves_a_conversation_the_provider_accepts(
    vm, fake_provider, allowed, provider
):
    fake_provider.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "sleep 30"}, id="call_sleep")]),
        Reply("Understood, it was cancelled."),
    )
    env = keys_for(fake_provider)
    session = await vm.create_session("pi", model=f"{provider}:fake-model", env=env)
    turn = asyncio.ensure_future(vm.send_prompt(session.session_id, "sleep"))
    await wait_until(lambda: _has_tool_call(vm, session.session_id))
    assert await vm.cancel_prompt(session.session_id)
    assert (await turn).stop_reason == "cancelled"
    result = await vm.send_prompt(session.session_id, "what happened?")
    assert result.text == "Understood, it was cancelled."
    assert paths(fake_provider) == {PATHS[provider]}
    [cancelled] = tool_results(fake_provider)
    assert "The user cancelled this before it finished." in cancelled


async def _has_tool_call(vm, session_id: str) -> bool:
    return any(u.session_update == "tool_call" for u in await vm.get_session_events(session_id))


# --- keys follow their endpoint -------------------------------------------------------------------

HOST_SECRET = "sk-ant-api03-HOSTKEY-only-for-the-host-endpoint-42"
HOST_OPENAI_SECRET = "sk-proj-HOSTKEY-only-for-the-host-endpoint-24"


@pytest.fixture
def host_keys(monkeypatch):
    """The host's own keys, in its environment, for the providers' default endpoints."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", HOST_SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", HOST_OPENAI_SECRET)


def no_host_key_reached(fake: FakeProvider) -> bool:
    return all(r.api_key not in (HOST_SECRET, HOST_OPENAI_SECRET) for r in fake.requests)


@pytest.mark.parametrize(
    ("model", "env"),
    [
        (None, {"ANTHROPIC_BASE_URL": "{url}"}),
        ("anthropic:claude-fake", {"ANTHROPIC_BASE_URL": "{url}"}),
        (ModelConfig(provider="anthropic", name="claude-fake", base_url="{url}"), {}),
    ],
    ids=["env-default-model", "env-named-model", "model-config"],
)
async def test_a_base_url_a_caller_gives_never_gets_the_hosts_key(
    vm, fake_provider, allowed, host_keys, model, env
):
    url = fake_provider.base_url_anthropic
    if isinstance(model, ModelConfig):
        model = model.model_copy(update={"base_url": url})
    env = {name: value.format(url=url) for name, value in env.items()}
    with pytest.raises(errors.ModelNotAvailable, match="base URL given with the session"):
        await vm.create_session("pi", model=model, env=env)
    assert fake_provider.requests == []


async def test_a_callers_local_openai_server_gets_a_placeholder_never_the_hosts_key(
    vm, fake_provider, allowed, host_keys
):
    fake_provider.script(Reply("local answer"))
    config = ModelConfig(provider="openai", name="llama3", base_url=fake_provider.base_url_openai)
    session = await vm.create_session("pi", model=config)
    assert (await vm.send_prompt(session.session_id, "hi")).text == "local answer"
    assert [r.api_key for r in fake_provider.requests] == ["api-key-not-set"]


async def test_a_callers_own_key_goes_to_its_own_base_url_retries_included(
    vm, fake_provider, allowed, host_keys
):
    fake_provider.script(Failure(429, retry_after="0"), DROP, Reply("finally"))
    session = await vm.create_session(
        "pi", model="anthropic:claude-fake", env=keys_for(fake_provider, "anthropic")
    )
    assert (await vm.send_prompt(session.session_id, "hello")).text == "finally"
    assert len(fake_provider.requests) == 3
    assert {r.api_key for r in fake_provider.requests} == {ANTHROPIC_SECRET}


async def test_an_endpoint_the_host_configured_may_carry_the_hosts_key(
    start_registry, fake_provider, allowed, host_keys
):
    config = ModelConfig(provider="anthropic", name="claude-fake", base_url=fake_provider.base_url_anthropic)
    registry = await start_registry(vm=agent_os(software=[common, Pi(model=config)]))
    vm = registry.client().vm.get_or_create(["hosted"])
    fake_provider.script(Reply("from the host's endpoint"))
    session = await vm.create_session("pi")
    assert (await vm.send_prompt(session.session_id, "hi")).text == "from the host's endpoint"
    assert {r.api_key for r in fake_provider.requests} == {HOST_SECRET}


async def test_over_http_a_base_url_in_the_request_never_gets_the_hosts_key(
    start_registry, fake_provider, allowed, host_keys, tmp_path, monkeypatch
):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = await start_registry(vm=agent_os(software=[common, Pi()]))
    info = await registry.serve(port=0)
    headers = {"Authorization": f"Bearer {info.token.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=info.url, headers=headers) as http:
        for body in (
            {"env": {"ANTHROPIC_BASE_URL": fake_provider.base_url_anthropic}},
            {"env": {"OPENAI_BASE_URL": "https://api.attacker.example/v1"}, "model": "openai:gpt-fake"},
        ):
            reply = await http.post("/actors/vm/x/sessions", json=body)
            assert (reply.status_code, reply.json()["error"]) == (422, "session.model_not_available")
    assert fake_provider.requests == []
    assert no_host_key_reached(fake_provider)
