"""The README's example is what a newcomer runs first: it must run as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_example_runs_and_prints_the_review(tmp_path: Path) -> None:
    (block,) = python_blocks()
    script = tmp_path / "example.py"
    script.write_text(block)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Review: /home/user/src/auth.ts looks fine\n"


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
