"""`agentos-nb demo`: the seeds run in a terminal, narrated from the event bus as they happen,
answered by the offline model (conftest hides the machine's API keys)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentos_nb.cli import main
from conftest import MODEL_KEYS


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """`out = run_cli("demo", ...)`: the command's exit code must be 0; returns what it printed."""
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside the lines the tests read

    def run(*argv: str, exit_code: int = 0) -> str:
        assert main(list(argv)) == exit_code
        return capsys.readouterr().out

    return run


def in_order(text: str, *patterns: str) -> list[re.Match[str]]:
    """Each pattern matches, each after the one before it."""
    found, start = [], 0
    for pattern in patterns:
        match = re.compile(pattern, re.MULTILINE).search(text, start)
        assert match is not None, f"{pattern!r} not found after position {start} in:\n{text}"
        found.append(match)
        start = match.end()
    return found


def test_demo_narrates_the_writer_and_the_reviewer_as_they_work(run_cli) -> None:
    out = run_cli("demo")
    in_order(
        out,
        r"^writer +● pi session s-\w+ opened",
        r"^writer +! pi on offline:agentos: .*using the offline model",
        r"^writer +» Write a REST API at /home/user/api\.ts, then submit it for review\.",
        r"^writer +▸ write /home/user/api\.ts\n +✓ Wrote \d+ bytes to /home/user/api\.ts",
        r"─ /home/user/api\.ts ─",  # the file, with line numbers
        r"^│ +1 \S",
        r"^writer +▸ bash: agentos-review submit --path /home/user/api\.ts",
        r'^writer +→ review\.submit \{"path": "/home/user/api\.ts"\}',
        # the reviewer's session is nested under the host tool call that opened it
        r"^    reviewer +● pi session s-\w+ opened",
        r"^    reviewer +» Review the code at /home/user/api\.ts and list any issues\.",
        r"^    reviewer +▸ read /home/user/api\.ts\n +✓ \d+ lines",
        r"^    ╭─ reviewer ─",
        r"^    │ .*Line \d+: ",
        r"^    reviewer +■ turn ended: end_turn",
        r"^    reviewer +○ session s-\w+ closed",
        r"^writer +← review\.submit returned in \d+\.\d\d s: \{\"review\": ",
        r"^writer +✓ bash: agentos-review submit --path /home/user/api\.ts · \{\"ok\": true",
        r"^╭─ writer ─",  # the writer's final answer, which carries the review
        r"^│ .*Line \d+: ",
        r"^writer +■ turn ended: end_turn · 3 model requests, 2 tool calls",
        r"done in \d+\.\d s · the writer's turn: end_turn",
    )


def test_the_review_cites_lines_of_the_file_as_shown(run_cli) -> None:
    out = run_cli("demo")
    shown = dict(re.findall(r"^│ +(\d+) (.*?) *│$", out, flags=re.MULTILINE))
    cited = re.findall(r"^    │  • Line (\d+): (.+?) — ", out, flags=re.MULTILINE)
    assert len(cited) >= 2
    for number, text in cited:
        assert text.strip() in shown[number]


def test_demo_queues_narrates_seed_002_on_real_vms(run_cli) -> None:
    out = run_cli("demo", "--queues")
    in_order(
        out,
        r"Serial tasks: one message at a time",
        r"^task_runner/main +⇢ tasks #3 enqueued",
        r"^task_runner/main +! backpressure: queue 'tasks' is full \(3 messages\)",
        r"the sender waits for room: send\(\.\.\., block=True\)",
        r"^vm/task-agent +» Review PR #123",
        r"^task_runner/main +⇢ tasks #4 enqueued",  # room came: the blocked send went through
        r"^task_runner/main +! refused: body for queue 'tasks' is invalid: prompt",
        r"^vm/task-agent +» Fix the flaky test in auth\.test\.ts",
        r"^vm/task-agent +» Update the README",
        r"^vm/task-agent +» Add a CHANGELOG entry",
        r"^task_runner/main +✓ tasks #4 completed",
        r"Request/response: completable messages",
        r"^reviewer/main +⇠ review #5 received",
        r"^vm/reviewer +▸ write /home/user/review\.txt",
        r"^reviewer/main +✓ review #5 completed: \{\"summary\": ",
        r"^╭─ Review: ─",
        r"^│ .*Line \d+: ",
        r"Ingesting from external systems: an action pushes to a queue",
        r"^issue_worker/main +⇢ issues #6 enqueued",
        r"^vm/issue-worker +» Investigate and fix this issue:",
        r"^issue_worker/main +✓ issues #6 completed",
        r"done in \d+\.\d s",
    )
    # one task at a time: each session closes before the next one opens
    sessions = re.findall(r"^vm/task-agent +([●○]) ", out, flags=re.MULTILINE)
    assert sessions == ["●", "○"] * 4
    assert out.count("using the offline model") == 3  # once per VM, not once per session


def test_model_option_reaches_every_session(run_cli) -> None:
    out = run_cli("demo", "--model", "offline")
    assert re.search(r"^writer +! pi on offline:agentos: given explicitly", out, re.MULTILINE)
    assert re.search(r"^    reviewer +! pi on offline:agentos: given explicitly", out, re.MULTILINE)


def test_a_model_that_cannot_be_used_stops_the_demo_with_a_message(run_cli) -> None:
    out = run_cli("demo", "--model", "anthropic:claude-sonnet-4-5", exit_code=1)
    assert "The demo stopped: model anthropic:claude-sonnet-4-5 needs an API key" in out
    assert "Traceback" not in out


def test_the_console_script_runs_the_demo_and_exits_by_itself() -> None:
    env = {name: value for name, value in os.environ.items() if name not in MODEL_KEYS}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "agentos_nb", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    assert "writer    → review.submit" in done.stdout
    assert "done in" in done.stdout


@pytest.mark.parametrize(
    ("content", "mode", "problem"),
    [
        ('{"tokens": [{"token": "scoped-token-0123456789", "routes": ["send"]}]}', 0o644, "chmod 600"),
        ('{"tokens": [{"token": "scoped-token-0123456789", "routes": ["sudo"]}]}', 0o600, "not valid"),
        ('{"tokens": [{"token": "tiny-secret", "routes": ["send"]}]}', 0o600, "not valid"),
        ('{"webhooks": [{"actor": "a", "queue": "q", "secret": "tiny-secret"}]}', 0o600, "not valid"),
        ('{"tokens": [', 0o600, "not valid"),
        (None, 0o600, "cannot read the token file"),
    ],
)
def test_serve_refuses_a_token_file_others_can_read_or_that_is_not_valid_without_showing_it(
    run_cli, tmp_path, content, mode, problem
) -> None:
    path = tmp_path / "tokens.json"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    out = run_cli("serve", "nowhere:registry", "--port", "0", "--token-file", str(path), exit_code=1)
    assert "Cannot serve:" in out
    assert problem in " ".join(out.split())
    assert "scoped-token-0123456789" not in out
    assert "tiny-secret" not in out


def test_a_bare_command_prints_the_help_and_each_command_has_its_own(run_cli, capsys) -> None:
    out = run_cli()
    assert out.startswith("usage: agentos-nb")
    assert "the offline model answers" in out
    assert "agentos-nb demo --queues" in out
    assert "`" not in out
    for command, says in [("demo", "reviewer agent"), ("serve", "bearer token"), ("inspect", "dead letters")]:
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert says in " ".join(capsys.readouterr().out.split())


def test_version_names_the_installed_package(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"agentos-nb \d+\.\d+\S*\n", capsys.readouterr().out)


def test_a_busy_port_is_named_with_the_way_out(run_cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        target = f"{Path(__file__).parent / 'http_registry.py'}:registry"
        out = run_cli("serve", target, "--port", str(port), exit_code=1)
    said = " ".join(out.split())
    assert f"port {port} on 127.0.0.1 is in use" in said
    assert "--port 0" in said
    assert "Errno" not in said


def test_a_missing_provider_sdk_says_how_to_add_it_to_this_installation(monkeypatch) -> None:
    from agentos_nb.agents import models

    editable = models.install_hint("anthropic")  # the suite runs on `pip install -e`
    assert re.search(r"pip install -e '/\S+\[anthropic\]'", editable)
    assert "--model offline" in editable

    class FromPyPI:
        def read_text(self, name: str) -> None:
            return None  # no direct_url.json: installed from an index

    monkeypatch.setattr(models.importlib.metadata, "distribution", lambda name: FromPyPI())
    from_pypi = models.install_hint("openai")
    assert from_pypi.startswith("pip install 'agentos_nb[openai]' (or use the offline model")


def test_inspect_piped_keeps_whole_names(tmp_path) -> None:
    long_name = "an_actor_with_a_name_long_enough_to_be_cut_at_eighty_columns_in_a_table_" + "x" * 20
    store = tmp_path / "agents.db"
    script = (
        "import asyncio\n"
        "from agentos_nb import actor, queue, setup\n"
        "async def main():\n"
        f"    registry = setup(use={{'{long_name}': actor(queues={{'jobs': queue()}})}}, "
        f"store='sqlite:///{store}')\n"
        "    async with registry:\n"
        f"        await registry.client().{long_name}.get_or_create(['main']).send('jobs', {{'n': 1}})\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    shown = subprocess.run(
        [sys.executable, "-m", "agentos_nb", "inspect", str(store)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        timeout=60,
    ).stdout
    assert long_name in shown
