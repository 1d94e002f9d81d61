"""Rich displays: what HTML and text show of each result, escaping, and registration with IPython."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell
from pydantic import BaseModel
from traitlets.config import Config

from agentos_nb import ExecResult, PromptResult, SendResult, SessionInfo, Usage, actor
from agentos_nb.jupyter import displays
from agentos_nb.jupyter.transcript import transcript_items
from agentos_nb.vm.models import DirEntry
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    DiffContent,
    Notice,
    TextContent,
    ToolCall,
    ToolCallUpdate,
    UserMessageChunk,
)

HOSTILE = "<script>alert('x')</script> & \"quotes\""


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


def formats(shell: InteractiveShell, obj: object) -> dict[str, str]:
    data, _ = shell.display_formatter.format(obj)
    return data


def prompt_result(**changes: object) -> PromptResult:
    fields = {
        "session_id": "s-0123456789ab",
        "text": "Done: wrote api.ts",
        "stop_reason": "end_turn",
        "usage": Usage(input_tokens=1200, output_tokens=340, requests=3, tool_calls=2),
    }
    return PromptResult(**(fields | changes))


def test_prompt_result_shows_reply_stop_reason_and_usage() -> None:
    result = prompt_result()
    page = displays.prompt_result_html(result)
    text = displays.prompt_result_text(result)
    for shown in (page, text):
        assert "Done: wrote api.ts" in shown
        assert "end_turn" in shown
        assert "3 requests · 1,200 in / 340 out tokens · 2 tool calls" in shown
        assert "s-012345" in shown
    assert displays.BAD not in page  # nothing is highlighted as an error


def test_prompt_result_error_is_highlighted() -> None:
    result = prompt_result(text="", stop_reason="error", error="rate limited by the provider")
    page = displays.prompt_result_html(result)
    assert f"color:{displays.BAD}" in page
    assert "rate limited by the provider" in page
    assert "error: rate limited by the provider" in displays.prompt_result_text(result)


def test_every_string_is_escaped_in_html() -> None:
    pages = [
        displays.prompt_result_html(prompt_result(text=HOSTILE, error=HOSTILE, stop_reason="error")),
        displays.exec_result_html(ExecResult(exit_code=1, stdout=HOSTILE, stderr=HOSTILE)),
        displays.send_result_html(
            SendResult(status="completed", message_id=1, response=HOSTILE, error=HOSTILE)
        ),
        displays.session_info_html(session_info(cwd=HOSTILE, model_reason=HOSTILE)),
        displays.Listing(
            HOSTILE, HOSTILE, (DirEntry(name=HOSTILE, path="/x", kind="file", size=1),)
        )._repr_html_(),
        displays.FileView(HOSTILE, HOSTILE, HOSTILE.encode())._repr_html_(),
    ]
    hostile_turn = [
        UserMessageChunk(seq=1, content=TextContent(text=HOSTILE)),
        AgentThoughtChunk(seq=2, content=TextContent(text=HOSTILE)),
        AgentMessageChunk(seq=3, content=TextContent(text=HOSTILE)),
        ToolCall(seq=4, tool_call_id="t1", title=HOSTILE, kind="execute", raw_input={"command": HOSTILE}),
        ToolCall(seq=5, tool_call_id="t2", title="done", kind="execute"),
        ToolCallUpdate(seq=6, tool_call_id="t2", status="completed", raw_output=HOSTILE),
        Notice(seq=7, level="warning", text=HOSTILE),
    ]
    transcript = displays.transcript_html(transcript_items(hostile_turn))
    assert transcript.count("&lt;script&gt;") == 7  # every kind of step, each escaped
    for page in [*pages, transcript]:
        assert "<script>" not in page
        assert "&lt;script&gt;" in page


def test_exec_result_shows_output_and_exit_code() -> None:
    ok = ExecResult(exit_code=0, stdout="hello\n", stderr="")
    failed = ExecResult(exit_code=124, stdout="", stderr="slow\n", truncated=True, timed_out=True)
    assert "exit 0" in displays.exec_result_html(ok)
    assert displays.OK in displays.exec_result_html(ok)
    assert displays.exec_result_text(ok) == "hello\n[exit 0]"
    page = displays.exec_result_html(failed)
    assert displays.BAD in page
    assert "exit 124" in page
    assert "output cut" in page
    assert "timed out" in page
    assert displays.exec_result_text(failed) == "slow\n[exit 124, output cut, timed out]"


class Review(BaseModel):
    summary: str


def test_send_result_shows_status_and_response() -> None:
    completed = SendResult(status="completed", message_id=7, response=Review(summary="looks fine"))
    assert "&quot;summary&quot;: &quot;looks fine&quot;" in displays.send_result_html(completed)
    assert (
        displays.send_result_text(completed)
        == 'SendResult completed, message 7\n{\n  "summary": "looks fine"\n}'
    )
    dead = SendResult(status="dead_lettered", message_id=8, error="boom")
    assert displays.BAD in displays.send_result_html(dead)
    assert "error: boom" in displays.send_result_text(dead)
    assert "enqueued" in displays.send_result_html(SendResult(status="enqueued", message_id=9))


def session_info(**changes: object) -> SessionInfo:
    fields = {
        "session_id": "s-abc",
        "agent_type": "pi",
        "model": "offline:agentos",
        "model_reason": "no API key is set",
        "offline": True,
        "cwd": "/home/user",
        "created_at": 0.0,
        "turns": 1,
    }
    return SessionInfo(**(fields | changes))


def test_session_info_shows_model_turns_and_state() -> None:
    text = displays.session_info_text(session_info())
    assert text == (
        "session s-abc · pi · offline:agentos (offline) · 1 turn · open · cwd /home/user\n  no API key is set"
    )
    assert "closed" in displays.session_info_html(session_info(closed=True))
    assert "busy" in displays.session_info_text(session_info(busy=True, offline=False, turns=2))


@pytest.mark.anyio
async def test_actor_handle_shows_name_key_and_id_once_known(start_registry) -> None:
    async def ping(c) -> str:
        return "pong"

    registry = await start_registry(worker=actor(actions={"ping": ping}))
    handle = registry.client().worker.get_or_create(["a", "b"])
    assert displays.actor_handle_text(handle) == "<ActorHandle worker/a/b>"
    assert "id not looked up yet" in displays.actor_handle_html(handle)
    actor_id = await handle.resolve()
    assert displays.actor_handle_text(handle) == f"<ActorHandle worker/a/b id={actor_id}>"
    assert actor_id in displays.actor_handle_html(handle)


def turn_updates() -> list:
    return [
        UserMessageChunk(seq=1, content=TextContent(text="write it")),
        AgentMessageChunk(seq=2, content=TextContent(text="Let me ")),
        AgentMessageChunk(seq=3, content=TextContent(text="look.")),
        ToolCall(seq=4, tool_call_id="t1", title="write api.ts", kind="edit"),
        ToolCallUpdate(
            seq=5,
            tool_call_id="t1",
            status="completed",
            content=[DiffContent(path="/home/user/api.ts", old_text=None, new_text="export {}")],
        ),
        ToolCall(seq=6, tool_call_id="t2", title="bash: ls", kind="execute"),
        Notice(seq=7, level="warning", text="retrying"),
        AgentMessageChunk(seq=8, content=TextContent(text="Wrote ")),
        AgentMessageChunk(seq=9, content=TextContent(text="api.ts.")),
    ]


def test_transcript_joins_chunks_and_pairs_tool_calls() -> None:
    found = transcript_items(turn_updates())
    assert [(item.kind, item.text or item.title) for item in found] == [
        ("user", "write it"),
        ("agent", "Let me look."),
        ("tool", "write api.ts"),
        ("tool", "bash: ls"),
        ("notice", "retrying"),
        ("agent", "Wrote api.ts."),
    ]
    assert found[2].status == "completed"
    assert found[3].status == "pending"  # still running
    text = displays.transcript_text(found)
    assert "  [completed] write api.ts" in text
    assert "  [running] bash: ls" in text
    page = displays.transcript_html(found)
    assert "export {}" in page  # the diff a write made, folded under its call
    assert "(warning) retrying" in text


def test_reply_is_the_last_message_of_the_turn() -> None:
    assert displays.reply_of(turn_updates()) == "Wrote api.ts."
    # A last response with no text leaves the one before it as the reply, as send_prompt does.
    assert displays.reply_of(turn_updates()[:5]) == "Let me look."
    assert displays.reply_of([]) == ""


def test_listing_and_file_view() -> None:
    entries = (
        DirEntry(name="src", path="/home/user/src", kind="directory", size=0),
        DirEntry(name="api.ts", path="/home/user/api.ts", kind="file", size=1978),
    )
    listing = displays.Listing("writer/p", "/home/user", entries)
    assert repr(listing) == "writer/p:/home/user (2 entries)\n           0  src/\n       1,978  api.ts"
    assert "src/" in listing._repr_html_()
    assert repr(displays.Listing("writer/p", "/home", entries[:1])).startswith("writer/p:/home (1 entry)")
    assert "(empty)" in displays.Listing("writer/p", "/tmp", ())._repr_html_()
    assert repr(displays.FileView("writer/p", "/a", b"line\n")) == "line\n"
    binary = displays.FileView("writer/p", "/b", b"\xff\xfe\x00")
    assert repr(binary) == "(3 bytes of binary data)"
    big = displays.FileView("writer/p", "/c", b"x" * (displays.FILE_CHARS + 5))
    assert repr(big).endswith("… (5 more characters)")


def test_a_huge_listing_shows_its_first_entries_and_counts_the_rest() -> None:
    many = tuple(
        DirEntry(name=f"f{n}", path=f"/tmp/f{n}", kind="file", size=n) for n in range(displays.LISTED + 7)
    )
    listing = displays.Listing("writer/p", "/tmp", many)
    shown = repr(listing).splitlines()
    assert len(shown) == 1 + displays.LISTED + 1
    assert shown[-1] == "… 7 more (all of them are in .entries)"
    assert listing._repr_html_().count("<tr>") == displays.LISTED
    assert "… 7 more" in listing._repr_html_()


def test_register_formats_results_and_unregister_puts_back_what_was_there(shell: InteractiveShell) -> None:
    html_printers = shell.display_formatter.formatters["text/html"].type_printers
    before = dict(html_printers)
    earlier = html_printers[ExecResult] = lambda result: "<b>someone else's</b>"
    try:
        assert displays.register(shell)
        assert not displays.register(shell)  # once is enough
        data = formats(shell, prompt_result())
        assert "Done: wrote api.ts" in data["text/html"]
        assert data["text/plain"].startswith("Done: wrote api.ts\n[end_turn]")
        assert formats(shell, ExecResult(exit_code=0, stdout="hi", stderr=""))["text/plain"] == "hi\n[exit 0]"
        update = ToolCall(seq=4, tool_call_id="t", title="bash: ls", kind="execute")
        assert formats(shell, [update])["text/plain"] == "[#4 tool_call bash: ls]"
    finally:
        displays.unregister(shell)
    assert html_printers[ExecResult] is earlier
    del html_printers[ExecResult]
    assert html_printers == before


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_import_registers_only_in_a_running_shell_and_never_imports_ipython() -> None:
    assert run_python("import sys, agentos_nb; print('IPython' in sys.modules)") == "False"
    in_shell = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "import agentos_nb\n"
        "data, _ = shell.display_formatter.format(agentos_nb.ExecResult(exit_code=3, stdout='', stderr=''))\n"
        "print(data['text/plain'])\n"
    )
    assert run_python(in_shell) == "[exit 3]"


HOSTILE_REPLY = (
    "I wrote **hello.py**:\n\n- `print('hi')`\n- <script>alert(1)</script>\n\n"
    "[docs](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n```python\nprint('hi')\n```"
)


def test_agent_replies_show_as_markdown_with_nothing_of_theirs_run() -> None:
    from agentos_nb.jupyter.dashboard.transcript_html import render_item
    from agentos_nb.jupyter.transcript import TranscriptItem

    item = TranscriptItem(key="seq-1", kind="agent", text=HOSTILE_REPLY)
    for shown in (displays.transcript_html([item]), render_item(item)):
        assert "<strong>hello.py</strong>" in shown
        assert "<li><code>print('hi')</code></li>" in shown
        assert '<code class="language-python">' in shown
        assert "<script>" not in shown
        assert "<img" not in shown
        assert 'href="javascript' not in shown
    prompt = render_item(TranscriptItem(key="seq-0", kind="user", text="**not rendered**"))
    assert "**not rendered**" in prompt
