"""The registry's HTTP server, route by route, with a plain httpx client: what each route does,
what bad input gets (a 4xx naming the problem, never a 500 with a traceback, nothing enqueued),
the token, the runtime file, and draining on stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat

import anyio
import httpx
import psutil
import pytest
from pydantic import BaseModel, Field
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentos_nb import ActorContext, Registry, actor, agent_os, queue, setup
from agentos_nb.errors import ValidationError
from agentos_nb.http.runtime_files import list_runtime_files, runtime_dir
from agentos_nb.http.sse import read_events
from agentos_nb.software import Pi, common, pi
from conftest import wait_until
from tests.hostile_kernel import HOSTILE

pytestmark = pytest.mark.anyio


class Task(BaseModel):
    prompt: str


class Review(BaseModel):
    file: str
    lines: int = Field(ge=0)


class Verdict(BaseModel):
    summary: str


class Served:
    """A registry serving on 127.0.0.1, and an httpx client that carries its token."""

    def __init__(self, registry: Registry, url: str, token: str) -> None:
        self.registry = registry
        self.url = url
        self.token = token
        self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"})

    async def depth(self, name: str, queue: str) -> int:
        """Messages of that queue waiting or in flight, in every actor of type `name`."""
        return sum(
            q.depth + q.in_flight
            for view in await self.registry.overview()
            if view.name == name
            for q in view.queues
            if q.name == queue
        )


@pytest.fixture
async def serve(tmp_path, monkeypatch):
    """`served = await serve(name=actor(...), ...)`: a registry serving HTTP, stopped after the test."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    started: list[Served] = []

    async def start(max_body_bytes: int | None = None, **use) -> Served:
        registry = setup(use=use, name=f"http-server-test-{id(started)}-{len(started)}")
        info = await registry.serve(port=0, max_body_bytes=max_body_bytes)
        served = Served(registry, info.url, info.token.get_secret_value())
        started.append(served)
        return served

    yield start
    for served in started:
        await served.http.aclose()
        await served.registry.stop(grace=0)


async def review_loop(c: ActorContext) -> None:
    async for message in c.queue.iter(completable=True):
        await message.complete(Verdict(summary=f"{message.body.file}: {message.body.lines} lines, fine"))


def inbox() -> object:
    """An actor whose queue nothing consumes, so its depth shows what was enqueued."""

    async def greet(c: ActorContext, name: str, *, times: int = 1) -> str:
        return " ".join([f"hello {name}"] * times)

    async def size(c: ActorContext, data: bytes) -> int:
        return len(data)

    async def blob(c: ActorContext) -> bytes:
        return b"\x00\xffbinary"

    async def fail(c: ActorContext) -> None:
        raise KeyError("the action's own bug")

    return actor(
        queues={"tasks": queue(Task, max_size=2), "reviews": queue(Review, Verdict)},
        actions={"greet": greet, "size": size, "blob": blob, "fail": fail},
        on_create=lambda c, input: c.state.update(input or {}),
        state={},
    )


async def events_of(response: httpx.Response) -> list[tuple[str, dict]]:
    return [(e.event, json.loads(e.data)) async for e in read_events(response.aiter_lines())]


# --- the token ----------------------------------------------------------------------------------


async def test_health_needs_no_token_and_says_nothing_else(serve):
    served = await serve(inbox=inbox())
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        reply = await anonymous.get("/health")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_every_other_route_needs_the_token(serve, header):
    served = await serve(inbox=inbox())
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
        for method, path in [
            ("GET", "/actors"),
            ("GET", "/openapi.json"),
            ("POST", "/actors/inbox/main/queues/tasks"),
            ("GET", "/events"),
        ]:
            reply = await client.request(method, path, json={"prompt": "x"})
            assert reply.status_code == 401, (method, path)
            assert reply.json()["error"] == "http.unauthorized"
            assert reply.headers["WWW-Authenticate"] == "Bearer"
            assert served.token not in reply.text
    assert await served.depth("inbox", "tasks") == 0


async def test_the_runtime_file_holds_the_token_for_this_user_only_and_goes_with_the_server(serve, tmp_path):
    served = await serve(inbox=inbox())
    [info] = list_runtime_files()
    assert (info.url, info.token, info.pid, info.name) == (
        served.url,
        served.token,
        os.getpid(),
        served.registry.name,
    )
    [path] = runtime_dir().glob("registry-*.json")
    assert path.parent.parent == tmp_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await served.registry.stop()
    assert list_runtime_files() == []
    assert not path.exists()


async def test_a_given_token_is_used_and_a_generated_one_is_long_and_new_each_time(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    tokens = []
    for given in ("my-token", None, None):
        registry = setup(use={"inbox": inbox()}, name=f"token-test-{len(tokens)}")
        info = await registry.serve(port=0, token=given)
        tokens.append(info.token.get_secret_value())
        assert "my-token" not in repr(info)
        await registry.stop()
    assert tokens[0] == "my-token"
    assert len(tokens[1]) >= 40
    assert tokens[1] != tokens[2]


async def test_the_token_never_reaches_the_log(serve, caplog):
    caplog.set_level(logging.DEBUG, logger="agentos_nb")
    served = await serve(inbox=inbox())
    await served.http.get("/actors")
    await served.http.get("/actors", headers={"Authorization": "Bearer wrong"})
    await served.http.post("/actors/inbox/main/actions/fail")
    await served.registry.stop()
    assert caplog.records  # it did log: requests at DEBUG, the failing action at ERROR
    assert served.token not in caplog.text


# --- bad input ----------------------------------------------------------------------------------


async def test_bad_input_gets_a_4xx_naming_the_problem_and_nothing_is_enqueued(serve):
    served = await serve(inbox=inbox())
    base = "/actors/inbox/main"
    with served.registry.bus.subscribe(types=["message.enqueued"]) as enqueued:
        cases = [
            (
                "POST",
                f"{base}/queues/tasks",
                {"content": b'{"prompt": '},
                400,
                "http.malformed_json",
                "not JSON",
            ),
            ("POST", f"{base}/queues/tasks", {"content": b""}, 400, "http.malformed_json", "empty"),
            ("POST", f"{base}/queues/tasks", {"json": {"prompt": 5}}, 422, "validation_error", "prompt"),
            ("POST", f"{base}/queues/tasks", {"json": ["prompt"]}, 422, "validation_error", "object"),
            (
                "POST",
                f"{base}/queues/reviews",
                {"json": {"file": "a", "lines": -1}},
                422,
                "validation_error",
                "lines",
            ),
            (
                "POST",
                f"{base}/queues/tasks?timeout=soon",
                {"json": {"prompt": "x"}},
                422,
                "validation_error",
                "timeout",
            ),
            (
                "POST",
                f"{base}/queues/tasks?wait=perhaps",
                {"json": {"prompt": "x"}},
                422,
                "validation_error",
                "wait",
            ),
            (
                "POST",
                f"{base}/queues/tasks?timeout=-1",
                {"json": {"prompt": "x"}},
                422,
                "validation_error",
                "timeout",
            ),
            (
                "POST",
                f"{base}/queues/tasks?wiat=true",
                {"json": {"prompt": "x"}},
                422,
                "validation_error",
                "wiat",
            ),
            ("POST", f"{base}/queues/nope", {"json": {"prompt": "x"}}, 404, "queue.unknown", "nope"),
            (
                "POST",
                "/actors/nobody/main/queues/tasks",
                {"json": {"prompt": "x"}},
                404,
                "actor.unknown_type",
                "nobody",
            ),
            ("POST", f"{base}/actions/nope", {"json": {}}, 404, "action.unknown", "nope"),
            (
                "POST",
                f"{base}/actions/greet",
                {"json": {"kwargs": {"name": 5}}},
                422,
                "validation_error",
                "name",
            ),
            ("POST", f"{base}/actions/greet", {"json": {"kwargs": {}}}, 422, "validation_error", "name"),
            (
                "POST",
                f"{base}/actions/greet",
                {"json": {"kwargs": {"name": "a", "times": "2"}}},  # JSON's "2" is no number
                422,
                "validation_error",
                "times",
            ),
            (
                "POST",
                f"{base}/actions/greet",
                {"json": {"args": ["a", "b"]}},
                422,
                "validation_error",
                "positional",
            ),
            (
                "POST",
                f"{base}/actions/greet",
                {"json": {"kwargs": {"name": "a", "x": 1}}},
                422,
                "validation_error",
                "x",
            ),
            ("POST", f"{base}/actions/greet", {"json": {"kwarg": {}}}, 422, "validation_error", "kwarg"),
            (
                "POST",
                f"{base}/actions/greet/stream",
                {"json": {"args": ["a"]}},
                404,
                "action.unknown",
                "stream",
            ),
            ("GET", f"{base}/messages/twelve", {}, 422, "validation_error", "message_id"),
            ("GET", f"{base}/files/x", {}, 404, "http.not_found", "not an agent VM"),
            ("GET", "/nowhere", {}, 404, "http.not_found", "/nowhere"),
            ("GET", f"{base}/queues/tasks", {}, 405, "http.method_not_allowed", "POST"),
            ("DELETE", base, {}, 405, "http.method_not_allowed", "GET, PUT, POST"),
        ]
        for method, path, body, status, code, named in cases:
            reply = await served.http.request(method, path, **body)
            assert (reply.status_code, reply.json()["error"]) == (status, code), (method, path, reply.text)
            assert named in reply.json()["message"], (method, path, reply.text)
            assert "Traceback" not in reply.text
        assert enqueued.get_nowait() == []
    assert await served.depth("inbox", "tasks") == 0
    # a 405 says what is allowed, a 422 lists each field at fault
    reply = await served.http.delete(base)
    assert reply.headers["Allow"] == "GET, PUT, POST"
    reply = await served.http.post(f"{base}/queues/reviews", json={"file": 1, "lines": "many"})
    assert [e["field"] for e in reply.json()["errors"]] == ["file", "lines"]


async def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(serve):
    served = await serve(max_body_bytes=1000, inbox=inbox())
    path = "/actors/inbox/main/queues/tasks"
    big = json.dumps({"prompt": "x" * 2000}).encode()
    reply = await served.http.post(path, content=big)
    assert (reply.status_code, reply.json()["error"]) == (413, "http.body_too_large")
    assert "1000" in reply.json()["message"]

    async def chunks():  # no Content-Length: the limit is checked as the body arrives
        for _ in range(10):
            yield b" " * 300

    reply = await served.http.post(path, content=chunks())
    assert (reply.status_code, reply.json()["error"]) == (413, "http.body_too_large")
    assert await served.depth("inbox", "tasks") == 0
    reply = await served.http.post(path, json={"prompt": "small"})  # the server goes on serving
    assert reply.json()["status"] == "enqueued"


async def test_queue_limits_travel_as_their_codes(serve):
    served = await serve(inbox=inbox())
    path = "/actors/inbox/main/queues/tasks"
    for n in range(2):
        assert (await served.http.post(path, json={"prompt": f"t{n}"})).status_code == 200
    reply = await served.http.post(path, json={"prompt": "one too many"})
    assert (reply.status_code, reply.json()["error"]) == (429, "queue.full")
    reply = await served.http.post(
        "/actors/inbox/other/queues/reviews", json={"file": "x" * 70_000, "lines": 1}
    )
    assert (reply.status_code, reply.json()["error"]) == (413, "queue.message_too_large")
    assert await served.depth("inbox", "tasks") == 2


async def test_a_failing_action_is_a_500_that_names_it_without_a_traceback(serve, caplog):
    served = await serve(inbox=inbox())
    reply = await served.http.post("/actors/inbox/main/actions/fail")
    assert reply.status_code == 500
    assert reply.json() == {
        "error": "action.failed",
        "message": 'KeyError: "the action\'s own bug"',
        "exception_type": "KeyError",
    }
    assert "Traceback" in caplog.text  # the server's log keeps it


async def test_an_unexpected_failure_is_a_500_that_tells_nothing_and_is_logged(serve, caplog, monkeypatch):
    served = await serve(inbox=inbox())

    async def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(served.registry, "overview", broken)
    reply = await served.http.get("/actors")
    assert reply.status_code == 500
    assert reply.json()["error"] == "http.internal_error"
    assert "secret internals" not in reply.text
    assert "secret internals" in caplog.text


# --- actors, queues, actions --------------------------------------------------------------------


async def test_actors_are_got_created_and_listed(serve):
    served = await serve(inbox=inbox())
    http = served.http
    reply = await http.get("/actors/inbox/a%2Cb,c")
    assert (reply.status_code, reply.json()["error"]) == (404, "actor.not_found")
    reply = await http.post("/actors/inbox/a%2Cb,c", json={"input": {"colour": "blue"}})
    assert reply.status_code == 201
    created = reply.json()
    assert created["key"] == ["a,b", "c"]
    reply = await http.post("/actors/inbox/a%2Cb,c")
    assert (reply.status_code, reply.json()["error"]) == (409, "actor.already_exists")
    assert (await http.get("/actors/inbox/a%2Cb,c")).json() == created
    assert (await http.put("/actors/inbox/a%2Cb,c")).json() == created
    assert (await http.get(f"/actors/inbox/@{created['actor_id']}")).json() == created
    reply = await http.put("/actors/inbox/", json={"input": {"colour": "red"}})  # the empty key
    assert reply.json()["key"] == []
    views = {tuple(v["key"]): v for v in (await http.get("/actors")).json()["actors"]}
    assert json.loads(views[("a,b", "c")]["state_preview"]) == {"colour": "blue"}
    assert json.loads(views[()]["state_preview"]) == {"colour": "red"}
    reply = await http.post(f"/actors/inbox/@{created['actor_id']}")
    assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")


async def test_reads_never_create_an_actor_and_writes_do(serve):
    served = await serve(inbox=inbox())
    for path in ["/actors/inbox/ghost/messages/1", "/actors/inbox/ghost/dead-letters", "/actors/inbox/ghost"]:
        reply = await served.http.get(path)
        assert (reply.status_code, reply.json()["error"]) == (404, "actor.not_found")
    assert await served.registry.overview() == []
    assert (
        await served.http.post("/actors/inbox/ghost/actions/greet", json={"args": ["x"]})
    ).status_code == 200
    assert [v.key for v in await served.registry.overview()] == [("ghost",)]


async def test_send_waits_for_completion_and_a_timed_out_wait_is_picked_up_later(serve):
    gate = asyncio.Event()

    async def slow_reviews(c: ActorContext) -> None:
        async for message in c.queue.iter(completable=True):
            await gate.wait()
            await message.complete(Verdict(summary=f"{message.body.file} reviewed"))

    served = await serve(reviewer=actor(queues={"review": queue(Review, Verdict)}, run=slow_reviews))
    path = "/actors/reviewer/main/queues/review"
    reply = await served.http.post(f"{path}?wait=true&timeout=0.05", json={"file": "a.py", "lines": 3})
    timed_out = reply.json()
    assert (reply.status_code, timed_out["status"]) == (200, "timed_out")
    waiting = asyncio.ensure_future(
        served.http.get(f"/actors/reviewer/main/messages/{timed_out['message_id']}")
    )
    gate.set()
    reply = await waiting
    assert reply.json() == {
        "status": "completed",
        "message_id": timed_out["message_id"],
        "response": {"summary": "a.py reviewed"},
        "error": None,
    }
    reply = await served.http.post(f"{path}?wait=1", json={"file": "b.py", "lines": 1})
    assert reply.json()["response"] == {"summary": "b.py reviewed"}
    reply = await served.http.get("/actors/reviewer/main/messages/9999")
    assert (reply.status_code, reply.json()["error"]) == (404, "queue.message_not_found")


async def test_dead_letters_are_listed_and_replayed(serve):
    attempts = []

    async def flaky(c: ActorContext) -> None:
        async for message in c.queue.iter():
            attempts.append(message.body.prompt)
            if len(attempts) <= 2:
                raise RuntimeError("not yet")

    served = await serve(
        worker=actor(
            queues={"tasks": queue(Task)}, run=flaky, options={"max_attempts": 2, "restart_backoff": 0}
        )
    )
    sent = (await served.http.post("/actors/worker/w/queues/tasks", json={"prompt": "p"})).json()
    await wait_until(lambda: len(attempts) == 2)

    async def letters():
        return (await served.http.get("/actors/worker/w/dead-letters?queue=tasks")).json()["dead_letters"]

    async def dead_lettered():
        return bool(await letters())

    await wait_until(dead_lettered)
    [letter] = await letters()
    assert (letter["message_id"], letter["body"], letter["attempts"]) == (
        sent["message_id"],
        {"prompt": "p"},
        2,
    )
    reply = await served.http.post(f"/actors/worker/w/dead-letters/{sent['message_id']}/replay")
    assert reply.status_code == 204
    await wait_until(lambda: len(attempts) == 3)
    assert await letters() == []


async def test_actions_take_json_arguments_and_give_json_bytes_and_models(serve):
    served = await serve(inbox=inbox(), vm=agent_os(software=[common]))
    base = "/actors/inbox/main/actions"
    reply = await served.http.post(f"{base}/greet", json={"args": ["ada"], "kwargs": {"times": 2}})
    assert reply.json() == {"result": "hello ada hello ada", "model": None, "encoding": "json"}
    reply = await served.http.post(f"{base}/size", json={"args": ["AP8="], "binary": ["0"]})
    assert reply.json()["result"] == 2
    reply = await served.http.post(f"{base}/size", json={"kwargs": {"data": "AP8="}, "binary": ["data"]})
    assert reply.json()["result"] == 2
    reply = await served.http.post(f"{base}/size", json={"kwargs": {"data": "!!"}, "binary": ["data"]})
    assert reply.status_code == 422
    reply = await served.http.post(f"{base}/blob")
    assert reply.json() == {"result": "AP9iaW5hcnk=", "model": None, "encoding": "base64"}
    await served.http.post("/actors/vm/v/actions/write_file", json={"args": ["/home/user/a.txt", "text"]})
    reply = await served.http.post("/actors/vm/v/actions/readdir")
    assert reply.json()["model"] == "list[DirEntry]"
    assert reply.json()["result"][0]["path"] == "/home/user/a.txt"


async def test_a_streaming_action_streams_its_items_and_a_gone_reader_cancels_it(serve):
    cancelled = asyncio.Event()

    async def count(c: ActorContext, up_to: int | None = None):
        n = 0
        try:
            while up_to is None or n < up_to:
                yield {"n": n}
                n += 1
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    served = await serve(counter=actor(actions={"count": count}))
    path = "/actors/counter/c/actions/count"
    async with served.http.stream("POST", f"{path}/stream", json={"kwargs": {"up_to": 3}}) as reply:
        assert reply.headers["content-type"] == "text/event-stream"
        events = await events_of(reply)
    assert events == [("item", {"item": {"n": n}, "model": None, "encoding": "json"}) for n in range(3)] + [
        ("end", {})
    ]
    reply = await served.http.post(path, json={"kwargs": {"up_to": 2}})  # not streamed: the list
    assert reply.json()["result"] == [{"n": 0}, {"n": 1}]
    async with served.http.stream("POST", f"{path}/stream") as endless:
        async for line in endless.aiter_lines():
            if line.startswith("data:"):
                break
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_an_action_that_fails_mid_stream_ends_it_with_an_error_event(serve):
    async def two_then_fail(c: ActorContext):
        yield 1
        yield 2
        raise ValidationError("the third item is invalid")

    served = await serve(streamer=actor(actions={"items": two_then_fail}))
    async with served.http.stream("POST", "/actors/streamer/s/actions/items/stream") as reply:
        events = await events_of(reply)
    assert [kind for kind, _ in events] == ["item", "item", "error"]
    assert events[-1][1]["error"] == "validation_error"


# --- agent VMs ----------------------------------------------------------------------------------


async def test_vm_files_are_bytes_and_paths_outside_the_vm_are_refused_by_the_vm(serve):
    served = await serve(vm=agent_os(software=[common]))
    base = "/actors/vm/v/files"
    assert (await served.http.put(f"{base}/home/user/src/main.py", content=b"print(1)\n")).status_code == 204
    reply = await served.http.get(f"{base}/home/user/src/main.py")
    assert (reply.content, reply.headers["content-type"]) == (b"print(1)\n", "application/octet-stream")
    assert (await served.http.get(f"{base}/~/src/main.py")).content == b"print(1)\n"
    assert (await served.http.put(f"{base}/~/data.bin", content=b"\x00\xff")).status_code == 204
    assert (await served.http.get(f"{base}/home/user/data.bin")).content == b"\x00\xff"
    for path, status, code in [
        ("%2E%2E/%2E%2E/etc/passwd", 403, "os.permission_denied"),
        ("home/user/missing.txt", 404, "os.file_not_found"),
        ("home/user/src", 409, "os.is_a_directory"),
    ]:
        reply = await served.http.get(f"{base}/{path}")
        assert (reply.status_code, reply.json()["error"]) == (status, code), path
    reply = await served.http.get(f"{base}/%2E%2E/%2E%2E/etc/passwd")
    assert reply.json()["filename"] == "/../../etc/passwd"
    reply = await served.http.put(f"{base}/%2E%2E/x", content=b"no")
    assert (reply.status_code, reply.json()["error"]) == (403, "os.permission_denied")


async def test_exec_runs_a_command_in_the_vm(serve):
    served = await serve(vm=agent_os(software=[common]))
    await served.http.put("/actors/vm/v/files/home/user/a.txt", content=b"one\ntwo\n")
    reply = await served.http.post("/actors/vm/v/exec", json={"command": "wc -l a.txt; exit 3"})
    assert reply.json() == {
        "exit_code": 3,
        "stdout": "2 a.txt\n",
        "stderr": "",
        "truncated": False,
        "timed_out": False,
    }
    reply = await served.http.post("/actors/vm/v/exec", json={"command": "cat", "stdin": "piped"})
    assert reply.json()["stdout"] == "piped"
    reply = await served.http.post("/actors/vm/v/exec", json={"cmd": "ls"})
    assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")


async def test_a_vm_whose_host_crashed_is_a_503_saying_so_and_the_vm_comes_back(serve):
    served = await serve(vm=agent_os(software=[common], hosts=None))
    eval_bomb = HOSTILE[0][0]  # crashes bashkit's process: recursion it cannot stop
    reply = await served.http.post("/actors/vm/crash/exec", json={"command": eval_bomb})
    assert reply.status_code == 503
    assert reply.json()["error"] == "vm.crashed"
    assert "Traceback" not in reply.text
    reply = await served.http.post("/actors/vm/crash/exec", json={"command": "echo back"})
    assert reply.json()["stdout"] == "back\n"


async def test_sessions_are_created_prompted_streamed_cancelled_and_closed(serve):
    served = await serve(vm=agent_os(software=[common, pi]))
    base = "/actors/vm/v/sessions"
    reply = await served.http.post(base, json={})
    assert reply.status_code == 201
    session = reply.json()
    assert (session["agent_type"], session["offline"]) == ("pi", True)
    sid = session["session_id"]
    reply = await served.http.post(f"{base}/{sid}/prompt", json={"text": "Write a hello world in hello.py"})
    result = reply.json()
    assert result["stop_reason"] == "end_turn"
    assert "hello.py" in result["text"]
    async with served.http.stream(
        "POST", f"{base}/{sid}/prompt/stream", json={"text": "Write notes.md"}
    ) as reply:
        events = await events_of(reply)
    kinds = [data.get("session_update") for _, data in events[:-1]]
    assert kinds[0] == "user_message_chunk"
    assert kinds[-1] == "turn_ended"
    assert "tool_call" in kinds
    assert events[-1] == ("end", {})
    assert (await served.http.post(f"{base}/{sid}/cancel")).json() == {"cancelled": False}
    reply = await served.http.post(f"{base}/{sid}/prompt", json={"text": ""})
    assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")
    assert (await served.http.delete(f"{base}/{sid}")).status_code == 204
    reply = await served.http.post(f"{base}/{sid}/prompt", json={"text": "again"})
    assert (reply.status_code, reply.json()["error"]) == (409, "session.closed")
    reply = await served.http.post(f"{base}/nope/prompt/stream", json={"text": "hi"})
    assert (reply.status_code, reply.json()["error"]) == (404, "session.not_found")
    reply = await served.http.post(base, json={"agent_type": "claude"})
    assert (reply.status_code, reply.json()["error"]) == (422, "session.unknown_agent_type")


async def test_a_reader_that_leaves_a_stream_waiting_for_a_turn_cancels_the_turn(serve):
    """Nothing is written while the model thinks, so only the closed connection can tell."""
    answered = asyncio.Event()  # never set: the model answers only if the turn outlives its reader

    async def thinks_until_answered(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        await answered.wait()
        return ModelResponse(parts=[TextPart("too late")])

    served = await serve(vm=agent_os(software=[common, Pi(model=FunctionModel(thinks_until_answered))]))
    vm = served.registry.client().vm.get_or_create(["v"])
    session = await vm.create_session("pi")
    url = f"/actors/vm/v/sessions/{session.session_id}/prompt/stream"
    async with served.http.stream("POST", url, json={"text": "think"}) as reply:
        lines = reply.aiter_lines()
        assert await anext(lines) == "event: update"  # the user's message: the turn has begun
        await wait_until(lambda: _busy(vm, session.session_id))
    await wait_until(lambda: _idle(vm, session.session_id))
    updates = await vm.get_session_events(session.session_id)
    assert updates[-1].session_update == "turn_ended"
    assert updates[-1].stop_reason == "cancelled"


async def test_a_reader_that_leaves_before_a_streaming_actions_first_item_cancels_it(serve):
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def never_yields(c: ActorContext):
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield "never"

    served = await serve(waiter=actor(actions={"wait": never_yields}))
    reading = asyncio.ensure_future(served.http.post("/actors/waiter/w/actions/wait/stream"))
    await asyncio.wait_for(started.wait(), 5)
    reading.cancel()  # the reader hangs up before the stream has opened
    await asyncio.wait_for(cancelled.wait(), 5)


async def _busy(vm, session_id: str) -> bool:
    return (await vm.get_session(session_id)).busy


async def _idle(vm, session_id: str) -> bool:
    return not await _busy(vm, session_id)


# --- events -------------------------------------------------------------------------------------


async def test_the_event_stream_filters_by_type_and_actor_and_ends_when_the_registry_stops(serve):
    served = await serve(inbox=inbox(), other=inbox())
    async with served.http.stream("GET", "/events?type=message.&actor=inbox") as reply:
        lines = reply.aiter_lines()
        await served.http.post("/actors/other/o/queues/tasks", json={"prompt": "not shown"})
        await served.http.post("/actors/inbox/i/queues/tasks", json={"prompt": "shown"})
        await served.http.post("/actors/inbox/i/actions/greet", json={"args": ["not a message event"]})
        stopping = asyncio.ensure_future(served.registry.stop())
        events = [(e.event, json.loads(e.data)) async for e in read_events(lines)]
        await stopping
    assert [kind for kind, _ in events] == ["message.enqueued", "end"]
    assert events[0][1]["actor"]["key"] == ["i"]


async def test_a_reader_that_leaves_the_event_stream_is_unsubscribed_at_once(serve):
    """An idle stream writes only a keepalive every 15 s: the closed connection must tell."""
    served = await serve(inbox=inbox())
    bus = served.registry.bus
    assert not bus.active
    async with served.http.stream("GET", "/events") as reply:
        assert reply.status_code == 200
        assert bus.active
    await wait_until(lambda: not bus.active)


async def test_a_slow_event_reader_is_told_how_many_events_it_missed(serve):
    def burst(c: ActorContext, count: int) -> None:  # all at once: the stream cannot keep up
        for n in range(count):
            c.broadcast("tick", n)

    served = await serve(ticker=actor(actions={"burst": burst}))
    async with served.http.stream("GET", "/events?type=actor.broadcast&buffer=3") as reply:
        await served.http.post("/actors/ticker/t/actions/burst", json={"args": [10]})
        await served.registry.stop()
        events = [(e.event, json.loads(e.data)) async for e in read_events(reply.aiter_lines())]
    assert events[0] == ("events.dropped", {"type": "events.dropped", "at": events[0][1]["at"], "count": 7})
    assert [data["args"] for _, data in events[1:-1]] == [[7], [8], [9]]
    assert events[-1] == ("end", {})


# --- stopping -----------------------------------------------------------------------------------


async def test_stopping_lets_requests_under_way_finish_and_refuses_new_ones(serve):
    gate = asyncio.Event()
    started = asyncio.Event()

    async def slow(c: ActorContext) -> str:
        started.set()
        await gate.wait()
        return "done"

    served = await serve(worker=actor(actions={"slow": slow}))
    under_way = asyncio.ensure_future(served.http.post("/actors/worker/w/actions/slow"))
    await started.wait()
    assert (await served.http.get("/health")).status_code == 200  # a second connection, kept alive
    stopping = asyncio.ensure_future(served.registry.stop())
    await wait_until(lambda: not served.registry.server.accepting)
    async with httpx.AsyncClient(base_url=served.url) as late:
        with pytest.raises(httpx.ConnectError):  # the listening socket is closed
            await late.get("/health")
    reply = await served.http.get("/actors")  # a kept-alive connection is told why
    assert (reply.status_code, reply.json()["error"]) == (503, "http.stopping")
    gate.set()
    assert (await under_way).json()["result"] == "done"
    await stopping
    assert served.registry.phase == "stopped"


async def test_stop_with_no_grace_during_a_stop_cuts_the_drain_short(serve):
    """What a second Ctrl-C does, in-process: the request under way is cancelled unanswered, its
    action with it, the runtime file goes at once, and the stop ends without the drain's wait."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def endless(c: ActorContext) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return "never"

    served = await serve(worker=actor(actions={"endless": endless}))
    runtime_file = anyio.Path(served.registry.server.info.runtime_file)
    under_way = asyncio.ensure_future(served.http.post("/actors/worker/w/actions/endless"))
    await started.wait()
    stopping = asyncio.ensure_future(served.registry.stop())
    await wait_until(lambda: not served.registry.server.accepting)
    assert not stopping.done()  # the drain waits for the request under way
    assert await runtime_file.exists()
    await asyncio.wait_for(served.registry.stop(grace=0), 5)
    assert not await runtime_file.exists()
    assert cancelled.is_set()
    with pytest.raises(httpx.TransportError):
        await under_way  # cut short: no reply
    await stopping
    assert served.registry.phase == "stopped"


async def test_stopping_waits_for_the_replies_of_sends_under_way_not_only_for_the_work_in_hand(serve):
    """Two sends wait for their outcome; the consumer holds the first when the server is told to
    stop. Both are answered: the queued one is worked on too, since the actors stop only after
    the requests under way have had their answers."""
    gate = asyncio.Event()

    async def review_after_gate(c: ActorContext) -> None:
        async for message in c.queue.iter(completable=True):
            await gate.wait()
            await message.complete(Verdict(summary=message.body.file))

    served = await serve(reviewer=actor(queues={"reviews": queue(Review, Verdict)}, run=review_after_gate))
    path = "/actors/reviewer/r/queues/reviews?wait=true&timeout=30"
    sends = [
        asyncio.ensure_future(served.http.post(path, json={"file": file, "lines": 1}))
        for file in ("first.py", "queued.py")
    ]
    await wait_until(lambda: _depth_is(served, 2))
    stopping = asyncio.ensure_future(served.registry.stop())
    await wait_until(lambda: served.registry.server is None or not served.registry.server.accepting)
    gate.set()
    replies = [(await send).json() for send in sends]
    assert [(reply["status"], reply["response"]) for reply in replies] == [
        ("completed", {"summary": "first.py"}),
        ("completed", {"summary": "queued.py"}),
    ]
    await stopping


async def _depth_is(served: Served, count: int) -> bool:
    return await served.depth("reviewer", "reviews") == count


async def test_serve_says_where_it_serves_and_a_second_call_says_the_same(serve):
    served = await serve(inbox=inbox())
    port = served.registry.server.info.port
    listening = [
        c.laddr.ip
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert listening == ["127.0.0.1"]  # loopback only, unless told otherwise
    again = await served.registry.serve(port=0)
    assert again.url == served.url
    assert again.token.get_secret_value() == served.token
    assert "**" in repr(again)


async def test_start_with_serve_true_serves_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"inbox": inbox()}, name="serve-in-background")
    registry.start(serve=True, port=0, token="t")
    await wait_until(lambda: registry.server is not None and registry.server.info is not None)
    async with httpx.AsyncClient(
        base_url=registry.server.info.url, headers={"Authorization": "Bearer t"}
    ) as http:
        assert (await http.get("/actors")).json() == {"actors": []}
    await registry.stop()
    assert list_runtime_files() == []


def test_start_without_a_loop_and_serve_false_explains_what_to_do():
    registry = setup(use={"inbox": inbox()}, name="no-loop-no-serving")
    with pytest.raises(Exception, match="running event loop") as raised:
        registry.start(serve=False)
    assert "async with registry" in str(raised.value)
    assert registry.phase == "new"


# --- the OpenAPI document -----------------------------------------------------------------------


async def test_the_openapi_document_describes_this_registrys_queues_actions_and_vms(serve):
    served = await serve(inbox=inbox(), vm=agent_os(software=[common]))
    document = (await served.http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": served.url}]
    paths = document["paths"]
    send = paths["/actors/inbox/{key}/queues/reviews"]["post"]
    body = send["requestBody"]["content"]["application/json"]["schema"]
    schema = _resolve(document, body)
    assert schema["properties"]["lines"]["minimum"] == 0
    assert {p["name"] for p in send["parameters"]} == {"key", "wait", "timeout"}
    greet = paths["/actors/inbox/{key}/actions/greet"]["post"]["requestBody"]["content"]["application/json"]
    kwargs = greet["schema"]["properties"]["kwargs"]
    assert kwargs["required"] == ["name"]
    assert kwargs["properties"]["times"]["type"] == "integer"
    assert "/actors/vm/{key}/files/{path}" in paths
    assert "/actors/inbox/{key}/files/{path}" not in paths  # not a VM
    assert "/actors/vm/{key}/sessions/{session_id}/prompt/stream" in paths
    assert "/actors/vm/{key}/actions/stream_prompt/stream" in paths
    assert paths["/health"]["get"]["security"] == []
    assert paths["/actors/{name}/{key}"]["get"]["parameters"][0]["schema"]["enum"] == ["inbox", "vm"]


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# --- HTTP edges ---------------------------------------------------------------------------------


async def test_a_key_or_path_that_is_not_utf8_is_a_400_and_two_such_keys_never_meet(serve):
    served = await serve(inbox=inbox())
    for key in ("%FF%FE", "%FE%FF", "ok,%C3%28"):
        reply = await served.http.put(f"/actors/inbox/{key}")
        assert (reply.status_code, reply.json()["error"]) == (400, "http.malformed_url"), key
    reply = await served.http.get("/actors/inbox/@%FF")
    assert (reply.status_code, reply.json()["error"]) == (400, "http.malformed_url")
    served_vm = await serve(vm=agent_os(software=[common]))
    reply = await served_vm.http.get("/actors/vm/v/files/home/%FF%FE")
    assert (reply.status_code, reply.json()["error"]) == (400, "http.malformed_url")
    assert [view.name for view in await served.registry.overview()] == []


async def test_a_key_past_its_limits_is_a_414_and_nothing_is_created(serve):
    served = await serve(inbox=inbox())
    for key in (",".join(["p"] * 33), "k" * 1025, "%C3%A9" * 513):  # 513 two-byte characters
        reply = await served.http.put(f"/actors/inbox/{key}")
        assert (reply.status_code, reply.json()["error"]) == (414, "http.key_too_long"), key[:20]
    for key in (",".join(["p"] * 32), "k" * 1024):  # at both limits
        assert (await served.http.put(f"/actors/inbox/{key}")).status_code == 200
    assert len(await served.registry.overview()) == 2


async def test_head_answers_where_get_does_without_a_body_but_not_on_a_stream(serve):
    served = await serve(inbox=inbox())
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        reply = await anonymous.head("/health")
        assert (reply.status_code, reply.content) == (200, b"")
        assert (await anonymous.head("/actors")).status_code == 401  # the token still counts
    got = await served.http.get("/actors")
    reply = await served.http.head("/actors")
    assert (reply.status_code, reply.content) == (200, b"")
    assert reply.headers["content-length"] == got.headers["content-length"]
    reply = await served.http.head("/events")
    assert (reply.status_code, reply.headers["allow"]) == (405, "GET")


async def test_headers_past_the_limit_get_a_431_not_a_reset(serve):
    served = await serve(inbox=inbox())
    reply = await served.http.get("/actors", headers={"X-Padding": "x" * 200_000})
    assert (reply.status_code, reply.json()["error"]) == (431, "http.headers_too_large")
    assert (await served.http.get("/health")).status_code == 200


async def test_a_half_sent_request_is_closed_within_the_time_limits(serve, monkeypatch):
    from agentos_nb.http import server as http_server

    monkeypatch.setattr(http_server, "HEADER_SECONDS", 0.5)
    monkeypatch.setattr(http_server, "BODY_SECONDS", 0.5)
    served = await serve(inbox=inbox())
    host, port = served.url.removeprefix("http://").split(":")
    for partial in (
        b"POST /actors/inbox/k/queues/tasks HTTP/1.1\r\nHost: x\r\n",  # headers never end
        b"POST /actors/inbox/k/queues/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + served.token.encode()
        + b'\r\nContent-Length: 100\r\n\r\n{"prompt"',  # the body never ends
    ):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(partial)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, unanswered
        writer.close()
    assert await served.depth("inbox", "tasks") == 0
