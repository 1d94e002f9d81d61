"""The crash soak: the crash tests of `tests/test_crash.py`, for minutes instead of seconds.

Scenarios run one after another until the time is up, cycling through the injected crash
points (`os._exit` after send, after receive, after the side effect, before, during and after
complete, and in the store's transaction after the state or the completion is written) and
SIGKILL at random moments, with `synchronous=NORMAL` and `FULL` in turn. Each
scenario kills and restarts a registry on one SQLite file `--kills` times, lets a last life
finish, and checks the whole history (see `tests/crash/history.py`). Not a benchmark: it prints
totals and exits 1 if any history broke a property.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/crash_soak.py                 # 5 minutes
    /work/venv/bin/python bench/crash_soak.py --minutes 0.5   # a short one
    /work/venv/bin/python bench/crash_soak.py --only sigkill --kills 100 --batch 60
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.crash.driver import ForkServer, Scenario, ScenarioResult, run_scenario  # noqa: E402
from tests.crash.worker import POINTS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to keep starting scenarios")
    parser.add_argument("--kills", type=int, default=40, help="kills per scenario, on one file")
    parser.add_argument("--batch", type=int, default=32, help="jobs per scenario (more if lives finish)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first scenario")
    parser.add_argument(
        "--only", choices=[*POINTS, "sigkill"], action="append", help="crash this way only (repeatable)"
    )
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the files of passing scenarios too")
    args = parser.parse_args()

    points = args.only or [*POINTS, "sigkill", "sigkill"]  # random kills get twice the turns
    levels = ["NORMAL", "FULL"] if args.synchronous == "both" else [args.synchronous]
    workdir = Path(tempfile.mkdtemp(prefix="agentos-crash-soak-"))
    deadline = time.monotonic() + args.minutes * 60
    results: list[ScenarioResult] = []
    print(f"crash soak: {args.minutes} min, {args.kills} kills per scenario, files under {workdir}")
    with ForkServer(workdir / "worker.log") as server:
        for n, (point, level) in enumerate(itertools.cycle(list(itertools.product(points, levels)))):
            if time.monotonic() >= deadline:
                break
            scenario = Scenario(
                point=point, kills=args.kills, seed=args.seed + n, batch=args.batch, synchronous=level
            )
            directory = workdir / f"{n:04d}-{point}-{level.lower()}"
            result = run_scenario(server, directory, scenario)
            results.append(result)
            stats = result.report.stats
            verdict = "ok" if result.ok else "FAILED"
            print(
                f"{n:4d} {point:<16} {level:<6} {verdict:<6} kills {result.kills:3d}  "
                f"lives {result.lives:3d}  jobs {result.messages:4d}  redeliveries {stats.redeliveries:3d}  "
                f"unacked sends {stats.unacknowledged_sends:3d}  {result.seconds:5.1f}s",
                flush=True,
            )
            if not result.ok:
                print(result.describe(), flush=True)
            elif not args.keep:
                shutil.rmtree(directory)

    failed = [r for r in results if not r.ok]
    totals = {
        "scenarios": len(results),
        "kills": sum(r.kills for r in results),
        "lives": sum(r.lives for r in results),
        "acknowledged messages": sum(r.report.stats.acknowledged for r in results),
        "deliveries": sum(r.report.stats.deliveries for r in results),
        "redeliveries": sum(r.report.stats.redeliveries for r in results),
        "repeated side effects": sum(r.report.stats.repeated_effects for r in results),
        "sends cut off before acknowledgement": sum(r.report.stats.unacknowledged_sends for r in results),
        "completions cut off before being recorded": sum(
            r.report.stats.completed_unrecorded for r in results
        ),
        "violations": sum(len(r.report.violations) for r in results),
        "failed scenarios": len(failed),
    }
    print()
    for name, value in totals.items():
        print(f"{name:>42}: {value}")
    if failed:
        print(f"\nfailed histories are kept under {workdir}")
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
