"""The README's examples are what a newcomer runs first: they must run as written, and print
what the README says they print."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentos_nb.vm.shell import engine_commands

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> list[tuple[str, str]]:
    """Each python block with the text block that follows it: the output it must print."""
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_its_examples() -> None:
    assert len(examples()) == 2
    assert len(re.findall(r"```python", README.read_text())) == 2


@pytest.mark.parametrize(("code", "output"), examples(), ids=["actors-and-queues", "vms-and-host-tools"])
def test_readme_example_runs_and_prints_what_it_says(tmp_path: Path, code: str, output: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == output


def test_the_readme_lists_exactly_the_commands_common_installs() -> None:
    listed = re.search(r"<!-- common-commands -->\n```text\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert listed is not None
    assert listed.group(1).split() == list(engine_commands())


def test_demo_command_runs_the_three_seed_examples() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentos_nb", "demo", "--work-seconds", "0.01"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "backpressure: queue 'tasks' is full (3 messages)" in out
    assert "refused: body for queue 'tasks' is invalid: prompt" in out
    assert "Review: [pi-" in out
    assert "done: Review /home/user/src/auth.ts" in out
    assert "Investigate and fix: Login redirect broken" in out
    assert "done: one too many" in out
    assert "Done: 5 replies, 6 prompts to the stand-in VMs" in out
