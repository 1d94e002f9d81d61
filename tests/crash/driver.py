"""Driving the crash worker: a fork server in a subprocess, and scenarios of lives on one file.

A scenario kills lives on the same SQLite file and history until it has its kills, then lets a
last life finish, and hands the history to the checker. Used by `tests/test_crash.py` and
`bench/crash_soak.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .history import Report, check
from .worker import FAULTS, INJECTED_EXIT, POINTS, LifeConfig

ROOT = Path(__file__).resolve().parents[2]
SECRET_PREFIXES = ("ANTHROPIC", "OPENAI")
KILLED = -signal.SIGKILL


class WorkerFailed(RuntimeError):
    """A life ended in a way no crash plan explains (an error in the worker itself)."""


@dataclass(frozen=True, slots=True)
class LifeResult:
    pid: int
    code: int
    ready: bool
    """Whether the registry had started when the life ended."""

    @property
    def killed(self) -> bool:
        return self.code in (INJECTED_EXIT, KILLED)


class ForkServer:
    """`python -m tests.crash.worker serve` in a subprocess with no model keys in its env."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.worker", "serve"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )

    def life(self, config: LifeConfig) -> LifeResult:
        """Live one life to its end (finished, crashed, or killed after `config.kill_after`)."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps(dataclasses.asdict(config)) + "\n")
        self._process.stdin.flush()
        reply = self._process.stdout.readline()
        if not reply:
            raise WorkerFailed(f"the fork server exited; its log:\n{self.log_tail()}")
        return LifeResult(**json.loads(reply))

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()  # our own child, by its handle
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Scenario:
    """Kill lives at `point` (an injected point, or "sigkill") until `kills` lives died."""

    point: str
    kills: int
    seed: int
    batch: int = 24
    """Jobs to send; raised by this much whenever a life finishes before its crash came."""
    synchronous: str = "NORMAL"
    max_k: int = 5
    """An injected crash comes at the K-th hit of its point, K drawn from 1..max_k."""
    kill_window: float | None = None
    """A SIGKILL comes between 0 and this many seconds after the registry started (None: as
    long as the last life that finished took, so that kills land anywhere in a life)..."""
    early_share: float = 0.2
    """...or, for this share of kills, that long after the fork: while opening, maybe migrating."""
    fault: str = "none"
    """A durability bug planted in the store (worker.FAULTS): the checker must then complain."""

    def __post_init__(self) -> None:
        if self.point not in (*POINTS, "sigkill"):
            raise ValueError(f"unknown crash point {self.point!r}")
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}")


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    kills: int
    lives: int
    killed_before_ready: int
    messages: int
    seconds: float
    report: Report
    history: Path
    problem: str | None = None
    """A life that ended in a way no crash explains (its exit code and the worker's log)."""

    @property
    def ok(self) -> bool:
        return self.problem is None and self.report.ok

    def describe(self) -> str:
        s = self.scenario
        head = (
            f"{s.point} (seed {s.seed}, synchronous={s.synchronous}, fault {s.fault}): {self.kills} kills "
            f"({self.killed_before_ready} before the registry was ready), {self.lives} lives, "
            f"{self.messages} jobs, {self.seconds:.1f}s; history {self.history}"
        )
        return "\n".join(filter(None, [head, self.problem, self.report.summary()]))


def run_scenario(server: ForkServer, workdir: Path, scenario: Scenario) -> ScenarioResult:
    """Kill and restart lives on one file, then finish, and check the whole history."""
    workdir.mkdir(parents=True, exist_ok=True)
    db, history = workdir / "crash.db", workdir / "history.txt"
    rng = random.Random(scenario.seed)
    started = time.monotonic()
    messages, kills, lives, before_ready = scenario.batch, 0, 0, 0
    base = LifeConfig(
        db=str(db),
        history=str(history),
        messages=messages,
        seed=scenario.seed,
        synchronous=scenario.synchronous,
        final=False,
        fault=scenario.fault,
        deadline=10.0,
    )
    max_lives = 3 * scenario.kills + 10
    problem = None
    window = scenario.kill_window or 0.1
    while kills < scenario.kills and problem is None:
        if lives >= max_lives:
            problem = f"{lives} lives made only {kills} kills"
            break
        if scenario.point == "sigkill":
            plan = {
                "point": "sigkill",
                "kill_after": rng.uniform(0, window),
                "kill_from": "fork" if rng.random() < scenario.early_share else "ready",
            }
        else:
            plan = {"point": scenario.point, "k": rng.randint(1, scenario.max_k)}
        life_started = time.monotonic()
        result = server.life(dataclasses.replace(base, messages=messages, **plan))
        lives += 1
        if result.code == 0 and scenario.kill_window is None:
            window = time.monotonic() - life_started
        if result.killed:
            kills += 1
            before_ready += not result.ready
        elif result.code == 0:
            messages += scenario.batch  # it finished before its crash: give the next one more to do
        else:
            problem = f"life {lives} exited with {result.code}; the worker's log ends:\n{server.log_tail()}"
    if problem is None:
        last = server.life(dataclasses.replace(base, messages=messages, final=True))
        lives += 1
        if last.code != 0:
            problem = f"the last life exited with {last.code}; the worker's log ends:\n{server.log_tail()}"
    return ScenarioResult(
        scenario=scenario,
        kills=kills,
        lives=lives,
        killed_before_ready=before_ready,
        messages=messages,
        seconds=time.monotonic() - started,
        report=check(history.read_text() if history.exists() else ""),
        history=history,
        problem=problem,
    )
