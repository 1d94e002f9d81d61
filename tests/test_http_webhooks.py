"""Signed webhooks: a queue that takes posts with no token, signed with a shared secret as
GitHub signs them (`X-Hub-Signature-256: sha256=<hex>`), with a replay window when the sender
signs a timestamp too. Every refusal is a 401 and leaves the queue as it was."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from agentos_nb import Registry, actor, queue, setup
from agentos_nb.http.runtime_files import runtime_dir
from agentos_nb.http.scopes import REPLAY_SECONDS, Webhook

pytestmark = pytest.mark.anyio

SECRET = "a-shared-webhook-secret"
ROUTE = "/actors/issue_worker/main/queues/issues"


class Issue(BaseModel):
    title: str


def sign(body: bytes, timestamp: str | None = None, secret: str = SECRET) -> dict[str, str]:
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    headers = {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    }
    if timestamp is not None:
        headers["X-Webhook-Timestamp"] = timestamp
    return headers | {"Content-Type": "application/json"}


class Served:
    def __init__(self, registry: Registry, url: str) -> None:
        self.registry = registry
        self.http = httpx.AsyncClient(base_url=url)

    async def depth(self) -> int:
        return sum(q.depth for view in await self.registry.overview() for q in view.queues)

    async def post(self, body: bytes, headers: dict[str, str], path: str = ROUTE) -> httpx.Response:
        return await self.http.post(path, content=body, headers=headers)


@pytest.fixture
async def served(tmp_path, monkeypatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(
        use={"issue_worker": actor(queues={"issues": queue(Issue), "other": queue(Issue)})}, name="webhooks"
    )
    hook = Webhook(actor="issue_worker/main", queue="issues", secret=SecretStr(SECRET))
    info = await registry.serve(port=0, webhooks=[hook])
    served = Served(registry, info.url)
    yield served
    await served.http.aclose()
    await registry.stop(grace=0)


BODY = json.dumps({"title": "Login broken"}).encode()


async def test_a_good_signature_enqueues_once(served):
    reply = await served.post(BODY, sign(BODY))
    assert (reply.status_code, reply.json()["status"]) == (200, "enqueued")
    assert await served.depth() == 1


async def test_a_good_signature_with_a_fresh_timestamp_enqueues(served):
    reply = await served.post(BODY, sign(BODY, str(int(time.time()))))
    assert reply.status_code == 200
    assert await served.depth() == 1


def bad_cases() -> list[tuple[str, bytes, dict[str, str]]]:
    now = str(int(time.time()))
    changed = BODY.replace(b"Login", b"Logon")
    headers_changed_body = sign(BODY)
    assert len(changed) == len(BODY)
    return [
        ("missing", BODY, {"Content-Type": "application/json"}),
        ("wrong secret", BODY, sign(BODY, secret="another-secret-entirely")),
        ("body changed by one byte", changed, headers_changed_body),
        ("one byte appended", BODY + b" ", sign(BODY)),
        ("not hex", BODY, {"X-Hub-Signature-256": "sha256=zz"}),
        ("no prefix", BODY, {"X-Hub-Signature-256": sign(BODY)["X-Hub-Signature-256"][7:]}),
        ("sha1 shape", BODY, {"X-Hub-Signature-256": "sha1=" + "0" * 40}),
        ("timestamp not signed", BODY, sign(BODY) | {"X-Webhook-Timestamp": now}),
        ("timestamp changed", BODY, sign(BODY, now) | {"X-Webhook-Timestamp": str(int(now) + 1)}),
        ("too old", BODY, sign(BODY, str(int(time.time() - REPLAY_SECONDS - 5)))),
        ("from the future", BODY, sign(BODY, str(int(time.time() + REPLAY_SECONDS + 5)))),
        ("timestamp not a number", BODY, sign(BODY, "nan")),
        ("body dropped", b"", sign(BODY)),
    ]


@pytest.mark.parametrize("case", [c[0] for c in bad_cases()])
async def test_a_bad_or_missing_signature_is_a_401_and_nothing_is_enqueued(served, case):
    [(_, body, headers)] = [c for c in bad_cases() if c[0] == case]
    reply = await served.post(body, headers)
    assert reply.status_code == 401, reply.text
    assert reply.json()["error"] in ("http.bad_signature", "http.unauthorized")
    assert SECRET not in reply.text
    assert await served.depth() == 0


async def test_the_same_timestamped_request_twice_is_refused_the_second_time(served):
    headers = sign(BODY, str(int(time.time())))
    assert (await served.post(BODY, headers)).status_code == 200
    replayed = await served.post(BODY, headers)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "http.bad_signature")
    assert "replay" in replayed.json()["message"]
    assert await served.depth() == 1


async def test_a_signed_request_that_was_refused_may_be_sent_again(served):
    """Only an accepted post counts as seen: a sender retrying after a 4xx is no replay."""
    invalid = json.dumps({"name": "no title"}).encode()
    headers = sign(invalid, str(int(time.time())))
    for _ in range(2):
        reply = await served.post(invalid, headers)
        assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")
    assert await served.depth() == 0


async def test_a_signature_opens_only_the_webhook_s_own_actor_and_queue(served):
    for path in (
        "/actors/issue_worker/other-key/queues/issues",
        "/actors/issue_worker/main/queues/other",
        "/actors/issue_worker/main/actions/anything",
        "/actors",
    ):
        reply = await served.http.request(
            "GET" if path == "/actors" else "POST", path, content=BODY, headers=sign(BODY)
        )
        assert reply.status_code in (401, 405), path
    assert await served.depth() == 0


async def test_a_token_still_works_on_a_webhook_queue_and_a_wrong_one_is_not_excused_by_a_signature(served):
    [path] = runtime_dir().glob("registry-*.json")
    token = json.loads(path.read_text())["token"]
    ok = await served.post(BODY, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert ok.status_code == 200
    wrong = await served.post(BODY, sign(BODY) | {"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert await served.depth() == 1


async def test_the_secret_is_never_in_the_runtime_file_the_log_or_a_repr(served, caplog):
    caplog.set_level(logging.DEBUG, logger="agentos_nb")
    await served.post(BODY, sign(BODY))
    await served.post(BODY, sign(BODY, secret="wrong-secret-wrong-secret"))
    [path] = runtime_dir().glob("registry-*.json")
    assert SECRET not in path.read_text()
    assert SECRET not in caplog.text
    server = served.registry.server
    assert server is not None
    assert SECRET not in repr(server.webhooks)


@pytest.mark.parametrize(
    ("webhook", "problem"),
    [
        ({"actor": "a/*", "queue": "q", "secret": "short"}, "16"),
        ({"actor": "a/*", "queue": "q"}, "secret"),
        ({"actor": "a/*", "queue": "q", "secret": SECRET, "extra": 1}, "extra"),
    ],
)
async def test_a_malformed_webhook_is_refused_without_echoing_its_secret(
    tmp_path, monkeypatch, webhook, problem
):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"issue_worker": actor(queues={"issues": queue(Issue)})}, name="bad-webhook")
    try:
        with pytest.raises(ValueError, match=problem) as raised:
            await registry.serve(port=0, webhooks=[webhook])
        assert SECRET not in str(raised.value)
    finally:
        await registry.stop()


async def test_a_webhook_may_require_a_timestamp(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"issue_worker": actor(queues={"issues": queue(Issue)})}, name="timestamped")
    hook = {"actor": "issue_worker/*", "queue": "issues", "secret": SECRET, "require_timestamp": True}
    info = await registry.serve(port=0, webhooks=[hook])
    try:
        async with httpx.AsyncClient(base_url=info.url) as http:
            assert (await http.post(ROUTE, content=BODY, headers=sign(BODY))).status_code == 401
            fresh = sign(BODY, str(time.time()))
            assert (await http.post(ROUTE, content=BODY, headers=fresh)).status_code == 200
    finally:
        await registry.stop(grace=0)
