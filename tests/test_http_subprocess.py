"""The seeds across processes: a registry served from a subprocess as the seed's server does
(`registry.start(...)` in a plain script, or `agentos-nb serve`), and a client in this process
running seed 000 (the writer's prompt, reviewed through the host tool) and seed 002's webhook
example, then SIGTERM: work under way drains, the process exits 0 and removes its runtime file."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from agentos_nb import create_client, errors
from agentos_nb.demo import ISSUE, PROJECT, WRITER_PROMPT
from agentos_nb.http.runtime_files import RegistryRuntimeInfo, list_runtime_files, runtime_dir
from conftest import MODEL_KEYS, wait_until

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
SERVER_SCRIPT = HERE / "http_registry.py"


class Server:
    """A registry serving from a subprocess; `info` is its runtime file."""

    def __init__(self, process: asyncio.subprocess.Process, info: RegistryRuntimeInfo) -> None:
        self.process = process
        self.info = info

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.process.wait(), 30)


def server_env() -> dict[str, str]:
    """This environment without model keys: the server's sessions answer offline."""
    return {name: value for name, value in os.environ.items() if name not in MODEL_KEYS}


@pytest.fixture
async def start_server(tmp_path, monkeypatch):
    """`server = await start_server(*argv)`: the subprocess, once its runtime file is there."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))  # this process finds the token there too
    started: list[asyncio.subprocess.Process] = []

    async def start(*argv: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            env=server_env(),
            cwd=HERE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(process)

        def serving() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"the server exited with {process.returncode}")
            return bool(list_runtime_files())

        await wait_until(serving, timeout=60, interval=0.05)
        [info] = list_runtime_files()
        return Server(process, info)

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def nap_under_way(client, seconds: float) -> asyncio.Future:
    """A `send(wait=True)` to the sleeper, once its nap is in flight: work a stop must drain."""
    sleeper = client.sleeper.get_or_create(["s"])
    napping = asyncio.ensure_future(sleeper.send("naps", {"seconds": seconds}, wait=True, timeout=30))

    async def nap_begun() -> bool:
        views = [v for v in await client.actors() if v.name == "sleeper"]
        return bool(views) and views[0].queues[0].in_flight == 1

    await wait_until(nap_begun, timeout=10)
    return napping


async def test_seed_000_runs_from_another_process(start_server):
    server = await start_server(str(SERVER_SCRIPT), "0")
    async with create_client(server.info.url) as client:  # the token comes from the runtime file
        writer = client.writer.get_or_create(PROJECT)
        session = await writer.create_session("pi")
        reply = await writer.send_prompt(session.session_id, WRITER_PROMPT)
        await writer.close_session(session.session_id)
        assert reply.stop_reason == "end_turn"
        # The writer called `agentos-review submit`: the host tool copied its file to the reviewer,
        # whose session reviewed it, and the review came back to the writer as the tool's result.
        reviewer = client.reviewer.get_or_create(PROJECT)
        written = await writer.read_file("/home/user/api.ts")
        assert await reviewer.read_file("/home/user/api.ts") == written
        [review_session] = await reviewer.list_sessions(include_closed=True)
        assert review_session.closed
        review_updates = await reviewer.get_session_events(review_session.session_id)
        review = "".join(u.content.text for u in review_updates if u.session_update == "agent_message_chunk")
        assert "Line " in review
        writer_updates = await writer.get_session_events(session.session_id)
        submits = [
            u
            for u in writer_updates
            if u.session_update == "tool_call" and "agentos-review submit" in u.title
        ]
        assert len(submits) == 1
        results = [
            u for u in writer_updates if u.session_update == "tool_call_update" and u.status == "completed"
        ]
        assert any('"review"' in (u.raw_output or "") for u in results)
    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_code() == 0


async def test_seed_002_webhook_example_runs_from_another_process(start_server):
    server = await start_server(str(SERVER_SCRIPT), "0", "webhook-token")
    assert server.info.token == "webhook-token"
    async with create_client(server.info.url) as client:
        handle = client.issue_worker.get_or_create(["main"])
        await handle.ingest_issue(ISSUE["title"], ISSUE["body"])  # the seed's own call
        # A webhook posts its payload straight to the queue, with the token and nothing else.
        hook = {"title": "Crash on save", "body": "Saving a file with an emoji in its name crashes"}
        async with httpx.AsyncClient(headers={"Authorization": "Bearer webhook-token"}) as webhook:
            reply = await webhook.post(f"{server.info.url}/actors/issue_worker/main/queues/issues", json=hook)
            assert (reply.status_code, reply.json()["status"]) == (200, "enqueued")
            refused = await webhook.post(
                f"{server.info.url}/actors/issue_worker/main/queues/issues", json={"title": "no body"}
            )
            assert (refused.status_code, refused.json()["error"]) == (422, "validation_error")
            assert "body" in refused.json()["message"]
        worker = client.vm.get_or_create(["issue-worker"])

        async def both_worked_on() -> bool:
            sessions = await worker.list_sessions(include_closed=True)
            return len(sessions) == 2 and all(s.closed for s in sessions)

        await wait_until(both_worked_on, timeout=60, interval=0.05)
        prompts = []
        for session in await worker.list_sessions(include_closed=True):
            updates = await worker.get_session_events(session.session_id)
            prompts += [u.content.text for u in updates if u.session_update == "user_message_chunk"]
        assert [p.split("\n")[2] for p in prompts] == [f"Title: {ISSUE['title']}", f"Title: {hook['title']}"]
        [view] = [v for v in await client.actors() if v.name == "issue_worker"]
        assert [(q.name, q.depth, q.in_flight) for q in view.queues] == [
            ("issues", 0, 0)
        ]  # the refused one never queued
    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_code() == 0


async def test_sigterm_drains_work_under_way_then_exits_cleanly(start_server):
    server = await start_server(str(SERVER_SCRIPT), "0")
    async with create_client(server.info.url) as client:
        sleeper = client.sleeper.get_or_create(["s"])
        napping = await nap_under_way(client, 1.0)
        server.process.send_signal(signal.SIGTERM)
        result = await napping  # answered before the server stopped
        assert (result.status, result.response.slept) == ("completed", 1.0)
        assert await server.exit_code() == 0
        with pytest.raises(httpx.ConnectError):
            await sleeper.send("naps", {"seconds": 0})
    assert [path async for path in anyio.Path(runtime_dir()).glob("*")] == []


async def test_the_cli_serves_a_module_that_starts_its_registry_at_import(start_server, tmp_path):
    module = tmp_path / "seed_server.py"
    module.write_text(
        "from http_registry import registry\n"
        "registry.start()  # as the seed's server.py does: on the CLI's loop this returns at once\n"
    )
    server = await start_server("-m", "agentos_nb", "serve", f"{module}:registry", "--port", "0")
    async with create_client(server.info.url) as client:
        assert await client.writer.get_or_create(["w"]).exec("echo served") is not None
        with pytest.raises(errors.UnknownActorType):
            await client.nobody.get_or_create("x").resolve()
    server.process.send_signal(signal.SIGINT)
    assert await server.exit_code() == 0
    out = (await server.process.stdout.read()).decode()
    assert f"serving http-tests at {server.info.url}" in out
    assert f"token: {server.info.token}" in out  # shown once, at start
    assert out.count(server.info.token) == 1
    assert "stopped" in out


async def test_the_cli_serves_scoped_tokens_and_webhooks_from_a_token_file(start_server, tmp_path):
    scoped, secret = "webhook-sender-token-0123456789", "webhook-shared-secret-0123"
    token_file = tmp_path / "tokens.json"
    token_file.write_text(
        json.dumps(
            {
                "tokens": [
                    {"token": scoped, "routes": ["send"], "actors": ["issue_worker/*"], "queues": ["issues"]}
                ],
                "webhooks": [{"actor": "issue_worker/signed", "queue": "issues", "secret": secret}],
            }
        )
    )
    token_file.chmod(0o600)
    server = await start_server(
        "-m",
        "agentos_nb",
        "serve",
        f"{SERVER_SCRIPT}:registry",
        "--port",
        "0",
        "--token-file",
        str(token_file),
    )
    issue = json.dumps({"title": "t", "body": "b"}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), issue, hashlib.sha256).hexdigest()
    route = f"{server.info.url}/actors/issue_worker/{{key}}/queues/issues"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {scoped}"}) as sender:
        assert (await sender.post(route.format(key="main"), content=issue)).status_code == 200
        refused = await sender.post(f"{server.info.url}/actors/writer/w/exec", json={"command": "env"})
        assert (refused.status_code, refused.json()["error"]) == (403, "http.forbidden")
    async with httpx.AsyncClient() as anonymous:
        signed = await anonymous.post(
            route.format(key="signed"), content=issue, headers={"X-Hub-Signature-256": signature}
        )
        assert signed.status_code == 200
    assert server.info.token not in (scoped, secret)
    server_files = "".join(path.read_text() for path in runtime_dir().glob("*"))
    assert scoped not in server_files
    assert secret not in server_files
    server.process.send_signal(signal.SIGTERM)
    assert await server.exit_code() == 0
    out = (await server.process.stdout.read()).decode() + (await server.process.stderr.read()).decode()
    assert scoped not in out
    assert secret not in out


@pytest.mark.timeout(600)
async def test_a_second_ctrl_c_while_draining_cuts_it_short_and_says_so(start_server):
    """Twenty times in a row: the second signal during a drain exits 130 with one line, never a
    traceback, and leaves no runtime file. Every other round sends the second 0.2 s after the
    first, without waiting to see the drain begin (a quick double Ctrl-C by hand)."""
    for round_number in range(20):
        quick = round_number % 2 == 1
        server = await start_server("-m", "agentos_nb", "serve", f"{SERVER_SCRIPT}:registry", "--port", "0")
        async with create_client(server.info.url) as client:
            napping = await nap_under_way(client, 5.0)
            server.process.send_signal(signal.SIGINT)
            if quick:  # as fast as a hand: signals sent closer together merge into one in the kernel
                await asyncio.sleep(0.2)
            else:

                async def draining() -> bool:
                    return not await client.health()  # no longer listening, the nap under way

                await wait_until(draining, timeout=10)
            server.process.send_signal(signal.SIGINT)
            assert await server.exit_code() == 130, f"round {round_number}"
            with pytest.raises(httpx.TransportError):
                await napping  # cut short: no reply
        out, err = await server.process.communicate()
        assert out.decode().count("Interrupted: the work under way was cut short.") == 1, round_number
        assert err.decode() == "", f"round {round_number}: {err.decode()}"
        assert list_runtime_files() == [], f"round {round_number}"


async def test_sigterm_twice_cuts_the_drain_short_too(start_server):
    server = await start_server(str(SERVER_SCRIPT), "0")
    async with create_client(server.info.url) as client:
        napping = await nap_under_way(client, 5.0)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == 130
        with pytest.raises(httpx.TransportError):
            await napping
    _, err = await server.process.communicate()
    assert err.decode() == ""
    assert list_runtime_files() == []


async def test_the_cli_says_why_it_cannot_serve(tmp_path):
    for target, says in [
        ("no_such_module:registry", "cannot import no_such_module"),
        (f"{SERVER_SCRIPT}:nothing", "has no registry named 'nothing'"),
    ]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agentos_nb",
            "serve",
            target,
            "--port",
            "0",
            env={**server_env(), "AGENTOS_NB_RUNTIME_DIR": str(tmp_path), "COLUMNS": "200"},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 1
        assert says in out.decode()
