"""Agent VM shell speed (issue 3) against real bash, in one process run.

Run it with the project's interpreter, from the repository root:

    /work/venv/bin/python bench/shell.py                # full run, well under a minute on 2 cores
    /work/venv/bin/python bench/shell.py --quick        # smoke run with small sizes
    /work/venv/bin/python bench/shell.py --no-breakdown # skip the per-layer split of (a) and (c)

Figures (see bench/README.md for what each one means):

(a) `await h.exec("echo hi | wc -c")` in an agent VM, 1,000 calls one after another, against the
    same line run by a real `/bin/bash -c` subprocess per call (`asyncio.create_subprocess_exec`,
    stdout captured). Target: the VM is at least 10x faster per call.
(b) `grep -rn TODO .` over 1,000 generated source files (40,000 lines, a few hundred matches)
    under /home/user/tree of a VM, against `bash -c 'grep -rn TODO .'` (spawn included) over
    identical files in a temporary directory. Both outputs must hold the same matching lines.
    Target: the VM takes at most 2x the real grep's time.
(c) `await h.exec("agentos-bench noop")`, a host tool that does nothing, 1,000 calls: median and
    p95 latency, next to the median of `await h.exec("true")` (interleaved call by call) so the
    tool's own overhead shows. Target: median under 1 ms.

Then, unless --no-breakdown, the per-call cost of each layer under (a) and (c): raw bashkit
(sync and async), each interpreter option the VM sets, the VM's own interpreter, our `Shell`
adapter, the actor action and our host-call path; so the engine's cost and ours can be told
apart. Where bashkit is called directly, it also shows how long the `execute()` call itself holds
the event loop before it returns its awaitable, and how often per call bashkit builds its
`<bashkit_cancel_wrapper>` Python module there.

Every side is warmed up before it is timed. Throughput figures are the best of `--repeat` runs
(3 by default), the VM and its baseline interleaved; `gc.collect()` runs before each timed run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import bashkit
from languages import language_rows
from pydantic import BaseModel
from report import Row, print_rows, print_table

from agentos_nb import ActorHandle, ToolContext, agent_os, host_tool, setup, toolkit
from agentos_nb.software import common
from agentos_nb.vm import tool_cli, tool_results
from agentos_nb.vm.host_calls import HostCalls
from agentos_nb.vm.shell import HOME, CommandCall, CommandReply, Shell, ShellLimits, _wrap

ECHO = "echo hi | wc -c"
PATTERN = "TODO"
GREP = f"grep -rn {PATTERN} ."
TREE = f"{HOME}/tree"

# --- the do-nothing host tool of (c) ----------------------------------------------------------------


class NoopInput(BaseModel):
    note: str | None = None


async def noop(_input: NoopInput, _ctx: ToolContext) -> dict[str, str]:
    return {}


BENCH_KIT = toolkit(
    "bench",
    "Benchmark tools that do nothing.",
    {"noop": host_tool("Does nothing and returns {}.", NoopInput, noop)},
)
NOOP_REPLY = '{"ok": true, "result": {}}\n'

# --- the source tree of (b) ------------------------------------------------------------------------

_VERBS = ("load", "parse", "render", "build", "check", "merge", "split", "send", "fetch", "store")
_NOUNS = ("config", "queue", "token", "record", "buffer", "index", "frame", "header", "path", "batch")
_MODULES = ("os", "re", "json", "time", "typing", "asyncio", "pathlib", "itertools", "hashlib")


def source_tree(files: int, lines: int, seed: int = 3) -> dict[str, str]:
    """`files` Python-like files of `lines // files` lines each, the same on every run; about one
    line in a hundred is a `# TODO` comment."""
    rng = random.Random(seed)
    per_file = lines // files
    tree: dict[str, str] = {}
    for i in range(files):
        out: list[str] = []
        while len(out) < per_file:
            verb, noun = rng.choice(_VERBS), rng.choice(_NOUNS)
            roll = rng.random()
            if roll < 0.010:
                out.append(f"    # {PATTERN}: {verb} the {noun} once issue #{rng.randrange(1, 999)} is fixed")
            elif roll < 0.05:
                out.append(f"import {rng.choice(_MODULES)}")
            elif roll < 0.15:
                out.append(f"def {verb}_{noun}({noun}, limit={rng.randrange(100)}):")
            elif roll < 0.25:
                out.append(f"    return {noun}_{rng.randrange(10)}")
            elif roll < 0.30:
                out.append("")
            else:
                out.append(f"    {noun}_{rng.randrange(10)} = {verb}({noun}, {rng.randrange(1000)})")
        tree[f"src/pkg{i % 20:02d}/mod_{i:04d}.py"] = "\n".join(out) + "\n"
    return tree


# --- results ----------------------------------------------------------------------------------------


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Call = Callable[[], Awaitable[object]]


async def per_call(call: Call, count: int) -> float:
    """Seconds per call over `count` calls made one after another."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        await call()
    return (time.perf_counter() - start) / count


async def best_per_call(runs: dict[str, Call], count: int, repeat: int) -> dict[str, float]:
    """Best of `repeat` for each run, the runs interleaved within each repetition."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, call in runs.items():
            times[name].append(await per_call(call, count))
    return {name: min(values) for name, values in times.items()}


# --- the real-bash baselines ------------------------------------------------------------------------


async def real_bash(command: str, cwd: str | None = None) -> bytes:
    process = await asyncio.create_subprocess_exec(
        "/bin/bash", "-c", command, cwd=cwd, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    return stdout


# --- (a), (b), (c) ----------------------------------------------------------------------------------


@dataclass
class Sizes:
    calls: int
    files: int
    lines: int
    greps: int
    repeat: int


@dataclass
class Figures:
    a_vm: float
    a_bash: float
    b_vm: float
    b_real: float
    b_write: float
    b_vm_lines: list[str]
    b_real_lines: list[str]
    c_noop: list[float]
    c_true: list[float]


async def measure(sizes: Sizes, tree: dict[str, str], real_root: str) -> Figures:
    registry = setup(use={"vm": agent_os(software=[common], toolkits=[BENCH_KIT])}, name="bench-shell")
    registry.start()
    try:
        await registry.ready()
        h = registry.client().vm.get_or_create(["bench"])

        # (a) one small pipeline per call.
        result = await h.exec(ECHO)
        assert (result.exit_code, result.stdout.strip()) == (0, "3"), result
        assert (await real_bash(ECHO)).strip() == b"3"
        for _ in range(50):  # warm-up: interpreter made and idle, code paths and the spawn path run
            await h.exec(ECHO)
            await real_bash(ECHO)
        a = await best_per_call(
            {"vm": lambda: h.exec(ECHO), "bash": lambda: real_bash(ECHO)}, sizes.calls, sizes.repeat
        )

        # (b) grep over a tree of files.
        gc.collect()
        start = time.perf_counter()
        written = await h.write_files({f"{TREE}/{path}": text for path, text in tree.items()})
        b_write = time.perf_counter() - start
        assert len(written) == len(tree)
        vm_run = await h.exec(GREP, cwd=TREE)
        assert vm_run.exit_code == 0, (vm_run.exit_code, vm_run.stderr[:500])
        assert not vm_run.truncated, "the grep output was cut: raise max_output_bytes"
        real_out = (await real_bash(GREP, cwd=real_root)).decode()
        b = await best_per_call(
            {"vm": lambda: h.exec(GREP, cwd=TREE), "real": lambda: real_bash(GREP, cwd=real_root)},
            sizes.greps,
            sizes.repeat,
        )

        # (c) a do-nothing host tool, call by call, interleaved with `true`.
        reply = await h.exec("agentos-bench noop")
        assert (reply.exit_code, reply.stdout) == (0, NOOP_REPLY), reply
        for _ in range(50):
            await h.exec("agentos-bench noop")
            await h.exec("true")
        c_noop: list[float] = []
        c_true: list[float] = []
        gc.collect()
        for _ in range(sizes.calls):
            start = time.perf_counter()
            await h.exec("agentos-bench noop")
            middle = time.perf_counter()
            await h.exec("true")
            c_noop.append(middle - start)
            c_true.append(time.perf_counter() - middle)
    finally:
        await registry.stop()
    return Figures(
        a_vm=a["vm"],
        a_bash=a["bash"],
        b_vm=b["vm"],
        b_real=b["real"],
        b_write=b_write,
        b_vm_lines=sorted(vm_run.stdout.splitlines()),
        b_real_lines=sorted(real_out.splitlines()),
        c_noop=c_noop,
        c_true=c_true,
    )


# --- where the time of (a) and (c) goes -------------------------------------------------------------

# bashkit's default (Standard) profile stops an interpreter after 1,000 execute() calls ("session
# exec() call limit exceeded"), so every raw interpreter here uses the Interactive profile, as the VM does.
INTERACTIVE = bashkit.ExecutionProfile.Interactive
# The module bashkit compiles, on the caller's thread, to wrap an execute() future for cancellation.
WRAPPER_MODULE = "<bashkit_cancel_wrapper>"


@dataclass
class Layer:
    name: str
    make: Callable[[], Awaitable[object]]  # returns the awaitable; bashkit does its own work in this call
    check: Callable[[object], bool] = lambda _result: True
    bashkit_call: bool = False  # a direct bashkit execute(): the time inside the call is shown apart


@dataclass
class Split:
    name: str
    total: float  # seconds per call
    in_call: float | None  # of which inside the execute() call, before it returns its awaitable
    wrappers: float | None  # WRAPPER_MODULE bodies run per call


async def split_run(layer: Layer, count: int) -> tuple[float, float]:
    gc.collect()
    in_call = waited = 0.0
    result: object = None
    for _ in range(count):
        start = time.perf_counter()
        awaitable = layer.make()
        middle = time.perf_counter()
        result = await awaitable
        in_call += middle - start
        waited += time.perf_counter() - middle
    assert layer.check(result), (layer.name, result)
    return in_call / count, (in_call + waited) / count


async def wrapper_builds(layer: Layer, count: int) -> float:
    """How many times per call the body of bashkit's cancel-wrapper module runs (it runs each time
    the module is compiled and executed), counted with a profile hook on this thread."""
    builds = 0

    def hook(frame: types.FrameType, event: str, _arg: object) -> None:
        nonlocal builds
        if (
            event == "call"
            and frame.f_code.co_filename == WRAPPER_MODULE
            and frame.f_code.co_name == "<module>"
        ):
            builds += 1

    sys.setprofile(hook)
    try:
        for _ in range(count):
            await layer.make()
    finally:
        sys.setprofile(None)
    return builds / count


async def breakdown(sizes: Sizes) -> list[Split]:
    """Per-call cost of each layer between raw bashkit and `h.exec`, layers interleaved."""

    async def instant(_context: bashkit.BuiltinContext) -> bashkit.BuiltinResult:
        return bashkit.BuiltinResult(stdout="", stderr="", exit_code=0)

    async def noop_command(_call: CommandCall) -> CommandReply:
        return CommandReply(stdout=NOOP_REPLY)

    limits = ShellLimits()
    capture = limits.max_output_bytes
    plain = bashkit.Bash(profile=INTERACTIVE)
    with_builtin = bashkit.Bash(profile=INTERACTIVE, custom_builtins={"instant": instant})
    # The VM's own shell, built as agent_os builds it (python and sqlite come with `common`).
    shell = Shell(
        limits=limits, commands={"agentos-bench": noop_command}, features=frozenset({"python", "sqlite"})
    )
    # Bench-only peeks at the adapter's two kinds of interpreter: without the host commands (for
    # scripts that cannot reach one) and with them.
    vm_plain = shell._interpreter(with_commands=False, timeout=limits.timeout).bash
    vm_interpreter = shell._interpreter(with_commands=True, timeout=limits.timeout).bash
    wrapped = _wrap(ECHO, HOME, {}, None)
    wrapped_noop = _wrap("agentos-bench noop", HOME, {}, None)

    def sync(run: Callable[[], object]) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            return run()

        return call

    def prints(expected: str) -> Callable[[object], bool]:
        def check(result: object) -> bool:
            return getattr(result, "error", None) is None and getattr(result, "stdout", None) == expected

        return check

    def parse_and_reply() -> str:
        tool_cli.parse_tool_input(NoopInput, [], stdin=None)
        return tool_results.ok_result({})

    three, empty = prints("3\n"), prints("")
    registry = setup(use={"vm": agent_os(software=[common], toolkits=[BENCH_KIT])}, name="bench-split")
    registry.start()
    try:
        await registry.ready()
        h: ActorHandle = registry.client().vm.get_or_create(["split"])
        await h.exec("true")  # awake
        # A bench-only peek: the VM actor's context, to run our host-call path without the engine.
        vm_context = next(iter(registry._instances.values())).context
        host_calls = HostCalls(vm_context, [BENCH_KIT], no_file)
        noop_call = CommandCall("agentos-bench", ["noop"], None, {"HOME": HOME}, HOME)
        layers = [
            Layer("Bash().execute_sync('true')", sync(lambda: plain.execute_sync("true")), empty),
            Layer(f"Bash().execute_sync({ECHO!r})", sync(lambda: plain.execute_sync(ECHO)), three),
            Layer("Bash().execute_sync(the same, wrapped)", sync(lambda: plain.execute_sync(wrapped)), three),
            Layer("await Bash().execute('true')", lambda: plain.execute("true"), empty, True),
            Layer(f"await Bash().execute({ECHO!r})", lambda: plain.execute(ECHO), three, True),
            Layer(
                f"  ... with capture={capture:,}", lambda: plain.execute(ECHO, capture=capture), three, True
            ),
            Layer("  ... Bash(custom_builtins={1 async})", lambda: with_builtin.execute(ECHO), three, True),
            Layer(
                "VM's interpreter, execute_sync(wrapped)",
                sync(lambda: vm_plain.execute_sync(wrapped)),
                three,
            ),
            Layer(
                "VM's plain interpreter, await execute(wrapped)",
                lambda: vm_plain.execute(wrapped),
                three,
                True,
            ),
            Layer(
                "VM's interpreter with host commands, await execute(wrapped)",
                lambda: vm_interpreter.execute(wrapped),
                three,
                True,
            ),
            Layer("Shell.run (our adapter)", lambda: shell.run(ECHO)),
            Layer("h.exec (actor action + AgentVm.exec)", lambda: h.exec(ECHO)),
            Layer("h.exists (an action, no shell)", lambda: h.exists(HOME)),
            Layer(
                "(c) await Bash(...).execute('instant')", lambda: with_builtin.execute("instant"), empty, True
            ),
            Layer(
                "(c) VM's interpreter, wrapped noop",
                lambda: vm_interpreter.execute(wrapped_noop),
                prints(NOOP_REPLY),
                True,
            ),
            Layer("(c) Shell.run('agentos-bench noop')", lambda: shell.run("agentos-bench noop")),
            Layer("(c) h.exec('agentos-bench noop')", lambda: h.exec("agentos-bench noop")),
            Layer(
                "(c) HostCalls: parse, run noop, reply",
                lambda: host_calls._toolkit(BENCH_KIT, noop_call),
                lambda reply: getattr(reply, "stdout", None) == NOOP_REPLY,
            ),
            Layer("(c)   of which parse_tool_input + ok_result", sync(parse_and_reply)),
        ]
        for layer in layers:
            await split_run(layer, 50)  # warm-up
        runs: dict[str, list[tuple[float, float]]] = {layer.name: [] for layer in layers}
        for _ in range(sizes.repeat):
            for layer in layers:
                runs[layer.name].append(await split_run(layer, sizes.calls))
        splits = []
        for layer in layers:
            in_call, total = min(runs[layer.name], key=lambda run: run[1])
            if layer.bashkit_call:
                splits.append(Split(layer.name, total, in_call, await wrapper_builds(layer, 100)))
            else:
                splits.append(Split(layer.name, total, None, None))
    finally:
        await registry.stop()
    return splits


async def no_file(path: str, _cwd: str) -> str:
    raise FileNotFoundError(path)


# --- (d) hosted VMs against the engine in-process, (e) memory and wake over many VMs --------------


@dataclass
class Hosted:
    exec_hosted: float  # h.exec(ECHO), the VM on its host
    exec_in_process: float  # Shell.run(ECHO) in this process: the engine as it ran before hosts
    rss_per_vm: float  # bytes, kernel growth plus every host's RSS, over the idle VMs
    vms: int
    hosts: int
    wake: list[float]  # a new VM's first action, hosts already up


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def measure_hosted(sizes: Sizes) -> Hosted:
    from agentos_nb.vm.host.pool import pool_for

    in_process = Shell(limits=ShellLimits(), commands={}, features=frozenset({"python", "sqlite"}))
    vms = 200 if sizes.repeat > 1 else 50
    gc.collect()
    kernel_before = rss_bytes()
    registry = setup(use={"vm": agent_os(software=[common], hosts=2)}, name="bench-hosted")
    registry.start()
    try:
        await registry.ready()
        client = registry.client()
        h = client.vm.get_or_create(["bench"])
        for _ in range(50):
            await h.exec(ECHO)
            await in_process.run(ECHO)
        runs = await best_per_call(
            {"hosted": lambda: h.exec(ECHO), "in_process": lambda: in_process.run(ECHO)},
            sizes.calls,
            sizes.repeat,
        )
        handles = [client.vm.get_or_create([f"idle-{n}"]) for n in range(vms - 1)]
        for handle in handles:
            await handle.exists(HOME)
        gc.collect()
        await asyncio.sleep(0.5)
        processes = pool_for(2, 2 * 1024**3).processes
        total = rss_bytes() - kernel_before + sum(rss_bytes(p.pid) for p in processes)
        wake = []
        for n in range(20):
            start = time.perf_counter()
            await client.vm.get_or_create([f"wake-{n}"]).exists(HOME)
            wake.append(time.perf_counter() - start)
    finally:
        await registry.stop()
    return Hosted(runs["hosted"], runs["in_process"], total / vms, vms, len(processes), wake)


# --- reporting --------------------------------------------------------------------------------------


def first_line(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed repetitions (best is kept)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-layer split")
    args = parser.parse_args()

    if args.quick:
        sizes = Sizes(calls=200, files=1_000, lines=40_000, greps=3, repeat=args.repeat or 1)
    else:
        sizes = Sizes(calls=1_000, files=1_000, lines=40_000, greps=10, repeat=args.repeat or 3)

    print(
        f"agentos_nb shell bench: python {platform.python_version()}, {os.cpu_count()} cpus "
        f"({platform.machine()}), bashkit {bashkit.__version__}"
    )
    print(f"baselines: {first_line(['/bin/bash', '--version'])}; {first_line(['grep', '--version'])}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before the run: {load}")
    print(
        f"sizes: (a), (c) {sizes.calls:,} calls, (b) {sizes.files:,} files of {sizes.lines:,} lines, "
        f"{sizes.greps} greps per run; best of {sizes.repeat}\n"
    )

    began = time.perf_counter()
    tree = source_tree(sizes.files, sizes.lines)
    real_root = tempfile.mkdtemp(prefix="bench-shell-")
    try:
        for path, text in tree.items():
            target = Path(real_root, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        f = asyncio.run(measure(sizes, tree, real_root))
    finally:
        shutil.rmtree(real_root)
    hosted = asyncio.run(measure_hosted(sizes))
    split = [] if args.no_breakdown else asyncio.run(breakdown(sizes))

    lines_total = sum(text.count("\n") for text in tree.values())
    expected = sum(text.count(PATTERN) for text in tree.values())
    same_count = len(f.b_vm_lines) == len(f.b_real_lines) == expected
    identical = f.b_vm_lines == f.b_real_lines
    noop_median = statistics.median(f.c_noop)
    true_median = statistics.median(f.c_true)
    rows = [
        Row(
            f"(a) `{ECHO}`, per call",
            us(f.a_vm),
            f"{us(f.a_bash)} bash -c",
            f"{f.a_bash / f.a_vm:.1f}x faster",
            ">= 10x faster",
            f.a_bash / f.a_vm >= 10,
        ),
        Row(
            f"(b) `{GREP}`, {len(tree):,} files",
            ms(f.b_vm),
            f"{ms(f.b_real)} bash -c grep",
            f"{f.b_vm / f.b_real:.2f}x the time",
            "<= 2x the time",
            f.b_vm <= 2 * f.b_real and same_count,
        ),
        Row(
            "(b) matching lines",
            f"{len(f.b_vm_lines):,}",
            f"{len(f.b_real_lines):,} real",
            "identical" if identical else "differ",
            f"same count, {expected:,}",
            same_count,
        ),
        Row("(b) write_files of the tree", ms(f.b_write), "-", "-", "(info)", None),
        Row(
            "(c) host tool noop, median",
            us(noop_median),
            f"{us(true_median)} exec('true')",
            f"+{us(noop_median - true_median)}",
            "< 1 ms",
            noop_median < 1e-3,
        ),
        Row(
            "(c) host tool round trip (noop - true), median",
            us(noop_median - true_median),
            "-",
            "-",
            "< 2 ms",
            noop_median - true_median < 2e-3,
        ),
        Row(
            f"(d) `{ECHO}`, hosted h.exec",
            us(hosted.exec_hosted),
            f"{us(hosted.exec_in_process)} in-process Shell.run",
            f"{hosted.exec_hosted / hosted.exec_in_process:.2f}x the time",
            "<= 2x the time",
            hosted.exec_hosted <= 2 * hosted.exec_in_process,
        ),
        Row(
            f"(d) `{ECHO}`, hosted vs bash -c",
            us(hosted.exec_hosted),
            f"{us(f.a_bash)} bash -c",
            f"{f.a_bash / hosted.exec_hosted:.1f}x faster",
            ">= 5x faster",
            f.a_bash / hosted.exec_hosted >= 5,
        ),
        Row(
            f"(e) RSS per idle VM, {hosted.vms} VMs on {hosted.hosts} hosts",
            f"{hosted.rss_per_vm / 2**20:.2f} MB",
            "-",
            "-",
            "< 2 MB",
            hosted.rss_per_vm < 2 * 2**20,
        ),
        Row(
            "(e) VM wake (first action of a new VM), median",
            ms(statistics.median(hosted.wake)),
            "-",
            "-",
            "< 20 ms",
            statistics.median(hosted.wake) < 20e-3,
        ),
        Row(
            "(c) host tool noop, p95",
            us(percentile(f.c_noop, 0.95)),
            f"{us(percentile(f.c_true, 0.95))} exec('true')",
            "-",
            "(info)",
            None,
        ),
    ]
    print_rows(rows, "agent VM")
    print(
        f"\n(b) {lines_total:,} lines in {len(tree):,} files, {expected:,} contain {PATTERN!r}; "
        f"sorted outputs {'are identical' if identical else 'DIFFER'}"
    )
    if not identical:
        only_vm = sorted(set(f.b_vm_lines) - set(f.b_real_lines))[:3]
        only_real = sorted(set(f.b_real_lines) - set(f.b_vm_lines))[:3]
        print(f"    only in the VM: {only_vm}\n    only in real grep: {only_real}")

    if split:
        print("\nwhere the time of (a) and (c) goes, per call (best of the same runs):")
        print_table(
            ("layer", "per call", "inside execute()", f"{WRAPPER_MODULE} runs"),
            [
                (
                    row.name,
                    us(row.total),
                    "" if row.in_call is None else us(row.in_call),
                    "" if row.wrappers is None else f"{row.wrappers:g} per call",
                )
                for row in split
            ],
        )
        print(f"wrapped: {_wrap(ECHO, HOME, {}, None)!r}, the script as the VM's Shell hands it to bashkit")

    if languages := language_rows():
        print("\nreal languages in the VM (issue 22), each beside host CPython or host Deno, warm medians:")
        print_rows(languages, "agent VM")

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ntotal {time.perf_counter() - began:.1f} s; load average after: {load}")


if __name__ == "__main__":
    main()
