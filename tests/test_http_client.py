"""`create_client(url)`: the in-process handle API over HTTP, against a registry serving on this
loop. Results are what in-process calls return, errors the same classes; the token is found
where a user would keep it; the lean transport keeps connections alive and survives a
server closing them."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from pydantic import BaseModel

from agentos_nb import (
    ActorContext,
    DirEntry,
    ExecResult,
    PromptResult,
    SendResult,
    SessionInfo,
    actor,
    agent_os,
    create_client,
    errors,
    queue,
    setup,
)
from agentos_nb.events import ActionStarted, MessageEnqueued
from agentos_nb.http.errors import ActionFailed, Unauthorized
from agentos_nb.http.transport import LeanTransport
from agentos_nb.http.values import RemoteObject
from agentos_nb.software import common, pi
from agentos_nb.vm.session_models import TurnEnded, UserMessageChunk
from conftest import wait_until

pytestmark = pytest.mark.anyio


class Task(BaseModel):
    prompt: str


class Review(BaseModel):
    file: str


class Verdict(BaseModel):
    summary: str
    lines: list[int]


class Point(BaseModel):
    x: int
    y: int


async def run_reviews(c: ActorContext) -> None:
    async for message in c.queue.iter(completable=True):
        if message.body.file == "slow.py":
            await asyncio.sleep(0.3)
        await message.complete(Verdict(summary=f"{message.body.file} looks fine", lines=[1, 2]))


async def norm(c: ActorContext, point: Point, *, scale: int = 1) -> int:
    return scale * (abs(point.x) + abs(point.y))


async def echo_bytes(c: ActorContext, data: bytes) -> bytes:
    return data[::-1]


async def count(c: ActorContext, up_to: int | None = None):
    n = 0
    try:
        while up_to is None or n < up_to:
            yield n
            n += 1
            await asyncio.sleep(0)
    finally:
        c.vars["stopped_at"] = n


class Broken(Exception):
    """An exception of the action's own, which the client cannot rebuild."""


def broken(c: ActorContext) -> None:
    raise Broken("no such thing")


def stopped_at(c: ActorContext) -> int | None:
    return c.vars.get("stopped_at")


def definitions() -> dict:
    return {
        "reviewer": actor(
            queues={
                "review": queue(Review, Verdict),
                "tasks": queue(Task, max_size=1, max_message_bytes=100),
            },
            run=run_reviews,
            actions={
                "norm": norm,
                "echo_bytes": echo_bytes,
                "count": count,
                "broken": broken,
                "stopped_at": stopped_at,
            },
            vars={},
        ),
        "vm": agent_os(software=[common, pi]),
    }


@pytest.fixture
async def served(tmp_path, monkeypatch):
    """A registry serving on 127.0.0.1 with its runtime file in a temporary directory."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTOS_NB_TOKEN", raising=False)
    registry = setup(use=definitions(), name="http-client-test")
    info = await registry.serve(port=0)
    yield registry, info
    await registry.stop(grace=0)


@pytest.fixture
async def client(served):
    _, info = served
    async with create_client(info.url) as client:
        yield client


# --- the handle API -----------------------------------------------------------------------------


async def test_handles_are_made_as_in_process(client):
    handle = client.reviewer.get_or_create("main")
    assert (handle.name, handle.key, handle.actor_id) == ("reviewer", ("main",), None)
    actor_id = await handle.resolve()
    assert handle.actor_id == actor_id
    assert await client.reviewer.get(["main"]).resolve() == actor_id
    by_id = client.reviewer.get_for_id(actor_id)
    assert by_id.key is None
    await by_id.resolve()
    assert by_id.key == ("main",)
    created = await client.reviewer.create(["new", "one,two"])
    assert created.key == ("new", "one,two")
    with pytest.raises(errors.ActorAlreadyExists):
        await client.reviewer.create(["new", "one,two"])
    with pytest.raises(errors.ActorNotFound):
        await client.reviewer.get("missing").norm({"x": 1, "y": 1})
    with pytest.raises(errors.UnknownActorType):
        await client.nobody.get_or_create("x").resolve()
    assert [view.key for view in await client.actors()] == [("main",), ("new", "one,two")]


async def test_send_returns_a_send_result_whose_response_reads_as_in_process(client):
    handle = client.reviewer.get_or_create(["main"])
    sent = await handle.send("review", {"file": "a.py"})
    assert isinstance(sent, SendResult)
    assert sent.status == "enqueued"
    result = await handle.send("review", Review(file="b.py"), wait=True, timeout=10)
    assert result.status == "completed"
    assert result.response.summary == "b.py looks fine"  # as with the in-process ReviewResponse
    assert result.response.lines == [1, 2]
    assert isinstance(result.response, RemoteObject)
    timed_out = await handle.send("review", {"file": "slow.py"}, wait=True, timeout=0.01)
    assert timed_out.status == "timed_out"
    later = await handle.wait_for(timed_out.message_id, timeout=10)
    assert (later.status, later.response.summary) == ("completed", "slow.py looks fine")


async def test_errors_are_the_in_process_classes(client):
    handle = client.reviewer.get_or_create(["main"])
    with pytest.raises(errors.ValidationError) as invalid:
        await handle.send("review", {"file": 3})
    assert invalid.value.details["errors"][0]["field"] == "file"
    with pytest.raises(errors.UnknownQueue):
        await handle.send("nope", {})
    await handle.send("tasks", {"prompt": "fills the queue"})
    with pytest.raises(errors.QueueFull):
        await handle.send("tasks", {"prompt": "one too many"})
    with pytest.raises(errors.MessageTooLarge):
        await client.reviewer.get_or_create("other").send("tasks", {"prompt": "x" * 200})
    with pytest.raises(errors.UnknownAction):
        await handle.no_such_action()
    with pytest.raises(errors.ValidationError):
        await handle.norm({"x": "far"})
    with pytest.raises(errors.MessageNotFound):
        await handle.wait_for(12345)
    with pytest.raises(ActionFailed, match="Broken: no such thing") as failed:
        await handle.broken()
    assert failed.value.details["exception_type"] == "Broken"


async def test_actions_take_and_give_models_and_bytes(client):
    handle = client.reviewer.get_or_create(["main"])
    assert await handle.norm(Point(x=3, y=-4)) == 7
    assert await handle.norm({"x": 1, "y": 2}, scale=10) == 30
    assert await handle.echo_bytes(b"\x00\x01\xff") == b"\xff\x01\x00"
    assert await handle.call("norm", {"x": 1, "y": 1}) == 2


async def test_a_streaming_action_is_awaited_whole_or_iterated_and_leaving_early_stops_it(client):
    handle = client.reviewer.get_or_create(["main"])
    assert await handle.count(3) == [0, 1, 2]
    assert [n async for n in handle.count(up_to=4)] == [0, 1, 2, 3]
    assert [n async for n in handle.stream("count", 2)] == [0, 1]
    async with contextlib.aclosing(handle.stream("count")) as endless:
        async for n in endless:
            if n == 5:
                break

    async def stopped() -> bool:
        return (await handle.stopped_at()) is not None

    await wait_until(stopped)


async def test_dead_letters_and_replay(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    attempts: list[str] = []

    async def flaky(c: ActorContext) -> None:
        async for message in c.queue.iter():
            attempts.append(message.body.prompt)
            if len(attempts) == 1:
                raise RuntimeError("first time unlucky")

    registry = setup(
        use={"worker": actor(queues={"tasks": queue(Task)}, run=flaky, options={"max_attempts": 1})},
        name="http-client-dead-letters",
    )
    info = await registry.serve(port=0)
    try:
        async with create_client(info.url) as client:
            handle = client.worker.get_or_create("w")
            sent = await handle.send("tasks", {"prompt": "p"})

            async def dead() -> bool:
                return bool(await handle.dead_letters())

            await wait_until(dead)
            [letter] = await handle.dead_letters("tasks")
            assert (letter.message_id, letter.body) == (sent.message_id, {"prompt": "p"})
            assert "first time unlucky" in letter.error
            await handle.replay(sent.message_id)
            await wait_until(lambda: attempts == ["p", "p"])
            assert await handle.dead_letters() == []
    finally:
        await registry.stop(grace=0)


# --- agent VMs ----------------------------------------------------------------------------------


async def test_vm_files_and_exec_are_as_in_process(client):
    vm = client.vm.get_or_create(["box"])
    await vm.write_file("/home/user/src/app.py", "print('hi')\n")
    await vm.write_file("notes.bin", b"\x00\xff")
    assert await vm.read_file("/home/user/src/app.py") == b"print('hi')\n"
    assert await vm.read_file("src/app.py", encoding="utf-8") == "print('hi')\n"
    assert await vm.read_file("~/notes.bin") == b"\x00\xff"
    assert await vm.exists("/home/user/notes.bin") is True
    entries = await vm.readdir()
    assert all(isinstance(entry, DirEntry) for entry in entries)
    assert [entry.name for entry in entries] == ["notes.bin", "src"]
    result = await vm.exec("cat src/app.py", timeout=10)
    assert isinstance(result, ExecResult)
    assert "print('hi')" in result.stdout
    with pytest.raises(FileNotFoundError) as missing:
        await vm.read_file("nothing.txt")
    assert (missing.value.errno, missing.value.filename) == (2, "/home/user/nothing.txt")
    with pytest.raises(PermissionError):
        await vm.read_file("../../../etc/passwd")
    with pytest.raises(PermissionError):
        await vm.write_file("/../escape.txt", "no")
    with pytest.raises(IsADirectoryError):
        await vm.read_file("src")


async def test_sessions_are_as_in_process(client):
    vm = client.vm.get_or_create(["box"])
    session = await vm.create_session("pi")
    assert isinstance(session, SessionInfo)
    assert session.offline
    reply = await vm.send_prompt(session.session_id, "Write a hello world in hello.py")
    assert isinstance(reply, PromptResult)
    assert reply.stop_reason == "end_turn"
    assert await vm.exists("/home/user/hello.py")
    updates = [update async for update in vm.stream_prompt(session.session_id, "Write notes.md")]
    assert isinstance(updates[0], UserMessageChunk)
    assert isinstance(updates[-1], TurnEnded)
    assert [u.seq for u in updates] == sorted(u.seq for u in updates)
    history = await vm.get_session_events(session.session_id)
    assert history[-len(updates) :] == updates
    assert await vm.cancel_prompt(session.session_id) is False
    await vm.close_session(session.session_id)
    [closed] = await vm.list_sessions(include_closed=True)
    assert closed.closed
    with pytest.raises(errors.SessionClosed):
        await vm.send_prompt(session.session_id, "more")
    with pytest.raises(errors.SessionNotFound):
        await vm.send_prompt("s-nope", "hello")
    with pytest.raises(ValueError, match="non-empty"):
        await vm.send_prompt((await vm.create_session()).session_id, "   ")


# --- events -------------------------------------------------------------------------------------


async def test_events_come_typed_and_filtered(client, served):
    registry, _ = served
    received = []

    async def read() -> None:
        async for event in client.events(types=["message.enqueued", "action.started"], actors=["reviewer"]):
            received.append(event)

    reader = asyncio.ensure_future(read())
    await wait_until(lambda: registry.bus.active)
    handle = client.reviewer.get_or_create(["main"])
    await handle.send("tasks", {"prompt": "seen"})
    await handle.norm({"x": 1, "y": 1})
    await client.vm.get_or_create("box").exists("/")  # another actor type: not seen
    await wait_until(lambda: len(received) == 2)
    await registry.stop()
    await reader  # ends with the registry
    assert isinstance(received[0], MessageEnqueued)
    assert received[0].queue == "tasks"
    assert isinstance(received[1], ActionStarted)
    assert received[1].action == "norm"


async def test_leaving_the_events_early_lets_the_registry_drop_the_subscription(client, served):
    registry, _ = served
    handle = client.reviewer.get_or_create(["main"])
    async with contextlib.aclosing(client.events(types=["message.enqueued"])) as events:
        first = asyncio.ensure_future(anext(events))
        await wait_until(lambda: registry.bus.active)
        await handle.send("tasks", {"prompt": "one"})
        assert (await first).queue == "tasks"
    await wait_until(lambda: not registry.bus.active)  # at once, not at the stream's next keepalive


# --- the token ----------------------------------------------------------------------------------


async def test_the_token_comes_from_the_argument_the_environment_or_the_runtime_file(served, monkeypatch):
    _, info = served
    token = info.token.get_secret_value()
    port = info.url.rsplit(":", 1)[1]
    for url in (info.url, f"http://localhost:{port}/"):  # found in the runtime file
        async with create_client(url) as client:
            assert await client.actors() == []
    async with create_client(info.url, token="wrong") as client:
        with pytest.raises(Unauthorized):
            await client.actors()
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", "/nonexistent")
    async with create_client(info.url) as client:
        with pytest.raises(Unauthorized, match="AGENTOS_NB_TOKEN"):
            await client.actors()
        assert await client.health()  # needs none
    monkeypatch.setenv("AGENTOS_NB_TOKEN", token)
    async with create_client(info.url) as client:
        assert await client.actors() == []
    async with create_client(info.url, token=token) as client:
        assert await client.actors() == []


async def test_a_client_of_a_server_that_is_gone_says_so(served):
    registry, info = served
    client = create_client(info.url)
    assert await client.health()
    await registry.stop()
    assert not await client.health()
    with pytest.raises(httpx.ConnectError):
        await client.reviewer.get_or_create("x").resolve()
    await client.aclose()


# --- the transport ------------------------------------------------------------------------------


class _Scripted:
    """A raw HTTP server on 127.0.0.1 that answers each request with the next scripted reply,
    then closes the connection if the script says so."""

    def __init__(self, replies: list[tuple[bytes, bool]]) -> None:
        self.replies = replies
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                reply, close = self.replies.pop(0)
                writer.write(reply)
                await writer.drain()
                if close:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()


async def _scripted(replies: list[tuple[bytes, bool]]):
    script = _Scripted(replies)
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return script, server, f"http://127.0.0.1:{port}"


async def test_the_transport_keeps_connections_alive_and_replaces_one_the_server_closed():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    script, server, url = await _scripted([(ok, False), (ok, True), (ok, False), (ok, False)])
    async with server, httpx.AsyncClient(transport=LeanTransport()) as http:
        for _ in range(2):
            assert (await http.post(f"{url}/a", content=b"body")).text == "ok"
        assert script.connections == 1  # then the server closed it, idle
        for _ in range(2):
            assert (await http.get(f"{url}/b")).text == "ok"
        assert script.connections == 2
    assert script.requests[0].startswith(b"POST /a HTTP/1.1\r\n")
    assert b"Content-Length: 4\r\n" in script.requests[0]
    assert script.requests[0].endswith(b"\r\n\r\nbody")


async def test_the_transport_reads_chunked_and_until_close_replies():
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    script, server, url = await _scripted([(chunked, False), (until_close, True)])
    async with server, httpx.AsyncClient(transport=LeanTransport()) as http:
        async with http.stream("GET", f"{url}/events") as reply:
            assert [chunk async for chunk in reply.aiter_raw()] == [b"abc", b"de"]
        assert (await http.get(f"{url}/rest")).content == b"all of it"
    assert script.connections == 1  # the chunked reply's connection was reused


async def test_the_transport_turns_failures_into_httpx_errors():
    async with httpx.AsyncClient(transport=LeanTransport()) as http:
        _, server, url = await _scripted([(b"garbage\r\n\r\n", True)])
        async with server:
            with pytest.raises(httpx.ReadError):
                await http.get(f"{url}/x")
        with pytest.raises(httpx.ConnectError):
            await http.get(url)
        _, server, url = await _scripted([(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", True)])
        async with server:
            with pytest.raises(httpx.ReadError):
                await http.get(f"{url}/x")
