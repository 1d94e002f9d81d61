"""The HTTP face: sends per second and send(wait=True) latency over loopback, against the same work
in-process, in one run.

Run it with the project's interpreter, from the repository root:

    .venv/bin/python bench/http_face.py             # full run, under a minute on 2 cores
    .venv/bin/python bench/http_face.py --quick     # smoke run with small sizes
    .venv/bin/python bench/http_face.py --profile   # also cProfile the server and the client during (a)

The registry is served by `registry.start(port=0, token=...)` in a child process (this script
re-runs itself with `--serve`), as a plain script serves it; the client is `create_client(url)`
in this process. The machine has 2 cores: one for each side. Figures (see bench/README.md):

(a) sends per second: SENDERS coroutines, each `await h.send("tasks", task)` in a loop over
    keep-alive connections, against a `queue(Task)` whose run loop takes every message; the same
    sends in-process (`registry.client()`, the same senders, the consumer on the same loop).
    Target: >= 2,000 sends/s over HTTP. Info rows: one sender; the same client over httpx's own
    transport (httpcore) instead of create_client's; and a bare asyncio client sending
    pre-encoded requests, which shows what the server alone can take.
(b) send(wait=True) latency: round trips one after another to a completable queue answered at
    once, p50 and p95, over HTTP and in-process.

Timed parts are repeated (`--repeat`, 3 by default), HTTP and in-process taking turns; each figure
keeps its best run. The server's and the client's CPU time per send are printed after the table.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import psutil
from pydantic import BaseModel
from report import Row, print_profile, print_rows

import agentos_nb as aos
from agentos_nb import ActorContext, actor, create_client, queue, setup
from agentos_nb.http.runtime_files import RUNTIME_DIR_VARIABLE, list_runtime_files

TOKEN = "bench-token"
SENDERS = 8
TARGET_RATE = 2_000.0  # sends per second over loopback


class Task(BaseModel):
    prompt: str


class Review(BaseModel):
    file: str


class Verdict(BaseModel):
    approved: bool


async def take_tasks(c: ActorContext) -> None:
    async for _ in c.queue.iter():
        pass


async def answer_reviews(c: ActorContext) -> None:
    async for message in c.queue.iter(completable=True):
        await message.complete(Verdict(approved=True))


def bench_registry(name: str) -> aos.Registry:
    return setup(
        use={
            "sink": actor(queues={"tasks": queue(Task, max_size=1_000_000)}, run=take_tasks),
            "reviewer": actor(queues={"review": queue(Review, Verdict)}, run=answer_reviews),
        },
        name=name,
    )


@dataclass
class Sizes:
    sends: int
    roundtrips: int
    repeat: int


# --- the server, in a child process ---------------------------------------------------------------------


def serve(profile_to: str | None) -> None:
    """The child: serve the bench registry as a plain script does, until SIGTERM."""
    registry = bench_registry("bench-http")
    if profile_to is None:
        registry.start(port=0, token=TOKEN)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    registry.start(port=0, token=TOKEN)
    profiler.disable()
    profiler.dump_stats(profile_to)


class Server:
    def __init__(self, profile_to: str | None) -> None:
        self._runtime = tempfile.TemporaryDirectory()
        os.environ[RUNTIME_DIR_VARIABLE] = self._runtime.name
        argv = [sys.executable, __file__, "--serve"] + (["--profile-to", profile_to] if profile_to else [])
        self.process = subprocess.Popen(argv, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while not list_runtime_files():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.05)
        self.url = list_runtime_files()[0].url
        self.cpu = psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        times = self.cpu.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self._runtime.cleanup()


# --- the timed parts ----------------------------------------------------------------------------------


async def concurrent_sends(send: Callable[[Task], Awaitable[Any]], tasks: list[Task], senders: int) -> float:
    """Seconds for `senders` coroutines to send `tasks` between them, each one after another."""
    share = len(tasks) // senders

    async def sender(mine: list[Task]) -> None:
        for task in mine:
            await send(task)

    gc.collect()
    began = time.perf_counter()
    await asyncio.gather(*(sender(tasks[n * share : (n + 1) * share]) for n in range(senders)))
    return time.perf_counter() - began


async def raw_sends(url: str, count: int, senders: int) -> float:
    """The same requests as pre-encoded bytes over keep-alive sockets: no client library at all."""
    host, port = url.removeprefix("http://").split(":")
    body = b'{"prompt":"summarise issue #1"}'
    request = (
        b"POST /actors/sink/raw/queues/tasks HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    ) % (host.encode(), TOKEN.encode(), len(body), body)

    async def sender(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(n):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
            reply = await reader.readexactly(length)
            assert b"enqueued" in reply, reply
        writer.close()

    gc.collect()
    began = time.perf_counter()
    await asyncio.gather(*(sender(count // senders) for _ in range(senders)))
    return time.perf_counter() - began


async def round_trips(handle: Any, count: int) -> list[float]:
    """Seconds of each `send(wait=True)`, one after another."""
    took = []
    gc.collect()
    for n in range(count):
        began = time.perf_counter()
        result = await handle.send("review", Review(file=f"f{n}.py"), wait=True, timeout=30)
        took.append(time.perf_counter() - began)
        assert result.status == "completed", result
    return took


@dataclass
class Results:
    http: list[float]
    http_one: list[float]
    httpcore: list[float]
    raw: list[float]
    local: list[float]
    http_latency: list[float]
    local_latency: list[float]
    cpu: list[tuple[float, float]]
    """Server and client CPU seconds per send, for each run of `http`."""


async def measure(server: Server, sizes: Sizes, profiler: cProfile.Profile | None) -> Results:
    tasks = [Task(prompt=f"summarise issue #{n}") for n in range(sizes.sends)]
    local_registry = bench_registry("bench-in-process")
    results = Results([], [], [], [], [], [], [], [])
    async with (
        local_registry,
        create_client(server.url, TOKEN) as lean,
        create_client(server.url, TOKEN, transport=httpx.AsyncHTTPTransport()) as stock,
    ):
        local = local_registry.client()
        over_http = lean.sink.get_or_create(["a"])
        over_httpcore = stock.sink.get_or_create(["b"])
        in_process = local.sink.get_or_create(["a"])
        warm = tasks[: min(500, len(tasks))]
        for handle in (over_http, over_httpcore, in_process):  # connections opened, actors awake
            await concurrent_sends(lambda t, h=handle: h.send("tasks", t), warm, SENDERS)
        await raw_sends(server.url, len(warm), SENDERS)
        for _ in range(sizes.repeat):
            server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
            if profiler is not None:
                profiler.enable()
            results.http.append(await concurrent_sends(lambda t: over_http.send("tasks", t), tasks, SENDERS))
            if profiler is not None:
                profiler.disable()
            results.cpu.append(
                (
                    (server.cpu_seconds() - server_cpu) / len(tasks),
                    (time.process_time() - client_cpu) / len(tasks),
                )
            )
            results.local.append(
                await concurrent_sends(lambda t: in_process.send("tasks", t), tasks, SENDERS)
            )
            results.http_one.append(await concurrent_sends(lambda t: over_http.send("tasks", t), tasks, 1))
            results.httpcore.append(  # a third of the sends: it is the slowest by far
                await concurrent_sends(
                    lambda t: over_httpcore.send("tasks", t), tasks[: len(tasks) // 3], SENDERS
                )
            )
            results.raw.append(await raw_sends(server.url, len(tasks), SENDERS))
        http_reviewer = lean.reviewer.get_or_create(["r"])
        local_reviewer = local.reviewer.get_or_create(["r"])
        await round_trips(http_reviewer, 50)
        await round_trips(local_reviewer, 50)
        for _ in range(sizes.repeat):
            results.http_latency += await round_trips(http_reviewer, sizes.roundtrips)
            results.local_latency += await round_trips(local_reviewer, sizes.roundtrips)
    return results


def rate(count: int, seconds: list[float]) -> float:
    return count / min(seconds)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed repetitions (best is kept)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the server and the client during (a)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.profile_to)
        return

    sizes = (
        Sizes(sends=1_000, roundtrips=200, repeat=args.repeat or 1)
        if args.quick
        else Sizes(sends=6_000, roundtrips=1_000, repeat=args.repeat or 3)
    )
    print(
        f"agentos_nb HTTP bench: python {platform.python_version()}, {os.cpu_count()} cpus "
        f"({platform.machine()}), tornado {version('tornado')}, httpx {version('httpx')}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"agentos_nb from {os.path.dirname(aos.__file__)}; load average before the run: {load}")
    print(
        f"sizes: (a) {sizes.sends:,} sends by {SENDERS} senders, (b) {sizes.roundtrips:,} round trips; "
        f"best of {sizes.repeat}\n"
    )
    began = time.perf_counter()
    server_profile = (
        os.path.join(tempfile.gettempdir(), f"bench-http-{os.getpid()}.prof") if args.profile else None
    )
    server = Server(server_profile)
    client_profiler = cProfile.Profile() if args.profile else None
    try:
        results = asyncio.run(measure(server, sizes, client_profiler))
    finally:
        server.stop()

    http = rate(sizes.sends, results.http)
    server_cpu, client_cpu = results.cpu[results.http.index(min(results.http))]
    local = rate(sizes.sends, results.local)
    one = rate(sizes.sends, results.http_one)
    httpcore = rate(sizes.sends // 3, results.httpcore)
    raw = rate(sizes.sends, results.raw)
    p50, p95 = (1000 * percentile(results.http_latency, q) for q in (50, 95))
    local_p50, local_p95 = (1000 * percentile(results.local_latency, q) for q in (50, 95))
    rows = [
        Row(
            f"(a) sends/s over HTTP, {SENDERS} senders",
            f"{http:,.0f}/s",
            f"{local:,.0f}/s in-process",
            f"{http / local:.2f}x",
            f">= {TARGET_RATE:,.0f}/s",
            http >= TARGET_RATE,
        ),
        Row(
            "(a) sends/s over HTTP, 1 sender",
            f"{one:,.0f}/s",
            f"{local:,.0f}/s in-process",
            f"{one / local:.2f}x",
            "(info)",
            None,
        ),
        Row(
            "(a) the same over httpx's own transport",
            f"{httpcore:,.0f}/s",
            f"{http:,.0f}/s create_client's",
            f"{httpcore / http:.2f}x",
            "(info)",
            None,
        ),
        Row(
            f"(a) bare asyncio client, {SENDERS} connections",
            f"{raw:,.0f}/s",
            f"{http:,.0f}/s create_client",
            f"{raw / http:.2f}x",
            "(info)",
            None,
        ),
        Row(
            "(b) send(wait=True) p50",
            f"{p50:.2f} ms",
            f"{local_p50:.3f} ms in-process",
            f"{p50 / local_p50:.0f}x",
            "(info)",
            None,
        ),
        Row(
            "(b) send(wait=True) p95",
            f"{p95:.2f} ms",
            f"{local_p95:.3f} ms in-process",
            f"{p95 / local_p95:.0f}x",
            "(info)",
            None,
        ),
    ]
    print_rows(rows, "HTTP")
    print(
        f"\n(a) CPU per send in the best HTTP run: server {1e6 * server_cpu:.0f} us, client "
        f"{1e6 * client_cpu:.0f} us; in-process a send takes {1e6 / local:.0f} us of wall time"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.perf_counter() - began:.1f} s; load average after: {load}")
    if client_profiler is not None and server_profile is not None:
        print_profile("the client during (a)", client_profiler, 25)
        print_profile("the server (whole run)", server_profile, 25)  # type: ignore[arg-type]
        Path(server_profile).unlink()


if __name__ == "__main__":
    main()
