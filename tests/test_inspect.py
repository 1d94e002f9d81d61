"""`agentos-nb inspect STORE`: what a store file holds, read without changing it."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from rich.console import Console

from agentos_nb import actor, agent_os, cli, queue, setup
from agentos_nb.software import common, pi
from agentos_nb.store.sqlite import SCHEMA_VERSION
from conftest import wait_until


class Job(BaseModel):
    n: int


async def fill(path) -> None:
    async def run(c):
        async for message in c.queue.iter():
            if message.body.n == 3:
                raise RuntimeError("three is poison")
            c.state["done"] += 1

    registry = setup(
        use={
            "worker": actor(
                queues={"jobs": queue(Job)},
                run=run,
                state={"done": 0},
                options={"max_attempts": 1, "restart_backoff": 0.01},
            ),
            "vm": agent_os(software=[common, pi]),
        },
        store=f"sqlite:///{path}",
        name="inspect-fill",
    )
    registry.start()
    await registry.ready()
    worker = registry.client().worker.get_or_create(["main"])
    for n in range(5):
        await worker.send("jobs", {"n": n})
    vm = registry.client().vm.get_or_create(["dev"])
    session = await vm.create_session("pi")
    await vm.send_prompt(session.session_id, "hello")
    await wait_until(worker.dead_letters)  # the poison message has failed its one attempt
    await registry.stop()


def shown(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().out


def test_inspect_shows_actors_queues_dead_letters_and_sessions(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    path = tmp_path / "agents.db"
    asyncio.run(fill(path))
    before = path.read_bytes()
    code, out = shown(["inspect", str(path)], capsys)
    assert code == 0
    assert f"store schema {SCHEMA_VERSION}" in out
    assert "worker/main" in out
    assert "vm/dev" in out
    assert "filesystem" in out
    assert "three is poison" in out
    assert '{"n":3}' in out
    assert "offline:agentos (offline)" in out
    assert "turn_ended" in out
    assert path.read_bytes() == before  # read, never written
    assert cli.main(["inspect", f"sqlite:///{path}"]) == 0


def test_inspect_refuses_what_is_not_a_store(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    code, out = shown(["inspect", str(text)], capsys)
    assert code == 1
    assert "is not a SQLite database" in out
    assert text.read_text() == "not a database\n"
    code, out = shown(["inspect", str(tmp_path / "missing.db")], capsys)
    assert code == 1
    assert "does not exist" in out


def test_inspect_renders_with_rich_tables(tmp_path):
    path = tmp_path / "agents.db"
    asyncio.run(fill(path))
    console = Console(record=True, width=160)
    cli.inspect_store(console, str(path))
    text = console.export_text()
    for title in ("Actors", "Queues", "Dead letters", "Sessions"):
        assert title in text
