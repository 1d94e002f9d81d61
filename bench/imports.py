"""Import time: what a newcomer waits for before the first cell runs, beside `import pydantic`.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/imports.py            # 5 runs of each, the median kept
    /work/venv/bin/python bench/imports.py --runs 9

Each figure is a fresh interpreter (`python -X importtime`), so nothing is cached in memory
between runs; the runs of the three take turns, so a busy machine slows all of them alike:

(a) `import pydantic`, the peer: every figure below pays it too.
(b) the runtime: `from agentos_nb import setup, actor, queue`, summed from `-X importtime`.
    Target: < 0.3 s.
(c) a VM type with `pi` declared: `from agentos_nb import setup, agent_os, actor, queue;
    from agentos_nb.software import common, pi`, summed from `-X importtime`.
(d) a first offline turn: (c), then `setup(...)`, a VM woken, a session on the offline model
    and one turn that writes a small program and runs it, summed from `-X importtime` over
    every import the kernel made until the turn ended (the agent loop and pydantic-ai included,
    which the first session loads in a thread). Target: < 1.0 s.
(e) the same script in wall-clock time, from the interpreter's start to the turn's end: (d)
    plus the VM's host process starting and loading CPython for the program's run (no target;
    it shows what a newcomer waits for).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PEER = "import pydantic"
RUNTIME = "from agentos_nb import setup, actor, queue"
VM_TYPE = "from agentos_nb import setup, agent_os, actor, queue; from agentos_nb.software import common, pi"
FIRST_TURN = """
import asyncio
from agentos_nb import setup, agent_os, actor, queue
from agentos_nb.software import common, pi

async def main() -> None:
    registry = setup(use={"writer": agent_os(software=[common, pi])})
    async with registry:
        vm = registry.client().writer.get_or_create(["bench"])
        session = await vm.create_session("pi", model="offline")
        result = await vm.send_prompt(session.session_id, "Write /home/user/hello.py that prints hi")
        assert result.stop_reason == "end_turn", result

asyncio.run(main())
"""


def import_seconds(statement: str) -> float:
    """The cumulative time `-X importtime` gives the imports of `statement`, top-level ones summed."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True, check=True
    )
    total_us = 0
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if not name.startswith("  "):  # a top-level import; nested ones are indented further
            total_us += int(cumulative)
    return total_us / 1e6


def wall_seconds(script: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    figures: dict[str, list[float]] = {"peer": [], "runtime": [], "vm_type": [], "first_turn": [], "wall": []}
    wall_seconds(FIRST_TURN)  # warm the disk cache and the VM host's first start
    for _ in range(runs):
        figures["peer"].append(import_seconds(PEER))
        figures["runtime"].append(import_seconds(RUNTIME))
        figures["vm_type"].append(import_seconds(VM_TYPE))
        figures["first_turn"].append(import_seconds(FIRST_TURN))
        figures["wall"].append(wall_seconds(FIRST_TURN))
    median = {name: statistics.median(values) for name, values in figures.items()}
    peer = median["peer"]
    print(f"median of {runs} runs, Python {sys.version.split()[0]}")
    print(f"(a) import pydantic                      {peer * 1000:7.0f} ms   1.00x")
    for key, label, target in (
        ("runtime", "(b) setup, actor, queue", 0.3),
        ("vm_type", "(c) + agent_os, common, pi", None),
        ("first_turn", "(d) a first offline turn, imports", 1.0),
        ("wall", "(e) a first offline turn, wall clock", None),
    ):
        verdict = "" if target is None else ("PASS" if median[key] < target else "MISS") + f" (< {target} s)"
        print(f"{label:40} {median[key] * 1000:7.0f} ms {median[key] / peer:6.2f}x  {verdict}")


if __name__ == "__main__":
    main()
