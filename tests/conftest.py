"""Shared fixtures and helpers: asyncio only, and waiting on conditions instead of fixed sleeps."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable

import anyio
import pytest

from agentos_nb.store.memory import MemoryStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the runtime is built on asyncio tasks; trio is not supported


MODEL_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")


@pytest.fixture
def fake_provider(monkeypatch: pytest.MonkeyPatch):
    """A fake Anthropic and OpenAI server on 127.0.0.1 (see fake_providers.py)."""
    from fake_providers import serve_fake_provider

    yield from serve_fake_provider(monkeypatch)


@pytest.fixture(autouse=True)
def no_real_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real model: requests are refused, and the keys of the machine running
    the tests are hidden, so sessions fall back to the offline model unless a test says otherwise."""
    import pydantic_ai.models

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", False)
    for name in MODEL_KEYS:
        monkeypatch.delenv(name, raising=False)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 5.0, interval: float = 0.005
) -> None:
    """Poll `condition` (sync or async) until it is true; fail the test after `timeout` seconds."""
    with anyio.fail_after(timeout):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await anyio.sleep(interval)


async def next_event(subscription, type_: str, *, timeout: float = 5.0):
    """The next event of `type_` on the subscription, skipping others; fails after `timeout`."""
    with anyio.fail_after(timeout):
        async for event in subscription:
            if event.type == type_:
                return event
    raise AssertionError(f"subscription closed before a {type_} event")


async def prompts_of(vm, session_id: str) -> list[str]:
    """The prompts a session's turns began with, in order."""
    updates = await vm.get_session_events(session_id)
    return [u.content.text for u in updates if u.session_update == "user_message_chunk"]


async def notices_of(vm, session_id: str) -> list[str]:
    """What a session said besides the agent: its model, its retries."""
    return [u.text for u in await vm.get_session_events(session_id) if u.session_update == "notice"]


@pytest.fixture
async def start_registry():
    """A factory: `registry = await start_registry(name=actor(...), ...)`, stopped after the test."""
    import itertools

    from agentos_nb import setup

    started = []
    names = itertools.count(1)

    async def start(store="memory", **use):
        registry = setup(use=use, store=store, name=f"test-registry-{id(started)}-{next(names)}")
        registry.start()
        await registry.ready()
        started.append(registry)
        return registry

    yield start
    for registry in reversed(started):
        await registry.stop(grace=0)


class YieldingStore(MemoryStore):
    """A memory store whose every method suspends, as a real store's does. `calls` lists the
    methods entered, in order; a method named in `held` waits until its event is set."""

    may_suspend = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.held: dict[str, asyncio.Event] = {}


def _suspending(name: str, method: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
    @functools.wraps(method)
    async def suspending(self: YieldingStore, *args: object, **kwargs: object) -> object:
        self.calls.append(name)
        gate = self.held.get(name)
        if gate is None:
            await asyncio.sleep(0)
        else:
            await gate.wait()
        return await method(self, *args, **kwargs)

    return suspending


for _name, _method in list(vars(MemoryStore).items()):
    if inspect.iscoroutinefunction(_method):
        setattr(YieldingStore, _name, _suspending(_name, _method))


@pytest.fixture
async def vm(start_registry):
    """One awake VM with the `common` package: `await vm.exec("ls")`, `await vm.write_file(...)`."""
    from agentos_nb import agent_os
    from agentos_nb.software import common

    registry = await start_registry(vm=agent_os(software=[common]))
    return registry.client().vm.get_or_create(["test"])
