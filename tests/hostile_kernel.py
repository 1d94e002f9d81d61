"""The kernel side of the hostile-command suite (`test_hostile.py`), run as a child process so
that a command that takes the kernel down fails the test instead of ending the test run.

It runs each hostile command in one VM while another VM, on another host, answers `echo ok`
every 100 ms and a ticker measures how late the kernel's loop runs; it prints one JSON line per
command with what it saw, and a last line `{"done": true}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from agentos_nb import agent_os, errors, setup
from agentos_nb.software import common

# (command, timeout): the crashes of bashkit 0.20.1, its runaways, and other spellings of them.
HOSTILE: list[tuple[str, float]] = [
    ('x=\'eval "$x"\'; eval "$x"', 5.0),
    ("printf '#!/bin/sh\\nexec ./s.sh\\n' > s.sh; chmod +x s.sh; ./s.sh", 5.0),
    ("printf '#!/bin/sh\\n./r.sh\\n' > r.sh; chmod +x r.sh; ./r.sh", 5.0),
    ("f() { f; }; f", 5.0),
    ("echo 'source ./t.sh' > t.sh; source ./t.sh", 5.0),
    ('x=\'bash -c "$x"\'; bash -c "$x"', 5.0),
    ("jq -n 'def f(x): f(x+1); f(0)'", 2.0),
    ("jq -n 'def f: f; f'", 1.0),
    ("python3 -c 'while True: pass'", 1.0),
    (
        "sqlite3 :memory: "
        "'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c;'",
        1.0,
    ),
]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def main() -> None:
    registry = setup(
        use={
            "victim": agent_os(software=[common], hosts=None, snapshot_every=0.1),
            "bystander": agent_os(software=[common], hosts=None),
        }
    )
    registry.start()
    await registry.ready()
    client = registry.client()
    victim = client.victim.get_or_create(["v"])
    bystander = client.bystander.get_or_create(["b"])
    await bystander.exec("echo ok")
    stall = 0.0
    pings: list[tuple[float, float]] = []  # (when it was sent, how long it took)
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal stall
        while not stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            stall = max(stall, time.monotonic() - before - 0.01)

    async def pinger() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            result = await bystander.exec("echo ok")
            assert result.stdout == "ok\n", result
            pings.append((sent, time.monotonic() - sent))
            await asyncio.sleep(0.1)

    background = [asyncio.create_task(ticker()), asyncio.create_task(pinger())]
    baseline = rss_mb()
    with registry.bus.subscribe(types=["vm.host_crashed"]) as crashes:
        for number, (command, timeout) in enumerate(HOSTILE):
            marker = f"marker {number}"
            await victim.write_file("marker.txt", marker)
            await asyncio.sleep(0.5)  # the snapshot that keeps the marker
            stall, pings[:] = 0.0, []
            started = time.monotonic()
            outcome: dict[str, object] = {"command": command, "timeout": timeout}
            try:
                result = await victim.exec(command, timeout=timeout)
                outcome.update(exit_code=result.exit_code, timed_out=result.timed_out)
            except errors.VmCrashed as crashed:
                outcome.update(crashed=crashed.code, signal=crashed.details.get("signal"))
            outcome["took"] = time.monotonic() - started
            await asyncio.sleep(2.5)  # a stray that outlives its command is caught in this time
            after = await victim.exec("cat marker.txt")
            outcome["marker_back"] = after.stdout == marker
            events = [getattr(event, "command", None) for event in crashes.get_nowait()]
            outcome.update(
                host_crashed=events,
                stall=stall,
                slowest_ping=max(took for _, took in pings),
                rss_growth=rss_mb() - baseline,
            )
            print(json.dumps(outcome), flush=True)
    stop.set()
    await asyncio.gather(*background)
    await registry.stop()
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
