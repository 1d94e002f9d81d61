"""VM processes (`spawn`, issue 18): streamed output against `exec` of the same script, in one
process run.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/processes.py            # full run, about half a minute on 2 cores
    /work/venv/bin/python bench/processes.py --quick    # smoke run with small sizes

Figures (see bench/README.md):

(a) A script printing N lines of 100 bytes one `echo` at a time, run to its end as a process
    (`spawn`, then reading `process_output` until it ends) against the same script run by `exec`
    (which returns all of its output at once). Seconds each, and the ratio.
(b) While (a)'s process runs: the kernel loop's worst delay (a 5 ms sleep timed over and over),
    against the same measure during the `exec`.
(c) A flood: `yes`-like output far past the ring (ShellLimits.max_process_output, 1 MiB): what
    the kernel's resident memory grew by (ru_maxrss), the bytes printed and the bytes kept.

Each side is warmed up first; the figures are the best of `--repeat` runs (3 by default), the two
sides interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable

from agentos_nb import agent_os, setup
from agentos_nb.software import common


async def _loop_delays(done: asyncio.Event) -> float:
    worst = 0.0
    loop = asyncio.get_running_loop()
    while not done.is_set():
        started = loop.time()
        await asyncio.sleep(0.005)
        worst = max(worst, loop.time() - started - 0.005)
    return worst


async def _timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Seconds `work` took, and the loop's worst delay meanwhile."""
    done = asyncio.Event()
    watcher = asyncio.ensure_future(_loop_delays(done))
    gc.collect()
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done.set()
    return took, await watcher


async def main(lines: int, flood_lines: int, repeat: int) -> None:
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}, {lines:,} lines")
    registry = setup(use={"vm": agent_os(software=[common])}, name="bench-processes")
    registry.start()
    await registry.ready()
    vm = registry.client().vm.get_or_create(["bench"])
    line = "x" * 99
    script = f"for i in $(seq 1 {lines}); do echo {line}; done"

    async def streamed() -> None:
        process = await vm.spawn(script, timeout=600)
        printed = 0
        async for chunk in vm.process_output(process.pid):
            printed = chunk.end
        assert await vm.wait(process.pid) == 0
        assert printed == lines * 100, printed

    async def collected() -> None:
        result = await vm.exec(script, timeout=600)
        assert result.exit_code == 0

    await streamed()
    await collected()  # warm-up
    spawn_runs, exec_runs = [], []
    for _ in range(repeat):
        spawn_runs.append(await _timed(streamed))
        exec_runs.append(await _timed(collected))
    spawn_time, exec_time = min(t for t, _ in spawn_runs), min(t for t, _ in exec_runs)
    spawn_delay, exec_delay = min(d for _, d in spawn_runs), min(d for _, d in exec_runs)
    ratio = spawn_time / exec_time
    print(f"(a) spawn + process_output {spawn_time:.3f} s, exec {exec_time:.3f} s: {ratio:.2f}x")
    print(f"(b) worst loop delay: spawn {spawn_delay * 1000:.1f} ms, exec {exec_delay * 1000:.1f} ms")

    flood = f"for i in $(seq 1 {flood_lines}); do echo {'y' * 999}; done"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    process = await vm.spawn(flood, timeout=600)
    took, delay = await _timed(lambda: vm.wait(process.pid, timeout=600))
    info = await vm.get_process(process.pid)
    kept = sum(chunk.end - chunk.offset for chunk in await vm.process_output(process.pid))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(
        f"(c) flood: {info.output_bytes / 2**20:.1f} MiB printed in {took:.2f} s, "
        f"{kept / 2**10:.0f} KiB kept, kernel max RSS +{grown / 1024:.1f} MiB, "
        f"worst loop delay {delay * 1000:.1f} ms"
    )
    await registry.stop(grace=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(
        main(
            lines=2_000 if options.quick else 50_000,
            flood_lines=2_000 if options.quick else 20_000,
            repeat=1 if options.quick else options.repeat,
        )
    )
