"""The magics in an in-process IPython shell: the input transformer, argument lines and their
UsageErrors, streaming into a display, the `%agentos` subcommands, and unloading.

IPython runs a cell with a top-level await on its own event loop, the one the registry of these
tests is started on; between cells that loop stands still (in a kernel it keeps running: see
test_kernel.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import RichOutput, capture_output
from pydantic import BaseModel
from traitlets.config import Config

from agentos_nb import PromptResult, SendResult, actor, agent_os, queue, setup
from agentos_nb.actors.registry import Registry
from agentos_nb.errors import RegistryNotRunning
from agentos_nb.jupyter import displays
from agentos_nb.jupyter import magics as magics_module
from agentos_nb.jupyter.agent_cell import LiveTurn, run_turn
from agentos_nb.jupyter.dashboard import Dashboard
from agentos_nb.jupyter.displays import FileView, Listing
from agentos_nb.jupyter.extension import MAGICS
from agentos_nb.jupyter.terminal_widget import TerminalWidget
from agentos_nb.offline import Bash, Reply, offline_model
from agentos_nb.software import Pi, common
from agentos_nb.vm.session_models import SessionInfo, TextContent, UserMessageChunk

REGISTRY = "magics-test"


class Job(BaseModel):
    title: str


class Question(BaseModel):
    text: str


class Answer(BaseModel):
    text: str


async def answer(c) -> None:
    async for message in c.queue.iter(completable=True):
        await message.complete(Answer(text=message.body.text.upper()))


def make_registry(name: str = REGISTRY, script: tuple = (Bash("echo hi"), Reply("all done"))) -> Registry:
    """A VM whose agent follows `script`, a queue nobody reads (one message fills it), and an
    actor that answers questions."""
    return setup(
        use={
            "vm": agent_os(software=[common, Pi(model=offline_model(script=list(script)))]),
            "inbox": actor(queues={"jobs": queue(Job)}, options={"max_queue_size": 1}),
            "oracle": actor(queues={"ask": queue(Question, Answer)}, run=answer),
        },
        name=name,
    )


@dataclass
class Ran:
    result: ExecutionResult
    outputs: list[RichOutput]
    stdout: str

    @property
    def value(self) -> Any:
        assert self.result.success, self.error
        return self.result.result

    @property
    def error(self) -> BaseException | None:
        return self.result.error_before_exec or self.result.error_in_exec


def run(shell: InteractiveShell, code: str) -> Ran:
    with capture_output() as captured:
        result = shell.run_cell(code, store_history=False)
    return Ran(result, captured.outputs, captured.stdout)


def usage_error(shell: InteractiveShell, code: str) -> str:
    """The message of the UsageError a cell raises (IPython shows it as one line, no traceback)."""
    ran = run(shell, code)
    assert type(ran.error) is UsageError, ran.error
    return str(ran.error)


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.push({"make_registry": make_registry})
    return shell


@pytest.fixture
def loaded(shell: InteractiveShell) -> Iterator[InteractiveShell]:
    run(shell, "%load_ext agentos_nb")
    yield shell
    run(shell, "%unload_ext agentos_nb")


@pytest.fixture
def registry(loaded: InteractiveShell) -> Iterator[Registry]:
    """`make_registry()` started in the shell, as a notebook would."""
    run(loaded, "registry = make_registry()\nregistry.start()\nawait registry.ready()")
    yield loaded.user_ns["registry"]
    assert run(loaded, "await registry.stop()").result.success


@contextlib.contextmanager
def scripted(shell: InteractiveShell, *script: Any) -> Iterator[Registry]:
    """A registry whose VM's agent follows `script`, started in the shell, stopped after."""
    shell.push({"script": script})
    run(shell, "registry = make_registry(script=script)\nregistry.start()\nawait registry.ready()")
    try:
        yield shell.user_ns["registry"]
    finally:
        run(shell, "await registry.stop()")


# --- the input transformer -----------------------------------------------------------------------


def test_an_agent_cell_becomes_an_await_with_line_and_body_as_literals(loaded: InteractiveShell) -> None:
    body = 'Use {braces}, $dollars, \'quotes\' and """triples""" as they are.\n'
    code = loaded.transform_cell(f"%%agent vm main --new\n{body}")
    assert code == f"await {MAGICS}.run_agent('vm main --new', {body!r})\n"


def test_agentos_lines_at_the_margin_become_awaits(loaded: InteractiveShell) -> None:
    cell = "x = 1\n%agentos ls vm/main\nlisting = %agentos cat vm/main /a\n"
    code = loaded.transform_cell(cell + "s = '''\n%agentos ls inside a string\n'''\n")
    assert code.splitlines() == [
        "x = 1",
        f"await {MAGICS}.run_agentos('ls vm/main')",
        f"listing = await {MAGICS}.run_agentos('cat vm/main /a')",
        "s = '''",
        "%agentos ls inside a string",
        "'''",
    ]


def test_other_cells_are_left_to_ipython(loaded: InteractiveShell) -> None:
    # indented: an await could land in a `def`, so IPython calls the magic, which runs in the background
    assert "run_line_magic('agentos', 'ls vm')" in loaded.transform_cell("if True:\n    %agentos ls vm\n")
    # another cell magic's body is its own
    assert "run_agentos" not in loaded.transform_cell("%%writefile notes.txt\n%agentos ls vm\n")
    assert "run_cell_magic('agentosx'" in loaded.transform_cell("%%agentosx\nbody\n")
    assert loaded.transform_cell("%%agent?\n") == "get_ipython().run_line_magic('pinfo', '%%agent')\n"


def test_an_agent_cell_still_ends_at_a_blank_line_in_a_terminal(loaded: InteractiveShell) -> None:
    manager = loaded.input_transformer_manager
    assert manager.check_complete("%%agent vm\nhello\n")[0] == "incomplete"
    assert manager.check_complete("%%agent vm\nhello\n\n")[0] == "complete"


# --- bad lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("%%agent\nhello", "the following arguments are required: ACTOR"),
        ("%%agent vm --frobnicate\nhello", "unrecognized arguments: --frobnicate"),
        ("%%agent vm --timeout soon\nhello", "must be a positive number of seconds, not 'soon'"),
        ("%%agent vm --timeout -1\nhello", "must be a positive number of seconds, not '-1'"),
        ("%%agent vm 'main\nhello", "cannot split the line: No closing quotation"),
        ("%%agent vm --session s-1 --new\nhello", "not allowed with argument --session"),
        ("%%agent vm --session s-1 --model offline\nhello", "--session ID reuses one as it is"),
        ("%%agent vm/main other\nhello", "the key is given twice"),
        ("%%agent vm//main\nhello", "is not ACTOR or ACTOR/KEY"),
        ("%%agent vm main\n   \n", "the prompt is the cell's body, and it is empty"),
        ("%agentos", "a subcommand is needed"),
        (
            "%agentos frob",
            "unknown subcommand 'frob' (one of: dashboard, events, tools, ls, cat, send, shell)",
        ),
        ("%agentos shell", "the following arguments are required: ACTOR"),
        ("%agentos shell vm --cols 0", "terminal cols must be a whole number from 1 to 1000, not 0"),
        ("%agentos shell vm --rows x", "argument --rows: invalid int value: 'x'"),
        ("%agentos shell vm/a b", "the key is given twice"),
        ("%agentos ls", "the following arguments are required: ACTOR[/KEY]"),
        ("%agentos cat vm/main", "the following arguments are required: PATH"),
        ("%agentos cat vm/main ''", "PATH is empty"),
        ("%agentos dashboard --tabs x", "unrecognized arguments: --tabs x"),
        ("%agentos send inbox jobs", "the JSON body is missing"),
        ("%agentos send inbox jobs {'title': 1}", "the body is not JSON: Expecting property name"),
        ("%agentos send inbox jobs {} --wait", "the body is not JSON: Extra data"),
        ("%agentos send inbox --timeout 0 jobs {}", "must be a positive number of seconds, not '0'"),
    ],
)
def test_a_bad_line_is_a_usage_error_that_names_the_problem(
    registry: Registry, loaded: InteractiveShell, code: str, says: str
) -> None:
    message = usage_error(loaded, code)
    assert says in message
    assert "Usage: %" in message or "Usage:\n%" in message


def test_no_running_registry_says_to_start_one(
    loaded: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(magics_module, "running_registries", list)
    for code in ("%%agent vm\nhello", "%agentos ls vm", "%agentos dashboard"):
        assert "no agentos_nb registry is running in this kernel: start one first" in usage_error(
            loaded, code
        )


def test_unknown_registry_actor_or_vm_is_a_usage_error(registry: Registry, loaded: InteractiveShell) -> None:
    assert "no running registry is named 'nope'; running: " in usage_error(
        loaded, "%%agent vm --registry nope\nhello"
    )
    assert "registry 'magics-test' has no actor type 'writer'; it has: inbox, oracle, vm" in usage_error(
        loaded, "%agentos ls writer/main"
    )
    assert "'inbox' is not an agent VM (made with agent_os); the VMs of registry 'magics-test': vm" in (
        usage_error(loaded, "%%agent inbox\nhello")
    )
    assert "'inbox' is not an agent VM" in usage_error(loaded, "%agentos shell inbox")


def test_runtime_errors_are_usage_errors_naming_their_type(
    registry: Registry, loaded: InteractiveShell
) -> None:
    run(loaded, "await registry.client().vm.get_or_create('main').exists('/')")
    assert usage_error(loaded, "%agentos cat vm/main /nowhere") == (
        "FileNotFoundError: [Errno 2] file not found: '/nowhere'"
    )
    assert usage_error(loaded, "%agentos ls vm/absent") == "ActorNotFound: no actor 'vm' with key ['absent']"
    assert usage_error(loaded, '%agentos send inbox/a nope {"title": "x"}').startswith(
        "UnknownQueue: actor 'inbox' has no queue 'nope'"
    )
    assert usage_error(loaded, '%agentos send inbox/a jobs {"title": 3}').startswith("ValidationError: ")
    assert usage_error(loaded, "%%agent vm --session s-unknown\nhello").startswith("SessionNotFound: ")


# --- %%agent -------------------------------------------------------------------------------------


def test_the_reply_streams_into_one_display_and_the_cell_returns_the_prompt_result(
    loaded: InteractiveShell,
) -> None:
    with scripted(loaded, Bash("sleep 0.3"), Reply("rested")):
        started = time.monotonic()
        ran = run(loaded, "%%agent vm main\nTake a nap.")
        elapsed = time.monotonic() - started
    result = ran.value
    assert isinstance(result, PromptResult)
    assert (result.text, result.stop_reason, result.usage.tool_calls) == ("rested", "end_turn", 1)
    first, *updates = ran.outputs
    assert not first.update
    assert all(o.update for o in updates)
    assert {o.transient["display_id"] for o in ran.outputs} == {first.transient["display_id"]}
    assert "[running…]" in first.data["text/plain"]
    # the nap shows while it lasts, and the end once the turn ended
    assert any("[running] bash: sleep 0.3" in o.data["text/plain"] for o in updates)
    assert "[end_turn]" in updates[-1].data["text/plain"]
    assert "[completed] bash: sleep 0.3" in updates[-1].data["text/plain"]
    assert "transcript: 1 tool call" in updates[-1].data["text/html"]
    # once answered, the reply is the cell's value's to show, not the live display's too
    assert "rested" not in updates[-1].data["text/plain"]
    assert "rested" not in updates[-1].data["text/html"]
    assert len(updates) <= 2 + elapsed * 10  # at most ten redraws a second, and the last one


def test_the_prompt_is_sent_exactly_as_written(registry: Registry, loaded: InteractiveShell) -> None:
    body = "Keep {braces}, $HOME, 'single' and \"double\" quotes,\n\\backslashes\\ and %% signs."
    result = run(loaded, f"%%agent vm main\n{body}\n").value
    run(
        loaded, f"events = await registry.client().vm.get(['main']).get_session_events({result.session_id!r})"
    )
    prompts = [u.content.text for u in loaded.user_ns["events"] if u.session_update == "user_message_chunk"]
    assert prompts == [body]


def test_sessions_are_continued_per_actor_key_agent_and_model(
    registry: Registry, loaded: InteractiveShell
) -> None:
    first = run(loaded, "%%agent vm main\none").value.session_id
    assert run(loaded, "%%agent vm/main\ntwo").value.session_id == first
    other_key = run(loaded, "%%agent vm other\nthree").value.session_id
    other_model = run(loaded, "%%agent vm main --model offline\nfour").value.session_id
    assert len({first, other_key, other_model}) == 3
    fresh = run(loaded, "%%agent vm main --new\nfive").value.session_id
    assert fresh != first
    assert run(loaded, "%%agent vm main\nsix").value.session_id == fresh  # --new is continued
    assert run(loaded, f"%%agent vm main --session {first}\nseven").value.session_id == first
    assert run(loaded, "%%agent vm main\neight").value.session_id == fresh  # --session was for once
    run(loaded, f"await registry.client().vm.get(['main']).close_session({fresh!r})")
    assert run(loaded, "%%agent vm main\nnine").value.session_id not in (first, fresh)
    message = usage_error(loaded, f"%%agent vm main --session {fresh}\nten")
    assert message == f"session {fresh!r} of vm/main is closed"


def test_a_timeout_cancels_the_turn(loaded: InteractiveShell) -> None:
    with scripted(loaded, Bash("sleep 30"), Reply("never")):
        ran = run(loaded, "%%agent vm main --timeout 0.2\nSleep long.")
        assert ran.value.stop_reason == "cancelled"
        assert "[timed out after 0.2 s: cancelled]" in ran.outputs[-1].data["text/plain"]
        assert "[completed] bash: sleep 30" not in ran.outputs[-1].data["text/plain"]
        # the session goes on
        assert run(loaded, "%%agent vm main\nAnd now?").value.stop_reason == "end_turn"


@pytest.mark.anyio
async def test_a_turn_whose_stream_fails_says_so_in_its_display() -> None:
    class Broken:
        """A VM handle whose stream breaks after the prompt, as one whose registry stops does."""

        async def stream_prompt(self, session_id: str, prompt: str) -> AsyncIterator[Any]:
            yield UserMessageChunk(seq=1, content=TextContent(text=prompt))
            raise RegistryNotRunning("registry 'gone' has stopped")

    class Shown:
        def start(self, turn: LiveTurn) -> None:
            self.turn = turn

        def changed(self) -> None:
            pass

        def close(self) -> None:
            self.last = repr(self.turn)

    session = SessionInfo(
        session_id="s-1", agent_type="pi", model="m", model_reason="", offline=False, cwd="/", created_at=0
    )
    shown = Shown()
    with pytest.raises(RegistryNotRunning):
        await run_turn(Broken(), LiveTurn("vm", session), "hello", shown)  # type: ignore[arg-type]
    assert "[failed: RegistryNotRunning: registry 'gone' has stopped]" in shown.last
    assert "running…" not in shown.last


def test_in_a_terminal_each_update_is_printed_once(
    registry: Registry, loaded: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = loaded.run_cell("%%agent vm main\nSay hi.", store_history=False).result
    printed = capsys.readouterr().out
    assert printed.startswith("vm/main · session ")
    assert "  [tool] bash: echo hi\n  [completed] hi\n" in printed
    assert printed.count("all done") == 1  # the cell's value shows the reply; the steps do not repeat it
    assert result.text == "all done"


def test_in_a_terminal_background_work_prints_its_outcome(
    registry: Registry, loaded: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    code = (
        "turn = get_ipython().run_cell_magic('agent', 'vm main', 'Say hi.')\n"
        "failing = get_ipython().run_line_magic('agentos', 'ls vm/absent')\n"
        "import asyncio\n"
        "await asyncio.wait([turn, failing])"
    )
    assert loaded.run_cell(code, store_history=False).success
    printed = capsys.readouterr().out
    assert "  [completed] hi\nall done\n[end_turn] 2 requests" in printed  # the reply once, with the result
    assert "UsageError: ActorNotFound: no actor 'vm' with key ['absent']" in printed


def test_reached_without_the_transformer_the_magic_runs_in_the_background(
    registry: Registry, loaded: InteractiveShell
) -> None:
    ran = run(
        loaded,
        "task = get_ipython().run_cell_magic('agent', 'vm main', 'Say hi.')\n"
        "listing = get_ipython().run_line_magic('agentos', 'ls vm/main')\n"
        "failing = get_ipython().run_line_magic('agentos', 'cat vm/main /nowhere')\n"
        "result = await task\n"
        "entries = await listing\n"
        "try:\n    await failing\nexcept Exception as error:\n    problem = str(error)\n",
    )
    assert ran.result.success, ran.error
    assert loaded.user_ns["result"].text == "all done"
    assert isinstance(loaded.user_ns["entries"], Listing)
    assert loaded.user_ns["problem"].startswith("FileNotFoundError")
    shown: dict[str, str] = {}
    for output in ran.outputs:  # the last state of each display
        shown[output.transient["display_id"]] = output.data["text/plain"]
    agent, ls, cat = shown.values()
    assert agent.startswith("vm/main · session")
    assert "[end_turn]" in agent
    assert agent.endswith(displays.prompt_result_text(loaded.user_ns["result"]))  # no cell shows it
    assert agent.count("all done") == 1
    assert ls.startswith("vm/main:/home/user")
    assert cat == "UsageError: FileNotFoundError: [Errno 2] file not found: '/nowhere'"


def test_without_a_running_loop_the_magic_says_how_to_run_it(
    registry: Registry, loaded: InteractiveShell
) -> None:
    message = usage_error(loaded, "get_ipython().run_cell_magic('agent', 'vm main', 'hi')")
    assert message.startswith(
        "%%agent needs the kernel's running event loop: write it at the start of a cell"
    )


# --- %agentos ------------------------------------------------------------------------------------


def test_ls_and_cat_show_a_vms_files(registry: Registry, loaded: InteractiveShell) -> None:
    run(
        loaded,
        "await registry.client().vm.get_or_create('main').write_file('/home/user/notes.md', '# hi\\n')",
    )
    listing = run(loaded, "%agentos ls vm/main").value
    assert isinstance(listing, Listing)
    assert [e.name for e in listing.entries] == ["notes.md"]
    assert run(loaded, "%agentos ls vm/main /home").value.entries[0].name == "user"
    viewed = run(loaded, "view = %agentos cat vm/main notes.md\nview").value
    assert isinstance(viewed, FileView)
    assert viewed.text == "# hi\n"


def test_send_enqueues_waits_and_reports_a_full_queue(registry: Registry, loaded: InteractiveShell) -> None:
    sent = run(loaded, '%agentos send inbox/a jobs {"title": "Fix the login"}').value
    assert isinstance(sent, SendResult)
    assert sent.status == "enqueued"
    assert usage_error(loaded, '%agentos send inbox/a jobs {"title": "one too many"}').startswith(
        "QueueFull: "
    )
    answered = run(loaded, '%agentos send oracle --wait --timeout 10 ask \'{"text": "why?"}\'').value
    assert (answered.status, answered.response) == ("completed", Answer(text="WHY?"))
    # options may also follow QUEUE, as the usage line has them
    answered = run(loaded, '%agentos send oracle ask --wait --timeout 10 {"text": "how?"}').value
    assert (answered.status, answered.response) == ("completed", Answer(text="HOW?"))


@pytest.mark.parametrize(
    ("command", "tabs"), [("dashboard", 8), ("events", ["Events"]), ("tools", ["Tool calls"])]
)
def test_dashboards_and_their_tabs(
    registry: Registry, loaded: InteractiveShell, command: str, tabs: Any
) -> None:
    dashboard = run(loaded, f"%agentos {command} --registry {REGISTRY}").value
    assert isinstance(dashboard, Dashboard)
    assert dashboard.registry is registry
    if isinstance(tabs, int):
        assert len(dashboard.titles) == tabs
    else:
        assert list(dashboard.titles) == tabs


def test_shell_shows_a_terminal_widget_on_the_vm(registry: Registry, loaded: InteractiveShell) -> None:
    widget = run(loaded, "%agentos shell vm main --cols 70 --rows 10").value
    assert isinstance(widget, TerminalWidget)
    assert (widget.cols, widget.rows) == (70, 10)
    ran = run(
        loaded,
        "term = await _.opened()\n"
        "await term.send('echo from-magic\\r')\n"
        "await term.wait_for('from-magic\\n$')",
    )
    assert ran.result.success, ran.error
    assert run(loaded, "await registry.client().vm.get('main').list_terminals()").value != []
    run(loaded, "%unload_ext agentos_nb")  # what the magics opened closes with them
    run(loaded, "%load_ext agentos_nb")
    assert widget.comm is None


# --- unloading ---------------------------------------------------------------------------------


def shell_state(shell: InteractiveShell) -> dict[str, Any]:
    formatters = shell.display_formatter.formatters
    return {
        "cleanup": list(shell.input_transformers_cleanup),
        "post": list(shell.input_transformers_post),
        "magics": {kind: dict(table) for kind, table in shell.magics_manager.magics.items()},
        "registry": dict(shell.magics_manager.registry),
        "namespace": set(shell.user_ns),
        "hidden": set(shell.user_ns_hidden),
        "html": dict(formatters["text/html"].type_printers),
        "plain": dict(formatters["text/plain"].type_printers),
    }


def test_unloading_restores_everything(shell: InteractiveShell) -> None:
    def agent(line: str, cell: str) -> str:
        return "someone else's %%agent"

    shell.register_magic_function(agent, "cell", "agent")
    shell.push({"script": (Bash("sleep 30"), Reply("never"))})
    run(shell, "registry = make_registry('unload-test', script)\nregistry.start()\nawait registry.ready()")
    try:
        shell.magics_manager.registry["ExtensionMagics"]  # IPython loads %load_ext's own magics lazily
        before = shell_state(shell)
        run(shell, "%load_ext agentos_nb")
        assert shell_state(shell) != before
        dashboard = run(shell, "%agentos dashboard").value
        # a turn in the background, still running when the extension is unloaded
        start = "nap = get_ipython().run_cell_magic('agent', 'vm', 'Nap.')\nawait asyncio.sleep(0.1)"
        assert run(shell, f"import asyncio\n{start}").result.success
        task = shell.user_ns["nap"]
        run(shell, "%unload_ext agentos_nb")
        assert dashboard.closed
        assert task.cancelling()
        for name in {"nap", "asyncio"} - before["namespace"]:  # what the test's own cells assigned
            del shell.user_ns[name]
        assert shell_state(shell) == before
        assert run(shell, "%%agent vm\nhello").value == "someone else's %%agent"
        assert "run_line_magic('agentos'" in shell.transform_cell("%agentos ls vm\n")
    finally:
        run(shell, "await registry.stop()")
        del shell.magics_manager.magics["cell"]["agent"]


def test_unloading_leaves_the_displays_an_import_registered_before_loading(shell: InteractiveShell) -> None:
    html_printers = shell.display_formatter.formatters["text/html"].type_printers
    assert displays.register(shell)  # what `import agentos_nb` does in a running shell
    try:
        run(shell, "%load_ext agentos_nb")
        run(shell, "%unload_ext agentos_nb")
        assert html_printers[PromptResult] is displays.prompt_result_html
    finally:
        displays.unregister(shell)
    assert PromptResult not in html_printers
