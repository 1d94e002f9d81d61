"""`python3` in the VM is real CPython (on WASI): programs as host CPython runs them, pytest,
argv/stdin/env/cwd, the VM's own files, limits, and escape attempts refused.

The module prepares the per-machine cache first (`agentos-nb prepare`; `.ci/run` has done it
already, so this is instant there) and shares one VM between its tests.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest

from agentos_nb import ShellLimits, agent_os, setup
from agentos_nb.software import common
from agentos_nb.vm.languages import python_wasi

pytestmark = pytest.mark.anyio

PROJECT = "/home/user/proj"
SECRET_VARIABLE = "AGENTOS_TEST_PYTHON_SECRET"
SECRET = f"kernel-secret-{uuid.uuid4().hex}"

# A program of the kind an agent writes; its output is the same on any CPython 3.11+.
PROGRAM = """\
import json
import re
import sys
import unittest
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(order=True)
class Entry:
    level: str
    count: int = 0
    samples: list[str] = field(default_factory=list)


def parse(lines):
    entries = {}
    for line in lines:
        match = re.match(r"^(\\d{4}-\\d\\d-\\d\\d) (?P<level>[A-Z]+): (?P<text>.*)$", line)
        if match is None:
            continue
        entry = entries.setdefault(match["level"], Entry(match["level"]))
        entry.count += 1
        entry.samples.append(match["text"][:10])
    return sorted(entries.values())


class ParseTest(unittest.TestCase):
    def test_levels(self):
        levels = [e.level for e in parse(["2024-01-01 WARN: x", "2024-01-02 ERROR: y"])]
        self.assertEqual(levels, ["ERROR", "WARN"])

    def test_skips_garbage(self):
        self.assertEqual(parse(["nonsense"]), [])


root = Path(sys.argv[1])
lines = [line for path in sorted(root.glob("*.log")) for line in path.read_text().splitlines()]
entries = parse(lines)
print(json.dumps([asdict(e) for e in entries], indent=1, sort_keys=True))
(root / "summary.json").write_text(json.dumps({e.level: e.count for e in entries}, sort_keys=True))
print(sorted(p.name for p in root.iterdir()))
result = unittest.TextTestRunner(stream=sys.stdout, verbosity=0).run(
    unittest.defaultTestLoader.loadTestsFromTestCase(ParseTest)
)
print("tests ok:", result.wasSuccessful(), result.testsRun)
"""
LOGS = {
    "a.log": "2024-05-01 INFO: started\n2024-05-01 WARN: disk at 91%\nnot a log line\n",
    "b.log": "2024-05-02 ERROR: lost connection to db\n2024-05-02 INFO: retrying now, please wait\n",
}
PASSING_TESTS = (
    "def test_add():\n    assert 1 + 1 == 2\n\n\ndef test_upper():\n    assert 'a'.upper() == 'A'\n"
)
FAILING_TESTS = "def test_add():\n    assert 1 + 1 == 2\n\n\ndef test_wrong():\n    assert sum([1, 2]) == 4\n"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def vm():
    """One VM for the module, its host started while the kernel's environment held a secret."""
    await asyncio.to_thread(python_wasi.prepare, lambda line: None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_VARIABLE, SECRET)
        limits = ShellLimits(timeout=60, max_output_bytes=100_000, max_memory=256 * 1024 * 1024)
        vm_type = agent_os(software=[common], limits=limits)
        registry = setup(use={"vm": vm_type}, store="memory", name="test-python")
        registry.start()
        await registry.ready()
        handle = registry.client().vm.get_or_create(["python"])
        await handle.exec("true")  # the host starts now, with the secret in the kernel's environment
    yield handle
    await registry.stop(grace=0)


@pytest.fixture
async def project(vm):
    if await vm.exists(PROJECT):
        await vm.delete_file(PROJECT, recursive=True)
    await vm.write_files(
        {f"{PROJECT}/main.py": PROGRAM, **{f"{PROJECT}/logs/{n}": t for n, t in LOGS.items()}}
    )
    return vm


async def test_a_real_program_prints_what_host_cpython_prints(project, tmp_path):
    (tmp_path / "main.py").write_text(PROGRAM)
    (tmp_path / "logs").mkdir()
    for name, text in LOGS.items():
        (tmp_path / "logs" / name).write_text(text)
    host = await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        "logs",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    host_out, host_err = await host.communicate()
    assert host.returncode == 0, host_err
    run = await project.exec("python3 main.py logs", cwd=PROJECT)
    assert (run.exit_code, run.stdout) == (0, host_out.decode()), run.stderr
    assert "tests ok: True 2" in run.stdout
    written = await project.exec("cat logs/summary.json", cwd=PROJECT)
    assert written.stdout == (tmp_path / "logs" / "summary.json").read_text()


async def test_pytest_exits_0_on_passing_tests_and_1_on_failing_ones(project):
    await project.write_files(
        {f"{PROJECT}/tests/test_ok.py": PASSING_TESTS, f"{PROJECT}/failing/test_bad.py": FAILING_TESTS}
    )
    passing = await project.exec("python3 -m pytest -q tests", cwd=PROJECT)
    assert passing.exit_code == 0, passing
    assert "2 passed" in passing.stdout
    failing = await project.exec("python3 -m pytest -q failing", cwd=PROJECT)
    assert failing.exit_code == 1, failing
    assert "1 failed, 1 passed" in failing.stdout
    assert "assert 3 == 4" in failing.stdout  # pytest's assertion rewriting works


async def test_argv_stdin_env_and_cwd_are_a_processes(project):
    script = "import os, sys; print(sys.argv, os.getcwd(), os.environ['GREETING'], sys.stdin.read().upper())"
    await project.write_file(f"{PROJECT}/show.py", script)
    run = await project.exec("printf 'piped' | GREETING=hi python3 show.py 'a b' c", cwd=PROJECT)
    assert run.stdout == f"['show.py', 'a b', 'c'] {PROJECT} hi PIPED\n"
    assert (await project.exec("python3 -c 'import sys; sys.exit(3)'")).exit_code == 3
    failed = await project.exec("python3 -c 'raise ValueError(42)'")
    assert (failed.exit_code, failed.stderr.splitlines()[-1]) == (1, "ValueError: 42")
    assert (await project.exec("echo 'print(6 * 7)' | python")).stdout == "42\n"


async def test_files_the_guest_writes_and_removes_are_the_vms(project):
    code = (
        "import os, pathlib; pathlib.Path('out/deep').mkdir(parents=True); "
        "pathlib.Path('out/deep/new.txt').write_text('new'); os.remove('logs/a.log'); "
        "os.rename('logs/b.log', 'logs/c.log'); print(sorted(os.listdir('logs')))"
    )
    run = await project.exec(f'python3 -c "{code}" && cat out/deep/new.txt && ls logs', cwd=PROJECT)
    assert (run.exit_code, run.stdout) == (0, "['c.log']\nnewc.log\n"), run.stderr


async def test_pip_is_refused_with_a_reason(project):
    for command in ("pip install requests", "pip3 install x", "python3 -m pip install requests"):
        run = await project.exec(command)
        assert run.exit_code == 1
        assert "installing packages is not possible" in run.stderr


# --- limits: each stops the program with its exit code, and the VM goes on -------------------


async def test_a_cpu_loop_is_stopped_at_the_timeout(project):
    run = await project.exec("python3 -c 'while True: pass'; echo after > after.txt", timeout=2)
    assert run.exit_code == 124
    assert (await project.exec("python3 -c 'print(1)'")).stdout == "1\n"
    await asyncio.sleep(0.3)
    assert not await project.exists("/home/user/after.txt")


async def test_a_stopped_program_ends_its_script():
    """bashkit ran the script's next command about 1 time in 5 when a program the host runs
    (python3, node, a host tool) ended at once on being cancelled; the shell now tells it first."""
    from agentos_nb.vm.shell import CommandCall, CommandReply, Shell

    async def forever(shell: Shell, timeout: float, call: CommandCall) -> CommandReply:
        await asyncio.sleep(3600)
        return CommandReply()

    shell = Shell(limits=ShellLimits(), commands={}, programs={"forever": forever})
    for _ in range(30):
        run = await shell.run("forever; echo after > /tmp/after", timeout=0.05)
        assert run.timed_out
    await asyncio.sleep(0.2)
    assert shell.info("/tmp/after") is None


async def test_a_memory_blow_up_is_a_memory_error(project):
    run = await project.exec("python3 -c 'x = bytearray(300 * 1024 * 1024)'")
    assert (run.exit_code, run.stderr.splitlines()[-1]) == (1, "MemoryError")
    growing = await project.exec("python3 -c 'a = []\nwhile True: a.append(bytearray(10**6))'")
    assert growing.exit_code == 1
    assert "MemoryError" in growing.stderr
    assert (await project.exec("python3 -c 'print(1)'")).stdout == "1\n"


async def test_an_output_flood_is_cut_at_the_limit(project):
    run = await project.exec("python3 -c 'for _ in range(10**5): print(\"x\" * 100)'")
    assert run.exit_code == 0
    assert len(run.stdout.encode()) <= 100_000
    assert run.truncated


# --- escapes -------------------------------------------------------------------------------


async def test_host_files_are_out_of_reach(project, tmp_path):
    marker = tmp_path / f"marker-{uuid.uuid4().hex}.txt"
    marker.write_text(SECRET)
    for code in (
        f"print(open({str(marker)!r}).read())",
        f"import pathlib; print(pathlib.Path({str(tmp_path)!r}).iterdir())",
        "print(open('/proc/self/environ').read())",
        "import os; print(os.listdir('/usr/local/lib/..'))",
    ):
        run = await project.exec(f'python3 -c "{code}"')
        assert SECRET not in run.stdout + run.stderr
        assert run.exit_code == 1 or marker.name not in run.stdout, (code, run)


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        ("import socket; socket.socket().connect(('127.0.0.1', 22))", "OSError"),
        ("import subprocess; subprocess.run(['id'])", "OSError"),
        ("import os; os.system('id')", "AttributeError"),
        ("import os; os.fork()", "AttributeError"),
        ("import threading; threading.Thread(target=print).start()", "RuntimeError"),
        ("import ctypes; ctypes.CDLL('libc.so.6')", "ctypes is unavailable"),
        ("import urllib.request; urllib.request.urlopen('http://127.0.0.1:22/')", "getaddrinfo"),
    ],
)
async def test_escapes_are_refused(project, code, refused):
    run = await project.exec(f'python3 -c "{code}"')
    assert run.exit_code == 1, run
    assert refused in run.stderr.splitlines()[-1], run.stderr


async def test_the_kernels_environment_is_not_seen(project):
    run = await project.exec("python3 -c 'import os; print(dict(os.environ))'")
    assert run.exit_code == 0
    assert SECRET not in run.stdout
    assert SECRET_VARIABLE not in run.stdout
    assert "/home/user" in run.stdout  # the VM's own environment is there


def test_prepare_is_a_command_that_says_what_it_does(vm, capsys):
    from agentos_nb.cli import main

    assert main(["prepare"]) == 0  # the module's VM fixture prepared already: this is instant
    assert "CPython (WASI)" in capsys.readouterr().out
    assert python_wasi.prepared()
