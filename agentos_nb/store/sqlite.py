"""The SQLite store: everything in one file, so a kernel restart loses nothing acknowledged.

- One writer thread owns the connection; the event loop only hands it jobs and awaits their
  futures, so no SQLite call ever blocks the loop.
- Group commit: the writer takes every job that is waiting and runs them in one transaction,
  each inside a savepoint (one job's failure, such as a duplicate actor, undoes only that job).
  A job's future resolves after the COMMIT, so a write that returned is durable: against a
  crashed process with `synchronous=NORMAL` (WAL), and against a lost machine with `FULL`.
- Reads go through the same thread, so they see every write made before them.
- The schema is versioned (`PRAGMA user_version`) and migrated forward on open. A file is
  checked through a connection that cannot write (nor create `-wal`/`-shm` beside it) before
  it is opened for writing: one that is not SQLite, fails SQLite's own check, belongs to
  something else, was written by a newer agentos_nb, has its message counter behind its
  messages, or is read-only is refused with `StoreUnusable` and left exactly as it was.
- A damaged store is never trusted: an SQLite error that is not the caller's fault becomes
  `StoreUnusable` naming the file; a file removed or replaced under the running store stops
  it (`_FileWatch`), so that nothing is acknowledged into a deleted file; a message row that
  cannot be read back comes out with `error` saying why, for the runtime to dead-letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from typing_extensions import override

from agentos_nb.errors import ActorAlreadyExists, MessageNotFound, StoreUnusable
from agentos_nb.store.protocol import ActorRecord, MessageRecord, MessageStatus, ScheduleRecord, Store

T = TypeVar("T")
Synchronous = Literal["NORMAL", "FULL"]

SCHEMA_VERSION = 2
_SQLITE_HEADER = b"SQLite format 3\x00"
_MAX_BATCH = 2000
_PRUNE_EVERY = 1000  # message ids between two prunings of old completed messages

# MIGRATIONS[n] takes a store from schema version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters VALUES ('message', 0);
    CREATE TABLE actors (
        actor_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        created_at REAL NOT NULL,
        state BLOB,
        input BLOB,
        UNIQUE (name, key)
    );
    CREATE TABLE messages (
        message_id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        actor_id TEXT NOT NULL,
        queue TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        response BLOB,
        error TEXT,
        finished_at REAL
    );
    CREATE INDEX messages_by_actor ON messages (actor_id, status, seq);
    CREATE INDEX messages_by_status ON messages (status, message_id);
    CREATE TABLE schedules (
        schedule_id TEXT PRIMARY KEY,
        actor_id TEXT NOT NULL,
        run_at REAL NOT NULL,
        action TEXT NOT NULL,
        args BLOB NOT NULL,
        kwargs BLOB NOT NULL
    );
    CREATE TABLE blobs (
        actor_id TEXT NOT NULL,
        name TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (actor_id, name)
    );
    """,
    # 2: partial indexes, which a message's lease and completion do not move
    """
    DROP INDEX messages_by_actor;
    DROP INDEX messages_by_status;
    CREATE INDEX live_messages ON messages (actor_id, seq) WHERE status IN ('pending', 'leased');
    CREATE INDEX dead_messages ON messages (actor_id, message_id) WHERE status = 'dead';
    CREATE INDEX completed_messages ON messages (message_id) WHERE status = 'completed';
    """,
)
_TABLES = frozenset({"counters", "actors", "messages", "schedules", "blobs"})
_LIVE = "('pending', 'leased')"
_LEASED = "status = 'leased', attempt = attempt + 1"
_STATUSES: frozenset[str] = frozenset(get_args(MessageStatus))
# Text columns come out as bytes, decoded by `_message`: a damaged one then marks its row
# instead of failing the whole query ("Could not decode to UTF-8").
_MESSAGE_COLUMNS = (
    "message_id, seq, CAST(actor_id AS BLOB), CAST(queue AS BLOB), CAST(body AS BLOB), created_at, "
    "attempt, CAST(status AS BLOB), CAST(response AS BLOB), CAST(error AS BLOB)"
)


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


_STOP = object()


class SqliteStore(Store):
    """A store in one SQLite file. `synchronous="FULL"` also survives a power cut, at the cost
    of an fsync per transaction."""

    may_suspend = True
    durable = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        completed_retention: int = 10_000,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._completed_retention = completed_retention
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opening: asyncio.Future[None] | None = None
        self._failure: StoreUnusable | None = None
        """Set when the writer thread died: every call fails at once instead of waiting."""
        self._watch: _FileWatch | None = None  # made and used by the writer thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_number = 0  # the message counter, owned by the writer thread
        self._counted_from: int | None = None
        """The counter as stored when this transaction first took a number; None before."""
        self.transactions = 0
        """Transactions committed so far: with group commit, far fewer than writes."""

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    # --- lifecycle -------------------------------------------------------------------------

    @override
    async def open(self) -> None:
        if self._opening is not None:  # opened, or being opened: once is enough
            await self._opening
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._opening = loop.create_future()
        self._jobs = queue.SimpleQueue()  # each life of the store has its own queue and thread
        self._failure = None
        thread = threading.Thread(
            target=self._serve,
            args=(self._jobs, self._opening),
            name=f"agentos-sqlite {self.path.name}",
            daemon=True,
        )
        self._thread = thread
        thread.start()
        try:
            await self._opening
        except BaseException:
            self._thread = self._opening = None
            raise

    @override
    async def close(self) -> None:
        thread, jobs = self._thread, self._jobs
        if thread is None:
            return
        self._thread = self._opening = None
        jobs.put(_STOP)
        await asyncio.to_thread(thread.join)

    # --- actors ----------------------------------------------------------------------------

    @override
    async def insert_actor(self, record: ActorRecord) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO actors VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.actor_id,
                        record.name,
                        _key(record.key),
                        record.created_at,
                        record.state,
                        record.input,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ActorAlreadyExists(
                    f"actor {record.name!r} with key {list(record.key)!r} already exists"
                ) from None

        await self._run(insert)

    @override
    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        return await self._one_actor("name = ? AND key = ?", (name, _key(key)))

    @override
    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        return await self._one_actor("actor_id = ?", (actor_id,))

    @override
    async def list_actors(self) -> list[ActorRecord]:
        rows = await self._run(lambda db: db.execute(f"SELECT {_ACTOR_COLUMNS} FROM actors").fetchall())
        return [_actor(row) for row in rows]

    @override
    async def save_state(self, actor_id: str, state: bytes) -> None:
        await self._run(
            lambda db: db.execute("UPDATE actors SET state = ? WHERE actor_id = ?", (state, actor_id))
        )

    @override
    async def delete_actor(self, actor_id: str) -> None:
        def delete(db: sqlite3.Connection) -> None:
            for table in ("actors", "messages", "schedules", "blobs"):
                db.execute(f"DELETE FROM {table} WHERE actor_id = ?", (actor_id,))

        await self._run(delete)

    @override
    async def save_blob(self, actor_id: str, name: str, data: bytes) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO blobs SELECT ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM actors WHERE actor_id = ?)",
                (actor_id, name, data, actor_id),
            )
        )

    @override
    async def load_blob(self, actor_id: str, name: str) -> bytes | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT data FROM blobs WHERE actor_id = ? AND name = ?", (actor_id, name)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    # --- queues ----------------------------------------------------------------------------

    @override
    async def enqueue(self, actor_id: str, queue: str, body: bytes, created_at: float) -> MessageRecord:
        def enqueue(db: sqlite3.Connection) -> MessageRecord:
            number = self._next_number(db)
            db.execute(
                "INSERT INTO messages (message_id, seq, actor_id, queue, body, created_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                (number, number, actor_id, queue, body, created_at),
            )
            return MessageRecord(number, number, actor_id, queue, body, created_at)

        return await self._run(enqueue)

    @override
    async def load_queues(self, actor_id: str) -> list[MessageRecord]:
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE actor_id = ? AND status IN {_LIVE} "
                "ORDER BY seq",
                (actor_id,),
            ).fetchall()
        )
        return [_message(row) for row in rows]

    # The writes of delivery and settling hand back the writer's future itself: the runtime
    # awaits it as it is, with no coroutine or task around it.

    @override
    def lease(self, message_id: int) -> asyncio.Future[None]:
        return self._submit(lambda db: _update_live(db, message_id, _LEASED, ()))

    @override
    def release(self, message_id: int) -> asyncio.Future[None]:
        return self._submit(lambda db: _update_live(db, message_id, "status = 'pending'", ()))

    @override
    def complete(
        self, message_id: int, response: bytes | None, *, state: bytes | None = None
    ) -> asyncio.Future[None]:
        def complete(db: sqlite3.Connection) -> None:
            _write_state_of(db, message_id, state)
            self._complete(db, message_id, response)

        return self._submit(complete)

    @override
    def acknowledge_and_lease(
        self, acknowledged: Sequence[int], leased: Sequence[int], *, state: bytes | None = None
    ) -> asyncio.Future[None]:
        acknowledged, leased = tuple(acknowledged), tuple(leased)  # the job runs later, on the writer

        def acknowledge_and_lease(db: sqlite3.Connection) -> None:
            if acknowledged or leased:
                _write_state_of(db, (*acknowledged, *leased)[0], state)
            for message_id in acknowledged:
                self._complete(db, message_id, None)
            for message_id in leased:
                _update_live(db, message_id, _LEASED, ())

        return self._submit(acknowledge_and_lease)

    @override
    def unlease(self, message_ids: Sequence[int]) -> asyncio.Future[None]:
        message_ids = tuple(message_ids)

        def unlease(db: sqlite3.Connection) -> None:
            for message_id in message_ids:
                cursor = db.execute(
                    "UPDATE messages SET status = 'pending', attempt = attempt - 1 "
                    "WHERE message_id = ? AND status = 'leased'",
                    (message_id,),
                )
                if cursor.rowcount == 0:
                    raise MessageNotFound(f"message {message_id} is not leased")

        return self._submit(unlease)

    @override
    def dead_letter(self, message_id: int, error: str, *, state: bytes | None = None) -> asyncio.Future[None]:
        def dead_letter(db: sqlite3.Connection) -> None:
            _write_state_of(db, message_id, state)
            _update_live(db, message_id, "status = 'dead', error = ?, finished_at = ?", (error, time.time()))

        return self._submit(dead_letter)

    @override
    async def replay(self, message_id: int) -> MessageRecord:
        def replay(db: sqlite3.Connection) -> MessageRecord:
            found = db.execute(
                "SELECT 1 FROM messages WHERE message_id = ? AND status = 'dead'", (message_id,)
            ).fetchone()
            if found is None:
                raise MessageNotFound(f"no dead letter with id {message_id}")
            db.execute(
                "UPDATE messages SET status = 'pending', attempt = 0, error = NULL, finished_at = NULL, "
                "seq = ? WHERE message_id = ?",
                (self._next_number(db), message_id),
            )
            return _message(
                db.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE message_id = ?", (message_id,)
                ).fetchone()
            )

        return await self._run(replay)

    @override
    async def get_message(self, message_id: int) -> MessageRecord | None:
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE message_id = ?", (message_id,)
            ).fetchone()
        )
        return None if row is None else _message(row)

    @override
    async def list_dead_letters(self, actor_id: str) -> list[MessageRecord]:
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE actor_id = ? AND status = 'dead' "
                "ORDER BY message_id",
                (actor_id,),
            ).fetchall()
        )
        return [_message(row) for row in rows]

    @override
    async def actors_with_pending(self) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT DISTINCT actor_id FROM messages WHERE status IN {_LIVE}"
            ).fetchall()
        )
        return [row[0] for row in rows]

    # --- schedules -------------------------------------------------------------------------

    @override
    async def add_schedule(self, record: ScheduleRecord) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO schedules VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.schedule_id,
                    record.actor_id,
                    record.run_at,
                    record.action,
                    record.args,
                    record.kwargs,
                ),
            )
        )

    @override
    async def delete_schedule(self, schedule_id: str) -> bool:
        deleted = await self._run(
            lambda db: db.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,)).rowcount
        )
        return deleted > 0

    @override
    async def list_schedules(self) -> list[ScheduleRecord]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT schedule_id, actor_id, run_at, action, args, kwargs FROM schedules"
            ).fetchall()
        )
        return [ScheduleRecord(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5])) for r in rows]

    # --- inside ----------------------------------------------------------------------------

    async def _one_actor(self, where: str, params: Sequence[Any]) -> ActorRecord | None:
        row = await self._run(
            lambda db: db.execute(f"SELECT {_ACTOR_COLUMNS} FROM actors WHERE {where}", params).fetchone()
        )
        return None if row is None else _actor(row)

    def _complete(self, db: sqlite3.Connection, message_id: int, response: bytes | None) -> None:
        _update_live(
            db,
            message_id,
            "status = 'completed', body = X'', response = ?, finished_at = ?",  # `wait_for` needs no body
            (response, time.time()),
        )
        if message_id % _PRUNE_EVERY == 0:  # now and then, in the same transaction
            self._prune_completed(db)

    def _prune_completed(self, db: sqlite3.Connection) -> None:
        """Completed messages are kept for `wait_for`, the newest `completed_retention` of them."""
        db.execute(
            "DELETE FROM messages WHERE status = 'completed' AND message_id < ("
            "SELECT message_id FROM messages WHERE status = 'completed' "
            "ORDER BY message_id DESC LIMIT 1 OFFSET ?)",
            (self._completed_retention - 1,),
        )

    async def _run(self, run: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(run)

    def _submit(self, run: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Hand a job to the writer: its future resolves once the job's transaction committed.
        A failure comes out of the future, never out of this call, so that a caller that
        changed memory ahead of the write can always undo it."""
        if self._failure is not None or self._thread is None or self._loop is None:
            refused: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            refused.set_exception(self._failure or RuntimeError(f"{self!r} is not open"))
            return refused
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put(_Job(run, future))
        if self._failure is not None:  # the writer stopped meanwhile, perhaps without seeing this job
            _settle(future, None, self._failure)
        return future

    # --- the writer thread -------------------------------------------------------------------

    def _serve(self, jobs: queue.SimpleQueue[_Job | object], ready: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            db = _connect(self.path, self.synchronous)
        except BaseException as error:
            loop.call_soon_threadsafe(_settle, ready, None, error)
            return
        try:
            self._prune_completed(db)
            self._watch = _FileWatch(self.path)
        except (OSError, sqlite3.Error) as error:
            db.close()
            loop.call_soon_threadsafe(_settle, ready, None, _unusable(self.path, error))
            return
        loop.call_soon_threadsafe(_settle, ready, None, None)
        batch: list[_Job] = []
        try:
            stopping = False
            while not stopping:
                batch = []
                job = jobs.get()
                while True:
                    if job is _STOP:
                        stopping = True
                        break
                    assert isinstance(job, _Job)
                    batch.append(job)
                    if len(batch) >= _MAX_BATCH:
                        break
                    try:
                        job = jobs.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    outcomes = self._commit(db, batch)
                    batch = []
                    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                        loop.call_soon_threadsafe(_settle_all, outcomes)
        except BaseException as error:  # the writer cannot go on: nobody may wait for it in vain
            self._failure = (
                error
                if isinstance(error, StoreUnusable)  # its files are gone: said once, raised every time
                else StoreUnusable(f"the writer of {self.path} stopped: {type(error).__name__}: {error}")
            )
            left = [*batch]
            with contextlib.suppress(queue.Empty):
                while True:
                    job = jobs.get_nowait()
                    if isinstance(job, _Job):
                        left.append(job)
            failed: list[tuple[_Job, Any, BaseException | None]]
            failed = [(job, None, self._failure) for job in left]
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, failed)
            if error is not self._failure:
                raise
        finally:
            db.close()

    def _commit(
        self, db: sqlite3.Connection, batch: list[_Job]
    ) -> list[tuple[_Job, Any, BaseException | None]]:
        """One transaction for the whole batch. Jobs run bare, which is fastest; only if one
        fails (a duplicate actor, a message already gone) is the batch run again with a
        savepoint around each job, so that the failure undoes that job alone."""
        try:
            db.execute("BEGIN IMMEDIATE")
            self._counted_from = None
            try:
                outcomes: list[tuple[_Job, Any, BaseException | None]] = [
                    (job, job.run(db), None) for job in batch
                ]
            except Exception:
                db.execute("ROLLBACK")
                self._counted_from = None
                db.execute("BEGIN IMMEDIATE")
                outcomes = [_guarded(db, job, self.path) for job in batch]
            if self._counted_from is not None and self._last_number != self._counted_from:
                db.execute("UPDATE counters SET value = ? WHERE name = 'message'", (self._last_number,))
            if self._watch is not None:
                self._watch.check()  # nothing is acknowledged into a file removed or replaced
            db.execute("COMMIT")
            self.transactions += 1
        except sqlite3.Error as error:  # the transaction itself failed (disk full, I/O): all of it did
            if db.in_transaction:
                db.execute("ROLLBACK")
            failure = _unusable(self.path, error)
            outcomes = [(job, None, failure) for job in batch]
        except StoreUnusable:  # the writer stops: every call from now on raises this
            db.execute("ROLLBACK")
            raise
        return outcomes

    def _next_number(self, db: sqlite3.Connection) -> int:
        """Message ids and queue positions come from one counter, as in the memory store. It is
        read when a transaction first needs a number (under the write lock: another store on
        this file may have handed out numbers), counted here (jobs run on the writer thread
        only) and written once, before the commit. Transactions that take none never read it."""
        if self._counted_from is None:
            self._counted_from = self._last_number = _stored_number(db)
        self._last_number += 1
        return self._last_number


def _write_state_of(db: sqlite3.Connection, message_id: int, state: bytes | None) -> None:
    """The state of a message's actor, written first in the job that settles the message: if
    anything after it fails, the job's rollback takes the state back too."""
    if state is not None:
        db.execute(
            "UPDATE actors SET state = ? "
            "WHERE actor_id = (SELECT actor_id FROM messages WHERE message_id = ?)",
            (state, message_id),
        )


def _update_live(db: sqlite3.Connection, message_id: int, assignments: str, params: Sequence[Any]) -> None:
    cursor = db.execute(
        f"UPDATE messages SET {assignments} WHERE message_id = ? AND status IN {_LIVE}", (*params, message_id)
    )
    if cursor.rowcount == 0:
        raise MessageNotFound(f"no pending or leased message with id {message_id}")


def _stored_number(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT value FROM counters WHERE name = 'message'").fetchone()[0])


def _guarded(db: sqlite3.Connection, job: _Job, path: Path) -> tuple[_Job, Any, BaseException | None]:
    db.execute("SAVEPOINT job")
    try:
        value = job.run(db)
    except Exception as error:
        db.execute("ROLLBACK TO job")
        return job, None, _unusable(path, error) if isinstance(error, sqlite3.Error) else error
    finally:
        db.execute("RELEASE job")
    return job, value, None


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled; the write happened all the same
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def _settle_all(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    for job, value, error in outcomes:
        _settle(job.future, value, error)


class _FileWatch:
    """Notices the store's files (the database, its `-wal`, its `-shm`) being removed or
    replaced while it runs. SQLite would go on writing to the deleted files, and everything
    acknowledged from then on would be gone at the next open. Checked before every commit, for
    one `stat` of the folder: the files themselves are looked at only when the folder changed,
    or changed too recently for its timestamp to tell (a change within the same clock tick
    leaves the timestamp as it was)."""

    __slots__ = ("_files", "_folder", "_path", "_trusted")

    def __init__(self, path: Path) -> None:
        self._path = path
        absolute = path.absolute()  # the process may change its directory later
        self._folder = absolute.parent
        files = (absolute, _beside(absolute, "-wal"), _beside(absolute, "-shm"))
        self._files = {file: _identity(file) for file in files if file.exists()}
        self._trusted: tuple[int, int] | None = None
        """The folder's (inode, mtime) when all was last found well, once too old to hide a change."""
        self.check()

    def check(self) -> None:
        """Raises `StoreUnusable` if a file is gone or is another file now."""
        try:
            folder = os.stat(self._folder)
        except OSError:
            raise self._gone(f"its folder {self._folder} was removed") from None
        stamp = (folder.st_ino, folder.st_mtime_ns)
        if stamp == self._trusted:
            return
        for file, identity in self._files.items():
            now = _identity(file)
            if now != identity:
                raise self._gone(f"{file.name} was {'removed' if now is None else 'replaced'}")
        whole_seconds = folder.st_mtime_ns % 1_000_000_000 == 0  # a filesystem that keeps no less
        tick = _COARSE_TICK_NS if whole_seconds else _TICK_NS
        self._trusted = stamp if time.time_ns() - folder.st_mtime_ns > tick else None

    def _gone(self, what: str) -> StoreUnusable:
        return StoreUnusable(
            f"{self._path}: {what} while the store had it open. The store takes no more writes, "
            "since they would be lost; nothing was acknowledged after the change was noticed"
        )


_TICK_NS = 50_000_000  # coarser than the clock of a kernel's file timestamps (a jiffy: 1 to 10 ms)
_COARSE_TICK_NS = 3_000_000_000  # for filesystems that keep whole seconds (ext3, HFS+; FAT: 2 s)


def _identity(file: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None if there is none."""
    try:
        found = os.stat(file)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _unusable(path: Path, error: BaseException) -> StoreUnusable:
    """An SQLite or OS error that is not the caller's fault, naming the file and, where it can
    be told, what is wrong with it."""
    name = getattr(error, "sqlite_errorname", None) or ""
    text = str(error)
    if name.startswith("SQLITE_CONSTRAINT") and "messages." in text:
        what = "its message counter is behind its stored messages (was it changed by another program?)"
    elif name.startswith("SQLITE_READONLY"):
        what = "it has become read-only"
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or text.startswith("Could not decode"):
        what = "it is damaged"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        what = "another process holds it locked"
    elif name.startswith("SQLITE_FULL"):
        what = "its disk is full"
    else:
        what = "SQLite failed"
    return StoreUnusable(f"{path}: {what} ({type(error).__name__}: {text})")


def _connect(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """The store's connection. The file is checked first through a connection that cannot
    write, and opened for writing only once it is known to be a store that can be written: a
    refused file is left as it was, with no `-wal` or `-shm` beside it."""
    try:
        if path.exists():
            check_store_file(path)
        _check_writable(path)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as error:
        raise StoreUnusable(f"{path} could not be opened as a store: {error}") from None
    try:
        db.execute("PRAGMA busy_timeout = 5000")  # a reader such as `agentos-nb inspect` may hold a lock
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            for migration in MIGRATIONS[version:]:
                for statement in migration.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
    except sqlite3.Error as error:
        db.close()
        raise StoreUnusable(f"{path} could not be opened as a store: {error}") from None
    return db


def _check_writable(path: Path) -> None:
    """Refuses a store that could be read but not written (a read-only file or folder, an
    immutable file, a read-only filesystem): SQLite would open it, create `-wal`/`-shm` beside
    it, and fail at its first write with "attempt to write a readonly database"."""
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreUnusable(
            f"{path} is read-only (its permissions, an immutable attribute or a read-only "
            "filesystem); a store must be written to. It was left untouched"
        )
    folder = path.parent
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise StoreUnusable(
            f"{path} cannot be a store: its folder {folder} is read-only, and SQLite keeps its "
            "-wal and -shm files beside the store. It was left untouched"
        )


def check_store_file(path: Path) -> None:
    """Refuses a file that is not an agentos_nb store this version can read, reading only."""
    with path.open("rb") as file:
        header = file.read(len(_SQLITE_HEADER))
    if header and header != _SQLITE_HEADER:
        raise StoreUnusable(f"{path} is not a SQLite database; it was left untouched")
    if not header:
        return  # an empty file: SQLite makes a new database in it
    try:
        db = _connect_read_only(path)
    except sqlite3.Error as error:
        raise StoreUnusable(f"{path} cannot be read: {error}; it was left untouched") from None
    try:
        refusal = _refusal(db)
    except sqlite3.Error as error:
        raise StoreUnusable(f"{path} is damaged ({error}); it was left untouched") from None
    finally:
        db.close()
    if refusal is not None:
        raise StoreUnusable(f"{path} {refusal}")


def _refusal(db: sqlite3.Connection) -> str | None:
    """Why a store file cannot be used, read without writing; None if it can be."""
    check = db.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        return f"is damaged (SQLite's check says: {check}); it was left untouched"
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version > SCHEMA_VERSION:
        return (
            f"was written by a newer agentos_nb (store schema {version}; this version reads "
            f"up to {SCHEMA_VERSION}); upgrade agentos_nb to open it"
        )
    if version == 0 and tables:
        listed = ", ".join(sorted(tables))
        return f"is a SQLite database of something else (tables: {listed}); it was left untouched"
    if version == 0:
        return None  # no store yet: opening it makes one
    if not tables >= _TABLES:
        return "lacks tables of an agentos_nb store; it was left untouched"
    counter = db.execute("SELECT value FROM counters WHERE name = 'message'").fetchone()
    highest = db.execute(
        "SELECT max(ifnull(max(message_id), 0), ifnull(max(seq), 0)) FROM messages"
    ).fetchone()[0]
    if counter is None or not isinstance(counter[0], int) or counter[0] < highest:
        return (
            f"has its message counter ({'missing' if counter is None else counter[0]}) behind its "
            f"messages (numbered up to {highest}): new messages would collide with stored ones. "
            "It was left untouched"
        )
    return None


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write. With neither `-wal` nor `-shm` beside the file (no store
    has it open, and none was killed with it open) it reads the file as immutable: a read-only
    connection to a WAL database would otherwise create both, and leave them behind."""
    uri = path.resolve().as_uri()
    if _beside(path, "-wal").exists() or _beside(path, "-shm").exists():
        return sqlite3.connect(f"{uri}?mode=ro", uri=True)
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def _beside(path: Path, suffix: str) -> Path:
    """One of SQLite's files beside a database: `-wal`, `-shm`."""
    return path.with_name(path.name + suffix)


# --- reading a store file without writing a byte (`agentos-nb inspect`) ---------------------------


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """How many messages of one actor's queue are in each state (`in_flight`: leased)."""

    actor_id: str
    queue: str
    pending: int
    in_flight: int
    completed: int
    dead: int


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the store file `path` that cannot write, refusing what `SqliteStore`
    refuses; safe beside a running registry (WAL lets readers in)."""
    if not path.is_file():
        raise StoreUnusable(f"{path} does not exist")
    check_store_file(path)
    db = _connect_read_only(path)
    db.text_factory = _readable  # a report shows a damaged row as best it can, not a decoding error
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        yield db
    except sqlite3.Error as error:
        raise StoreUnusable(f"{path} could not be read: {error}") from None
    finally:
        db.close()


def _readable(data: bytes) -> str:
    return data.decode(errors="replace")


def schema_version(db: sqlite3.Connection) -> int:
    """0 for a file that holds no store yet."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def stored_actors(db: sqlite3.Connection) -> list[ActorRecord]:
    """Every actor, the oldest first."""
    rows = db.execute(f"SELECT {_ACTOR_COLUMNS} FROM actors ORDER BY created_at")
    return [_actor(row) for row in rows]


def blob_sizes(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """The size in bytes of every blob, by actor id and then name."""
    sizes: dict[str, dict[str, int]] = {}
    for actor_id, name, size in db.execute("SELECT actor_id, name, length(data) FROM blobs"):
        sizes.setdefault(actor_id, {})[name] = size
    return sizes


def blobs_named(db: sqlite3.Connection, name: str) -> dict[str, bytes]:
    """Every actor's blob of that name, by actor id."""
    rows = db.execute("SELECT actor_id, data FROM blobs WHERE name = ?", (name,))
    return {actor_id: bytes(data) for actor_id, data in rows}


def queue_counts(db: sqlite3.Connection) -> list[QueueCounts]:
    """Every queue that holds messages, by actor id and then queue name."""
    rows = db.execute(
        "SELECT actor_id, queue, sum(status = 'pending'), sum(status = 'leased'), "
        "sum(status = 'completed'), sum(status = 'dead') FROM messages GROUP BY actor_id, queue "
        "ORDER BY actor_id, queue"
    )
    return [QueueCounts(*row) for row in rows]


def all_dead_letters(db: sqlite3.Connection) -> list[MessageRecord]:
    """The dead letters of every actor, the oldest first."""
    rows = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE status = 'dead' ORDER BY message_id")
    return [_message(row) for row in rows]


_ACTOR_COLUMNS = "actor_id, name, key, created_at, state, input"


def _key(key: tuple[str, ...]) -> str:
    return json.dumps(list(key))


def _actor(row: Sequence[Any]) -> ActorRecord:
    return ActorRecord(
        actor_id=row[0],
        name=row[1],
        key=tuple(json.loads(row[2])),
        created_at=row[3],
        state=None if row[4] is None else bytes(row[4]),
        input=None if row[5] is None else bytes(row[5]),
    )


def _message(row: Sequence[Any]) -> MessageRecord:
    """A message row (`_MESSAGE_COLUMNS`) as a record. A row damaged on disk (bytes flipped in
    its text, a value of the wrong type) still comes out, with `error` saying what is wrong:
    the runtime dead-letters it instead of failing every read of its actor's queues."""
    damage: list[str] = []
    actor_id = _text(row[2], "actor id", damage)
    queue = _text(row[3], "queue name", damage)
    status = _text(row[7], "status", damage)
    if status not in _STATUSES:
        damage.append(f"its status {status!r} is none the store writes")
    error = None if row[9] is None else _text(row[9], "error", damage)
    seq, attempt, created_at = row[1], row[6], row[5]
    if not isinstance(seq, int) or not isinstance(attempt, int) or not isinstance(created_at, int | float):
        damage.append(f"seq, attempt or time of the wrong type ({seq!r}, {attempt!r}, {created_at!r})")
        seq, attempt, created_at = row[0], 0, 0.0
    if damage:
        found = "damaged in the store: " + "; ".join(damage)
        error = found if error is None else f"{error} ({found})"
    return MessageRecord(
        message_id=row[0],
        seq=seq,
        actor_id=actor_id,
        queue=queue,
        body=b"" if row[4] is None else row[4],
        created_at=created_at,
        attempt=attempt,
        status=cast(MessageStatus, status),
        response=row[8],
        error=error,
    )


def _text(data: bytes | None, what: str, damage: list[str]) -> str:
    """A text column read as bytes; invalid UTF-8 (a flipped byte) is noted in `damage`."""
    if data is None:
        damage.append(f"its {what} is missing")
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        damage.append(f"its {what} is not valid UTF-8 ({data[:40]!r})")
        return data.decode(errors="replace")
