"""Agent sessions: 100 concurrent pi sessions on 100 VMs, against pydantic-ai's `Agent.run`, in one run.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/sessions.py             # full run, about 70 s on 2 cores
    /work/venv/bin/python bench/sessions.py --quick     # smoke run with small sizes
    /work/venv/bin/python bench/sessions.py --profile   # also cProfile (a)'s concurrent turns

Every turn is the same five steps of the offline model (`offline_model(script=...)`): write a
20-line file, `wc -l` it in bash, read it, edit one line, reply "done". The four tool calls do
real work in the session's VM. Figures (see bench/README.md for what each one means):

(a) turns per second with 100 sessions, one per VM, all running turns at once: each run starts a
    new conversation per VM, runs one untimed turn in each, then times 5 more turns per session
    (500 turns). Against the same turns run by pydantic-ai's own `Agent.run` with the same
    offline model and four `tool_plain` tools doing the same work through the same VMs' handle
    actions (`write_file`, `exec`, `read_file`), histories carried from turn to turn.
    Target: >= 200 turns/s. Per-turn latency p50/p95 under that load, for both.
(b) one turn alone, turns one after another, each on a new conversation: the full path
    (`send_prompt`) against `Agent.run`; the loop alone, `PiSession.run_turn` against `Agent.run`
    with both calling the very same `AgentTools` on the same VM; both loops with tools that do
    nothing, which is what the harness docstring's claim (a five-step turn costs ~0.5 ms, ~12.5 ms
    through `Agent.run`) is about; and the same as the 16th turn of a conversation.
(c) RSS (psutil, after `gc.collect()`) before the 100 VMs exist, with them awake, and with one
    session each after one turn, idle. Target: < 2 MB per idle VM with a session. Also the
    peak RSS during the first run of (a) (before the peer has run), sampled every 5 ms.

Timed parts are repeated (`--repeat`, 3 by default), ours and the peer taking turns; (a) keeps the
median run, (b) the median of every turn timed. `--profile` then runs (a) once more under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import platform
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import psutil
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import FunctionModel
from report import Row, print_profile, print_rows

from agentos_nb import ActorHandle, agent_os, setup
from agentos_nb.actors.registry import Registry
from agentos_nb.agents.harness import PiSession
from agentos_nb.agents.offline import Bash, Edit, Read, Reply, Write, offline_model
from agentos_nb.agents.permissions import GatedCall
from agentos_nb.agents.tools import AgentTools, ToolCallPlan, ToolOutcome
from agentos_nb.software import common, pi
from agentos_nb.vm.machine import AgentVm
from agentos_nb.vm.sessions import SessionRequest
from agentos_nb.vm.shell import HOME

PATH = f"{HOME}/notes.txt"
CONTENT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(1, 21))
OLD, NEW = "line 7: the quick", "line 7: the slow"
EDITED = CONTENT.replace(OLD, NEW, 1)
TURN = [Write(PATH, CONTENT), Bash("wc -l notes.txt"), Read(PATH), Edit(PATH, OLD, NEW), Reply("done")]
PROMPT = "Write the notes, count their lines, read them, fix line 7."
INSTRUCTIONS = "You are a coding agent working in a VM through four tools: read, write, edit and bash."

TARGET_RATE = 200.0  # turns per second, 100 sessions at once
TARGET_KB = 2048.0  # per idle VM with a session
HISTORY_TURNS = 15  # turns of history before the last figures of (b), to show how a turn's cost grows
LATER = f"turn {HISTORY_TURNS + 1}"

# --- the peer: pydantic-ai's Agent.run ----------------------------------------------------------------


def peer_on_handle(model: FunctionModel, h: ActorHandle) -> Agent[None, str]:
    """`Agent.run` with the four tools a user would write: the same work, through the VM's handle."""
    agent: Agent[None, str] = Agent(model, instructions=INSTRUCTIONS)

    @agent.tool_plain
    async def write(path: str, content: str) -> str:
        await h.write_file(path, content)
        return f"Wrote {len(content.encode())} bytes to {path}"

    @agent.tool_plain
    async def bash(command: str) -> str:
        run = await h.exec(command)
        return run.stdout + run.stderr

    @agent.tool_plain
    async def read(path: str) -> str:
        text = await h.read_file(path, encoding="utf-8")
        assert isinstance(text, str)
        return text

    @agent.tool_plain
    async def edit(path: str, old_text: str, new_text: str) -> str:
        old = await h.read_file(path, encoding="utf-8")
        assert isinstance(old, str)
        assert old.count(old_text) == 1
        await h.write_file(path, old.replace(old_text, new_text, 1))
        return f"Edited {path}"

    return agent


def peer_on_tools(
    model: FunctionModel, call: Callable[[str, dict[str, Any]], Awaitable[str]]
) -> Agent[None, str]:
    """`Agent.run` whose four tools hand their arguments to `call(name, args)`: the loop alone."""
    agent: Agent[None, str] = Agent(model, instructions=INSTRUCTIONS)

    @agent.tool_plain
    async def write(path: str, content: str) -> str:
        return await call("write", {"path": path, "content": content})

    @agent.tool_plain
    async def bash(command: str) -> str:
        return await call("bash", {"command": command})

    @agent.tool_plain
    async def read(path: str) -> str:
        return await call("read", {"path": path})

    @agent.tool_plain
    async def edit(path: str, old_text: str, new_text: str) -> str:
        return await call("edit", {"path": path, "old_text": old_text, "new_text": new_text})

    return agent


class PeerSession:
    """A conversation through `Agent.run`, its history carried from turn to turn as a session's is."""

    def __init__(self, agent: Agent[None, str]) -> None:
        self.agent = agent
        self.history: list[ModelMessage] = []
        self._start: list[ModelMessage] = []

    async def turn(self) -> str:
        result = await self.agent.run(PROMPT, message_history=self.history)
        self.history = result.all_messages()
        return result.output

    async def prime(self, turns: int) -> None:
        """Run `turns` turns and make their history the one every `reset` goes back to."""
        for _ in range(turns):
            assert await self.turn() == "done"
        self._start = list(self.history)

    async def reset(self) -> None:
        self.history = list(self._start)


class LoopSession:
    """A `PiSession` driven directly (no actor, no session table), reopened on a saved history by
    `reset`, as a VM reopens its sessions on wake."""

    def __init__(self, vm: AgentVm, model: FunctionModel, *, no_tools: bool) -> None:
        self._vm = vm
        self._model = model
        self._no_tools = no_tools
        self._saved: bytes | None = None
        self.session: PiSession | None = None

    async def turn(self) -> str:
        assert self.session is not None
        return (await self.session.run_turn(PROMPT, lambda _update: None)).text

    async def prime(self, turns: int) -> None:
        await self.reset()
        for _ in range(turns):
            assert await self.turn() == "done"
        assert self.session is not None
        self._saved = self.session.export() if turns else None

    async def reset(self) -> None:
        request = SessionRequest(
            session_id="bench",
            vm=self._vm,
            cwd=HOME,
            env={},
            model=self._model,
            additional_instructions=None,
            saved=self._saved,
        )
        session = await pi.open_session(request)
        assert isinstance(session, PiSession)
        if self._no_tools:
            session._tools = NoTools()  # type: ignore[assignment]  # a bench-only stand-in
        self.session = session


class PromptSession:
    """The full path: a new session of the VM for every turn (`create_session`, then `send_prompt`)."""

    def __init__(self, h: ActorHandle, model: FunctionModel) -> None:
        self._h = h
        self._model = model
        self._session_id: str | None = None

    async def turn(self) -> str:
        assert self._session_id is not None
        return (await self._h.send_prompt(self._session_id, PROMPT)).text

    async def prime(self, turns: int) -> None:
        assert turns == 0

    async def reset(self) -> None:
        if self._session_id is not None:
            await self._h.close_session(self._session_id)
        self._session_id = (await self._h.create_session("pi", model=self._model)).session_id


Conversation = PeerSession | LoopSession | PromptSession


class NoTools:
    """Stands in for a PiSession's `AgentTools`: every call succeeds at once and does nothing."""

    def plan(self, name: str, args: dict[str, Any]) -> ToolCallPlan:
        return ToolCallPlan(name, "other")

    async def gated_call(
        self, tool_call_id: str, name: str, args: dict[str, Any], plan: ToolCallPlan, *, judge_bash: bool
    ) -> GatedCall:
        return GatedCall(tool_call_id, plan.title, plan.kind, (name,), read_only=True)

    async def run(self, name: str, args: dict[str, Any], *, read_only: bool = False) -> ToolOutcome:
        return ToolOutcome("ok", "completed", [])

    def invalid_json(self, name: str) -> ToolOutcome:
        return ToolOutcome("bad", "failed", [])


async def no_tool(_name: str, _args: dict[str, Any]) -> str:
    return "ok"


# --- measuring ----------------------------------------------------------------------------------------


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


class PeakRss:
    """Samples this process's RSS every 5 ms while entered (a task, so the samples wait for the
    loop: RSS seldom falls, so a late sample still sees a peak); `peak` in MB."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak = max(self.peak, process.memory_info().rss / 2**20)
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self.peak = max(self.peak, psutil.Process().memory_info().rss / 2**20)
        self._task.cancel()


async def concurrent(turn: list[Callable[[], Awaitable[str]]], turns: int) -> tuple[float, list[float]]:
    """Every session runs `turns` turns one after another, all sessions at once: (seconds, latencies)."""
    latencies: list[float] = []

    async def session(run: Callable[[], Awaitable[str]]) -> None:
        for _ in range(turns):
            start = time.perf_counter()
            text = await run()
            latencies.append(time.perf_counter() - start)
            assert text == "done", text

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(session(run) for run in turn))
    return time.perf_counter() - start, latencies


async def one_by_one(runs: dict[str, Conversation], turns: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of each timed turn, each turn on a conversation just `reset` to its starting history,
    `turns` turns at a time per run, the runs interleaved."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for name, run in runs.items():  # warm-up
        for _ in range(3):
            await run.reset()
            assert await run.turn() == "done", name
    for _ in range(repeat):
        for name, run in runs.items():
            gc.collect()
            for _ in range(turns):
                await run.reset()
                start = time.perf_counter()
                text = await run.turn()
                times[name].append(time.perf_counter() - start)
                assert text == "done", (name, text)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Sizes:
    vms: int
    turns: int  # per session per timed run of (a)
    alone: int  # turns per timed run of (b)
    repeat: int


@dataclass
class Figures:
    ours_seconds: list[float]
    peer_seconds: list[float]
    ours_latency: list[float]
    peer_latency: list[float]
    alone: dict[str, list[float]]
    rss_start: float
    rss_vms: float
    rss_sessions: float
    rss_peak: float
    awake: int
    history: int


def vm_of(registry: Registry, h: ActorHandle) -> AgentVm:
    """A bench-only peek: the AgentVm object behind an awake VM's handle."""
    for instance in registry._instances.values():
        if instance.ref.key == h.key:
            return instance.context.vars  # type: ignore[no-any-return]
    raise LookupError(h)


async def check_turn(h: ActorHandle, session_id: str) -> None:
    """The turn just run wrote, counted, read and edited the file, and every tool call succeeded."""
    assert await h.read_file(PATH, encoding="utf-8") == EDITED
    updates = await h.get_session_events(session_id)
    statuses = [u.status for u in updates if u.session_update == "tool_call_update"]
    assert statuses[-4:] == ["completed"] * 4, statuses
    outputs = [u.raw_output for u in updates if u.session_update == "tool_call_update"][-4:]
    assert outputs[1].strip() == "20 notes.txt", outputs
    assert outputs[2] == CONTENT, outputs


async def measure(sizes: Sizes) -> Figures:
    n = sizes.vms
    registry = setup(use={"vm": agent_os(software=[common, pi])}, name="bench-sessions")
    registry.start()
    try:
        await registry.ready()
        client = registry.client()

        # Warm-up on a VM of its own: per-type boot files, imports and code paths are made once.
        warm = client.vm.get_or_create(["warm"])
        session = await warm.create_session("pi", model=offline_model(script=TURN * 2))
        for _ in range(2):
            assert (await warm.send_prompt(session.session_id, PROMPT)).text == "done"
        await check_turn(warm, session.session_id)

        # (c) memory: before, with the VMs awake, with a session each after one turn.
        await asyncio.sleep(0.1)
        rss_start = rss_mb()
        handles = [client.vm.get_or_create([f"vm-{i}"]) for i in range(n)]
        for h in handles:
            assert await h.exists(HOME)
        await asyncio.sleep(0.1)
        rss_vms = rss_mb()
        # Every conversation of (a) is one untimed turn, then `turns` timed ones; the offline
        # model keeps no state, so one model object serves every session.
        model = offline_model(script=TURN * (1 + sizes.turns))
        sessions = [(await h.create_session("pi", model=model)).session_id for h in handles]
        warmup = await asyncio.gather(
            *(h.send_prompt(s, PROMPT) for h, s in zip(handles, sessions, strict=True))
        )
        assert all(r.text == "done" and r.usage.tool_calls == 4 for r in warmup), warmup[0]
        await check_turn(handles[-1], sessions[-1])
        await asyncio.sleep(0.1)
        rss_sessions = rss_mb()
        keys = {h.key for h in handles}
        awake = sum(1 for i in registry._instances.values() if i.ref.key in keys)

        # (a) all sessions at once. Each run starts new conversations (untimed: new sessions or
        # histories, and their first turn), so that every run times the same turns 2 to 6.
        def ours_turn(h: ActorHandle, session_id: str) -> Callable[[], Awaitable[str]]:
            async def run() -> str:
                return (await h.send_prompt(session_id, PROMPT)).text

            return run

        async def ours_run() -> tuple[float, list[float]]:
            for h, session_id in zip(handles, sessions, strict=True):
                await h.close_session(session_id)
            sessions[:] = [(await h.create_session("pi", model=model)).session_id for h in handles]
            turns = [ours_turn(h, s) for h, s in zip(handles, sessions, strict=True)]
            assert all(text == "done" for text in await asyncio.gather(*(run() for run in turns)))
            timed = await concurrent(turns, sizes.turns)
            await check_turn(handles[0], sessions[0])
            return timed

        peer_model = offline_model(script=TURN * (1 + sizes.turns))
        peers = [PeerSession(peer_on_handle(peer_model, h)) for h in handles]

        async def peer_run() -> tuple[float, list[float]]:
            for peer in peers:
                await peer.reset()
            assert all(text == "done" for text in await asyncio.gather(*(p.turn() for p in peers)))
            timed = await concurrent([p.turn for p in peers], sizes.turns)
            assert await handles[0].read_file(PATH, encoding="utf-8") == EDITED
            return timed

        figures: dict[str, list[float]] = {"ours": [], "peer": [], "ours_lat": [], "peer_lat": []}
        peak = PeakRss()
        for repetition in range(sizes.repeat):
            if repetition == 0:  # before the peer has run at all: RSS never goes back down
                async with peak:
                    seconds, latencies = await ours_run()
            else:
                seconds, latencies = await ours_run()
            figures["ours"].append(seconds)
            figures["ours_lat"] += latencies
            seconds, latencies = await peer_run()
            figures["peer"].append(seconds)
            figures["peer_lat"] += latencies
        history = len(peers[0].history)

        # (b) one turn at a time: on a new conversation, and later in one.
        h = handles[0]
        vm = vm_of(registry, h)
        fresh = offline_model(script=TURN)
        tools = AgentTools(vm, HOME)

        async def call_tool(name: str, args: dict[str, Any]) -> str:
            return (await tools.run(name, args)).text

        later = offline_model(script=TURN * (HISTORY_TURNS + 1))
        runs: dict[str, Conversation] = {
            "send_prompt": PromptSession(h, fresh),
            "Agent.run, handle actions": PeerSession(peer_on_handle(fresh, h)),
            "PiSession.run_turn": LoopSession(vm, fresh, no_tools=False),
            "Agent.run, AgentTools": PeerSession(peer_on_tools(fresh, call_tool)),
            "PiSession.run_turn, no-op tools": LoopSession(vm, fresh, no_tools=True),
            "Agent.run, no-op tools": PeerSession(peer_on_tools(fresh, no_tool)),
            f"PiSession.run_turn, no-op tools, {LATER}": LoopSession(vm, later, no_tools=True),
            f"Agent.run, no-op tools, {LATER}": PeerSession(peer_on_tools(later, no_tool)),
        }
        for name, run in runs.items():
            await run.prime(HISTORY_TURNS if name.endswith(LATER) else 0)
        alone = await one_by_one(runs, sizes.alone, sizes.repeat)
    finally:
        await registry.stop()
    return Figures(
        ours_seconds=figures["ours"],
        peer_seconds=figures["peer"],
        ours_latency=figures["ours_lat"],
        peer_latency=figures["peer_lat"],
        alone=alone,
        rss_start=rss_start,
        rss_vms=rss_vms,
        rss_sessions=rss_sessions,
        rss_peak=peak.peak,
        awake=awake,
        history=history,
    )


# --- profiling ----------------------------------------------------------------------------------------


async def profiled(vms: int, turns: int) -> cProfile.Profile:
    """cProfile of `turns` turns per session on `vms` sessions at once, after a warm-up turn."""
    registry = setup(use={"vm": agent_os(software=[common, pi])}, name="bench-sessions-profile")
    registry.start()
    try:
        await registry.ready()
        client = registry.client()
        model = offline_model(script=TURN * (1 + turns))
        handles = [client.vm.get_or_create([f"p-{i}"]) for i in range(vms)]
        sessions = [(await h.create_session("pi", model=model)).session_id for h in handles]
        await asyncio.gather(*(h.send_prompt(s, PROMPT) for h, s in zip(handles, sessions, strict=True)))

        async def session(h: ActorHandle, session_id: str) -> None:
            for _ in range(turns):
                assert (await h.send_prompt(session_id, PROMPT)).text == "done"

        profiler = cProfile.Profile()
        profiler.enable()
        await asyncio.gather(*(session(h, s) for h, s in zip(handles, sessions, strict=True)))
        profiler.disable()
    finally:
        await registry.stop()
    return profiler


# --- reporting ----------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed repetitions")
    parser.add_argument("--profile", action="store_true", help="also cProfile a smaller concurrent run")
    args = parser.parse_args()

    if args.quick:
        sizes = Sizes(vms=100, turns=1, alone=20, repeat=args.repeat or 1)
    else:
        sizes = Sizes(vms=100, turns=5, alone=60, repeat=args.repeat or 3)

    print(
        f"agentos_nb sessions bench: python {platform.python_version()}, {os.cpu_count()} cpus "
        f"({platform.machine()}), pydantic-ai-slim {version('pydantic-ai-slim')}, "
        f"pydantic {version('pydantic')}, bashkit {version('bashkit')}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before the run: {load}")
    print(
        f"sizes: (a) {sizes.vms} sessions x {sizes.turns} turns of 5 steps per run, (b) {sizes.alone} turns "
        f"one by one per run; {sizes.repeat} runs, ours and the peer taking turns\n"
    )

    began = time.perf_counter()
    f = asyncio.run(measure(sizes))
    turns = sizes.vms * sizes.turns
    ours_rate = turns / statistics.median(f.ours_seconds)
    peer_rate = turns / statistics.median(f.peer_seconds)
    per_vm_kb = (f.rss_sessions - f.rss_start) * 1024 / sizes.vms
    vm_only_kb = (f.rss_vms - f.rss_start) * 1024 / sizes.vms
    session_kb = (f.rss_sessions - f.rss_vms) * 1024 / sizes.vms
    a = {name: statistics.median(times) for name, times in f.alone.items()}

    def alone_row(figure: str, ours: str, peer: str, target: str = "(info)") -> Row:
        return Row(
            figure,
            f"{ms(a[ours])} {ours}",
            f"{ms(a[peer])} {peer}",
            f"{a[peer] / a[ours]:.1f}x faster",
            target,
            None,
        )

    rows = [
        Row(
            f"(a) {sizes.vms} sessions at once, turns/s",
            f"{ours_rate:,.0f}/s",
            f"{peer_rate:,.0f}/s Agent.run",
            f"{ours_rate / peer_rate:.2f}x",
            f">= {TARGET_RATE:.0f}/s",
            ours_rate >= TARGET_RATE,
        ),
        Row(
            "(a) turn latency under load, p50",
            ms(statistics.median(f.ours_latency)),
            ms(statistics.median(f.peer_latency)),
            f"{statistics.median(f.peer_latency) / statistics.median(f.ours_latency):.2f}x",
            "(info)",
            None,
        ),
        Row(
            "(a) turn latency under load, p95",
            ms(percentile(f.ours_latency, 0.95)),
            ms(percentile(f.peer_latency, 0.95)),
            f"{percentile(f.peer_latency, 0.95) / percentile(f.ours_latency, 0.95):.2f}x",
            "(info)",
            None,
        ),
        alone_row("(b) one turn alone, full path", "send_prompt", "Agent.run, handle actions"),
        alone_row("(b) the loop alone, same AgentTools", "PiSession.run_turn", "Agent.run, AgentTools"),
        alone_row(
            "(b) the loop alone, no-op tools",
            "PiSession.run_turn, no-op tools",
            "Agent.run, no-op tools",
            "docstring: ~0.5 vs ~12.5 ms",
        ),
        alone_row(
            f"(b) the same, turn {HISTORY_TURNS + 1} of a conversation",
            f"PiSession.run_turn, no-op tools, {LATER}",
            f"Agent.run, no-op tools, {LATER}",
        ),
        Row(
            f"(c) RSS, {sizes.vms} idle VMs with a session",
            f"+{f.rss_sessions - f.rss_start:.1f} MB ({per_vm_kb:,.0f} KB each)",
            f"{f.rss_start:.1f} MB before",
            "-",
            f"< {TARGET_KB:,.0f} KB each",
            per_vm_kb < TARGET_KB and f.awake == sizes.vms,
        ),
        Row(
            "(c)   of which the VMs, awake",
            f"+{f.rss_vms - f.rss_start:.1f} MB ({vm_only_kb:,.0f} KB each)",
            "same",
            "-",
            "(info)",
            None,
        ),
        Row(
            "(c)   of which a session + 1 turn",
            f"+{f.rss_sessions - f.rss_vms:.1f} MB ({session_kb:,.0f} KB each)",
            "same",
            "-",
            "(info)",
            None,
        ),
        Row("(c) peak RSS, first run of (a)", f"{f.rss_peak:.1f} MB", "-", "-", "(info)", None),
    ]
    print_rows(rows, "agentos_nb")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n(a) runs, seconds for {turns} turns: ours {', '.join(f'{s:.2f}' for s in f.ours_seconds)}; "
        f"peer {', '.join(f'{s:.2f}' for s in f.peer_seconds)} (median counts). "
        f"A conversation held {f.history} messages at the end."
    )
    print(
        f"(c) {f.awake} of {sizes.vms} VMs awake when measured; "
        f"process peak (ru_maxrss, the peer's runs included): {maxrss:.1f} MB"
    )
    print(f"\ntotal time {time.perf_counter() - began:.1f} s")

    if args.profile:
        profiler = asyncio.run(profiled(sizes.vms, sizes.turns))
        print_profile(
            f"(a): {sizes.vms} sessions x {sizes.turns} turns at once",
            profiler,
            30,
            ours=("agentos_nb", "pydantic_ai"),
        )


if __name__ == "__main__":
    main()
