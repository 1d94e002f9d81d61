"""Real languages in an agent VM (issue 22) against the same programs on the host, in one run:
`python3` (CPython on WASI) beside host CPython, `node` (Deno, confined, on a working copy) beside
host Deno. bench/shell.py prints these rows after its own; alone:

    /work/venv/bin/python bench/languages.py

Each figure is the median of several warm runs (the first run of each side is not timed: it loads
the compiled interpreter, or Deno's cache). Needs `agentos-nb prepare` done on this machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from report import Row, print_rows

from agentos_nb import ActorHandle, ShellLimits, agent_os, setup
from agentos_nb.software import common
from agentos_nb.vm.languages import python_wasi
from agentos_nb.vm.languages.deno import deno_binary

PROJECT = "/home/user/bench"
PROGRAM = '''\
"""A 50-line program: parse log lines, aggregate, check with unittest, write a report."""
import json
import re
import unittest
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

LINE = re.compile(r"^(?P<day>\\d{4}-\\d\\d-\\d\\d) (?P<level>[A-Z]+) (?P<text>.+)$")


@dataclass
class Summary:
    lines: int
    levels: dict
    longest: str


def summarise(text):
    levels, longest, count = Counter(), "", 0
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        count += 1
        levels[match["level"]] += 1
        longest = max(longest, match["text"], key=len)
    return Summary(count, dict(sorted(levels.items())), longest)


class SummaryTest(unittest.TestCase):
    def test_counts(self):
        levels = summarise("2024-01-01 INFO a\\n2024-01-01 WARN bb\\n").levels
        self.assertEqual(levels, {"INFO": 1, "WARN": 1})

    def test_skips(self):
        self.assertEqual(summarise("garbage").lines, 0)


def main():
    levels = ("INFO", "WARN", "ERROR")
    text = "\\n".join(f"2024-01-{d % 28 + 1:02d} {levels[d % 3]} event {d}" for d in range(500))
    Path("log.txt").write_text(text)
    summary = summarise(Path("log.txt").read_text())
    Path("summary.json").write_text(json.dumps(asdict(summary), indent=1))
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(SummaryTest)
    result = unittest.TextTestRunner(verbosity=0, stream=open("tests.log", "w")).run(suite)
    print(summary.lines, summary.levels, result.wasSuccessful())


main()
'''
TESTS = "".join(f"def test_{n}():\n    assert sum(range({n})) == {n * (n - 1) // 2}\n\n\n" for n in range(10))
TYPESCRIPT = """\
interface Point { x: number; y: number }
const points: Point[] = Array.from({ length: 1000 }, (_, i) => ({ x: i, y: (i * 7) % 13 }));
const far = points.filter((p) => Math.hypot(p.x, p.y) > 500).map((p) => `${p.x},${p.y}`);
console.log(far.length, far[0]);
"""
# The host's pytest without the plugins of this environment (the VM's has none either).
HOST_ENV = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "NO_COLOR": "1"}
FILES = {"program.py": PROGRAM, "test_ten.py": TESTS, "main.ts": TYPESCRIPT}


async def median_of(run: Callable[[], Awaitable[object]], times: int) -> float:
    await run()  # warm-up, not timed
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        await run()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent)


async def host(*command: str, cwd: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=HOST_ENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed on the host: {err.decode()[-500:]}")


def in_vm(vm: ActorHandle, command: str) -> Callable[[], Awaitable[object]]:
    async def run() -> None:
        result = await vm.exec(command, cwd=PROJECT)
        if result.exit_code != 0:
            raise RuntimeError(f"{command} failed in the VM: {result.stderr[-500:]}")

    return run


def on_host(*command: str, cwd: Path) -> Callable[[], Awaitable[object]]:
    return lambda: host(*command, cwd=cwd)


async def measure(times: int) -> list[Row]:
    registry = setup(
        use={"vm": agent_os(software=[common], limits=ShellLimits(timeout=120))},
        store="memory",
        name="bench-lang",
    )
    registry.start()
    await registry.ready()
    vm = registry.client().vm.get_or_create(["bench"])
    await vm.write_files({f"{PROJECT}/{name}": text for name, text in FILES.items()})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-languages-") as directory:
        root = Path(directory)
        for name, text in FILES.items():
            (root / name).write_text(text)
        deno = deno_binary()
        cases = [
            (
                "`python3 -c 'print(1)'`, warm",
                "python3 -c 'print(1)'",
                (sys.executable, "-c", "print(1)"),
                0.1,
            ),
            ("python3: a 50-line program", "python3 program.py", (sys.executable, "program.py"), None),
            (
                "`python3 -m pytest` on 10 tests",
                "python3 -m pytest -q test_ten.py",
                (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ten.py"),
                5.0,
            ),
            (
                "`node -e 'console.log(1)'`",
                "node -e 'console.log(1)'",
                (deno, "eval", "console.log(1)"),
                None,
            ),
            ("node: a TypeScript file", "node main.ts", (deno, "run", "--no-config", "main.ts"), None),
        ]
        for figure, command, baseline, target in cases:
            vm_time = await median_of(in_vm(vm, command), times)
            host_time = await median_of(on_host(*baseline, cwd=root), times)
            label = "host CPython" if baseline[0] == sys.executable else "host Deno"
            rows.append(
                Row(
                    figure,
                    f"{vm_time * 1e3:.0f} ms",
                    f"{host_time * 1e3:.0f} ms {label}",
                    f"{vm_time / host_time:.1f}x the time",
                    "(info)" if target is None else f"< {target * 1e3:g} ms",
                    None if target is None else vm_time < target,
                )
            )
    await registry.stop(grace=0)
    return rows


def language_rows(times: int = 10) -> list[Row]:
    """The rows, or none (with a line saying why) where CPython is not prepared on this machine."""
    if not python_wasi.prepared():
        print("\nlanguages: skipped, CPython is not prepared on this machine (run `agentos-nb prepare`)")
        return []
    return asyncio.run(measure(times))


if __name__ == "__main__":
    print_rows(language_rows(), "agent VM")
