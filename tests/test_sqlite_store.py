"""The SQLite store behind a registry: what a restart on the same file keeps, group commit, and
files that must be refused (and left untouched).

A "restart" here is a registry stopped and a new one started on the same file, as a kernel
restart would; killed processes are in test_crash.py, damaged files in test_store_damage.py.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import tracemalloc
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentos_nb import actor, agent_os, errors, queue, setup
from agentos_nb.offline import Bash, Reply, offline_model
from agentos_nb.software import Pi, common, pi
from agentos_nb.store import open_store
from agentos_nb.store.sqlite import SCHEMA_VERSION, SqliteStore
from conftest import wait_until

pytestmark = pytest.mark.anyio


class Job(BaseModel):
    n: int


class Answer(BaseModel):
    doubled: int


def url(path: Path) -> str:
    return f"sqlite:///{path}"


async def started(path: Path, **use):
    registry = setup(use=use, store=url(path), name=f"sqlite-test-{path.name}")
    registry.start()
    await registry.ready()
    return registry


def counter():
    async def bump(c, by: int = 1) -> int:
        c.state["count"] += by
        return c.state["count"]

    return actor(state={"count": 0}, actions={"bump": bump})


def doubler(gate: asyncio.Event | None = None, **options):
    async def run(c):
        async for message in c.queue.iter(completable=True):
            if gate is not None:
                await gate.wait()
            await message.complete(Answer(doubled=2 * message.body.n))

    return actor(queues={"jobs": queue(Job, Answer)}, run=run, options=options)


async def test_state_and_actors_outlive_the_registry(tmp_path):
    path = tmp_path / "agents.db"
    registry = await started(path, counter=counter())
    await registry.client().counter.get_or_create(["a"]).bump(5)
    await registry.stop()

    registry = await started(path, counter=counter())
    try:
        assert await registry.client().counter.get(["a"]).bump() == 6
    finally:
        await registry.stop()


async def test_pending_messages_are_worked_after_a_restart_and_answers_wait(tmp_path):
    path = tmp_path / "queues.db"
    gate = asyncio.Event()  # never set: the first registry stores the work but does none of it
    registry = await started(path, doubler=doubler(gate))
    handle = registry.client().doubler.get_or_create(["main"])
    sent = [await handle.send("jobs", {"n": n}) for n in range(5)]
    assert [r.status for r in sent] == ["enqueued"] * 5
    await registry.stop(grace=0)

    registry = await started(path, doubler=doubler())
    try:
        handle = registry.client().doubler.get_or_create(["main"])
        results = [await handle.wait_for(r.message_id, timeout=10) for r in sent]
        assert [r.response.doubled for r in results] == [0, 2, 4, 6, 8]
    finally:
        await registry.stop()

    registry = await started(path, doubler=doubler())  # completed answers are stored, and not redone
    try:
        handle = registry.client().doubler.get_or_create(["main"])
        again = await handle.wait_for(sent[3].message_id, timeout=1)
        assert again.response.doubled == 6
    finally:
        await registry.stop()


async def test_a_burst_of_sends_is_committed_in_few_transactions(tmp_path):
    registry = await started(tmp_path / "burst.db", doubler=doubler(asyncio.Event(), max_queue_size=2000))
    try:
        handle = registry.client().doubler.get_or_create(["main"])
        await handle.send("jobs", {"n": -1})  # the actor exists and is awake
        before = registry.store.transactions
        await asyncio.gather(*(handle.send("jobs", {"n": n}) for n in range(1000)))
        assert registry.store.transactions - before <= 20
    finally:
        await registry.stop(grace=0)


async def test_dead_letters_and_schedules_outlive_the_registry(tmp_path):
    path = tmp_path / "dead.db"

    async def fail(c):
        async for message in c.queue.iter():
            raise RuntimeError(f"cannot do {message.body.n}")

    def failing():
        return actor(
            queues={"jobs": queue(Job)}, run=fail, options={"max_attempts": 1, "restart_backoff": 0.01}
        )

    async def noted(c, text: str) -> None:
        c.state["notes"].append(text)

    async def later(c) -> None:
        await c.schedule.after(0.3, "note", "scheduled")

    def noter():
        return actor(
            state={"notes": []}, actions={"note": noted, "later": later, "notes": lambda c: c.state["notes"]}
        )

    registry = await started(path, failing=failing(), noter=noter())
    handle = registry.client().failing.get_or_create(["x"])
    await handle.send("jobs", {"n": 7})
    await wait_until(lambda: _has_dead_letter(handle), timeout=10)
    await registry.client().noter.get_or_create(["n"]).later()
    await registry.stop(grace=0)

    registry = await started(path, failing=failing(), noter=noter())
    try:
        [dead] = await registry.client().failing.get(["x"]).dead_letters()
        assert "cannot do 7" in dead.error
        noter_handle = registry.client().noter.get(["n"])
        await wait_until(lambda: _notes(noter_handle), timeout=5)
    finally:
        await registry.stop(grace=0)


class Renamed(BaseModel):
    """`Job` as a later version of the code declares it: the stored dead letter no longer fits."""

    number: int


async def test_a_dead_letter_whose_body_no_longer_fits_its_queue_is_listed_as_stored(tmp_path):
    path = tmp_path / "evolved.db"

    async def fail(c):
        async for message in c.queue.iter():
            raise RuntimeError(f"cannot do {message.body}")

    def failing(body: type[BaseModel]):
        return actor(
            queues={"jobs": queue(body)}, run=fail, options={"max_attempts": 1, "restart_backoff": 0.01}
        )

    registry = await started(path, failing=failing(Job))
    handle = registry.client().failing.get_or_create(["x"])
    await handle.send("jobs", {"n": 7})
    await wait_until(lambda: _has_dead_letter(handle), timeout=10)
    await registry.stop(grace=0)

    registry = await started(path, failing=failing(Renamed))
    try:
        [dead] = await registry.client().failing.get(["x"]).dead_letters()
        assert dead.body == {"n": 7}  # as stored: Renamed would refuse it
        with pytest.raises(errors.ValidationError, match="no longer fits queue 'jobs'"):
            await registry.client().failing.get(["x"]).replay(dead.message_id)
        assert [d.message_id for d in await registry.client().failing.get(["x"]).dead_letters()] == [
            dead.message_id
        ]  # still dead, not stuck in a queue that can never deliver it
    finally:
        await registry.stop(grace=0)


async def _has_dead_letter(handle) -> bool:
    return bool(await handle.dead_letters())


async def _notes(handle) -> bool:
    return await handle.notes() == ["scheduled"]


async def test_vm_files_and_sessions_outlive_a_restart(tmp_path):
    path = tmp_path / "vm.db"
    model = offline_model(script=[Bash("echo remembered > memo.txt"), Reply("noted"), Reply("still here")])

    def vm_type():
        return agent_os(software=[common, Pi(model=model)])

    registry = await started(path, vm=vm_type())
    vm = registry.client().vm.get_or_create(["dev"])
    session = await vm.create_session("pi")
    assert (await vm.send_prompt(session.session_id, "remember this")).text == "noted"
    await registry.stop()

    registry = await started(path, vm=vm_type())
    try:
        vm = registry.client().vm.get(["dev"])
        assert await vm.read_file("memo.txt", encoding="utf-8") == "remembered\n"
        [info] = await vm.list_sessions()
        assert info.session_id == session.session_id
        assert (await vm.send_prompt(session.session_id, "and now?")).text == "still here"
        kinds = [u.session_update for u in await vm.get_session_events(session.session_id)]
        assert kinds.count("turn_ended") == 2
    finally:
        await registry.stop()


async def test_a_vm_snapshots_its_changes_without_sleeping(tmp_path):
    path = tmp_path / "snap.db"
    registry = await started(path, vm=agent_os(software=[common, pi], snapshot_every=0.05))
    try:
        vm = registry.client().vm.get_or_create(["dev"])
        await vm.exec("echo saved > early.txt")
        actor_id = await vm.resolve()

        async def saved() -> bool:
            blob = await registry.store.load_blob(actor_id, "filesystem")
            return blob is not None and b"early.txt" in blob

        await wait_until(saved, timeout=5)  # the VM is still awake: a killed process keeps this
    finally:
        await registry.stop()


class Essay(BaseModel):
    text: str


def reader():
    async def run(c):
        async for message in c.queue.iter(completable=True):
            await message.complete(Answer(doubled=len(message.body.text)))

    return actor(queues={"essays": queue(Essay, Answer)}, run=run)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_completed_message_keeps_its_answer_not_its_body(tmp_path, kind):
    """Seen: the newest 10,000 completed messages kept their bodies, 600 MB for bodies of 60 KB.
    Checked by size: 20 bodies of 60 KB (1.2 MB) must not stay on the Python heap."""
    path = tmp_path / "answers.db"
    registry = setup(use={"reader": reader()}, store="memory" if kind == "memory" else url(path), name=kind)
    registry.start()
    await registry.ready()
    try:
        handle = registry.client().reader.get_or_create(["r"])
        await handle.send("essays", {"text": "warm-up"}, wait=True)
        gc.collect()
        tracemalloc.start()
        try:
            sent = [await handle.send("essays", {"text": f"{n:02d}" * 30_000}, wait=True) for n in range(20)]
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert held < 300_000, f"{held:,} bytes still held after 20 completions of 60 KB"
        for result in sent:
            again = await handle.wait_for(result.message_id, timeout=1)
            assert (again.status, again.response.doubled) == ("completed", 60_000)
            record = await registry.store.get_message(result.message_id)
            assert record is not None
            assert (record.body, record.status) == (b"", "completed")
    finally:
        await registry.stop()
    if kind == "sqlite":  # nor does the file keep them
        with sqlite3.connect(path) as db:
            sizes = db.execute("SELECT length(body) FROM messages WHERE status = 'completed'").fetchall()
        assert sizes == [(0,)] * 21


# --- files that must be refused ---------------------------------------------------------------


async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"my thesis, chapter 1\n" * 100)
    before = path.read_bytes()
    registry = setup(use={"counter": counter()}, store=url(path), name="refuse-text")
    registry.start()
    with pytest.raises(errors.StoreUnusable, match="is not a SQLite database; it was left untouched"):
        await registry.ready()
    await registry.stop()
    assert path.read_bytes() == before


async def test_a_damaged_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "damaged.db"
    store = SqliteStore(path)
    await store.open()
    for n in range(200):
        await store.save_blob("nobody", str(n), b"x")
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("CREATE TABLE filler (data BLOB)")
        db.executemany("INSERT INTO filler VALUES (?)", [(b"y" * 3000,) for _ in range(50)])
    data = bytearray(path.read_bytes())
    data[4096 * 3 : 4096 * 3 + 2000] = b"\x00\xff" * 1000  # scribble over a page
    path.write_bytes(bytes(data))
    with pytest.raises(errors.StoreUnusable, match="left untouched"):
        await SqliteStore(path).open()
    assert path.read_bytes() == bytes(data)


async def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "future.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(errors.StoreUnusable, match="written by a newer agentos_nb"):
        await SqliteStore(path).open()
    assert path.read_bytes() == before


async def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(errors.StoreUnusable, match=r"SQLite database of something else \(tables: invoices\)"):
        await SqliteStore(path).open()


async def test_a_store_migrates_an_empty_file_and_reopens(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "names no file"),
        ("sqlite:///x.db?synchronous=SOMETIMES", "synchronous must be NORMAL or FULL"),
        ("sqlite:///x.db?cache=big", "unknown option cache"),
        ("postgres://db", "unknown store"),
    ],
)
def test_bad_store_urls_are_clear_errors(spec, message):
    with pytest.raises(errors.InvalidDefinition, match=message):
        open_store(spec)


def test_store_urls_name_the_file_and_its_durability():
    store = open_store("sqlite:////tmp/agents.db?synchronous=full")
    assert isinstance(store, SqliteStore)
    assert store.path == Path("/tmp/agents.db")
    assert store.synchronous == "FULL"
    assert open_store("sqlite:///relative/agents.db").path == Path("relative/agents.db")


async def test_an_older_store_is_migrated_with_its_data(tmp_path):
    from agentos_nb.store.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a store as schema 1 left it
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO actors VALUES ('a1', 'counter', ?, 0, NULL, NULL)", ('["x"]',))
        db.execute(
            "INSERT INTO messages (message_id, seq, actor_id, queue, body, created_at, status) "
            "VALUES (5, 5, 'a1', 'jobs', X'7B7D', 0, 'pending')"
        )
        db.execute("UPDATE counters SET value = 5")
    store = SqliteStore(path)
    await store.open()
    try:
        [message] = await store.load_queues("a1")
        assert message.message_id == 5
        assert (await store.enqueue("a1", "jobs", b"{}", 1.0)).message_id == 6
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "live_messages" in indexes


async def test_two_stores_on_one_file_never_hand_out_the_same_id(tmp_path):
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        ids = []
        for _ in range(3):
            ids.append((await first.enqueue("a", "q", b"{}", 0.0)).message_id)
            ids.append((await second.enqueue("b", "q", b"{}", 0.0)).message_id)
        assert len(set(ids)) == len(ids)
        assert ids == sorted(ids)
    finally:
        await first.close()
        await second.close()


async def test_a_store_opens_once_and_reopens_after_close(tmp_path):
    store = SqliteStore(tmp_path / "twice.db")
    await asyncio.gather(store.open(), store.open())
    await store.enqueue("a", "q", b"1", 0.0)
    await store.close()
    await store.open()
    try:
        assert [m.body for m in await store.load_queues("a")] == [b"1"]
    finally:
        await store.close()


@pytest.mark.parametrize("where", ["missing-folder/x.db", "."])
async def test_a_path_that_cannot_hold_a_store_is_a_clear_error(tmp_path, where):
    with pytest.raises(errors.StoreUnusable, match="could not be opened as a store"):
        await SqliteStore(tmp_path / where).open()


async def test_a_vm_stop_does_not_wait_for_a_pending_snapshot(tmp_path):
    registry = await started(tmp_path / "stop.db", vm=agent_os(software=[common], snapshot_every=60))
    vm = registry.client().vm.get_or_create(["dev"])
    await vm.exec("echo hi > a.txt")
    began = asyncio.get_running_loop().time()
    await registry.stop()
    assert asyncio.get_running_loop().time() - began < 5  # the snapshot's wait held nothing up
    registry = await started(tmp_path / "stop.db", vm=agent_os(software=[common], snapshot_every=60))
    try:
        assert await registry.client().vm.get(["dev"]).read_file("a.txt") == b"hi\n"
    finally:
        await registry.stop()
