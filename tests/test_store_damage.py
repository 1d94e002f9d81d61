"""A damaged store fails loudly, and is never trusted (DESIGN "Store"; issue 15).

Each damage is made for real, and each test says which situation it stands for:
- files removed or replaced under a running store (a cleanup script, a sync tool, `rm` by hand);
- a read-only filesystem (a read-only bind mount in a private mount namespace), a read-only or
  immutable file, a read-only folder (`chattr +i` as root, whom file modes do not stop;
  `chmod` otherwise);
- bytes flipped in a row (a bad disk, a stray write) that SQLite's own check does not see;
- a message counter behind the rows (another program edited the file);
- files that must be refused, each left byte-for-byte as it was, with no `-wal`/`-shm` beside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentos_nb import actor, errors, queue, setup
from agentos_nb.store.protocol import ActorRecord
from agentos_nb.store.report import read_store
from agentos_nb.store.sqlite import SCHEMA_VERSION, SqliteStore

pytestmark = pytest.mark.anyio

ROOT = os.geteuid() == 0


class Job(BaseModel):
    n: int
    tag: str


class Answer(BaseModel):
    n: int


def job(n: int) -> Job:
    return Job(n=n, tag=f"marker-{n:03d}")


def worker(*, idle: bool = False):
    """Completes each job with its number; `idle`: stores the jobs but takes none of them."""

    async def run(c):
        if idle:
            await asyncio.Event().wait()
        async for message in c.queue.iter(completable=True):
            await message.complete(Answer(n=message.body.n))

    return actor(queues={"jobs": queue(Job, Answer)}, run=run)


async def started(store, **use):
    registry = setup(use=use, store=store if isinstance(store, SqliteStore) else f"sqlite:///{store}")
    registry.start()
    await registry.ready()
    return registry


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in the folder with the hash of its bytes: what "left as it was" compares."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --- files removed or replaced under a running store --------------------------------------------

GONE = {
    "the database": lambda path: path.unlink(),
    "its -wal": lambda path: Path(f"{path}-wal").unlink(),
    "its -shm": lambda path: Path(f"{path}-shm").unlink(),
    "all three": lambda path: [Path(f"{path}{end}").unlink() for end in ("", "-wal", "-shm")],
    "the database, replaced by a copy": lambda path: os.replace(shutil.copy(path, f"{path}.copy"), path),
}


@pytest.mark.parametrize("what", list(GONE))
async def test_sends_after_the_files_are_removed_or_replaced_all_raise(tmp_path, what):
    """Seen: with the files unlinked, 100 more sends were acknowledged into deleted files, and
    a restart found an empty store. Now each send after the change raises, every time."""
    path = tmp_path / "agents.db"
    registry = await started(path, worker=worker(idle=True))
    try:
        handle = registry.client().worker.get_or_create(["w"])
        for n in range(300):
            assert (await handle.send("jobs", job(n))).status == "enqueued"
        GONE[what](path)
        refused = []
        for n in range(300, 400):
            try:
                await handle.send("jobs", job(n))
            except errors.StoreUnusable as error:
                refused.append(str(error))
        assert len(refused) == 100  # none of them acknowledged
        assert all(str(path) in r and "while the store had it open" in r for r in refused)
    finally:
        await registry.stop(grace=0)


async def test_a_removal_is_noticed_however_recent_the_folders_timestamp(tmp_path):
    """The watch trusts the folder's timestamp only once it is old: a removal within the same
    clock tick as the last change leaves the timestamp as it was (made here with `utime`)."""
    path = tmp_path / "tick.db"
    store = SqliteStore(path)
    await store.open()
    try:
        tick = time.time_ns() + 10**9  # the folder's last change, as its timestamp says: this tick
        os.utime(tmp_path, ns=(tick, tick))
        await store.enqueue("a", "q", b"{}", 0.0)  # a commit: all well
        os.unlink(f"{path}-wal")
        os.utime(tmp_path, ns=(tick, tick))  # the removal, in the same tick: no change to see
        with pytest.raises(errors.StoreUnusable, match=r"tick\.db-wal was removed"):
            await store.enqueue("a", "q", b"{}", 0.0)
    finally:
        await store.close()


async def test_an_old_folder_timestamp_still_shows_a_later_removal(tmp_path):
    """Once trusted (older than any clock tick), the folder's timestamp moves with the removal."""
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.open()
    try:
        old = os.stat(tmp_path).st_mtime_ns - 3600 * 10**9
        os.utime(tmp_path, ns=(old, old))
        for _ in range(2):  # the first notices the change of timestamp, the second trusts it
            await store.enqueue("a", "q", b"{}", 0.0)
        os.unlink(path)
        with pytest.raises(errors.StoreUnusable, match=r"old\.db was removed"):
            await store.enqueue("a", "q", b"{}", 0.0)
        with pytest.raises(errors.StoreUnusable, match=r"old\.db was removed"):  # and every time after
            await store.load_queues("a")
    finally:
        await store.close()


# --- read-only files, folders and filesystems ----------------------------------------------------


async def new_store_file(path: Path, messages: int = 3) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.insert_actor(ActorRecord("a1", "worker", ("w",), 0.0))
    for n in range(messages):
        await store.enqueue("a1", "jobs", job(n).model_dump_json().encode(), 0.0)
    await store.close()


@contextmanager
def immutable(target: Path) -> Iterator[None]:
    """A read-only file or folder that stops root too: `chattr +i` (what an admin does to protect
    a file); `chmod` for anyone else, whom it stops already."""
    if ROOT:
        if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode != 0:
            pytest.skip("this filesystem has no immutable attribute (chattr +i)")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(target)], check=True)
    else:
        mode = target.stat().st_mode
        target.chmod(0o555 if target.is_dir() else 0o444)
        try:
            yield
        finally:
            target.chmod(mode)


async def test_a_read_only_store_file_is_refused_untouched(tmp_path):
    """Seen: `OperationalError: attempt to write a readonly database`, and a -wal and -shm
    created beside the file."""
    path = tmp_path / "agents.db"
    await new_store_file(path)
    before = snapshot(tmp_path)
    with immutable(path), pytest.raises(errors.StoreUnusable, match=r"agents\.db is read-only"):
        await SqliteStore(path).open()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("exists", [True, False])
async def test_a_store_in_a_read_only_folder_is_refused_untouched(tmp_path, exists):
    folder = tmp_path / "shelf"
    folder.mkdir()
    path = folder / "agents.db"
    if exists:
        await new_store_file(path)
    before = snapshot(folder)
    with immutable(folder), pytest.raises(errors.StoreUnusable, match=r"its folder .*shelf is read-only"):
        await SqliteStore(path).open()
    assert snapshot(folder) == before


OPEN_IN_CHILD = """
import asyncio, json, sys
from agentos_nb.store.sqlite import SqliteStore

async def main():
    try:
        await SqliteStore(sys.argv[1]).open()
    except Exception as error:
        return [type(error).__name__, str(error)]
    return ["opened", ""]

print(json.dumps(asyncio.run(main())))
"""


def open_on_read_only_mount(folder: Path, path: Path) -> list[str]:
    """Open a store at `path` in a child process that sees `folder` as a read-only bind mount
    (a private mount namespace: nothing changes for anyone else)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 77; exec "$2" -c "$3" "$4"'
    unshare = ["unshare", "--mount", *([] if ROOT else ["--map-root-user"])]
    child = subprocess.run(
        [*unshare, "sh", "-c", script, "sh", str(folder), sys.executable, OPEN_IN_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if child.returncode != 0 and not child.stdout:
        pytest.skip(f"no read-only bind mount here (unshare --mount): {child.stderr.strip()[-200:]}")
    return json.loads(child.stdout)


@pytest.mark.parametrize("exists", [True, False])
async def test_a_store_on_a_read_only_filesystem_is_refused_untouched(tmp_path, exists):
    folder = tmp_path / "mounted"
    folder.mkdir()
    path = folder / "agents.db"
    if exists:
        await new_store_file(path)
    before = snapshot(folder)
    kind, message = open_on_read_only_mount(folder, path)
    assert kind == "StoreUnusable", message
    assert "read-only" in message
    assert snapshot(folder) == before


# --- flipped bytes in rows -----------------------------------------------------------------------


def flip(path: Path, marker: bytes, offset: int) -> None:
    """Flip one byte `offset` bytes from the one place `marker` is in the file (negative: before
    it) to 0xff, which is never valid UTF-8."""
    data = bytearray(path.read_bytes())
    assert data.count(marker) == 1, marker
    data[data.index(marker) + offset] = 0xFF
    path.write_bytes(bytes(data))
    with sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True) as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # SQLite's check sees nothing


async def stored_jobs(path: Path, count: int) -> list[int]:
    """A store with `count` jobs waiting for one actor; their message ids."""
    registry = await started(path, worker=worker(idle=True))
    handle = registry.client().worker.get_or_create(["w"])
    ids = [(await handle.send("jobs", job(n))).message_id for n in range(count)]
    await registry.stop(grace=0)
    return ids


@pytest.mark.parametrize(
    ("where", "offset", "reason"),
    [
        ("queue name", -3, "damaged in the store: its queue name is not valid UTF-8"),
        ("body", 6, "stored body no longer fits the queue"),
    ],
)
async def test_a_damaged_row_is_dead_lettered_and_its_actor_works_on(tmp_path, where, offset, reason):
    """Seen: bytes flipped in a queue name passed SQLite's check; then every send raised
    `OperationalError: Could not decode to UTF-8 column 'queue'` and the actor never woke."""
    path = tmp_path / "flipped.db"
    ids = await stored_jobs(path, 5)
    body = job(2).model_dump_json().encode()
    flip(path, body, offset)  # the queue name ("jobs") is stored just before the body

    registry = await started(path, worker=worker())
    try:
        handle = registry.client().worker.get(["w"])
        results = [await handle.wait_for(i, timeout=10) for i in ids]
        assert [r.status for r in results] == ["completed"] * 2 + ["dead_lettered"] + ["completed"] * 2
        assert [r.response.n for r in results if r.response] == [0, 1, 3, 4]
        assert reason in results[2].error
        sent = await handle.send("jobs", job(9), wait=True, timeout=10)  # and it takes new work
        assert sent.response.n == 9
    finally:
        await registry.stop()
    [letter] = read_store(path).dead_letters  # `agentos-nb inspect` reads it too
    assert letter.message_id == ids[2]
    assert reason in letter.error


class DeadLettersFail(SqliteStore):
    """A store whose dead-letter writes fail: the damage is such that even quarantine cannot
    be written (an injected fault)."""

    async def dead_letter(self, message_id: int, error: str, **more: object) -> None:
        raise errors.StoreUnusable(f"{self.path}: cannot write the dead letter of {message_id}")


async def test_a_damaged_row_that_cannot_be_dead_lettered_is_reported_and_skipped(tmp_path, caplog):
    path = tmp_path / "stuck.db"
    ids = await stored_jobs(path, 3)
    flip(path, job(1).model_dump_json().encode(), -3)
    caplog.set_level(logging.WARNING, logger="agentos_nb.actors.mailbox")
    registry = await started(DeadLettersFail(path), worker=worker())
    try:
        handle = registry.client().worker.get(["w"])
        for i in (ids[0], ids[2]):
            assert (await handle.wait_for(i, timeout=10)).status == "completed"
        assert (await handle.wait_for(ids[1], timeout=0.2)).status == "timed_out"
    finally:
        await registry.stop()
    [report] = [r for r in caplog.records if f"message {ids[1]} " in r.getMessage()]
    assert "its queue name is not valid UTF-8" in report.getMessage()
    assert "dead-lettering it failed too" in report.getMessage()


# --- the message counter behind the rows ---------------------------------------------------------


async def test_a_counter_rewound_by_another_program_is_a_store_error(tmp_path):
    """Seen: `IntegrityError` from every send once the counter fell behind the stored rows."""
    path = tmp_path / "rewound.db"
    store = SqliteStore(path)
    await store.open()
    try:
        for _ in range(3):
            await store.enqueue("a", "q", b"{}", 0.0)
        with sqlite3.connect(path) as other:
            other.execute("UPDATE counters SET value = 1")
        for _ in range(2):
            with pytest.raises(errors.StoreUnusable, match="message counter is behind its stored messages"):
                await store.enqueue("a", "q", b"{}", 0.0)
        assert len(await store.load_queues("a")) == 3
    finally:
        await store.close()


# --- refused files, left as they were ------------------------------------------------------------


def edit(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    db.close()


def scribble(path: Path, at: int, data: bytes) -> None:
    content = bytearray(path.read_bytes())
    content[at : at + len(data)] = data
    path.write_bytes(bytes(content))


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"my thesis, chapter 1\n" * 100)


def damaged_header(path: Path) -> None:
    scribble(path, 16, b"\x00\x03")  # the page size: no power of two


def damaged_page(path: Path) -> None:
    edit(path, "CREATE TABLE filler (data BLOB)", *["INSERT INTO filler VALUES (randomblob(3000))"] * 30)
    scribble(path, 4096 * 3, b"\x00\xff" * 1000)


def foreign(path: Path) -> None:
    edit(path, "PRAGMA journal_mode = WAL", "CREATE TABLE invoices (id INTEGER)")  # WAL, as ours


def newer(path: Path) -> None:
    edit(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


def counter_behind(path: Path) -> None:
    edit(path, "UPDATE counters SET value = 2")


def counter_missing(path: Path) -> None:
    edit(path, "DELETE FROM counters")


# Each case: made from one of our stores (five messages) or from nothing, and what the refusal says.
REFUSED: dict[str, tuple[bool, Callable[[Path], None], str]] = {
    "not SQLite": (False, not_sqlite, "is not a SQLite database"),
    "a damaged header": (True, damaged_header, "cannot be read|is damaged"),
    "a damaged page": (True, damaged_page, "is damaged"),
    "another program's database": (False, foreign, "SQLite database of something else"),
    "a newer version's store": (True, newer, "written by a newer agentos_nb"),
    "a counter behind the rows": (True, counter_behind, r"message counter \(2\) behind its messages"),
    "no counter": (True, counter_missing, r"message counter \(missing\)"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_refused_file_is_left_exactly_as_it_was(tmp_path, case):
    ours, spoil, message = REFUSED[case]
    path = tmp_path / "agents.db"
    if ours:
        await new_store_file(path, messages=5)
    spoil(path)
    before = snapshot(tmp_path)
    assert before.keys() == {"agents.db"}
    for _ in range(2):  # refused every time, the same way
        with pytest.raises(errors.StoreUnusable, match=message):
            await SqliteStore(path).open()
        assert snapshot(tmp_path) == before  # no byte changed, no -wal or -shm beside it
    with pytest.raises(errors.StoreUnusable, match=message):
        read_store(path)  # nor does `agentos-nb inspect` trust it
    assert snapshot(tmp_path) == before


async def test_a_file_another_process_holds_locked_is_a_clear_error(tmp_path):
    """Another program holds the file in exclusive locking mode, mid-transaction."""
    path = tmp_path / "locked.db"
    await new_store_file(path)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(errors.StoreUnusable, match="locked"):
            await SqliteStore(path).open()
    finally:
        holder.close()


async def test_inspect_leaves_no_files_beside_a_store_at_rest(tmp_path):
    path = tmp_path / "rest.db"
    await new_store_file(path, messages=5)
    before = snapshot(tmp_path)
    assert read_store(path).queues[0].pending == 5
    assert snapshot(tmp_path) == before
