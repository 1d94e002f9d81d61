"""Durable enqueue and claim plus complete of agentos_nb's SQLite store, against two SQLite
queue libraries, persist-queue's `SQLiteAckQueue` and litequeue, with `synchronous=NORMAL`
and again with `FULL`.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/store.py            # full run, about a minute on 2 cores
    /work/venv/bin/python bench/store.py --quick    # smoke run with small sizes
    /work/venv/bin/python bench/store.py --profile  # also cProfile ours (event loop and writer thread)

Two levels of ours, each against the same peer figures (see bench/README.md for why the peers
are set as they are):

- store: `SqliteStore` alone. Durable enqueue is `enqueue`; claim plus complete is `lease` then
  `complete` of a stored message. Issued from 100 asyncio tasks at once (what group commit is
  for), and one at a time (the latency of a single write).
- runtime: `setup(..., store="sqlite:////abs/path.db")`. Durable enqueue is a burst of
  `h.send("tasks", body)` issued at once, and one at a time; claim plus complete is consumer
  actors draining with `async for m in c.queue.iter("tasks", completable=True): await m.complete()`,
  one actor, and 10 actors at once; and one actor draining plain messages with
  `async for m in c.queue.iter("tasks")`, each acknowledged as it asks for the next (its clock
  stops once the last acknowledgement is committed).
- peers: `SQLiteAckQueue.put`, then `get` + `ack`; `LiteQueue.put`, then `pop` + `done`. Both are
  synchronous libraries, so they run one operation after another on this thread (their fastest
  way: threads would only queue up on their connection lock, and each operation still commits
  on its own).

Every timed run uses a fresh database file in a fresh temporary directory; the figure is the
median of `--repeat` runs, ours and the peers interleaved. The burst row counts the store's
transactions around 1,000 sends issued at once.

The last rows are memory, not speed: what 10,000 completed messages of 60 KB leave behind, on
the memory store and on SQLite, against the memory store keeping their bodies (as it did before
issue 15), each in fresh child processes (`--completed-only` runs just these).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import queue
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import litequeue
import psutil
from persistqueue import SQLiteAckQueue
from pydantic import BaseModel
from report import Row, print_profile, print_rows

import agentos_nb as aos
from agentos_nb.store.memory import MemoryStore
from agentos_nb.store.sqlite import SqliteStore, Synchronous

Level = Literal["NORMAL", "FULL", "memory"]  # a runtime on SQLite at that level, or on the memory store
CONCURRENCY = 100  # asyncio tasks issuing store calls at once
CONSUMERS = 10  # consumer actors draining at once
BURST = 1000  # sends issued at once for the transaction count
BURST_MAX_TRANSACTIONS = 20
TARGET = 3.0  # x persist-queue, with NORMAL
SINGLE_CONSUMER_TARGET = 1.0  # x persist-queue's get+ack, one plain consumer through the runtime, NORMAL


class Task(BaseModel):
    prompt: str


def make_bodies(n: int) -> list[Task]:
    """Bodies of about 60 bytes of JSON, the same text for ours and both peers."""
    return [Task(prompt=f"task {i:06d}: review the diff and report back") for i in range(n)]


COLLECT = True  # off under the profiler, where a collection would only blur the picture


def collect() -> None:
    """A full collection before every timed run, so that no run pays for another's garbage."""
    if COLLECT:
        gc.collect()


@contextmanager
def fresh_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="bench-store-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- peers -------------------------------------------------------------------------------------------


def open_persist_queue(path: str, synchronous: Synchronous) -> SQLiteAckQueue:
    """One connection (multithreading=False), a commit per put, get and ack (auto_commit=True is
    the only mode the ack queue has). It sets WAL and leaves `synchronous` at SQLite's default
    (FULL); we set it on its connection, as a user who wants NORMAL would."""
    queue = SQLiteAckQueue(path, auto_commit=True, multithreading=False)
    queue._putter.execute(f"PRAGMA synchronous = {synchronous}")
    assert queue._getter is queue._putter
    return queue


def open_litequeue(path: str, synchronous: Synchronous) -> litequeue.LiteQueue:
    """Autocommit: a commit per put and done, `pop` in its own IMMEDIATE transaction. It sets WAL
    and `synchronous=NORMAL` itself and has no option for FULL; we set it on its connection."""
    queue = litequeue.LiteQueue(os.path.join(path, "queue.db"))
    queue.conn.execute(f"PRAGMA synchronous = {synchronous}")
    return queue


def peer_check(db: sqlite3.Connection, synchronous: Synchronous) -> None:
    journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    level = db.execute("PRAGMA synchronous").fetchone()[0]
    assert journal == "wal", journal
    assert level == {"NORMAL": 1, "FULL": 2}[synchronous], level


def persist_queue_run(data: list[bytes], synchronous: Synchronous) -> tuple[float, float]:
    """Seconds for `put` of every body, then for `get` + `ack` of every one."""
    with fresh_dir() as path:
        queue = open_persist_queue(path, synchronous)
        peer_check(queue._putter, synchronous)
        collect()
        start = time.perf_counter()
        for body in data:
            queue.put(body)
        put = time.perf_counter() - start
        collect()
        start = time.perf_counter()
        for _ in data:
            item = queue.get(block=False, raw=True)
            queue.ack(id=item["pqid"])
        claim = time.perf_counter() - start
        assert queue.acked_count() == len(data)
        assert item["data"] == data[-1]
        queue.close()
    return put, claim


def litequeue_run(data: list[str], synchronous: Synchronous) -> tuple[float, float]:
    """Seconds for `put` of every body, then for `pop` + `done` of every one."""
    with fresh_dir() as path:
        queue = open_litequeue(path, synchronous)
        peer_check(queue.conn, synchronous)
        collect()
        start = time.perf_counter()
        for body in data:
            queue.put(body)
        put = time.perf_counter() - start
        collect()
        start = time.perf_counter()
        for _ in data:
            message = queue.pop()
            queue.done(message.message_id)
        claim = time.perf_counter() - start
        assert queue.qsize() == 0
        assert message.data == data[-1]
        queue.close()
    return put, claim


# --- ours, the store alone ---------------------------------------------------------------------------


class ProfiledStore(SqliteStore):
    """The store with a profiler in its writer thread too: cProfile sees only its own thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profiler = cProfile.Profile()
        self.profiling = threading.Event()

    def _commit(self, db: sqlite3.Connection, batch: list[Any]) -> list[Any]:
        if not self.profiling.is_set():
            return super()._commit(db, batch)
        self.profiler.enable()
        try:
            return super()._commit(db, batch)
        finally:
            self.profiler.disable()


async def fan_out(items: list[Any], work: Callable[[Any], Awaitable[None]], tasks: int) -> None:
    """Run `work` over `items` from `tasks` asyncio tasks sharing one iterator."""
    shared = iter(items)

    async def worker() -> None:
        for item in shared:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(tasks)))


async def store_run(
    data: list[bytes], synchronous: Synchronous, tasks: int, store: SqliteStore | None = None
) -> tuple[float, float, int, int]:
    """Seconds for `enqueue` of every body, then for `lease` + `complete` of every one, issued
    from `tasks` asyncio tasks; and the transactions each phase took."""
    with fresh_dir() as path:
        if store is None:
            store = SqliteStore(os.path.join(path, "store.db"), synchronous=synchronous)
        else:
            store.path = type(store.path)(os.path.join(path, "store.db"))
        await store.open()
        ids: list[int] = []

        async def enqueue(body: bytes) -> None:
            ids.append((await store.enqueue("bench-actor", "tasks", body, 0.0)).message_id)

        async def claim(message_id: int) -> None:
            await store.lease(message_id)
            await store.complete(message_id, None)

        collect()
        before = store.transactions
        start = time.perf_counter()
        await fan_out(data, enqueue, tasks)
        put = time.perf_counter() - start
        put_tx = store.transactions - before
        ids.sort()
        collect()
        before = store.transactions
        start = time.perf_counter()
        await fan_out(ids, claim, tasks)
        claimed = time.perf_counter() - start
        claim_tx = store.transactions - before
        assert await store.load_queues("bench-actor") == []
        await store.close()
    return put, claimed, put_tx, claim_tx


# --- ours, the full runtime --------------------------------------------------------------------------


class Drain:
    """Holds the consumers back until the clock starts, then says when all messages are done."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.count = 0
        self.target = -1
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def open(self, target: int) -> asyncio.Future[None]:
        self.target = target
        self.gate.set()
        return self.done

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            self.done.set_result(None)


DRAIN: Drain | None = None


async def drain_tasks(c: aos.ActorContext) -> None:
    assert DRAIN is not None
    drain = DRAIN
    await drain.gate.wait()
    async for message in c.queue.iter("tasks", completable=True):
        await message.complete()
        drain.hit()


async def drain_plain(c: aos.ActorContext) -> None:
    """Plain messages: each is acknowledged when the loop asks for the next one."""
    assert DRAIN is not None
    drain = DRAIN
    await drain.gate.wait()
    async for _message in c.queue.iter("tasks"):
        drain.hit()


def ready(c: aos.ActorContext) -> bool:
    """An action, to wake the actor (and store it) before any timing starts."""
    return True


def consumer(max_queue_size: int, run: Callable[[aos.ActorContext], Awaitable[None]]) -> aos.ActorDefinition:
    return aos.actor(
        queues={"tasks": aos.queue(Task)},
        actions={"ready": ready},
        run=run,
        options={"max_queue_size": max_queue_size, "sleep_timeout": 600},
    )


def store_url(path: str, level: Level) -> str:
    if level == "memory":
        return "memory"
    return f"sqlite:///{os.path.abspath(path)}" + ("?synchronous=FULL" if level == "FULL" else "")


def transactions(registry: aos.Registry) -> int:
    """The store's commits so far; the memory store has none."""
    return int(getattr(registry.store, "transactions", 0))


@dataclass
class RuntimeResult:
    burst: float = 0.0  # seconds for len(bodies) sends issued at once
    burst_tx: int = 0
    sequential: float = 0.0  # seconds for len(bodies) sends one after another
    drain_one: float = 0.0  # one consumer actor completing len(bodies) messages
    drain_plain: float = 0.0  # one consumer actor taking len(bodies) plain messages
    drain_many: float = 0.0  # CONSUMERS actors completing len(bodies) messages between them
    drain_one_tx: int = 0
    drain_plain_tx: int = 0
    drain_many_tx: int = 0


async def runtime_registry(
    path: str, level: Level, actors: int, size: int, store: SqliteStore | None, *, plain: bool = False
) -> tuple[aos.Registry, list[aos.ActorHandle]]:
    """A registry of consumer actors, awake, their run loops held at the gate; `plain`: they take
    plain messages instead of completing completable ones."""
    global DRAIN
    DRAIN = Drain()
    if store is not None:  # the profiled store, reused: a fresh file each time all the same
        store.path = type(store.path)(path)
    registry = aos.setup(
        use={"consumer": consumer(size, drain_plain if plain else drain_tasks)},
        store=store if store is not None else store_url(path, level),
        name="bench-store",
    )
    await registry.__aenter__()
    client = registry.client()
    handles = [client.consumer.get_or_create(["bench", str(i)]) for i in range(actors)]
    for handle in handles:
        assert await handle.ready()
    return registry, handles


async def send_burst(handle: aos.ActorHandle, bodies: list[Task]) -> int:
    """The sends issued at once; returns the id of the last message."""
    results = await asyncio.gather(*(handle.send("tasks", body) for body in bodies))
    assert all(r.status == "enqueued" for r in results)
    return results[-1].message_id


async def drain(
    registry: aos.Registry, count: int, settled: Callable[[], Awaitable[Any]] | None = None
) -> tuple[float, int]:
    """Open the gate and time the consumers until `count` messages are completed, and then
    until `settled()` returns."""
    assert DRAIN is not None
    collect()
    before = transactions(registry)
    start = time.perf_counter()
    await DRAIN.open(count)
    if settled is not None:
        await settled()
    elapsed = time.perf_counter() - start
    return elapsed, transactions(registry) - before


async def runtime_run(
    bodies: list[Task], level: Level, profiled: dict[str, ProfiledStore] | None = None
) -> RuntimeResult:
    """The four runtime figures, each on a registry of its own on a fresh file."""
    n = len(bodies)
    result = RuntimeResult()
    profiled = profiled if profiled is not None else {}

    # A burst of sends to one actor, then one consumer drains them.
    with fresh_dir() as path:
        registry, (handle,) = await runtime_registry(
            os.path.join(path, "store.db"), level, 1, n, profiled.get("burst")
        )
        collect()
        before = transactions(registry)
        start = time.perf_counter()
        await send_burst(handle, bodies)
        result.burst = time.perf_counter() - start
        result.burst_tx = transactions(registry) - before
        result.drain_one, result.drain_one_tx = await drain(registry, n)
        await registry.stop(grace=0)

    # One consumer of plain messages: it acknowledges each as it asks for the next. The clock
    # stops once the last acknowledgement is durable (`wait_for` the last message: the store
    # lands writes in order), so it counts n leases and n acknowledgements, as the peers' do.
    with fresh_dir() as path:
        registry, (handle,) = await runtime_registry(
            os.path.join(path, "store.db"), level, 1, n, profiled.get("plain"), plain=True
        )
        last = await send_burst(handle, bodies)
        result.drain_plain, result.drain_plain_tx = await drain(
            registry, n, lambda: handle.wait_for(last, timeout=60)
        )
        await registry.stop(grace=0)

    # Sends one after another.
    with fresh_dir() as path:
        registry, (handle,) = await runtime_registry(
            os.path.join(path, "store.db"), level, 1, n, profiled.get("sequential")
        )
        collect()
        start = time.perf_counter()
        for body in bodies:
            await handle.send("tasks", body)
        result.sequential = time.perf_counter() - start
        await registry.stop(grace=0)

    # CONSUMERS actors drain n messages between them.
    with fresh_dir() as path:
        registry, handles = await runtime_registry(
            os.path.join(path, "store.db"), level, CONSUMERS, n, profiled.get("drain")
        )
        share = n // len(handles)
        for i, handle in enumerate(handles):
            await send_burst(handle, bodies[i * share : (i + 1) * share])
        result.drain_many, result.drain_many_tx = await drain(registry, share * len(handles))
        result.drain_many *= n / (share * len(handles))
        await registry.stop(grace=0)
    return result


async def burst_transactions(synchronous: Synchronous) -> int:
    """Transactions the store commits for BURST sends issued at once to one awake actor."""
    bodies = make_bodies(BURST)
    with fresh_dir() as path:
        registry, (handle,) = await runtime_registry(
            os.path.join(path, "store.db"), synchronous, 1, BURST, None
        )
        before = transactions(registry)
        await send_burst(handle, bodies)
        committed = transactions(registry) - before
        await registry.stop(grace=0)
    return committed


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """Seconds of every timed run, per figure, for one synchronous level."""

    times: dict[str, list[float]] = field(default_factory=dict)
    transactions: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds)

    def count(self, name: str, transactions: int) -> None:
        self.transactions.setdefault(name, []).append(transactions)

    def rate(self, name: str, ops: int) -> float:
        return ops / statistics.median(self.times[name])


def add_runtime(figures: Figures, prefix: str, runtime: RuntimeResult) -> None:
    figures.add(f"{prefix}_burst", runtime.burst)
    figures.add(f"{prefix}_seq", runtime.sequential)
    figures.add(f"{prefix}_drain_one", runtime.drain_one)
    figures.add(f"{prefix}_drain_plain", runtime.drain_plain)
    figures.add(f"{prefix}_drain_many", runtime.drain_many)
    figures.count(f"{prefix}_burst", runtime.burst_tx)
    figures.count(f"{prefix}_drain_one", runtime.drain_one_tx)
    figures.count(f"{prefix}_drain_plain", runtime.drain_plain_tx)
    figures.count(f"{prefix}_drain_many", runtime.drain_many_tx)


async def measure(n: int, repeat: int, synchronous: Synchronous) -> Figures:
    """Every figure of one level, `repeat` times, ours and the peers taking turns. With NORMAL,
    the runtime on the memory store too: what the runtime costs with no store to wait for."""
    bodies = make_bodies(n)
    data = [body.model_dump_json().encode() for body in bodies]
    text = [d.decode() for d in data]
    figures = Figures()
    # Warm-up, untimed: imports, statement caches, code paths.
    await store_run(data[:200], synchronous, CONCURRENCY)
    await runtime_run(bodies[:200], synchronous)
    persist_queue_run(data[:200], synchronous)
    litequeue_run(text[:200], synchronous)
    for _ in range(repeat):
        put, claim = persist_queue_run(data, synchronous)
        figures.add("pq_put", put)
        figures.add("pq_claim", claim)
        put, claim = litequeue_run(text, synchronous)
        figures.add("lq_put", put)
        figures.add("lq_claim", claim)
        put, claim, put_tx, claim_tx = await store_run(data, synchronous, CONCURRENCY)
        figures.add("store_put", put)
        figures.add("store_claim", claim)
        figures.count("store_put", put_tx)
        figures.count("store_claim", claim_tx)
        put, claim, _, _ = await store_run(data, synchronous, 1)
        figures.add("store_put_seq", put)
        figures.add("store_claim_seq", claim)
        add_runtime(figures, "rt", await runtime_run(bodies, synchronous))
        if synchronous == "NORMAL":
            add_runtime(figures, "mem", await runtime_run(bodies, "memory"))
    return figures


def rate_rows(figures: Figures, n: int, synchronous: Synchronous) -> list[Row]:
    pq_put, pq_claim = figures.rate("pq_put", n), figures.rate("pq_claim", n)
    lq_put, lq_claim = figures.rate("lq_put", n), figures.rate("lq_claim", n)
    target = TARGET if synchronous == "NORMAL" else 0.0

    def tx(name: str) -> str:
        counts = figures.transactions.get(name)
        return f", {statistics.median(counts):.0f} tx" if counts else ""

    def pair(figure: str, name: str, pq: float, lq: float, gated: bool, goal_x: float = 0.0) -> list[Row]:
        ours = figures.rate(name, n)
        goal = (goal_x or target) if gated and target else 0.0  # targets are for NORMAL
        return [
            Row(
                f"{synchronous} {figure}",
                f"{ours:,.0f}/s{tx(name)}",
                f"{pq:,.0f}/s persist-queue",
                f"{ours / pq:.2f}x",
                f">= {goal:g}x persist-queue" if goal else "(info)",
                ours / pq >= goal if goal else None,
            ),
            Row("", "", f"{lq:,.0f}/s litequeue", f"{ours / lq:.2f}x", "(info)", None),
        ]

    rows = [
        *pair(f"[store] enqueue, {CONCURRENCY} tasks", "store_put", pq_put, lq_put, True),
        *pair("[store] enqueue, one at a time", "store_put_seq", pq_put, lq_put, False),
        *pair(f"[store] lease+complete, {CONCURRENCY} tasks", "store_claim", pq_claim, lq_claim, True),
        *pair("[store] lease+complete, one at a time", "store_claim_seq", pq_claim, lq_claim, False),
        *pair(f"[runtime] send, burst of {n:,}", "rt_burst", pq_put, lq_put, True),
        *pair("[runtime] send, one at a time", "rt_seq", pq_put, lq_put, False),
        *pair("[runtime] iter+complete, 1 actor", "rt_drain_one", pq_claim, lq_claim, True),
        *pair(
            "[runtime] iter (plain), 1 actor",
            "rt_drain_plain",
            pq_claim,
            lq_claim,
            True,
            SINGLE_CONSUMER_TARGET,
        ),
        *pair(f"[runtime] iter+complete, {CONSUMERS} actors", "rt_drain_many", pq_claim, lq_claim, True),
    ]
    if "mem_burst" in figures.times:
        for figure, name in (
            (f"send, burst of {n:,}", "burst"),
            ("send, one at a time", "seq"),
            ("iter+complete, 1 actor", "drain_one"),
            ("iter (plain), 1 actor", "drain_plain"),
            (f"iter+complete, {CONSUMERS} actors", "drain_many"),
        ):
            memory, sqlite = figures.rate(f"mem_{name}", n), figures.rate(f"rt_{name}", n)
            rows.append(
                Row(
                    f"memory [runtime] {figure}",
                    f"{memory:,.0f}/s",
                    f"{sqlite:,.0f}/s on SQLite NORMAL",
                    f"{sqlite / memory:.2f}x",
                    "(info: SQLite/memory)",
                    None,
                )
            )
    return rows


async def profile_ours(n: int, synchronous: Synchronous) -> None:
    """cProfile ours on both threads, the event loop's (this one) and the store's writer:
    the store at 100 tasks, then the four runtime figures."""
    global COLLECT
    COLLECT = False
    bodies = make_bodies(n)
    data = [body.model_dump_json().encode() for body in bodies]
    await store_run(data[:200], synchronous, CONCURRENCY)  # warm-up
    cases: list[tuple[str, Callable[[ProfiledStore], Awaitable[Any]]]] = [
        (
            f"[store] enqueue then lease+complete, {CONCURRENCY} tasks",
            lambda store: store_run(data, synchronous, CONCURRENCY, store),
        ),
        (
            f"[runtime] burst, 1-actor drain, one-at-a-time sends, {CONSUMERS}-actor drain",
            lambda store: runtime_run(
                bodies, synchronous, dict.fromkeys(("burst", "plain", "sequential", "drain"), store)
            ),
        ),
    ]
    for name, run in cases:
        store = ProfiledStore("unused.db", synchronous=synchronous)
        store.profiling.set()
        loop_profiler = cProfile.Profile()
        start = time.perf_counter()
        loop_profiler.enable()
        await run(store)
        loop_profiler.disable()
        print(f"\n=== {name}, {synchronous}: {time.perf_counter() - start:.2f} s of wall time ===")
        print_profile("the event loop thread", loop_profiler, 16)
        print_profile("the store's writer thread (its _commit only)", store.profiler, 10)
    COLLECT = True


_INSERT = (
    "INSERT INTO messages (message_id, seq, actor_id, queue, body, created_at, status) "
    "VALUES (?, ?, ?, ?, ?, ?, 'pending')"
)
_COUNTER = "UPDATE counters SET value = value + 1 WHERE name = 'message' RETURNING value"


def _enqueue_now(db: sqlite3.Connection, body: bytes, _: int) -> None:
    """What `SqliteStore.enqueue` runs for one job inside the writer's batch."""
    db.execute("SAVEPOINT job")
    number = db.execute(_COUNTER).fetchone()[0]
    db.execute(_INSERT, (number, number, "a", "tasks", body, 0.0))
    db.execute("RELEASE job")


def _enqueue_no_savepoint(db: sqlite3.Connection, body: bytes, _: int) -> None:
    number = db.execute(_COUNTER).fetchone()[0]
    db.execute(_INSERT, (number, number, "a", "tasks", body, 0.0))


def _enqueue_insert_only(db: sqlite3.Connection, body: bytes, number: int) -> None:
    """The id handed out by the writer from a counter kept in memory."""
    db.execute(_INSERT, (number, number, "a", "tasks", body, 0.0))


async def thread_hop(n: int) -> float:
    """Seconds for one bare hop from the event loop to a thread and back, as the store makes
    one: a SimpleQueue there, `call_soon_threadsafe` back."""
    loop = asyncio.get_running_loop()
    jobs: queue.SimpleQueue[asyncio.Future[None] | None] = queue.SimpleQueue()

    def serve() -> None:
        while (future := jobs.get()) is not None:
            loop.call_soon_threadsafe(future.set_result, None)

    thread = threading.Thread(target=serve)
    thread.start()
    start = time.perf_counter()
    for _ in range(n):
        future = loop.create_future()
        jobs.put(future)
        await future
    elapsed = time.perf_counter() - start
    jobs.put(None)
    thread.join()
    return elapsed / n


def inline_enqueues(
    n: int, batch: int, job: Callable[[sqlite3.Connection, bytes, int], None], synchronous: Synchronous
) -> float:
    """Seconds per job for the store's enqueue statements run on this thread, `batch` jobs per
    transaction, on the store's own schema and pragmas."""
    from agentos_nb.store.sqlite import _connect

    body = make_bodies(1)[0].model_dump_json().encode()
    with fresh_dir() as path:
        db = _connect(Path(path) / "store.db", synchronous)
        start = time.perf_counter()
        for first in range(0, n, batch):
            db.execute("BEGIN IMMEDIATE")
            for number in range(first + 1, first + batch + 1):
                job(db, body, number)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    return elapsed / n


async def anatomy(n: int, repeat: int, synchronous: Synchronous) -> None:
    """Where one durable write's time goes, outside the store: a bare thread hop, and the
    store's enqueue statements inline, one job and 100 per transaction, as they are and with
    two changes. Medians of `repeat` runs, the variants interleaved."""
    variants: dict[str, Callable[[sqlite3.Connection, bytes, int], None]] = {
        "enqueue as now: SAVEPOINT, counter UPDATE, INSERT, RELEASE": _enqueue_now,
        "the same without the SAVEPOINT": _enqueue_no_savepoint,
        "INSERT only (ids from a counter kept in memory)": _enqueue_insert_only,
    }
    times: dict[str, list[float]] = {}
    inline_enqueues(n, 1, _enqueue_now, synchronous)  # warm-up: the page cache, the statement cache
    for _ in range(repeat):
        times.setdefault("hop", []).append(await thread_hop(n))
        for batch in (1, CONCURRENCY):
            for label, job in variants.items():
                seconds = inline_enqueues(n, batch, job, synchronous)
                times.setdefault(f"{label}, {batch} per transaction", []).append(seconds)
    print(f"\n--- one write, taken apart ({synchronous}, {n:,} jobs, median of {repeat}, us per job) ---")
    for label, seconds in times.items():
        if label == "hop":
            label = "event loop -> thread -> event loop, no SQL (SimpleQueue, call_soon_threadsafe)"
        print(f"{1e6 * statistics.median(seconds):7.1f}  {label}")


def burst_row(synchronous: Synchronous, counts: list[int]) -> Row:
    return Row(
        f"{synchronous} [runtime] {BURST:,} sends at once: transactions",
        f"{max(counts)} (runs: {', '.join(map(str, counts))})",
        "",
        "-",
        f"<= {BURST_MAX_TRANSACTIONS}",
        max(counts) <= BURST_MAX_TRANSACTIONS,
    )


# --- memory of completed messages ------------------------------------------------------------------

COMPLETED = 10_000  # completed messages a store remembers for `wait_for` (its default retention)
COMPLETED_BODY = 60_000  # characters of each body: about 60 KB of JSON
COMPLETED_TARGET_MB = 20.0


class Done(BaseModel):
    ok: bool


async def complete_each(c: aos.ActorContext) -> None:
    async for message in c.queue.iter("tasks", completable=True):
        await message.complete(Done(ok=True))


class BodiesKept(MemoryStore):
    """The baseline: the memory store as it was, keeping each completed message whole, body
    and all."""

    async def complete(self, message_id: int, *args: Any, **kwargs: Any) -> None:
        body = self._live[message_id].body
        await super().complete(message_id, *args, **kwargs)
        self._completed[message_id].body = body


async def completed_child(store: str, count: int, trace: bool) -> dict[str, float]:
    """In a fresh process: what `count` completed messages of about 60 KB leave in memory, sent
    one round trip at a time (`send(wait=True)`, so that no more than one body is ever in
    flight). RSS growth, or with `trace` the Python heap still allocated (tracemalloc)."""
    with fresh_dir() as path:
        stores: dict[str, aos.Store | str] = {
            "memory": MemoryStore(),
            "bodies kept": BodiesKept(),
            "sqlite": f"sqlite:///{os.path.join(path, 'store.db')}",
        }
        registry = aos.setup(
            use={"worker": aos.actor(queues={"tasks": aos.queue(Task, Done)}, run=complete_each)},
            store=stores[store],
            name="bench-completed",
        )
        await registry.__aenter__()
        handle = registry.client().worker.get_or_create(["bench"])
        body = Task(prompt="x" * COMPLETED_BODY)
        await handle.send("tasks", body, wait=True)  # warm-up: the actor awake, its paths taken
        gc.collect()
        if trace:
            tracemalloc.start()
        rss = psutil.Process().memory_info().rss
        for _ in range(count):
            result = await handle.send("tasks", body, wait=True)
            assert result.status == "completed"
        gc.collect()
        grown = psutil.Process().memory_info().rss - rss
        heap = tracemalloc.get_traced_memory()[0] if trace else 0
        remembered = await registry.store.get_message(result.message_id)
        assert remembered is not None
        assert remembered.status == "completed"
        await registry.stop()
    return {"rss_mb": grown / 2**20, "heap_mb": heap / 2**20}


def run_completed_child(store: str, count: int, trace: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--completed-child", store, "--size", str(count)]
    child = subprocess.run(command + (["--trace"] if trace else []), capture_output=True, text=True)
    if child.returncode != 0:
        sys.stderr.write(child.stderr)
        raise SystemExit(f"the completed-messages child ({store}) failed with exit status {child.returncode}")
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def completed_memory_rows(count: int) -> list[Row]:
    """Memory that `count` completed 60 KB messages cost, each store in fresh processes (RSS
    hardly ever goes down, so no figure may follow another in one process), against the memory
    store keeping their bodies. The RSS figures come from children without tracemalloc, whose
    own bookkeeping would inflate them."""
    figures = {
        store: (run_completed_child(store, count, False), run_completed_child(store, count, True))
        for store in ("bodies kept", "memory", "sqlite")
    }
    kept_rss, kept_heap = figures["bodies kept"][0]["rss_mb"], figures["bodies kept"][1]["heap_mb"]
    rows = []
    for store in ("memory", "sqlite"):
        rss, heap = figures[store][0]["rss_mb"], figures[store][1]["heap_mb"]
        label = "memory store" if store == "memory" else "SQLite NORMAL"
        rows += [
            Row(
                f"{label} [runtime] {count:,} completed 60 KB messages: RSS growth",
                f"{rss:.1f} MB",
                f"{kept_rss:.1f} MB bodies kept",
                f"{rss / kept_rss:.3f}x",
                f"< {COMPLETED_TARGET_MB:g} MB",
                rss < COMPLETED_TARGET_MB,
            ),
            Row(
                "",
                f"{heap:.1f} MB heap",
                f"{kept_heap:.1f} MB heap",
                f"{heap / kept_heap:.3f}x",
                "(info)",
                None,
            ),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--profile", action="store_true", help="then cProfile ours, with NORMAL")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--size", type=int, default=1000, help="operations per timed run")
    parser.add_argument("--completed-only", action="store_true", help="only the memory of completed messages")
    parser.add_argument("--completed-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.completed_child is not None:
        print(json.dumps(asyncio.run(completed_child(args.completed_child, args.size, args.trace))))
        return
    if args.completed_only:
        print_rows(completed_memory_rows(1000 if args.quick else COMPLETED), "agentos_nb")
        return
    n = 200 if args.quick else args.size
    repeat = 2 if args.quick else args.repeat
    began = time.perf_counter()
    print(
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; persist-queue {version('persist-queue')}, "
        f"litequeue {version('litequeue')}; agentos_nb from {os.path.dirname(aos.__file__)}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before: {load}; databases under {tempfile.gettempdir()}")
    print(f"{n:,} operations per timed run, median of {repeat} runs\n")

    async def run_all() -> tuple[list[Row], dict[str, Figures]]:
        rows: list[Row] = []
        levels: dict[str, Figures] = {}
        for synchronous in ("NORMAL", "FULL"):
            levels[synchronous] = await measure(n, repeat, synchronous)
            rows.extend(rate_rows(levels[synchronous], n, synchronous))
        for synchronous in ("NORMAL", "FULL"):
            rows.append(
                burst_row(synchronous, [await burst_transactions(synchronous) for _ in range(repeat)])
            )
        return rows, levels

    rows, levels = asyncio.run(run_all())
    rows.extend(completed_memory_rows(1000 if args.quick else COMPLETED))
    print_rows(rows, "agentos_nb")
    print()
    for synchronous, figures in levels.items():
        per_op = ", ".join(
            f"{name} {1e6 * statistics.median(times) / n:.1f}" for name, times in figures.times.items()
        )
        print(f"{synchronous}, median us per operation: {per_op}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - began:.1f} s; load average after: {load}")
    if args.profile:
        asyncio.run(profile_ours(n, "NORMAL"))
        asyncio.run(anatomy(n, repeat, "NORMAL"))


if __name__ == "__main__":
    main()
