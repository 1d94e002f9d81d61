"""The README's examples are what a newcomer runs first: they must run as written, and print
what the README says they print."""

import os
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
    assert len(examples()) == 5
    assert len(re.findall(r"```python", README.read_text())) == 5


@pytest.mark.parametrize(
    ("code", "output"),
    examples(),
    ids=["http-face", "actors-and-queues", "sqlite-store", "vms-and-host-tools", "sessions"],
)
def test_readme_example_runs_and_prints_what_it_says(tmp_path: Path, code: str, output: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    runtime_dir = {"AGENTOS_NB_RUNTIME_DIR": str(tmp_path)}  # where a serving registry leaves its token
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **runtime_dir},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == output


def test_the_readme_lists_exactly_the_commands_common_installs() -> None:
    listed = re.search(r"<!-- common-commands -->\n```text\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert listed is not None
    assert listed.group(1).split() == list(engine_commands())


def test_the_documents_link_only_to_what_exists() -> None:
    """Relative links name files of the repository, and no link is a placeholder to fill in later."""
    root = README.parent
    for document in (README, root / "ARCHITECTURE.md", root / "bench" / "README.md"):
        text = document.read_text()
        links = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"^\[[^\]]+\]: (\S+)", text, re.MULTILINE)
        for link in links:
            assert "placeholder" not in link, f"{document.name}: {link}"
            if re.match(r"[a-z]+:", link) or link.startswith("#"):
                continue
            target = (document.parent / link.split("#", 1)[0]).resolve()
            assert target.exists(), f"{document.name} links to {link}, which does not exist"
