"""Plain messages leased ahead of need (`iter()` on a store that suspends): a quick loop waits
for the store once per batch, and nothing of the delivery guarantees gives way. Messages leased
ahead and never handed out count no attempt; deliveries a crash cut short go one at a time; the
state holds each acknowledged message's effect exactly once, across SIGKILLs too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentos_nb import actor, queue, setup
from agentos_nb.actors import consumer
from agentos_nb.actors.mailbox import MailboxState
from agentos_nb.actors.message import Message
from agentos_nb.store.protocol import MessageRecord
from agentos_nb.store.sqlite import SqliteStore
from conftest import next_event, wait_until

pytestmark = pytest.mark.anyio

NO_PERIODIC_SAVE = {"state_save_interval": 3600, "sleep_timeout": 600}


@pytest.fixture(autouse=True)
def every_loop_is_quick(monkeypatch):
    """Under load a step may take longer than `QUICK_SECONDS`; the tests must not depend on it."""
    monkeypatch.setattr(consumer, "QUICK_SECONDS", 60.0)


async def started(path: Path, **use):
    registry = setup(use=use, store=f"sqlite:///{path}", name=f"lease-ahead-{path.name}")
    registry.start()
    await registry.ready()
    return registry


async def statuses(store, actor_id: str) -> dict[int, tuple[str, int]]:
    """Message body -> (status, attempt), for the live messages of one actor."""
    return {json.loads(m.body): (m.status, m.attempt) for m in await store.load_queues(actor_id)}


def recorder(gate: asyncio.Event, seen: list[tuple[int, int]], **options):
    async def run(c):
        await gate.wait()
        async for message in c.queue.iter("jobs"):
            seen.append((message.body, message.attempt))
            c.state["done"].append(message.body)

    return actor(state={"done": []}, queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE | options)


async def test_a_quick_plain_loop_waits_for_the_store_once_per_batch_and_loses_nothing(tmp_path):
    path = tmp_path / "a.db"
    gate, seen = asyncio.Event(), []
    registry = await started(path, a=recorder(gate, seen))
    handle = registry.client().a.get_or_create("k")
    sent = [await handle.send("jobs", n) for n in range(300)]
    store = registry.store
    before = store.transactions
    gate.set()
    assert (await handle.wait_for(sent[-1].message_id, timeout=10)).status == "completed"
    assert store.transactions - before < 150  # 300 leases and 300 acknowledgements
    assert seen == [(n, 1) for n in range(300)]
    for result in sent:  # every one acknowledged, and in the store
        assert (await store.get_message(result.message_id)).status == "completed"
    actor_id = await handle.resolve()
    assert json.loads((await store.get_actor(actor_id)).state) == {"done": list(range(300))}
    await registry.stop()

    seen.clear()
    registry = await started(path, a=recorder(gate, seen))
    try:
        await registry.client().a.get_or_create("k").resolve()
        await asyncio.sleep(0.1)
        assert seen == []  # nothing comes again
    finally:
        await registry.stop()


async def test_messages_leased_ahead_go_back_uncounted_when_the_actor_stops(tmp_path):
    path = tmp_path / "b.db"
    holding = asyncio.Event()
    leased_while_holding: list[int] = []
    stores = []

    gate = asyncio.Event()

    async def run(c):
        await gate.wait()
        async for message in c.queue.iter("jobs"):
            if message.body == 10:
                leased = await statuses(stores[0], c.actor_id)
                leased_while_holding.extend(n for n, (status, _) in leased.items() if status == "leased")
                holding.set()
                await asyncio.Event().wait()

    registry = await started(path, a=actor(queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE))
    stores.append(registry.store)
    handle = registry.client().a.get_or_create("k")
    actor_id = await handle.resolve()
    for n in range(100):
        await handle.send("jobs", n)
    gate.set()
    await asyncio.wait_for(holding.wait(), 10)
    assert len(leased_while_holding) > 1  # leased ahead: else this test shows nothing
    await registry.stop(grace=0)

    store = SqliteStore(path)
    await store.open()
    try:
        left = await statuses(store, actor_id)
    finally:
        await store.close()
    # the one in hand was delivered once; those leased ahead never were
    assert left == {10: ("pending", 1)} | {n: ("pending", 0) for n in range(11, 100)}


@pytest.mark.parametrize("case", ["one attempt allowed", "a slow loop"])
async def test_nothing_is_leased_ahead_with_one_attempt_allowed_or_for_a_slow_loop(
    tmp_path, monkeypatch, case
):
    """A crash counts a delivery of each message leased ahead, which with `max_attempts=1` would
    bury messages nobody saw; a loop slower than `QUICK_SECONDS` has no round trip worth saving."""
    if case == "a slow loop":
        monkeypatch.setattr(consumer, "QUICK_SECONDS", 0.0)
    attempts = 1 if case == "one attempt allowed" else 5
    path = tmp_path / "b1.db"
    gate = asyncio.Event()
    stores, others_leased = [], []

    async def run(c):
        await gate.wait()
        async for _message in c.queue.iter("jobs"):
            leased = await statuses(stores[0], c.actor_id)
            others_leased.append(sum(state == "leased" for state, _ in leased.values()) - 1)

    registry = await started(
        path,
        a=actor(queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE | {"max_attempts": attempts}),
    )
    stores.append(registry.store)
    try:
        handle = registry.client().a.get_or_create("k")
        sent = [await handle.send("jobs", n) for n in range(30)]
        gate.set()
        assert (await handle.wait_for(sent[-1].message_id, timeout=10)).status == "completed"
        assert others_leased == [0] * 30
    finally:
        await registry.stop()


async def test_a_crashing_handler_counts_no_attempt_against_messages_leased_ahead(tmp_path):
    path = tmp_path / "c.db"
    seen: list[tuple[int, int]] = []

    async def run(c):
        async for message in c.queue.iter("jobs"):
            seen.append((message.body, message.attempt))
            if message.body == 20 and message.attempt == 1:
                raise RuntimeError("boom")

    registry = await started(
        path,
        a=actor(queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE | {"restart_backoff": 0.01}),
    )
    try:
        handle = registry.client().a.get_or_create("k")
        sent = [await handle.send("jobs", n) for n in range(60)]
        assert (await handle.wait_for(sent[-1].message_id, timeout=10)).status == "completed"
        assert seen == [(n, 1) for n in range(21)] + [(20, 2)] + [(n, 1) for n in range(21, 60)]
    finally:
        await registry.stop()


async def test_deliveries_a_crash_cut_short_are_leased_one_at_a_time(tmp_path):
    """Messages found leased on wake were in hand or leased ahead when the process died; any
    of them may be what killed it, so each goes alone, and only its own crashes count."""
    path = tmp_path / "d.db"
    never = asyncio.Event()
    registry = await started(path, a=recorder(never, []))
    handle = registry.client().a.get_or_create("k")
    actor_id = await handle.resolve()
    for n in range(20):
        await handle.send("jobs", n)
    await registry.stop()
    store = SqliteStore(path)  # as a crash leaves it: four messages leased in one write
    await store.open()
    ids = sorted(m.message_id for m in await store.load_queues(actor_id))
    await store.acknowledge_and_lease([], ids[:4])
    await store.close()

    leased_in_hand: list[tuple[int, int, list[int]]] = []
    stores = []

    async def run(c):
        async for message in c.queue.iter("jobs"):
            leased = await statuses(stores[0], c.actor_id)
            others = sorted(
                n for n, (status, _) in leased.items() if status == "leased" and n != message.body
            )
            leased_in_hand.append((message.body, message.attempt, others))

    registry = setup(
        use={"a": actor(queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE)},
        store=f"sqlite:///{path}",
        name="lease-ahead-cut-short",
    )
    stores.append(registry.store)
    registry.start()
    try:
        await wait_until(lambda: len(leased_in_hand) == 20, timeout=10)
    finally:
        await registry.stop()
    assert leased_in_hand[:4] == [(n, 2, []) for n in range(4)]
    assert [(body, attempt) for body, attempt, _ in leased_in_hand[4:]] == [(n, 1) for n in range(4, 20)]
    assert any(others for _, _, others in leased_in_hand[4:])  # then leased ahead again


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from agentos_nb import actor, queue, setup
    from agentos_nb.actors import consumer

    consumer.QUICK_SECONDS = 60.0
    path, count = sys.argv[1], int(sys.argv[2])

    async def run(c):
        await gate.wait()
        async for message in c.queue.iter("jobs"):
            c.state["done"].append(message.body)

    async def main():
        global gate
        gate = asyncio.Event()
        registry = setup(
            use={"a": actor(state={"done": []}, queues={"jobs": queue(int)}, run=run,
                            options={"state_save_interval": 3600, "sleep_timeout": 600,
                                     "max_queue_size": count})},
            store=f"sqlite:///{path}",
        )
        registry.start()
        await registry.ready()
        handle = registry.client().a.get_or_create("k")
        actor_id = await handle.resolve()
        if not await registry.store.get_message(1):
            await asyncio.gather(*(handle.send("jobs", n) for n in range(count)))
        print("ready", flush=True)
        gate.set()  # the kill comes while the queue drains
        while await registry.store.actors_with_pending():
            await asyncio.sleep(0.01)
        record = await registry.store.get_actor(actor_id)
        print(record.state.decode(), flush=True)
        await registry.stop()

    asyncio.run(main())
    """
)


def life(path: Path, count: int, kill_after: float | None) -> str | None:
    """One process on the store; SIGKILLed `kill_after` seconds after it is ready, else it
    drains the queue and returns the state it stored."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        return None
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    return out.strip().splitlines()[-1]


def completed(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM messages WHERE status = 'completed'").fetchone()[0])


def test_sigkills_leave_each_acknowledged_effect_on_state_exactly_once(tmp_path):
    path = tmp_path / "e.db"
    count = 3000
    rng = random.Random(15)
    drained_after_kills = []
    for _ in range(6):
        life(path, count, rng.uniform(0.0, 0.08))
        drained_after_kills.append(completed(path))
    state = json.loads(life(path, count, None) or "null")
    assert sorted(state["done"]) == list(range(count))  # each once: none lost, none twice
    assert any(0 < drained < count for drained in drained_after_kills)  # killed while draining


class CheckedStore(SqliteStore):
    """After every commit, compares the stored state of the one actor with the messages the
    store holds completed: they must be the same, at every moment a crash could come."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.mismatches: list[tuple[list[int], list[int]]] = []
        self.commits = 0

    def _commit(self, db, batch):
        outcomes = super()._commit(db, batch)
        self.commits += 1
        rows = db.execute("SELECT state FROM actors").fetchall()
        stored = sorted(json.loads(rows[0][0])["done"]) if rows and rows[0][0] else []
        done = [row[0] for row in db.execute("SELECT message_id FROM messages WHERE status = 'completed'")]
        if stored != sorted(done):
            self.mismatches.append((stored, sorted(done)))
        return outcomes


async def test_every_commit_holds_the_state_of_exactly_the_acknowledged_messages(tmp_path):
    store = CheckedStore(tmp_path / "f.db")
    gate = asyncio.Event()

    async def run(c):
        await gate.wait()
        async for message in c.queue.iter("jobs"):
            c.state["done"].append(message.id)
            await asyncio.sleep(0.0002)  # the writer commits acknowledgements meanwhile

    registry = setup(
        use={"a": actor(state={"done": []}, queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE)},
        store=store,
        name="lease-ahead-checked",
    )
    registry.start()
    try:
        handle = registry.client().a.get_or_create("k")
        sent = [await handle.send("jobs", n) for n in range(400)]
        commits = store.commits
        gate.set()
        assert (await handle.wait_for(sent[-1].message_id, timeout=10)).status == "completed"
        assert store.commits - commits > 20  # acknowledgements written behind landed on their own
        assert store.mismatches == []
    finally:
        await registry.stop()


async def test_a_store_lost_under_acknowledgements_written_behind_stops_the_loop_loudly(tmp_path):
    """Nobody awaits an acknowledgement written behind, yet a store gone under it does not go
    unnoticed: the loop stops at its next write with the store's error."""
    path = tmp_path / "g.db"
    gate = asyncio.Event()
    handled: list[int] = []

    async def run(c):
        await gate.wait()
        async for message in c.queue.iter("jobs"):
            handled.append(message.body)
            if message.body == 5:
                for end in ("", "-wal", "-shm"):
                    os.unlink(f"{path}{end}")

    options = NO_PERIODIC_SAVE | {"restart_backoff": 60}
    registry = await started(path, a=actor(queues={"jobs": queue(int)}, run=run, options=options))
    crashes = registry.bus.subscribe(types=["actor.crashed"])
    try:
        handle = registry.client().a.get_or_create("k")
        for n in range(100):
            await handle.send("jobs", n)
        gate.set()
        crashed = await next_event(crashes, "actor.crashed")
        assert crashed.error_type == "StoreUnusable"
        assert "removed" in crashed.error
        assert len(handled) < 100  # it stopped at the first write after the files went
    finally:
        await registry.stop(grace=0)


def test_a_message_that_failed_an_attempt_is_not_leased_ahead():
    """Leased ahead, its next attempt is counted at once; a crash before its hand-over would
    count an attempt never made, and bury a message on its last one."""
    state = MailboxState(["jobs"])
    for seq, attempt in enumerate([0, 0, 1, 0]):
        record = MessageRecord(seq, seq, "actor", "jobs", b"0", 0.0, attempt=attempt)
        state.adopt(Message(None, record, seq))  # type: ignore[arg-type]
    taken = state.take(frozenset({"jobs"}), 1)
    ahead = state.take_ahead(frozenset({"jobs"}), 10, taken)
    assert [m.id for m in taken + ahead] == [0, 1]  # not message 2, nor what comes after it
    assert [m.id for m in state.take(frozenset({"jobs"}), 1)] == [2]  # taken in its turn, alone
