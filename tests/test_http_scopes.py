"""Scoped tokens: a table of (token scope, route, actor) -> allowed or 403, generated from the
route table so that every route is in it, and checked against a live server on 127.0.0.1.
An oracle written here (not the server's code) says what each scope should open."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

import httpx
import pydantic
import pytest
from pydantic import BaseModel

from agentos_nb import ActorContext, Registry, actor, agent_os, queue, setup
from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.http.auth import identify
from agentos_nb.http.route_table import ROUTES
from agentos_nb.http.routing import Route
from agentos_nb.http.runtime_files import list_runtime_files, runtime_dir
from agentos_nb.http.scopes import ROUTE_KINDS, ScopedToken
from agentos_nb.software import common

pytestmark = pytest.mark.anyio

FULL = "the-full-token-of-this-server"


class Task(BaseModel):
    prompt: str


async def greet(c: ActorContext, name: str) -> str:
    return f"hello {name}"


async def ticks(c: ActorContext, n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


def task_runner() -> ActorDefinition:
    """Queues nothing consumes, so depths show what was enqueued."""
    return actor(
        queues={"tasks": queue(Task), "audit": queue(Task)}, actions={"greet": greet, "ticks": ticks}
    )


SCOPES: dict[str, dict[str, Any]] = {
    "webhook": {"routes": ["send"], "actors": ["task_runner/*"], "queues": ["tasks"]},
    "reader": {"routes": ["read"]},
    "vm_files": {"routes": ["files_read", "files_write"], "actors": ["vm/box"]},
    "task_runner_all": {"routes": [k for k in ROUTE_KINDS if k != "health"], "actors": ["task_runner"]},
    "one_key": {"routes": ["send", "wait", "actions", "read", "create"], "actors": ["task_runner/main"]},
}


def token_of(label: str) -> str:
    return f"scoped-token-{label}-0123456789"


TARGETS = [("task_runner", "main"), ("task_runner", "other"), ("task_runner", "@some-id"), ("vm", "box")]
"""The actors each route with an actor in its URL is tried on (by key, and one by id)."""


def requests_for(route: Route) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(actor, queue, path, httpx options) for `route`: bodies a handler refuses before it
    touches a VM or enqueues anything it should not, so only the scope decides 403."""
    targets: list[tuple[str, str]] = TARGETS if "{name}" in route.template else [("", "")]
    queues = ["tasks", "audit"] if "{queue}" in route.template else [""]
    found = []
    for name, key in targets:
        for queue_name in queues:
            values = {
                "name": name,
                "key": key,
                "queue": queue_name,
                "action": "ticks" if route.template.endswith("/stream") else "greet",
                "session_id": "s-none",
                "terminal_id": "t-none",
                "request_id": "p-none",
                "pid": "999999",
                "message_id": "1",
                "path": "%FF",
            }
            path = re.sub(r"\{(\w+)\}", partial(_value, values), route.template)
            options: dict[str, Any] = {}
            if route.body is not None:
                options["content"] = json.dumps({"prompt": "x"} if route.scope == "send" else {"bogus": 1})
            if route.scope == "events":
                options["params"] = {"buffer": "0"}  # a 422 before the stream opens
            if route.scope == "wait":
                options["params"] = {"timeout": "0"}
            found.append((f"{name}/{key}" if name else "", queue_name, path, options))
    return found


def _value(values: dict[str, str], match: re.Match[str]) -> str:
    return values[match[1]]


def oracle(scope: dict[str, Any], route: Route, target: str, queue_name: str) -> bool:
    """Whether `scope` should open `route` on actor `target` (name/key) and `queue_name`."""
    if route.scope == "health":
        return True
    if route.scope not in scope["routes"]:
        return False
    if target:
        name, key = target.split("/", 1)
        patterns = [p if "/" in p else p + "/*" for p in scope.get("actors", ["*/*"])]
        if key.startswith("@"):
            allowed = any(p.endswith("/*") and fnmatchcase(name, p[:-2]) for p in patterns)
        else:
            allowed = any(fnmatchcase(target, p) for p in patterns)
        if not allowed:
            return False
    return route.scope != "send" or any(fnmatchcase(queue_name, p) for p in scope.get("queues", ["*"]))


@pytest.fixture
async def served(tmp_path, monkeypatch) -> AsyncIterator[tuple[Registry, str]]:
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"task_runner": task_runner(), "vm": agent_os(software=[common])}, name="scopes")
    tokens = [{"token": token_of(label), "label": label, **scope} for label, scope in SCOPES.items()]
    info = await registry.serve(port=0, token=FULL, tokens=tokens)
    yield registry, info.url
    await registry.stop(grace=0)


def test_every_route_declares_a_known_scope_and_every_scope_is_some_routes():
    assert all(route.scope in ROUTE_KINDS for route in ROUTES)
    assert {route.scope for route in ROUTES} == set(ROUTE_KINDS)
    assert [route for route in ROUTES if route.public] == [r for r in ROUTES if r.scope == "health"]


def test_a_route_without_a_scope_cannot_be_made():
    with pytest.raises(TypeError, match="scope"):
        Route("GET", "/new", "A new route", ROUTES[0].handler)


@pytest.mark.parametrize("label", list(SCOPES))
async def test_each_scope_opens_exactly_what_it_names_on_every_route(served, label):
    _, url = served
    scope = SCOPES[label]
    wrong = []
    tried = 0
    headers = {"Authorization": f"Bearer {token_of(label)}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        for route in ROUTES:
            if route.scope == "previews":
                continue  # a signed link opens it whatever the token: tests/test_previews.py
            for target, queue_name, path, options in requests_for(route):
                reply = await http.request(route.method, path, **options)
                tried += 1
                allowed = oracle(scope, route, target, queue_name)
                if allowed and reply.status_code in (401, 403):
                    wrong.append(f"{route.method} {path}: {reply.status_code}, should be allowed")
                elif not allowed and (reply.status_code, reply.json()["error"]) != (403, "http.forbidden"):
                    wrong.append(f"{route.method} {path}: {reply.status_code}, should be 403")
                elif not allowed:
                    body = reply.json()
                    assert body["allowed"]["routes"] == sorted(scope["routes"])
                    assert label in body["message"]
                    assert token_of(label) not in reply.text
    assert tried >= len(ROUTES)
    assert not wrong, "\n".join(wrong)


async def test_a_webhook_token_sends_to_its_queue_and_is_refused_everywhere_else(served):
    registry, url = served
    headers = {"Authorization": f"Bearer {token_of('webhook')}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        sent = await http.post("/actors/task_runner/pr-7/queues/tasks", json={"prompt": "review"})
        assert (sent.status_code, sent.json()["status"]) == (200, "enqueued")
        for method, path in [
            ("POST", "/actors/task_runner/pr-7/queues/audit"),
            ("POST", "/actors/vm/box/exec"),
            ("GET", "/actors/vm/box/files/etc/passwd"),
            ("GET", "/actors"),
            ("GET", "/openapi.json"),
            ("GET", "/events"),
            ("POST", "/actors/task_runner/pr-7/actions/greet"),
            ("HEAD", "/actors/task_runner/pr-7"),
        ]:
            reply = await http.request(method, path, json={"prompt": "x"})
            assert reply.status_code == 403, (method, path)
            if method != "HEAD":
                assert "allows send on actors task_runner/*, queues tasks" in reply.json()["message"]
    depths = {q.name: q.depth for view in await registry.overview() for q in view.queues}
    assert depths == {"tasks": 1, "audit": 0}


async def test_a_key_pattern_is_matched_against_the_key_as_the_url_writes_it(served):
    """A key part holding "/" or "," is percent-encoded before matching, so it cannot pose as
    another key; an encoded spelling of an allowed key is the same key."""
    _, url = served
    headers = {"Authorization": f"Bearer {token_of('one_key')}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        assert (
            await http.post("/actors/task_runner/%6Dain/queues/tasks", json={"prompt": "x"})
        ).status_code == 200
        for key in ("main,x", "main%2Fx", "main%2Cx", "@anything", "Main", ""):
            reply = await http.post(f"/actors/task_runner/{key}/queues/tasks", json={"prompt": "x"})
            assert reply.status_code == 403, key


async def test_listing_and_events_show_a_scoped_token_only_its_actors(served):
    registry, url = served
    client = registry.client()
    await client.task_runner.get_or_create(["main"]).send("tasks", {"prompt": "a"})
    await client.task_runner.get_or_create(["other"]).send("tasks", {"prompt": "b"})
    headers = {"Authorization": f"Bearer {token_of('one_key')}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        listed = (await http.get("/actors")).json()["actors"]
        assert [(a["name"], a["key"]) for a in listed] == [("task_runner", ["main"])]
    full = {"Authorization": f"Bearer {FULL}"}
    async with httpx.AsyncClient(base_url=url, headers=full) as http:
        assert len((await http.get("/actors")).json()["actors"]) == 2


async def test_events_of_other_actors_never_reach_a_scoped_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"task_runner": task_runner()}, name="scoped-events")
    watcher = {"token": token_of("watch"), "routes": ["events"], "actors": ["task_runner/main"]}
    info = await registry.serve(port=0, tokens=[watcher])
    client = registry.client()
    seen: list[str] = []
    try:
        headers = {"Authorization": f"Bearer {token_of('watch')}"}
        async with (
            httpx.AsyncClient(base_url=info.url, headers=headers, timeout=30) as http,
            http.stream("GET", "/events", params={"type": "message.enqueued"}) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            await client.task_runner.get_or_create(["other"]).send("tasks", {"prompt": "secret"})
            await client.task_runner.get_or_create(["main"]).send("tasks", {"prompt": "mine"})
            while not any('"main"' in line for line in seen):
                seen.append(await asyncio.wait_for(anext(lines), 10))
    finally:
        await registry.stop(grace=0)
    assert not any("other" in line or "secret" in line for line in seen)


async def test_the_runtime_file_holds_only_the_full_token(served):
    [info] = list_runtime_files()
    assert info.token == FULL
    [path] = runtime_dir().glob("registry-*.json")
    text = path.read_text()
    assert not any(token_of(label) in text for label in SCOPES)


async def test_scoped_tokens_never_reach_the_log(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="agentos_nb")
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"task_runner": task_runner()}, name="scoped-log")
    scoped = {"token": token_of("quiet"), "routes": ["read"]}
    info = await registry.serve(port=0, tokens=[scoped])
    async with httpx.AsyncClient(base_url=info.url) as http:
        await http.get("/actors", headers={"Authorization": f"Bearer {token_of('quiet')}"})
        await http.post(
            "/actors/task_runner/k/queues/tasks", headers={"Authorization": f"Bearer {token_of('quiet')}"}
        )
    await registry.stop()
    assert caplog.records
    assert token_of("quiet") not in caplog.text
    assert token_of("quiet") not in repr(info)


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ([{"token": "tiny-secret", "routes": ["read"]}], "16"),
        ([{"token": token_of("a"), "routes": []}], "at least 1"),
        ([{"token": token_of("a"), "routes": ["delete_everything"]}], "routes"),
        ([{"token": token_of("a"), "routes": ["read"], "actor": ["x"]}], "actor"),
        (
            [{"token": token_of("a"), "routes": ["read"]}, {"token": token_of("a"), "routes": ["send"]}],
            "twice",
        ),
        ([{"token": FULL, "routes": ["read"]}], "server's own token"),
    ],
)
async def test_a_malformed_or_duplicate_token_is_refused_without_echoing_it(
    tmp_path, monkeypatch, tokens, problem
):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"task_runner": task_runner()}, name="bad-tokens")
    try:
        with pytest.raises((pydantic.ValidationError, ValueError), match=problem) as raised:
            await registry.serve(port=0, token=FULL, tokens=tokens)
        assert not any(t["token"] in str(raised.value) for t in tokens if t["token"] != FULL)
        assert registry.server is None
    finally:
        await registry.stop()


def test_identify_compares_every_token_and_tells_who():
    scoped = [ScopedToken(token=token_of(x), routes=frozenset({"read"}), label=x) for x in "ab"]
    assert identify(f"Bearer {FULL}", FULL, scoped) is True
    assert identify(f"bearer {token_of('b')}", FULL, scoped) is scoped[1]
    for header in (None, "", "Bearer", f"Basic {FULL}", f"Bearer {FULL}x", f"Bearer {token_of('a')[:-1]}"):
        assert identify(header, FULL, scoped) is None
