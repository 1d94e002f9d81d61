"""What a live dashboard costs the runtime at 5,000 events per second: the same workload with
and without one attached, in one run.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/dashboard.py             # full run, about 2.5 min
    /work/venv/bin/python bench/dashboard.py --quick     # smoke run, about 15 s
    /work/venv/bin/python bench/dashboard.py --profile   # then cProfiles one run, Events tab on screen

The workload: a producer paced to 1,667 plain messages a second, spread over 4 worker actors
whose run loops take them one by one. Each message is three events on the bus (enqueued,
received, completed): 5,000 events a second. Beside it, a probe sends a completable message to
an echo actor every 20 ms with `send(wait=True)` and times the round trip.

Each run uses a new registry and one of these observers:
- none: nothing subscribed to the bus, so the runtime builds no events at all;
- bus reader: one subscription drained every 0.2 s and thrown away (what any observer costs);
- dashboard, with the Actors (its first tab), Queues or Events tab on screen.

The dashboard's widgets sit on a comm that serialises every message as ipykernel does
(`json_clean`, then a signed jupyter_client `Session` message), so what a live kernel spends
sending updates to the browser is counted. Figures per run: the event loop thread's CPU time
per wall second (`time.thread_time`), the CPU spent inside the renderer's ticks, redraws and
comm traffic, and the probe's p50 and p99. Runs of every observer take turns, `--repeat`
times (7), and each figure is the median: on a shared VM a single run's CPU figures move by a
quarter from one run to the next. Target: a dashboard adds at most 5% of the wall time
to the loop's work, compared with no observer.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import comm
from comm.base_comm import BaseComm
from ipykernel.jsonutil import json_clean
from jupyter_client.session import Session
from pydantic import BaseModel
from report import Row, print_profile, print_rows

from agentos_nb import ActorContext, actor, queue, setup
from agentos_nb.jupyter.dashboard import Dashboard
from agentos_nb.jupyter.dashboard.renderer import Renderer

EVENTS_PER_SECOND = 5000
EVENTS_PER_MESSAGE = 3  # message.enqueued, message.received, message.completed
WORKERS = 4
PACE_EVERY = 0.005  # the producer catches up with its schedule this often
PROBE_EVERY = 0.02
TARGET_SHARE = 0.05  # of wall time, added to the loop's work by a dashboard
OBSERVERS = ("none", "bus reader", "dashboard: Actors", "dashboard: Queues", "dashboard: Events")


class Job(BaseModel):
    n: int


class Ping(BaseModel):
    sent: float


class Pong(BaseModel):
    sent: float


JOB = Job(n=1)


@dataclass
class Counts:
    processed: int = 0


COUNTS = Counts()


async def work(c: ActorContext) -> None:
    counts = COUNTS
    async for _message in c.queue.iter("jobs"):
        counts.processed += 1


async def echo(c: ActorContext) -> None:
    async for message in c.queue.iter("ping", completable=True):
        await message.complete(Pong(sent=message.body.sent))


# --- a comm that pays what ipykernel's does ---------------------------------------------------------


@dataclass
class Traffic:
    messages: int = 0
    bytes: int = 0


TRAFFIC = Traffic()
SESSION = Session(key=b"agentos-bench-key", username="bench")


class SerializingComm(BaseComm):
    """ipykernel's `Comm.publish_msg` without the socket: the message is cleaned, built and signed."""

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        content = json_clean({"data": data or {}, "comm_id": self.comm_id, **keys})
        message = SESSION.msg(msg_type, content=content, metadata=json_clean(metadata or {}))
        frames = SESSION.serialize(message, ident=self.topic)
        TRAFFIC.messages += 1
        TRAFFIC.bytes += sum(len(frame) for frame in frames)


# --- the CPU the renderer's ticks take -------------------------------------------------------------


@dataclass
class TickTime:
    seconds: float = 0.0


TICKS = TickTime()
_plain_tick = Renderer.tick


async def _timed_tick(self: Renderer, *, everything: bool = False) -> None:
    started = time.thread_time()  # the memory store never suspends: the tick runs in one go
    await _plain_tick(self, everything=everything)
    TICKS.seconds += time.thread_time() - started


Renderer.tick = _timed_tick  # type: ignore[method-assign]


# --- one run ----------------------------------------------------------------------------------------


@dataclass
class Run:
    observer: str
    wall: float
    loop_cpu: float
    tick_cpu: float
    messages: int
    probes: list[float]
    redraws: int = 0
    comm_messages: int = 0
    comm_bytes: int = 0
    backlog: int = 0

    @property
    def share(self) -> float:
        return self.loop_cpu / self.wall

    @property
    def events_per_second(self) -> float:
        return EVENTS_PER_MESSAGE * (self.messages + len(self.probes)) / self.wall


@dataclass
class Observer:
    detach: Callable[[], None]
    dashboard: Dashboard | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def attach(observer: str, registry: Any) -> Observer:
    if observer == "none":
        return Observer(detach=lambda: None)
    if observer == "bus reader":
        subscription = registry.bus.subscribe(buffer=50_000)

        async def drain() -> None:
            while True:
                await asyncio.sleep(0.2)
                subscription.get_nowait()

        task = asyncio.ensure_future(drain())

        def detach() -> None:
            task.cancel()
            subscription.close()

        return Observer(detach=detach, tasks=[task])
    dashboard = registry.dashboard()
    dashboard.select(observer.removeprefix("dashboard: "))
    return Observer(detach=dashboard.close, dashboard=dashboard)


async def paced_producer(handles: list[Any], rate: float, stop: asyncio.Event) -> int:
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    while not stop.is_set():
        due = int(rate * (loop.time() - started))
        while sent < due:
            await handles[sent % len(handles)].send("jobs", JOB)
            sent += 1
        await asyncio.sleep(PACE_EVERY)
    return sent


async def probe(handle: Any, stop: asyncio.Event) -> list[float]:
    latencies = []
    while not stop.is_set():
        await asyncio.sleep(PROBE_EVERY)
        started = time.perf_counter()
        result = await handle.send("ping", Ping(sent=started), wait=True, timeout=10)
        latencies.append(time.perf_counter() - started)
        assert result.status == "completed"
    return latencies


async def run_once(observer: str, seconds: float, number: int) -> Run:
    registry = setup(
        use={
            "worker": actor(queues={"jobs": queue(Job)}, run=work),
            "echo": actor(queues={"ping": queue(Ping, Pong)}, run=echo),
        },
        name=f"bench-dashboard-{number}",
    )
    async with registry:
        client = registry.client()
        handles = [client.worker.get_or_create([f"w{i}"]) for i in range(WORKERS)]
        echoer = client.echo.get_or_create(["probe"])
        for handle in handles:
            await handle.send("jobs", JOB)  # created and awake before the clock starts
        await echoer.send("ping", Ping(sent=0.0), wait=True)
        watching = attach(observer, registry)
        await asyncio.sleep(0.5)  # the dashboard's first ticks and overviews
        gc.collect()
        stop = asyncio.Event()
        COUNTS.processed = 0
        TICKS.seconds = 0.0
        traffic_before = (TRAFFIC.messages, TRAFFIC.bytes)
        redraws_before = watching.dashboard.redraws if watching.dashboard else 0
        wall_started, cpu_started = time.perf_counter(), time.thread_time()
        producer = asyncio.ensure_future(
            paced_producer(handles, EVENTS_PER_SECOND / EVENTS_PER_MESSAGE, stop)
        )
        prober = asyncio.ensure_future(probe(echoer, stop))
        await asyncio.sleep(seconds)
        stop.set()
        sent, latencies = await producer, await prober
        wall, loop_cpu = time.perf_counter() - wall_started, time.thread_time() - cpu_started
        figures = Run(
            observer,
            wall,
            loop_cpu,
            TICKS.seconds,
            sent,
            latencies,
            redraws=(watching.dashboard.redraws - redraws_before) if watching.dashboard else 0,
            comm_messages=TRAFFIC.messages - traffic_before[0],
            comm_bytes=TRAFFIC.bytes - traffic_before[1],
        )
        figures.backlog = sent - COUNTS.processed  # the workers kept up if this stays small
        watching.detach()
    return figures


async def measure(seconds: float, repeat: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {observer: [] for observer in OBSERVERS}
    await run_once("dashboard: Events", min(seconds, 2.0), 0)  # warm-up: imports, first widgets
    number = 1
    for _ in range(repeat):
        for observer in OBSERVERS:
            runs[observer].append(await run_once(observer, seconds, number))
            number += 1
    return runs


# --- the report -------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def med(runs: list[Run], figure: Callable[[Run], float]) -> float:
    return statistics.median(figure(run) for run in runs)


def report(runs: dict[str, list[Run]]) -> None:
    base = runs["none"]
    base_share = med(base, lambda r: r.share)
    base_p50 = med(base, lambda r: statistics.median(r.probes))
    base_p99 = med(base, lambda r: percentile(r.probes, 0.99))
    rows = [
        Row(
            "workload: events/s on the bus (when observed)",
            f"{med(runs['dashboard: Actors'], lambda r: r.events_per_second):,.0f}/s",
            f"{med(base, lambda r: r.messages / r.wall):,.0f} messages/s",
            "-",
            f"~{EVENTS_PER_SECOND:,}/s",
            None,
        ),
        Row(
            "loop CPU, no observer",
            f"{base_share:.1%} of wall",
            "-",
            "-",
            "(info)",
            None,
        ),
    ]
    for observer in OBSERVERS[1:]:
        observed = runs[observer]
        share = med(observed, lambda r: r.share)
        extra = share - base_share
        is_dashboard = observer.startswith("dashboard")
        rows.append(
            Row(
                f"{observer}: extra loop CPU",
                f"+{extra:.2%} of wall ({share:.1%} in all)",
                f"{base_share:.1%} no observer",
                f"{share / base_share:.2f}x CPU",
                f"<= +{TARGET_SHARE:.0%} of wall" if is_dashboard else "(info)",
                extra <= TARGET_SHARE if is_dashboard else None,
            )
        )
        if is_dashboard:
            reader_share = med(runs["bus reader"], lambda r: r.share)
            rows.append(
                Row(
                    "  over a bare bus reader",
                    f"{share - reader_share:+.2%} of wall",
                    f"{reader_share:.1%} bus reader",
                    f"{share / reader_share:.2f}x CPU",
                    "(info)",
                    None,
                )
            )
            rows.append(
                Row(
                    "  of which in renderer ticks",
                    f"{med(observed, lambda r: r.tick_cpu / r.wall):.2%} of wall",
                    f"{med(observed, lambda r: r.redraws / r.wall):.1f} redraws/s",
                    "-",
                    "<= 5 redraws/s",
                    med(observed, lambda r: r.redraws / r.wall) <= 5.0,
                )
            )
            rows.append(
                Row(
                    "  comm traffic to the front end",
                    f"{med(observed, lambda r: r.comm_messages / r.wall):.1f} messages/s",
                    f"{med(observed, lambda r: r.comm_bytes / r.wall) / 1024:,.1f} KB/s",
                    "-",
                    "(info)",
                    None,
                )
            )
        p50 = med(observed, lambda r: statistics.median(r.probes))
        p99 = med(observed, lambda r: percentile(r.probes, 0.99))
        rows.append(
            Row(
                "  probe send(wait=True), p50 / p99",
                f"{p50 * 1e6:,.0f} / {p99 * 1e6:,.0f} µs",
                f"{base_p50 * 1e6:,.0f} / {base_p99 * 1e6:,.0f} µs no observer",
                f"{p50 / base_p50:.2f}x / {p99 / base_p99:.2f}x",
                "(info)",
                None,
            )
        )
    print_rows(rows, "with the observer")
    print("\nEvery run (loop CPU share of wall, probe p50 µs, messages not yet taken when it ended):")
    for observer, observed in runs.items():
        cells = ", ".join(
            f"{r.share:.1%} {statistics.median(r.probes) * 1e6:,.0f} µs {r.backlog}" for r in observed
        )
        print(f"  {observer:<20} {cells}")


async def profiled(seconds: float) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    await run_once("dashboard: Events", seconds, 999)
    profiler.disable()
    print_profile("one run with the Events tab on screen", profiler, 25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--repeat", type=int, default=None, help="runs per observer (7)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (3)")
    parser.add_argument("--profile", action="store_true", help="then cProfile a run with the Events tab")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 3.0)
    repeat = args.repeat or (1 if args.quick else 7)
    comm.create_comm = SerializingComm  # every widget's messages are built as a kernel builds them

    print(
        f"agentos_nb dashboard bench: python {platform.python_version()}, {os.cpu_count()} cpus "
        f"({platform.machine()}), ipywidgets {version('ipywidgets')}, pydantic {version('pydantic')}"
    )
    print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{EVENTS_PER_SECOND:,} events/s paced for {seconds:g} s per run, {repeat} runs per observer, "
        "observers taking turns\n"
    )
    report(asyncio.run(measure(seconds, repeat)))
    if args.profile:
        asyncio.run(profiled(seconds))


if __name__ == "__main__":
    main()
