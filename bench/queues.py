"""Queue throughput and idle-actor memory of agentos_nb, each against a plain baseline.

Run it with the project's interpreter, from the repository root:

    .venv/bin/python bench/queues.py            # full run, well under a minute on 2 cores
    .venv/bin/python bench/queues.py --quick    # smoke run with small sizes
    .venv/bin/python bench/queues.py --profile  # also cProfile the agentos_nb runs of (a), (b)

Figures (see bench/README.md for what each one means and why the baselines are what they are):

(a) plain sends per second: `send(..., block=True)` one by one from a producer coroutine, consumed
    by a run loop that counts; against a bounded `asyncio.Queue(maxsize=1000)` of the same shape.
(b) completable round trips per second: `send(..., wait=True)` answered with `complete(...)`;
    against an `asyncio.Queue` carrying `(body, Future)` pairs, and against Pykka `ask`.
(c) RSS of 10,000 idle actors above an empty started registry, awake and then asleep, measured in
    a child process of its own (this script re-runs itself with `--rss-child`) so that (a) and (b)
    cannot pollute it; a second child measures the Python heap with tracemalloc.

Timed parts are repeated (best of `--repeat`, agentos_nb and its baseline interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import psutil
from pydantic import BaseModel
from report import Row, print_profile, print_rows

import agentos_nb as aos

# --- message types, shared by agentos_nb and every baseline ------------------------------------------


class Task(BaseModel):
    prompt: str


class Review(BaseModel):
    text: str
    round: int


class Verdict(BaseModel):
    approved: bool


class Counter(BaseModel):
    pings: int = 0


# --- the trivial work every consumer does ---------------------------------------------------------


class Sink:
    """Counts processed messages and resolves `done` at the target count; the consumers' only work."""

    def __init__(self) -> None:
        self.count = 0
        self.target = -1
        self.done: asyncio.Future[None] | None = None

    def arm(self, target: int) -> asyncio.Future[None]:
        self.count = 0
        self.target = target
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            assert self.done is not None
            self.done.set_result(None)


SINK = Sink()


# --- agentos_nb actors ------------------------------------------------------------------------------


async def count_tasks(c: aos.ActorContext) -> None:
    sink = SINK
    async for _message in c.queue.iter("tasks"):
        sink.hit()


async def answer_reviews(c: aos.ActorContext) -> None:
    async for message in c.queue.iter("review", completable=True):
        await message.complete(Verdict(approved=True))


WORKER = aos.actor(queues={"tasks": aos.queue(Task)}, run=count_tasks)
REVIEWER = aos.actor(queues={"review": aos.queue(Review, Verdict)}, run=answer_reviews)


def ping(c: aos.ActorContext) -> int:
    c.state.pings += 1
    return c.state.pings


async def idle_loop(c: aos.ActorContext) -> None:
    async for _message in c.queue.iter("inbox"):
        pass


def idle_actor(sleep_timeout: float) -> aos.ActorDefinition:
    """A typical small actor: a state model, an action, a queue and a run loop waiting on it."""
    return aos.actor(
        state=Counter,
        actions={"ping": ping},
        queues={"inbox": aos.queue(Task)},
        run=idle_loop,
        options={"sleep_timeout": sleep_timeout},
    )


# --- results ----------------------------------------------------------------------------------------


def rate_row(figure: str, value: float, baseline: float, name: str, target: float, unit: str) -> Row:
    ratio = value / baseline
    return Row(
        figure,
        f"{value:,.0f}/s",
        f"{baseline:,.0f}/s {name}",
        f"{ratio:.2f}x",
        f">= {target:g}x {unit}" if target else "(info)",
        ratio >= target if target else None,
    )


def best(times: list[float]) -> float:
    return min(times)


# --- (a) plain sends through a run loop --------------------------------------------------------------


async def raw_plain(bodies: list[Task]) -> float:
    """Producer `await q.put(task)` into a bounded asyncio.Queue; a consumer task counts."""
    q: asyncio.Queue[Task] = asyncio.Queue(maxsize=1000)

    async def consume() -> None:
        sink = SINK
        while True:
            await q.get()
            sink.hit()

    done = SINK.arm(len(bodies))
    consumer = asyncio.get_running_loop().create_task(consume())
    await asyncio.sleep(0)  # the consumer is waiting on the empty queue, as the run loop is
    start = time.perf_counter()
    for body in bodies:
        await q.put(body)
    await done
    elapsed = time.perf_counter() - start
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    return elapsed


async def agentos_plain(handle: aos.ActorHandle, bodies: list[Task]) -> float:
    done = SINK.arm(len(bodies))
    start = time.perf_counter()
    for body in bodies:
        await handle.send("tasks", body, block=True)
    await done
    return time.perf_counter() - start


# --- (b) completable round trips ---------------------------------------------------------------------


async def raw_roundtrip(bodies: list[Review]) -> float:
    """Producer puts `(body, future)` on an asyncio.Queue and awaits the future; a consumer answers."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[Review, asyncio.Future[Verdict]]] = asyncio.Queue(maxsize=1000)

    async def consume() -> None:
        while True:
            _body, future = await q.get()
            future.set_result(Verdict(approved=True))

    consumer = loop.create_task(consume())
    await asyncio.sleep(0)
    start = time.perf_counter()
    for body in bodies:
        future: asyncio.Future[Verdict] = loop.create_future()
        await q.put((body, future))
        response = await future
    elapsed = time.perf_counter() - start
    assert response.approved
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    return elapsed


async def agentos_roundtrip(handle: aos.ActorHandle, bodies: list[Any]) -> float:
    start = time.perf_counter()
    for body in bodies:
        result = await handle.send("review", body, wait=True)
    elapsed = time.perf_counter() - start
    assert result.status == "completed", result
    assert result.response.approved, result
    return elapsed


def pykka_roundtrip(bodies: list[Review]) -> float:
    """Sequential `ask` to a Pykka ThreadingActor whose on_receive returns the response."""
    import pykka

    class PykkaReviewer(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Verdict:
            return Verdict(approved=True)

    ref = PykkaReviewer.start()
    try:
        ref.ask(bodies[0])  # the actor thread is up and running
        start = time.perf_counter()
        for body in bodies:
            response = ref.ask(body)
        elapsed = time.perf_counter() - start
    finally:
        ref.stop()
    assert response.approved
    return elapsed


# --- the timed part, in one event loop ---------------------------------------------------------------


@dataclass
class Sizes:
    plain: int
    roundtrips: int
    actors: int
    repeat: int
    sleep_timeout: float


async def timed(
    sizes: Sizes, tasks: list[Task], reviews: list[Review], profile: bool
) -> tuple[dict[str, list[float]], dict[str, cProfile.Profile]]:
    """(a) and (b) for agentos_nb and the raw asyncio baselines, interleaved, in one event loop."""
    review_dicts = [review.model_dump() for review in reviews]
    times: dict[str, list[float]] = {"a_raw": [], "a_aos": [], "b_raw": [], "b_aos": [], "b_aos_dict": []}
    profiles: dict[str, cProfile.Profile] = {}

    registry = aos.setup(use={"worker": WORKER, "reviewer": REVIEWER}, name="bench-queues")
    async with registry:
        client = registry.client()
        worker = client.worker.get_or_create(["bench"])
        reviewer = client.reviewer.get_or_create(["bench"])
        # Warm up: actors created and awake, run loops waiting, code paths exercised once.
        await agentos_plain(worker, tasks[:1000])
        await agentos_roundtrip(reviewer, reviews[:200])
        await raw_plain(tasks[:1000])
        await raw_roundtrip(reviews[:200])

        runs: list[tuple[str, Callable[[], Awaitable[float]]]] = [
            ("a_raw", lambda: raw_plain(tasks)),
            ("a_aos", lambda: agentos_plain(worker, tasks)),
            ("b_raw", lambda: raw_roundtrip(reviews)),
            ("b_aos", lambda: agentos_roundtrip(reviewer, reviews)),
            ("b_aos_dict", lambda: agentos_roundtrip(reviewer, review_dicts)),
        ]
        for _ in range(sizes.repeat):
            for name, run in runs:
                gc.collect()
                times[name].append(await run())

        if profile:
            for name, run in runs:
                if not name.endswith("raw"):
                    gc.collect()
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await run()
                    profiler.disable()
                    profiles[name] = profiler
    return times, profiles


# --- (c) idle actors, in a child process --------------------------------------------------------------


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def heap_mb() -> float:
    """Python allocations still alive, per tracemalloc (0 when it is not tracing)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 2**20


async def rss_child(count: int, sleep_timeout: float, trace: bool) -> dict[str, Any]:
    """Create `count` actors, measure them awake and idle, then again once all have fallen asleep.

    With `trace`, tracemalloc measures the Python heap instead (its own bookkeeping inflates RSS,
    so the RSS figures come from a run without it), and the biggest allocation sites are listed.
    """
    measure = heap_mb if trace else rss_mb
    if trace:
        tracemalloc.start(1)
    registry = aos.setup(use={"idle": idle_actor(sleep_timeout)}, name="bench-rss")
    async with registry:
        client = registry.client()
        await asyncio.sleep(0.05)
        empty = measure()
        empty_snapshot = tracemalloc.take_snapshot() if trace else None
        start = time.perf_counter()
        for i in range(count):
            await client.idle.get_or_create(["idle", str(i)]).ping()
        created_in = time.perf_counter() - start
        await asyncio.sleep(0.2)  # every run loop is parked in c.queue.iter(), waiting
        awake_count = len(registry._instances)  # a bench-only peek: how many are awake now
        awake = measure()
        sites = []
        if empty_snapshot is not None:
            diff = tracemalloc.take_snapshot().compare_to(empty_snapshot, "lineno")
            sites = [(str(s.traceback[0]), s.size_diff / count, s.count_diff / count) for s in diff[:12]]
        deadline = time.monotonic() + sleep_timeout + 30
        while time.monotonic() < deadline:  # polled: subscribing to events would cost memory
            if not registry._instances:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        asleep_count = count - len(registry._instances)
        asleep = measure()
    return {
        "count": count,
        "created_in": created_in,
        "empty_mb": empty,
        "awake_mb": awake,
        "awake_count": awake_count,
        "asleep_mb": asleep,
        "asleep_count": asleep_count,
        "sites": sites,
    }


def run_rss_child(sizes: Sizes, *, sleep_timeout: float, trace: bool) -> dict[str, Any]:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--rss-child",
        str(sizes.actors),
        "--sleep-timeout",
        str(sleep_timeout),
    ]
    if trace:
        command.append("--trace")
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        sys.stderr.write(child.stderr)
        raise SystemExit(f"the (c) child process failed with exit status {child.returncode}")
    return json.loads(child.stdout.strip().splitlines()[-1])


# --- reporting ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed repetitions (best is kept)")
    parser.add_argument("--profile", action="store_true", help="cProfile the agentos_nb runs of (a), (b)")
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sleep-timeout", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rss_child is not None:
        print(json.dumps(asyncio.run(rss_child(args.rss_child, args.sleep_timeout, args.trace))))
        return

    if args.quick:
        sizes = Sizes(plain=5_000, roundtrips=1_000, actors=1_000, repeat=args.repeat or 1, sleep_timeout=2.0)
    else:
        sizes = Sizes(
            plain=50_000, roundtrips=10_000, actors=10_000, repeat=args.repeat or 3, sleep_timeout=5.0
        )

    print(
        f"agentos_nb queue bench: python {platform.python_version()}, {os.cpu_count()} cpus "
        f"({platform.machine()}), pydantic {version('pydantic')}, pykka {version('pykka')}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"agentos_nb from {os.path.dirname(aos.__file__)}; load average before the run: {load}")
    print(
        f"sizes: (a) {sizes.plain:,} plain sends, (b) {sizes.roundtrips:,} round trips, "
        f"(c) {sizes.actors:,} actors; best of {sizes.repeat}\n"
    )

    began = time.perf_counter()
    tasks = [Task(prompt=f"summarise issue #{i}") for i in range(sizes.plain)]
    reviews = [Review(text=f"draft {i}", round=i) for i in range(sizes.roundtrips)]
    times, profiles = asyncio.run(timed(sizes, tasks, reviews, args.profile))
    times["b_pykka"] = []
    for _ in range(sizes.repeat):  # Pykka blocks its caller's thread: run it outside the event loop
        gc.collect()
        times["b_pykka"].append(pykka_roundtrip(reviews))
    rss = run_rss_child(sizes, sleep_timeout=sizes.sleep_timeout, trace=False)
    # tracemalloc slows creation down; the first actors must not fall asleep before the last is made.
    traced_timeout = max(sizes.sleep_timeout, 4 * rss["created_in"] + 2)
    heap = run_rss_child(sizes, sleep_timeout=traced_timeout, trace=True)

    a_raw = sizes.plain / best(times["a_raw"])
    a_aos = sizes.plain / best(times["a_aos"])
    b_raw = sizes.roundtrips / best(times["b_raw"])
    b_aos = sizes.roundtrips / best(times["b_aos"])
    b_dict = sizes.roundtrips / best(times["b_aos_dict"])
    b_pykka = sizes.roundtrips / best(times["b_pykka"])
    n = rss["count"]
    awake = rss["awake_mb"] - rss["empty_mb"]
    asleep = rss["asleep_mb"] - rss["empty_mb"]
    heap_awake = heap["awake_mb"] - heap["empty_mb"]
    heap_asleep = heap["asleep_mb"] - heap["empty_mb"]
    rows = [
        rate_row("(a) plain sends", a_aos, a_raw, "asyncio.Queue", 0.40, "raw"),
        rate_row("(b) round trips", b_aos, b_raw, "Queue+Future", 0.30, "raw"),
        rate_row("(b) round trips", b_aos, b_pykka, "Pykka ask", 5, "Pykka"),
        rate_row("(b) round trips, dict bodies", b_dict, b_raw, "Queue+Future", 0, ""),
        Row(
            f"(c) RSS, {n:,} awake idle actors",
            f"+{awake:.1f} MB",
            f"{rss['empty_mb']:.1f} MB empty registry",
            "-",
            "< +100 MB",
            awake < 100 and rss["awake_count"] == n,  # a figure with sleepers in it would not count
        ),
        Row(f"(c) RSS, {n:,} asleep", f"+{asleep:.1f} MB", "same", "-", "(info)", None),
        Row(
            f"(c) Python heap, {n:,} awake",
            f"+{heap_awake:.1f} MB",
            "traced from the empty registry",
            "-",
            "(info)",
            None,
        ),
        Row(f"(c) Python heap, {n:,} asleep", f"+{heap_asleep:.1f} MB", "same", "-", "(info)", None),
    ]
    print_rows(rows, "agentos_nb")
    print(
        f"\n(a) {1e6 / a_aos:.1f} us per message against {1e6 / a_raw:.1f} us raw; "
        f"(b) {1e6 / b_aos:.1f} us per round trip against {1e6 / b_raw:.1f} us raw, "
        f"{1e6 / b_pykka:.1f} us Pykka"
    )
    print(
        f"(b) the Pykka target, 5x {b_pykka:,.0f}/s = {5 * b_pykka:,.0f}/s, is "
        f"{5 * b_pykka / b_raw:.1f}x what the raw asyncio Queue+Future baseline itself reaches"
    )
    for what, run in (("RSS", rss), ("heap", heap)):
        print(
            f"(c) {what} run: {n:,} actors created in {run['created_in']:.1f} s, "
            f"{run['awake_count']:,} awake at the first measure, {run['asleep_count']:,} asleep at the second"
        )
    print(
        f"(c) per actor: {awake * 1024 / n:.1f} KB RSS and {heap_awake * 1024 / n:.1f} KB heap awake, "
        f"{heap_asleep * 1024 / n:.2f} KB heap asleep (RSS does not shrink: the process keeps freed memory)"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - began:.1f} s; load average after: {load}")

    if args.profile:
        print(f"\n--- (c) biggest allocation sites per awake actor (tracemalloc, {n:,} actors) ---")
        for site, size, count in heap["sites"]:
            print(f"{size:8.0f} B {count:6.1f} blocks  {site}")
    for name, profiler in profiles.items():
        print_profile(name, profiler, 25)


if __name__ == "__main__":
    main()
