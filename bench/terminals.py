"""Terminal benchmark: how long a keystroke takes to come back as the terminal's echo.

    python bench/terminals.py [--keys N]

Side by side in one process: (a) bashkit's `Terminal` driven directly, in this process
(`send`, `run_until_idle`, `take_output`): the engine's own floor; (b) a VM's terminal as a
notebook uses it: the key goes to the VM's host process (`terminal_send`), and its echo comes
back through `terminal_output`, the stream the widget and the WebSocket read; (c) one `exec` of
`true` on the same VM, the round trip every VM call pays. Each prints the median and p95 per
key, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import bashkit

from agentos_nb import agent_os, setup


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def direct(keys: int) -> list[float]:
    terminal = bashkit.Terminal(rows=24, cols=80)
    terminal.run_until_idle(5)
    terminal.take_output()
    times = []
    for _ in range(keys):
        started = time.perf_counter()
        terminal.send("x")
        terminal.run_until_idle(5)
        assert terminal.take_output().endswith(b"x")
        times.append(time.perf_counter() - started)
    return times


async def hosted(keys: int) -> tuple[list[float], list[float]]:
    registry = setup(use={"vm": agent_os()}, name="bench-terminals")
    registry.start()
    await registry.ready()
    vm = registry.client().vm.get_or_create(["bench"])
    term = await vm.open_shell()
    echoes: asyncio.Queue[str] = asyncio.Queue()

    async def read() -> None:
        async for chunk in term.output():
            echoes.put_nowait(chunk.data)

    reader = asyncio.ensure_future(read())
    await echoes.get()  # the first prompt
    key_times = []
    for _ in range(keys):
        started = time.perf_counter()
        await term.send("x")
        seen = ""
        while not seen.endswith("x"):
            seen += await echoes.get()
        key_times.append(time.perf_counter() - started)
    exec_times = []
    for _ in range(keys):
        started = time.perf_counter()
        await vm.exec("true")
        exec_times.append(time.perf_counter() - started)
    reader.cancel()
    await term.close()
    await registry.stop()
    return key_times, exec_times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    keys = parser.parse_args().keys
    floor = direct(keys)
    key_times, exec_times = asyncio.run(hosted(keys))
    rows = [("(a) bashkit Terminal, in-process", floor), ("(b) VM terminal, key to echo", key_times)]
    rows.append(("(c) VM exec('true')", exec_times))
    for label, times in rows:
        median, p95 = statistics.median(times) * 1e3, percentile(times, 0.95) * 1e3
        print(f"{label:36} median {median:7.3f} ms   p95 {p95:7.3f} ms")
    print(f"(b)/(a) median: {statistics.median(key_times) / statistics.median(floor):.1f}x")
    print(f"(b)/(c) median: {statistics.median(key_times) / statistics.median(exec_times):.2f}x")


if __name__ == "__main__":
    main()
