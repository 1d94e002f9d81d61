"""What the permission gate costs a turn: the same bash tool calls with nothing to check, with a
policy that names host tools (every bash command is then parsed on the VM's host first), and in
plan mode (parsed, then run in a fresh shell), side by side in one run.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/permissions.py            # 15 turns of 20 bash calls per mode
    /work/venv/bin/python bench/permissions.py --quick    # 3 turns

Every turn is 20 `bash` calls of `wc -l notes.txt` by the offline model, then a reply, through
`send_prompt` on one VM; the three modes take turns, round after round. Nothing asks the user:
the host-tool policy names `host:*` and the VM has no host tools, so each command is parsed and
judged, and runs. Figures: the median turn per mode, and the cost per bash call over the
ungated turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from report import Row, print_rows

from agentos_nb import agent_os, setup
from agentos_nb.agents.offline import Bash, Reply, offline_model
from agentos_nb.software import common, pi

CALLS = 20


async def one_turn(vm, mode: str, permissions: list[str]) -> float:
    script = [*(Bash("wc -l notes.txt") for _ in range(CALLS)), Reply("done")]
    session = await vm.create_session("pi", model=offline_model(script), permissions=permissions)
    await vm.set_mode(session.session_id, mode)
    started = time.perf_counter()
    result = await vm.send_prompt(session.session_id, "count")
    taken = time.perf_counter() - started
    assert result.text == "done", result
    assert result.usage.tool_calls == CALLS, result
    await vm.close_session(session.session_id)
    return taken


async def main(count: int) -> None:
    registry = setup(use={"vm": agent_os(software=[common, pi])}, name="bench-permissions")
    registry.start()
    await registry.ready()
    vm = registry.client().vm.get_or_create(["bench"])
    await vm.write_file("notes.txt", "one\ntwo\nthree\n")
    modes = {
        "ungated (default mode, no policy)": ("default", []),
        "policy naming host tools: parsed first": ("default", ["host:*"]),
        "plan mode: parsed, fresh shell": ("plan", []),
    }
    taken: dict[str, list[float]] = {label: [] for label in modes}
    for repetition in range(count + 1):  # the modes take turns; the first round warms up
        for label, (mode, permissions) in modes.items():
            seconds = await one_turn(vm, mode, permissions)
            if repetition:
                taken[label].append(seconds)
    medians = {label: statistics.median(times) for label, times in taken.items()}
    await registry.stop()
    base_label = "ungated (default mode, no policy)"
    base = medians[base_label]
    rows = [
        Row(
            f"turn of {CALLS} bash calls, {label}",
            f"{seconds * 1000:,.1f} ms",
            f"{base * 1000:,.1f} ms ungated",
            f"{seconds / base:.2f}x",
            f"+{(seconds - base) / CALLS * 1000:.2f} ms per call",
            None,
        )
        for label, seconds in medians.items()
        if label != base_label
    ]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"permission gate bench: {os.cpu_count()} cpus, load average before the run {load}")
    print_rows(rows, "agentos_nb")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(3 if args.quick else 15))
