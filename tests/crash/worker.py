"""The crash worker: one life of a registry on a SQLite file, writing down what it does.

A life starts a registry on the file, with two consumer actors ("a" and "b") of two completable
queues each ("left" and "right"). A producer sends jobs `0 .. messages-1` (those the history
does not show as sent yet) and waits for every answer with `wait_for`; each consumer receives a
message, performs its side effects (a line in the history, and seed 002's pattern: the job
appended to `c.state["done"]`, naming the delivery), and completes it with an answer naming the
delivery that made it (life and attempt). Every step is a line in the history (see
`history.py`), written after the step returned and before the next one starts. A life ends with
`finished` once all jobs are answered and every queue is drained (the last life then writes down
each consumer's stored state), or by a crash:

- injected: `os._exit(77)` the K-th time the life reaches its crash point, in the event loop or,
  for the points inside the store's transaction, in its writer thread;
- SIGKILL from the fork server, at a random moment.

Run one life:        python -m tests.crash.worker life --db D --history H --messages N [--point P --k K]
Run the fork server: python -m tests.crash.worker serve   (JSON lines in and out; see `serve`)

The fork server imports everything once and forks a child per life, so a life costs
milliseconds instead of the second that importing agentos_nb takes. Each child is a fresh
process on the file: nothing survives a kill but what the store and the history hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import sqlite3
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentos_nb import actor, queue, setup
from agentos_nb.errors import MessageNotFound
from agentos_nb.store import sqlite as _sqlite  # noqa: F401 - imported before the fork server forks

from .history import TORN, Outcome, format_line, parse

POINTS = (
    "after_send",  # the producer's send() returned; `sent` not yet written
    "after_receive",  # the consumer holds the message; its side effect not yet done
    "after_effect",  # the side effect is done (its line written)
    "before_complete",  # the answer is built, after the work; complete() not yet called
    "during_complete",  # the store's write of the completion is issued, not acknowledged
    "after_complete",  # complete() returned; `done` not yet written
    # Inside the store's writer thread, in the transaction, before its commit:
    "after_state_write",  # the actor's state row was written; the acknowledgement may not be yet
    "after_ack_write",  # a message was marked completed; the state may not be written yet
)
IN_TRANSACTION = ("after_state_write", "after_ack_write")
INJECTED_EXIT = 77
STUCK_EXIT = 3
KEYS = ("a", "b")
QUEUES = ("left", "right")


class Job(BaseModel):
    index: int


class Answer(BaseModel):
    """The answer to job `index`, made by delivery `attempt` in life `life`."""

    index: int
    life: int
    attempt: int


@dataclass(slots=True)
class LifeConfig:
    db: str
    history: str
    messages: int
    seed: int = 0
    point: str = "none"
    k: int = 0
    synchronous: str = "NORMAL"
    work_ms: float = 1.0
    """Each delivery works up to this long between its side effect and its completion."""
    pace_ms: float = 0.5
    """The producer pauses up to this long between sends, so sending and consuming interleave."""
    deadline: float = 30.0
    fault: str = "none"
    """A durability bug to plant in the store (see FAULTS), to show the checker catches it."""
    final: bool = True
    """Once finished, ask `wait_for` about every message the history knows (`final` lines): the
    checker needs it of the last life; earlier lives may skip it and spend their time working."""
    kill_after: float | None = None
    """For the fork server: SIGKILL the life this many seconds after `kill_from`."""
    kill_from: str = "ready"
    """"ready" (the registry has started, recovery under way) or "fork" (it may not have)."""


def target(seed: int, index: int) -> tuple[str, str]:
    """Where job `index` goes: fixed by the seed, so a job sent again goes to the same queue."""
    rng = random.Random(f"{seed}/{index}")
    return rng.choice(KEYS), rng.choice(QUEUES)


class History:
    """The append-only history: one `os.write` per line, so a kill never leaves half a line
    in practice, and what was written survives the process (no fsync: the machine stays up)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        text = Path(path).read_text()
        if text and not text.endswith("\n"):
            os.write(self._fd, (TORN + "\n").encode())

    def write(self, kind: str, life: int, *fields: object) -> None:
        os.write(self._fd, (format_line(kind, life, *fields) + "\n").encode())

    def read(self) -> str:
        return Path(self.path).read_text()


class Crash:
    """The life's crash plan: exit at once the `k`-th time `point` is reached."""

    def __init__(self, point: str, k: int) -> None:
        if point not in (*POINTS, "none", "sigkill"):
            raise ValueError(f"unknown crash point {point!r} (known: {', '.join(POINTS)})")
        self.point = point
        self.k = k
        self.hits: Counter[str] = Counter()

    def due(self, point: str) -> bool:
        if point != self.point:
            return False
        self.hits[point] += 1
        return self.hits[point] == self.k

    def at(self, point: str) -> None:
        if self.due(point):
            os._exit(INJECTED_EXIT)


async def life(config: LifeConfig) -> int:
    """One life; returns 0 once finished (a crash never returns)."""
    history = History(config.history)
    past = parse(history.read())
    number = 1 + sum(1 for line in past.lines if line.kind == "life")
    history.write("life", number, config.point, config.k, config.messages, config.seed)
    rng = random.Random(f"{config.seed}/life/{number}")
    crash = Crash(config.point, config.k)
    loop = asyncio.get_running_loop()
    outstanding: dict[int, str] = {}

    def stuck() -> None:
        history.write("stuck", number, f"{config.deadline}s passed; waiting on {sorted(outstanding)[:20]}")
        os._exit(STUCK_EXIT)

    loop.call_later(config.deadline, stuck)

    sent = {int(line.fields[0]): line for line in past.lines if line.kind == "sent"}
    known: dict[int, str] = {}  # every message id the history has seen, with its actor's key
    for line in past.lines:
        if line.kind == "sent":
            known[int(line.fields[1])] = str(line.fields[2])
        elif line.kind == "recv":
            known[int(line.fields[0])] = str(line.fields[2])
    answered = {
        int(line.fields[0]) for line in past.lines if line.kind == "answer" and line.fields[1] == "completed"
    }

    async def run(c: Any) -> None:
        key = c.key[0]
        async for message in c.queue.iter(completable=True):
            history.write("recv", number, message.id, message.attempt, key, message.name, message.body.index)
            known[message.id] = key
            crash.at("after_receive")
            history.write("effect", number, message.id, message.attempt)  # the side effects
            c.state["done"].append([message.id, message.body.index, number, message.attempt])
            crash.at("after_effect")
            if config.work_ms:
                await asyncio.sleep(rng.uniform(0, config.work_ms) / 1000)
            answer = Answer(index=message.body.index, life=number, attempt=message.attempt)
            crash.at("before_complete")
            await message.complete(answer)
            crash.at("after_complete")
            history.write("done", number, message.id, message.attempt)

    consumer = actor(
        state={"done": []},
        queues={name: queue(Job, Answer) for name in QUEUES},
        run=run,
        options={"max_attempts": 1000, "sleep_timeout": 3600, "restart_backoff": 0.01},
    )
    registry = setup(
        use={"consumer": consumer},
        store=f"sqlite:///{config.db}?synchronous={config.synchronous}",
        name=f"crash-worker-{number}",
    )
    _crash_during_complete(registry.store, crash, rng)
    _plant(config.fault, registry.store)
    problems = registry.bus.subscribe(types=["actor.crashed", "message.dead_lettered"])

    async def report_problems() -> None:
        async for event in problems:
            history.write("error", number, event.model_dump_json().replace("\n", " "))

    registry.start()
    await registry.ready()
    if crash.point in IN_TRANSACTION:
        await _crash_in_transaction(registry.store, crash)
    registry.spawn(report_problems())
    _signal_ready()
    client = registry.client()

    async def wait(message_id: int, key: str, kind: str, timeout: float | None = None) -> None:
        outstanding[message_id] = kind
        handle = client.consumer.get_or_create([key])
        try:
            result = await handle.wait_for(message_id, timeout=timeout)
        except MessageNotFound:
            outcome = Outcome("missing")
        else:
            if result.status == "completed":
                response = result.response
                outcome = Outcome("completed", response.index, response.life, response.attempt)
            else:
                outcome = Outcome(result.status)
        history.write(kind, number, message_id, outcome.fields())
        outstanding.pop(message_id, None)

    waiters = [
        registry.spawn(wait(message_id, str(line.fields[2]), "answer"))
        for line in sent.values()
        if (message_id := int(line.fields[1])) not in answered
    ]
    start = 1 + max(sent, default=-1)
    for index in range(start, config.messages):
        key, name = target(config.seed, index)
        history.write("send", number, index, key, name)
        result = await client.consumer.get_or_create([key]).send(name, {"index": index})
        crash.at("after_send")
        history.write("sent", number, index, result.message_id, key, name)
        known[result.message_id] = key
        waiters.append(registry.spawn(wait(result.message_id, key, "answer")))
        if config.pace_ms:
            await asyncio.sleep(rng.uniform(0, config.pace_ms) / 1000)
    await asyncio.gather(*waiters)

    # Drained: nothing pending or leased, so every message ever stored (also those whose
    # `sent` line a kill cut off) has been delivered and settled.
    while await registry.store.actors_with_pending():  # noqa: ASYNC110 - the store is the judge
        await asyncio.sleep(0.005)
    if config.final:
        finals = (wait(message_id, key, "final", timeout=5) for message_id, key in known.items())
        await asyncio.gather(*finals)
        for key in KEYS:  # what the store holds of each consumer's state, in its own words
            record = await registry.store.find_actor("consumer", (key,))
            done = [] if record is None or record.state is None else json.loads(record.state)["done"]
            history.write("state", number, key, len(done))
            for message_id, index, by_life, by_attempt in done:
                history.write("kept", number, key, message_id, index, by_life, by_attempt)
    history.write("finished", number)
    await registry.stop(grace=0)
    return 0


def _crash_during_complete(store: Any, crash: Crash, rng: random.Random) -> None:
    """Make the store's `complete` exit the process once the write is issued, before it is
    acknowledged: the commit may or may not have happened, and both must be fine."""
    original = store.complete
    doomed: list[asyncio.Future[None]] = []

    async def complete(message_id: int, response: bytes | None, *, state: bytes | None = None) -> None:
        if crash.due("during_complete"):
            doomed.append(asyncio.ensure_future(original(message_id, response, state=state)))
            await asyncio.sleep(0)  # the job reaches the writer thread
            time.sleep(rng.choice([0, 0.0002, 0.001]))  # noqa: ASYNC251 - frozen, then dead, at a random moment
            os._exit(INJECTED_EXIT)
        await original(message_id, response, state=state)

    store.complete = complete


async def _crash_in_transaction(store: Any, crash: Crash) -> None:
    """Exit the process from the store's writer thread, in the middle of a transaction: right
    after it wrote an actor's state, or marked a message completed, and before its commit. On
    the writer's own connection (temporary triggers calling a function of ours), through the
    store's private `_run`: the protocol offers no way in there, and must not."""

    def point(name: str) -> int:
        crash.at(name)
        return 0

    def install(db: sqlite3.Connection) -> None:
        db.create_function("crash_point", 1, point)
        db.execute(
            "CREATE TEMP TRIGGER after_state_write AFTER UPDATE OF state ON main.actors "
            "BEGIN SELECT crash_point('after_state_write'); END"
        )
        db.execute(
            "CREATE TEMP TRIGGER after_ack_write AFTER UPDATE OF status ON main.messages "
            "WHEN new.status = 'completed' BEGIN SELECT crash_point('after_ack_write'); END"
        )

    await store._run(install)


FAULTS = (
    "none",
    "complete-before-commit",
    "lease-not-durable",
    "reversed-reload",
    "dropped-on-reload",
    "state-after-ack",
    "state-before-ack",
)


def _plant(fault: str, store: Any) -> None:
    """Break the store on purpose, through the store protocol only, the way a real bug would:

    - complete-before-commit: complete() returns at once and writes 20 ms later;
    - lease-not-durable: a delivery is never recorded (the store's attempt count stays put);
    - reversed-reload: a restarted actor gets its stored messages newest first;
    - dropped-on-reload: reopened, the store loses each actor's newest live message (it turns
      into a dead letter);
    - state-after-ack: a completion's state is written after it, in a transaction of its own
      (as before issue 15, when the state followed up to `state_save_interval` later);
    - state-before-ack: ... before it, in a transaction of its own.
    """
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    writes: set[asyncio.Future[None]] = set()
    complete, load_queues, open_store = store.complete, store.load_queues, store.open
    acknowledge_and_lease = store.acknowledge_and_lease

    async def complete_later(message_id: int, response: bytes | None, *, state: bytes | None = None) -> None:
        async def write() -> None:
            await asyncio.sleep(0.02)
            await complete(message_id, response, state=state)

        task = asyncio.ensure_future(write())
        writes.add(task)
        task.add_done_callback(writes.discard)

    async def lease_nothing(acknowledged: list[int], leased: list[int], **state: bytes | None) -> None:
        await acknowledge_and_lease(acknowledged, [], **state)

    async def complete_apart(message_id: int, response: bytes | None, *, state: bytes | None = None) -> None:
        """The completion, and its actor's state in a transaction of its own."""
        record = None if state is None else await store.get_message(message_id)
        if record is not None and state is not None and fault == "state-before-ack":
            await store.save_state(record.actor_id, state)
        await complete(message_id, response)
        if record is not None and state is not None and fault == "state-after-ack":
            await store.save_state(record.actor_id, state)

    async def load_reversed(actor_id: str) -> list[Any]:
        return list(reversed(await load_queues(actor_id)))

    async def open_dropping() -> None:
        await open_store()
        for actor_id in await store.actors_with_pending():
            newest = (await load_queues(actor_id))[-1]
            await store.dead_letter(newest.message_id, "dropped by a planted fault")

    match fault:
        case "complete-before-commit":
            store.complete = complete_later
        case "lease-not-durable":
            store.acknowledge_and_lease = lease_nothing
        case "reversed-reload":
            store.load_queues = load_reversed
        case "dropped-on-reload":
            store.open = open_dropping
        case "state-after-ack" | "state-before-ack":
            store.complete = complete_apart


_ready_fd: int | None = None


def _signal_ready() -> None:
    """Tell the fork server the registry has started (so a kill after it hit a running life)."""
    if _ready_fd is not None:
        os.write(_ready_fd, b"r")


def run_life(config: LifeConfig) -> int:
    config = dataclasses.replace(config, db=str(Path(config.db).resolve()))
    return asyncio.run(life(config))


def serve() -> None:
    """Read one LifeConfig as JSON per line on stdin; fork a child that lives it; SIGKILL it
    `kill_after` seconds after it started or became ready, if asked; answer with a JSON line
    `{"pid", "code", "ready"}` (code: the exit code, -9 when killed). The server itself never
    starts a loop or a thread, so forking it is safe."""
    global _ready_fd
    for request in sys.stdin:
        config = LifeConfig(**json.loads(request))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one life, then exit without running the server's cleanup
            code = 1
            try:
                os.close(read_end)
                _ready_fd = write_end
                code = run_life(config)
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os._exit(code)
        os.close(write_end)
        ready = False
        if config.kill_after is not None:
            if config.kill_from == "ready":
                ready = os.read(read_end, 1) == b"r"  # b"" if the child died first
            time.sleep(config.kill_after)
            os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still our child's
        _, status = os.waitpid(pid, 0)
        ready = ready or os.read(read_end, 1) == b"r"
        os.close(read_end)
        reply = {"pid": pid, "code": os.waitstatus_to_exitcode(status), "ready": ready}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def _yes(text: str) -> bool:
    return text.lower() in ("1", "yes", "true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crash.worker", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="fork server: one life per JSON line on stdin")
    one = commands.add_parser("life", help="live one life")
    for config_field in dataclasses.fields(LifeConfig):
        if config_field.name.startswith("kill_"):
            continue
        required = config_field.default is dataclasses.MISSING
        kind = {"int": int, "float": float, "bool": _yes}.get(str(config_field.type), str)
        one.add_argument(
            f"--{config_field.name.replace('_', '-')}",
            dest=config_field.name,
            type=kind,
            required=required,
            default=None if required else config_field.default,
        )
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
        return 0
    options = {k: v for k, v in vars(args).items() if k != "command"}
    return run_life(LifeConfig(**options))


if __name__ == "__main__":
    sys.exit(main())
