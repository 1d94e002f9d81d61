"""The jupyter-server extension, through pytest-jupyter's jp_fetch: /agentos/api/... under
Jupyter's authentication, forwarded to registries found through their runtime files.

pytest-jupyter is not loaded as a plugin (its hooks would take over every async test of the
suite): its fixtures are imported here, and `jp_asyncio_loop` is anyio's loop, so that Jupyter,
the registries the tests start and the tests themselves share one loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from dataclasses import dataclass

import anyio
import httpx
import psutil
import pytest
from jupyter_server.utils import url_path_join
from pydantic import BaseModel

# pytest-jupyter's fixtures (jp_fetch and all it depends on), for this module only
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from agentos_nb import actor, queue
from agentos_nb.actors.registry import Registry
from agentos_nb.http.paths import key_segment
from agentos_nb.http.runtime_files import runtime_dir, write_runtime_file
from conftest import wait_until

pytestmark = pytest.mark.anyio

API = ("agentos", "api", "registries")


@pytest.fixture
async def jp_asyncio_loop() -> asyncio.AbstractEventLoop:
    """The loop pytest-jupyter runs its server on: anyio's (pytest-jupyter's fixtures run it
    between anyio's calls, as they do their own loop)."""
    return asyncio.get_running_loop()


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"agentos_nb.jupyter.server_extension": True}}})


@pytest.fixture(autouse=True)
def agentos_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path / "agentos-runtime"))


def body_of(response) -> dict:
    return json.loads(response.body)


async def refused(fetch) -> tuple[int, dict]:
    """The status and JSON body of a request that must fail."""
    with pytest.raises(HTTPClientError) as failure:
        await fetch
    return failure.value.code, json.loads(failure.value.response.body)


def connections_to(port: int) -> list[object]:
    """This process's open TCP connections to `port` on 127.0.0.1 (their client ends)."""
    return [
        connection
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_listing_without_registries(jp_fetch):
    response = await jp_fetch(*API)
    assert body_of(response) == {"registries": []}


async def test_listing_names_registries_without_their_tokens(jp_fetch):
    write_runtime_file(name="notebook", url="http://127.0.0.1:6420", token="secret-token-123")
    response = await jp_fetch(*API)
    (listed,) = body_of(response)["registries"]
    assert listed["id"] == f"{os.getpid()}-notebook"
    assert listed["name"] == "notebook"
    assert listed["url"] == "http://127.0.0.1:6420"
    assert listed["pid"] == os.getpid()
    assert "secret-token-123" not in response.body.decode()


async def test_unknown_registry_is_404(jp_fetch):
    status, body = await refused(jp_fetch(*API, "1-nobody", "health"))
    assert status == 404
    assert body["error"] == "registry.not_found"


async def test_registry_that_refuses_is_502(jp_fetch):
    _, info = write_runtime_file(name="gone", url=f"http://127.0.0.1:{free_port()}", token="t0ken")
    status, body = await refused(jp_fetch(*API, info.id, "health"))
    assert status == 502
    assert body["error"] == "registry.unreachable"
    assert "t0ken" not in json.dumps(body)


async def test_registry_whose_process_is_gone_is_502(jp_fetch):
    exited = await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])
    pid = int(exited.stdout)
    directory = runtime_dir()
    directory.mkdir(parents=True)
    info = {
        "id": f"{pid}-killed",
        "name": "killed",
        "url": "http://127.0.0.1:9",
        "token": "t",
        "pid": pid,
        "started_at": 0.0,
    }
    (directory / f"registry-{pid}-killed.json").write_text(json.dumps(info))
    status, body = await refused(jp_fetch(*API, f"{pid}-killed", "health"))
    assert status == 502
    assert body["error"] == "registry.unreachable"


class Task(BaseModel):
    prompt: str


class ReviewRequest(BaseModel):
    file: str


class ReviewResponse(BaseModel):
    summary: str


@dataclass
class Served:
    """A registry serving HTTP as a kernel's would, and what its task runner took from its queue."""

    registry: Registry
    id: str
    url: str
    token: str
    received: list[tuple[tuple[str, ...], str]]

    @property
    def port(self) -> int:
        return httpx.URL(self.url).port

    def queue_route(self, actor: str, key: str, queue: str) -> tuple[str, ...]:
        """The webhook route to one of this registry's queues, as jp_fetch's parts."""
        return (*API, self.id, "actors", actor, key, "queues", queue)

    async def direct(self, method: str, path: str, **request: object) -> httpx.Response:
        """The same request sent to the registry itself, with its token."""
        async with httpx.AsyncClient(base_url=self.url, trust_env=False) as client:
            headers = {"Authorization": f"Bearer {self.token}", **request.pop("headers", {})}
            return await client.request(method, path, headers=headers, **request)


@pytest.fixture
async def served(start_registry) -> Served:
    """A registry on a free port of 127.0.0.1 with a task runner that records what it takes from
    its queue and a reviewer that answers; found, like a kernel's, through its runtime file."""
    received: list[tuple[tuple[str, ...], str]] = []

    async def run_tasks(c):
        async for message in c.queue.iter():
            received.append((c.key, message.body.prompt))

    async def run_reviews(c):
        async for message in c.queue.iter(completable=True):
            await message.complete(ReviewResponse(summary=f"{message.body.file} looks fine"))

    registry = await start_registry(
        task_runner=actor(queues={"tasks": queue(Task)}, run=run_tasks),
        reviewer=actor(queues={"review": queue(ReviewRequest, ReviewResponse)}, run=run_reviews),
    )
    info = await registry.serve(port=0)
    assert info.runtime_file is not None
    written = json.loads(await anyio.Path(info.runtime_file).read_text())
    return Served(registry, written["id"], info.url, info.token.get_secret_value(), received)


async def test_webhook_send_reaches_the_actors_queue(jp_fetch, served):
    response = await jp_fetch(
        *served.queue_route("task_runner", "main", "tasks"),
        method="POST",
        body='{"prompt": "Review PR #123"}',
    )
    assert response.code == 200
    assert body_of(response)["status"] == "enqueued"
    await wait_until(lambda: served.received == [(("main",), "Review PR #123")])


async def test_webhook_authenticates_with_jupyters_token_in_the_query(jp_fetch, jp_serverapp, served):
    """What a webhook sender that cannot set headers does; the registry never sees that token
    (its send route refuses unknown query parameters)."""
    response = await jp_fetch(
        *served.queue_route("task_runner", "hook", "tasks"),
        method="POST",
        body='{"prompt": "from a webhook"}',
        params={"token": jp_serverapp.identity_provider.token},
        headers={"Authorization": ""},
    )
    assert body_of(response)["status"] == "enqueued"
    await wait_until(lambda: served.received == [(("hook",), "from a webhook")])


async def test_requests_without_jupyters_token_are_refused(jp_fetch, served):
    webhook = served.queue_route("task_runner", "main", "tasks")
    for parts, method, body in ((API, "GET", None), (webhook, "POST", json.dumps({"prompt": "intruder"}))):
        for authorization in ("", "token not-jupyters-token"):
            status, _ = await refused(
                jp_fetch(*parts, method=method, body=body, headers={"Authorization": authorization})
            )
            assert status == 403
    # What is sent with the token arrives first: nothing was forwarded before it.
    await jp_fetch(*webhook, method="POST", body=json.dumps({"prompt": "with the token"}))
    await wait_until(lambda: served.received == [(("main",), "with the token")])


async def test_send_with_wait_returns_the_send_result(jp_fetch, served):
    response = await jp_fetch(
        *served.queue_route("reviewer", "main", "review"),
        method="POST",
        body='{"file": "/home/user/src/auth.ts"}',
        params={"wait": "true", "timeout": "10"},
    )
    result = body_of(response)
    assert result["status"] == "completed"
    assert result["response"] == {"summary": "/home/user/src/auth.ts looks fine"}
    assert isinstance(result["message_id"], int)


async def test_a_registry_can_be_named_instead_of_its_id(jp_fetch, served):
    response = await jp_fetch(*API, served.registry.name, "health")
    assert response.code == 200


async def test_a_malformed_body_gets_the_registrys_answer_unchanged(jp_fetch, served):
    with pytest.raises(HTTPClientError) as failure:
        await jp_fetch(*served.queue_route("task_runner", "main", "tasks"), method="POST", body='{"prompt": ')
    direct = await served.direct("POST", "/actors/task_runner/main/queues/tasks", content=b'{"prompt": ')
    relayed = failure.value.response
    assert (relayed.code, relayed.body) == (direct.status_code, direct.content)
    assert relayed.headers["Content-Type"] == direct.headers["Content-Type"]
    assert json.loads(relayed.body)["error"] == "http.malformed_json"


async def test_methods_and_bodies_are_preserved(jp_fetch, served):
    actor_path = (*API, served.id, "actors", "task_runner", "put-me")
    created = await jp_fetch(*actor_path, method="PUT", body="{}")
    fetched = await jp_fetch(*actor_path)
    assert body_of(created) == body_of(fetched)
    assert body_of(fetched)["key"] == ["put-me"]
    status, body = await refused(jp_fetch(*actor_path, "sessions", "nope", method="DELETE"))
    direct = await served.direct("DELETE", "/actors/task_runner/put-me/sessions/nope")
    assert (status, body) == (direct.status_code, direct.json())


async def test_an_encoded_key_reaches_the_registry_as_it_was_sent(
    http_server_client, jp_base_url, jp_auth_header, served
):
    """A key part may hold "/" or ",": the segment is forwarded still percent-encoded."""
    key = ("team/a", "x,y")
    url = url_path_join(
        jp_base_url, *API, served.id, "actors", "task_runner", key_segment(key), "queues", "tasks"
    )
    response = await http_server_client.fetch(
        url, method="POST", body=json.dumps({"prompt": "encoded"}), headers=jp_auth_header
    )
    assert json.loads(response.body)["status"] == "enqueued"
    await wait_until(lambda: served.received == [(key, "encoded")])


@pytest.mark.usefixtures("http_server")  # jp_fetch's server, without jp_fetch
async def test_an_event_stream_is_relayed_live_and_closed_when_the_caller_leaves(
    jp_http_port, jp_base_url, jp_auth_header, served
):
    """Read with httpx, which can hang up mid-stream as a browser's EventSource does."""
    bus = served.registry.bus
    assert not bus.active
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}{'/'.join(API)}/{served.id}/events"
    async with (
        httpx.AsyncClient(trust_env=False) as client,
        client.stream("GET", url, params={"type": "message.enqueued"}, headers=jp_auth_header) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert bus.active  # the registry's stream is open: the headers came through before any event
        handle = served.registry.client().task_runner.get_or_create(["main"])
        await handle.send("tasks", {"prompt": "live"})
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: message.enqueued"
        assert json.loads((await anext(lines)).removeprefix("data: "))["queue"] == "tasks"
        assert connections_to(served.port)  # the relay's own, to the registry
    await wait_until(lambda: not connections_to(served.port))  # closed with the caller's
    await wait_until(lambda: not bus.active)  # and the registry has let go of its subscription
