"""The live dashboard, driven by real registries and read through widget state (no browser).

Widgets are put on a recording comm, so a test can count the messages a redraw sends, as a
kernel would send them to the front end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import comm
import ipywidgets as widgets
import pytest
from comm.base_comm import BaseComm
from pydantic import BaseModel

from agentos_nb import actor, agent_os, host_tool, queue, toolkit
from agentos_nb.demo import PROJECT, WRITER_PROMPT, seed_000_registry
from agentos_nb.errors import QueueFull
from agentos_nb.events import ActorCreated, ActorRef, MessageCompleted
from agentos_nb.jupyter.dashboard import Dashboard
from agentos_nb.jupyter.dashboard import dashboard as dashboard_module
from agentos_nb.jupyter.dashboard import renderer as renderer_module
from agentos_nb.jupyter.dashboard.file_tree import MAX_ENTRIES, FileTree
from agentos_nb.jupyter.dashboard.queue_stats import QueueBoard
from agentos_nb.vm.models import DirEntry
from conftest import wait_until

pytestmark = pytest.mark.anyio

HOSTILE = "<script>alert('owned')</script>"
PAUSED = 3600.0
"""An interval so long that only refresh() redraws: the test decides when."""


# --- recording the messages widgets send -----------------------------------------------------


@dataclass
class Sent:
    comm_id: str
    msg_type: str
    data: dict[str, Any] | None


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every message a widget sends to the front end, in order (what ipykernel's comm would send)."""
    log: list[Sent] = []

    class RecordingComm(BaseComm):
        def publish_msg(
            self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
        ):
            log.append(Sent(self.comm_id, msg_type, data))

    monkeypatch.setattr(comm, "create_comm", lambda *args, **kwargs: RecordingComm(*args, **kwargs))
    return log


def updates(log: list[Sent]) -> list[Sent]:
    return [m for m in log if m.msg_type == "comm_msg" and m.data and m.data.get("method") == "update"]


# --- reading widgets ---------------------------------------------------------------------------


def tree(root: widgets.Widget) -> Iterator[widgets.Widget]:
    yield root
    for child in getattr(root, "children", ()):
        yield from tree(child)


def by_class(root: widgets.Widget, css_class: str) -> widgets.Widget:
    found = [w for w in tree(root) if css_class in w.get_state()["_dom_classes"]]
    assert len(found) == 1, f"{len(found)} widgets with class {css_class}"
    return found[0]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.parts: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def text(html: str) -> str:
    """What a reader sees of some HTML: its text, entities decoded, a space between elements."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def rows(html: str) -> list[list[str]]:
    """A table's body rows as cell texts."""
    parser = _Text()
    parser.feed(html)
    return parser.rows[1:]


def value(root: widgets.Widget, css_class: str) -> str:
    return by_class(root, css_class).get_state()["value"]


# --- a small actor with queues -------------------------------------------------------------------


class Job(BaseModel):
    n: int


class Done(BaseModel):
    n: int


async def serve_jobs(c):
    async for message in c.queue.iter("jobs", completable=True):
        if message.body.n < 0:
            raise RuntimeError("negative job")  # max_attempts=1: this message is dead-lettered
        await message.complete(Done(n=message.body.n))


def worker(**options: Any):
    return actor(
        state={"note": HOSTILE},
        queues={"jobs": queue(Job, Done), "parked": queue(Job, max_size=2)},  # nothing takes `parked`
        run=serve_jobs,
        options={"max_attempts": 1, "restart_backoff": 0, **options},
    )


@pytest.fixture
async def seed_000():
    """Seed 000 run once: the writer's prompt, its `review.submit` call, the reviewer's turn."""
    registry = seed_000_registry()
    registry.start()
    await registry.ready()
    yield registry
    await registry.stop(grace=0)


async def run_seed_000(registry) -> str:
    writer = registry.client().writer.get_or_create(PROJECT)
    session = await writer.create_session("pi")
    await writer.send_prompt(session.session_id, WRITER_PROMPT)
    return session.session_id


# --- the tabs ----------------------------------------------------------------------------------


async def test_tool_calls_tab_draws_who_called_whom_with_counts(sent, seed_000):
    dashboard = Dashboard(seed_000, interval=PAUSED)
    try:
        await run_seed_000(seed_000)
        await dashboard.refresh()
        graph = by_class(dashboard.widget, "agentos-call-graph")
        picture = text(graph.get_state()["value"])
        for word in ("writer", "review.submit", "reviewer", "×1"):
            assert word in picture
        assert "tools they called" in picture
        [call] = rows(value(dashboard.widget, "agentos-tool-calls"))
        _, caller, tool, given, result, reached, took = call
        assert (caller, tool, reached) == ("writer/my-project", "review.submit", "reviewer/my-project")
        assert given == '{"path":"/home/user/api.ts"}'
        assert "Summary: 8 issues" in result
        assert re.fullmatch(r"\d+(\.\d+)? (µs|ms|s)", took)
    finally:
        dashboard.close()


class NoteInput(BaseModel):
    text: str


async def test_a_tool_called_by_many_is_one_node_reaching_the_host_and_errors_are_said_once(
    sent, start_registry
):
    noted: list[str] = []

    async def add_note(input: NoteInput, ctx: Any) -> dict[str, int]:  # a function on the host
        noted.append(input.text)
        return {"notes": len(noted)}

    add = host_tool(description="Remember a note", input_schema=NoteInput, execute=add_note)
    notes = toolkit(name="notes", description="Notes kept on the host", tools={"add": add})
    registry = await start_registry(vm=agent_os(toolkits=[notes]))
    alice, bob = (registry.client().vm.get_or_create([name]) for name in ("alice", "bob"))
    dashboard = Dashboard(registry, tabs=["Tool calls"], interval=PAUSED)
    try:
        await alice.exec("agentos-notes add --text 'buy milk'")
        await bob.exec("agentos-notes add --text 'call alice'")
        await bob.exec("agentos-notes add")
        await dashboard.refresh()
        picture = by_class(dashboard.widget, "agentos-call-graph").get_state()["value"]
        assert picture.count('<g class="ao-g-tool">') == 1
        assert "the host (no actor)" in text(picture)
        assert "notes.add reached the host (no actor) in 2 calls" in text(picture)
        failed = next(row for row in rows(value(dashboard.widget, "agentos-tool-calls")) if "ERROR" in row[4])
        assert failed[4].count("VALIDATION_ERROR") == 1, failed[4]
        assert "--text" in failed[4]
    finally:
        dashboard.close()


async def test_every_tab_has_its_class_and_the_root_displays_as_the_widget(sent, seed_000):
    dashboard = Dashboard(seed_000, interval=PAUSED)
    try:
        assert "agentos-dashboard" in dashboard.widget.get_state()["_dom_classes"]
        tab = next(w for w in tree(dashboard.widget) if isinstance(w, widgets.Tab))
        assert tab.get_state()["titles"] == (
            "Actors",
            "Queues",
            "Sessions",
            "Tool calls",
            "Files",
            "Processes",
            "Cron",
            "Events",
        )
        for slug in ("actors", "queues", "sessions", "tool-calls", "files", "events"):
            assert by_class(dashboard.widget, f"agentos-tab-{slug}") in tab.children
        bundle = dashboard._repr_mimebundle_()
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dashboard.widget.model_id
        assert bundle["text/plain"] == repr(dashboard)
        await run_seed_000(seed_000)
        await dashboard.refresh()
        first, second = repr(dashboard).split("\n")
        assert first == "agentos dashboard of registry 'seed-000' (running), updating every 3600 s"
        assert second.startswith(
            "  2 actors (2 awake) · 0 queues · 2 sessions (1 open) · 1 tool call · files of each VM · "
        )
        assert second.endswith(" events (0 dropped)")
    finally:
        dashboard.close()


async def test_sessions_tab_lists_sessions_and_folds_tool_calls_in_the_transcript(sent, seed_000):
    dashboard = Dashboard(seed_000, interval=PAUSED)
    try:
        writer_session = await run_seed_000(seed_000)
        await dashboard.refresh()
        picker = by_class(dashboard.widget, "agentos-session-list")
        labels = [label for label, _ in picker.options]
        assert len(labels) == 2
        assert f"✓ writer/my-project · {writer_session}" in labels  # open, and idle
        assert any(label.startswith("✕ reviewer/my-project · s-") for label in labels)  # closed
        picker.value = writer_session  # as a click in the list does
        await dashboard.refresh()
        transcript = by_class(dashboard.widget, "agentos-transcript")
        items = [child.get_state()["value"] for child in transcript.children]
        assert text(items[1]).startswith("prompt Write a REST API at /home/user/api.ts")
        tool_calls = [item for item in items if item.startswith('<details class="ao-tool"><summary>')]
        [submit] = [item for item in tool_calls if "agentos-review submit" in item]  # folded until clicked
        assert "completed" in text(submit)
        assert text(items[-1]).startswith("turn ended: end_turn")
        head = text(value(dashboard.widget, "agentos-session-head"))
        assert head.startswith(f"writer/my-project idle {writer_session} pi offline:agentos offline model")
    finally:
        dashboard.close()


async def test_a_dashboard_opened_late_lists_earlier_sessions_and_loads_their_transcripts(sent, seed_000):
    writer_session = await run_seed_000(seed_000)
    dashboard = Dashboard(seed_000, tabs=["Sessions"], interval=PAUSED)
    try:
        picker = by_class(dashboard.widget, "agentos-session-list")

        async def both_listed() -> bool:
            await dashboard.refresh()
            return len(picker.options) == 2

        await wait_until(both_listed)
        picker.value = writer_session

        async def transcript_loaded() -> bool:
            await dashboard.refresh()
            children = by_class(dashboard.widget, "agentos-transcript").children
            return any("agentos-review submit" in child.value for child in children)

        await wait_until(transcript_loaded)
    finally:
        dashboard.close()


async def test_queues_tab_shows_depth_completions_rejections_and_dead_letters(sent, start_registry):
    registry = await start_registry(worker=worker())
    dashboard = Dashboard(registry, tabs=["Queues", "Actors"], interval=PAUSED)
    try:
        handle = registry.client().worker.get_or_create(["a"])
        for n in range(5):
            assert (await handle.send("jobs", {"n": n}, wait=True, timeout=5)).status == "completed"
        assert (await handle.send("jobs", {"n": -1}, wait=True, timeout=5)).status == "dead_lettered"
        await handle.send("parked", {"n": 1})
        await handle.send("parked", {"n": 2})
        with pytest.raises(QueueFull):
            await handle.send("parked", {"n": 3})  # backpressure: refused, and counted
        await dashboard.refresh()
        table = {(row[0], row[1]): row for row in rows(value(dashboard.widget, "agentos-queues"))}
        jobs, parked = table[("worker/a", "jobs")], table[("worker/a", "parked")]
        # actor, queue, depth, in flight, done/s, completed, rejected, dead letters, chart
        assert (jobs[2], jobs[3], jobs[5], jobs[6], jobs[7]) == ("0 / 1,000", "0", "5", "0", "1")
        assert (parked[2], parked[3], parked[5], parked[6], parked[7]) == ("2 / 2", "0", "0", "1", "0")
        assert "<svg" in value(dashboard.widget, "agentos-queues")  # the depth chart
        assert "depth over the last 10 s: now 2, peak 2" in value(dashboard.widget, "agentos-queues")
    finally:
        dashboard.close()


def test_completions_per_second_average_the_last_whole_seconds():
    board = QueueBoard()
    ref = ActorRef(name="w", key=("a",), actor_id="id")
    for at in (100.1, 100.5, 101.2, 103.9, 105.5):
        board.completed(MessageCompleted(actor=ref, queue="jobs", message_id=1, at=at))
    [stats] = board.rows()
    assert stats.rate(105.7) == 4 / 5  # seconds 100..104; 105 is still running
    assert stats.rate(111.0) == 0.0
    assert stats.completed == 5


async def test_actors_tab_and_file_viewer_escape_what_actors_and_agents_wrote(sent, start_registry):
    registry = await start_registry(worker=worker(), vm=agent_os())
    await registry.client().worker.get_or_create([HOSTILE]).send("parked", {"n": 1})
    vm = registry.client().vm.get_or_create(["box"])
    await vm.write_file("/home/user/page.html", HOSTILE)
    dashboard = Dashboard(registry, tabs=["Actors", "Files"], interval=PAUSED)
    try:
        await dashboard.refresh()
        actors = value(dashboard.widget, "agentos-actors")
        assert "<script>" not in actors
        assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in actors  # the key and the state
        assert HOSTILE in text(actors)
        dashboard.select("Files")
        tree_picker = by_class(dashboard.widget, "agentos-file-tree")

        async def listed() -> bool:
            await dashboard.refresh()
            return "/home/user/page.html" in [path for _, path in tree_picker.options]

        await wait_until(listed)
        tree_picker.value = "/home/user/page.html"

        async def shown() -> bool:
            await dashboard.refresh()
            return HOSTILE in text(value(dashboard.widget, "agentos-file-viewer"))

        await wait_until(shown)
        assert "<script>" not in value(dashboard.widget, "agentos-file-viewer")
    finally:
        dashboard.close()


async def test_files_tab_waits_for_a_sleeping_vm_and_wakes_it_on_request(sent, start_registry):
    registry = await start_registry(vm=agent_os(options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["box"])
    await vm.write_file("/home/user/notes.txt", "hello")
    dashboard = Dashboard(registry, tabs=["Files"], interval=PAUSED)
    try:
        status = by_class(dashboard.widget, "agentos-file-status")
        button = by_class(dashboard.widget, "agentos-file-refresh")

        async def asleep() -> bool:
            await dashboard.refresh()
            return "asleep" in text(status.value)

        await wait_until(asleep)
        assert button.description == "Wake and list"
        button.click()

        async def awake_and_listed() -> bool:
            await dashboard.refresh()
            paths = [path for _, path in by_class(dashboard.widget, "agentos-file-tree").options]
            return "awake" in text(status.value) and "/home/user/notes.txt" in paths

        await wait_until(awake_and_listed)
    finally:
        dashboard.close()


async def test_files_tab_opens_on_the_vm_with_files_and_shows_where_links_point(sent, start_registry):
    registry = await start_registry(vm=agent_os())
    empty_vm = registry.client().vm.get_or_create(["a-empty"])
    await empty_vm.exists("/home/user")
    dashboard = Dashboard(registry, tabs=["Files"], interval=PAUSED)
    try:
        busy = registry.client().vm.get_or_create(["b-busy"])
        await busy.write_file("/home/user/hello.py", "print('hi')\n")
        await busy.exec("ln -s /usr/bin /home/user/bin")
        picker = by_class(dashboard.widget, "agentos-vm-picker")
        tree_picker = by_class(dashboard.widget, "agentos-file-tree")

        async def listed() -> bool:
            await dashboard.refresh()
            return "/home/user/hello.py" in [path for _, path in tree_picker.options]

        await wait_until(listed)
        assert picker.label == "vm/b-busy"
        assert any(label.strip() == "bin → /usr/bin" for label, _ in tree_picker.options)
        picker.value = next(actor_id for label, actor_id in picker.options if label == "vm/a-empty")
        await busy.write_file("/home/user/more.py", "")
        await dashboard.refresh()
        assert picker.label == "vm/a-empty"  # picked by hand: it stays
    finally:
        dashboard.close()


async def test_files_tab_drops_a_vm_that_is_gone_and_says_when_reading_fails(sent, start_registry):
    registry = await start_registry(vm=agent_os())
    await registry.client().vm.get_or_create(["box"]).write_file("/home/user/notes.txt", "hello")
    dashboard = Dashboard(registry, tabs=["Files"], interval=PAUSED)
    try:
        picker = by_class(dashboard.widget, "agentos-vm-picker")
        tree_picker = by_class(dashboard.widget, "agentos-file-tree")

        async def listed() -> bool:
            await dashboard.refresh()
            return "/home/user/notes.txt" in [path for _, path in tree_picker.options]

        await wait_until(listed)
        # A VM the bus announced that the store no longer has (it was destroyed) is left out.
        registry.bus.publish(ActorCreated(actor=ActorRef(name="vm", key=("lost",), actor_id="no-such-actor")))
        await dashboard.refresh()
        assert [label for label, _ in picker.options] == ["vm/box"]
        await registry.stop()
        by_class(dashboard.widget, "agentos-file-refresh").click()

        async def said_why() -> bool:
            await dashboard.refresh()
            return "Could not read the VM: RegistryNotRunning" in text(
                value(dashboard.widget, "agentos-file-status")
            )

        await wait_until(said_why)
        assert "/home/user/notes.txt" in [path for _, path in tree_picker.options]  # what it had stays
    finally:
        dashboard.close()


async def test_events_tab_filters_by_type_prefix_or_actor(sent, seed_000):
    dashboard = Dashboard(seed_000, tabs=["Events"], interval=PAUSED)
    try:
        await run_seed_000(seed_000)
        await dashboard.refresh()
        log = by_class(dashboard.widget, "agentos-events-log")
        search = by_class(dashboard.widget, "agentos-events-filter")
        assert {row[1].partition(".")[0] for row in rows(log.value)} >= {"actor", "action", "session", "tool"}
        search.value = "tool."
        await dashboard.refresh()
        assert [row[1] for row in rows(log.value)] == ["tool.call_finished", "tool.call_started"]
        search.value = "reviewer"
        await dashboard.refresh()
        assert {row[2] for row in rows(log.value)} == {"reviewer/my-project"}
        search.value = "nothing-like-this"
        await dashboard.refresh()
        assert text(log.value) == "No event matches 'nothing-like-this'."
    finally:
        dashboard.close()


async def test_the_events_tab_hides_the_dashboards_own_reads_unless_asked(sent, start_registry):
    registry = await start_registry(vm=agent_os())
    vm = registry.client().vm.get_or_create(["box"])
    await vm.write_file("/home/user/notes.txt", "hello")
    dashboard = Dashboard(registry, tabs=["Files", "Events"], interval=PAUSED)
    try:
        tree_picker = by_class(dashboard.widget, "agentos-file-tree")

        async def listed() -> bool:
            await dashboard.refresh()
            return "/home/user/notes.txt" in [path for _, path in tree_picker.options]

        await wait_until(listed)  # the Files tab has read the VM: readdir actions ran
        await vm.exists("/home/user/notes.txt")  # and one read of the notebook's own
        await dashboard.refresh()
        log = by_class(dashboard.widget, "agentos-events-log")
        shown = [row[3] for row in rows(log.value) if row[1].startswith("action.")]
        assert shown
        assert all(what.startswith("exists") for what in shown), shown
        by_class(dashboard.widget, "agentos-events-observed").value = True
        await dashboard.refresh()
        actions = {row[3].split(" ")[0] for row in rows(log.value) if row[1].startswith("action.")}
        assert {"exists", "readdir"} <= actions
    finally:
        dashboard.close()


async def test_events_the_dashboard_missed_are_counted_and_shown(sent, start_registry, monkeypatch):
    monkeypatch.setattr(dashboard_module, "EVENT_BUFFER", 20)
    registry = await start_registry(worker=worker())
    dashboard = Dashboard(registry, interval=PAUSED)
    try:
        handle = registry.client().worker.get_or_create(["a"])
        for n in range(20):  # three events each, sixty in all, into a buffer of twenty
            await handle.send("jobs", {"n": n}, wait=True, timeout=5)
        await dashboard.refresh()
        header = text(value(dashboard.widget, "agentos-dashboard-header"))
        dropped = int(header.split("⚠ ")[1].split(" events dropped")[0])
        assert dropped >= 40
        oldest = rows(value(dashboard.widget, "agentos-events-log"))[-1]
        assert oldest[1] == "events.dropped"
        assert oldest[3].startswith(f"⚠ {dropped} events dropped: the dashboard fell behind")
        assert f"⚠ {dropped} dropped" in text(value(dashboard.widget, "agentos-events-count"))
        assert dashboard.running
    finally:
        dashboard.close()


# --- choosing tabs -----------------------------------------------------------------------------


async def test_tabs_picks_a_subset_in_the_order_given(sent, seed_000):
    dashboard = seed_000.dashboard(tabs=["Tool calls", "Events"])
    try:
        tab = next(w for w in tree(dashboard.widget) if isinstance(w, widgets.Tab))
        assert tab.get_state()["titles"] == ("Tool calls", "Events")
        assert [
            w for w in tree(dashboard.widget) if "agentos-tab-actors" in w.get_state()["_dom_classes"]
        ] == []
        with pytest.raises(
            ValueError, match="this dashboard has no tab 'Files'; it shows 'Tool calls', 'Events'"
        ):
            dashboard.select("Files")
    finally:
        dashboard.close()


@pytest.mark.parametrize(
    ("tabs", "message"),
    [
        (
            ["Events", "Agents"],
            "unknown dashboard tab 'Agents'; the tabs are 'Actors', 'Queues', 'Sessions', ",
        ),
        ("Events", r"tabs takes a list of tab titles, such as tabs=\['Events'\]"),
        ([], r"tabs=\[\] would show nothing"),
        (["Events", "Events"], "each tab can be shown once; given twice: 'Events'"),
    ],
)
async def test_bad_tabs_are_refused_with_the_valid_titles(sent, seed_000, tabs, message):
    with pytest.raises(ValueError, match=message) as refused:
        Dashboard(seed_000, tabs=tabs)
    if "unknown" in message:
        assert "'Tool calls', 'Files', 'Processes', 'Cron', 'Events'" in str(refused.value)
    assert not seed_000.bus.active  # nothing was left subscribed


@pytest.mark.parametrize("interval", [0, -1, "fast", True])
async def test_a_bad_interval_is_refused(sent, seed_000, interval):
    with pytest.raises(ValueError, match="interval is the seconds between redraws, a positive number"):
        Dashboard(seed_000, interval=interval)


# --- the renderer ------------------------------------------------------------------------------


async def test_close_stops_the_renderer_unsubscribes_and_closes_the_widgets(sent, seed_000):
    dashboard = Dashboard(seed_000, interval=PAUSED)  # asleep for an hour: only a cancel stops it now
    assert seed_000.bus.active
    dashboard.close()
    await wait_until(lambda: not dashboard.running)
    assert not seed_000.bus.active
    assert all(w.comm is None for w in tree(dashboard.widget))
    assert repr(dashboard).startswith("agentos dashboard of registry 'seed-000' (running), closed")
    assert dashboard._repr_mimebundle_() == {"text/plain": repr(dashboard)}
    await dashboard.refresh()  # harmless once closed
    dashboard.close()  # so is closing twice


async def test_the_renderer_ends_when_the_registry_stops_and_says_so(sent, start_registry):
    registry = await start_registry(worker=worker())
    dashboard = Dashboard(registry, tabs=["Events"], interval=0.01)
    await registry.client().worker.get_or_create(["a"]).send("jobs", {"n": 1}, wait=True, timeout=5)
    await registry.stop()
    await wait_until(lambda: not dashboard.running)
    header = text(value(dashboard.widget, "agentos-dashboard-header"))
    assert "stopped" in header
    assert "not updating" in header
    # Its last tick drew what came before the stop, to the actor going to sleep.
    assert rows(value(dashboard.widget, "agentos-events-log"))[0][1] == "actor.slept"
    dashboard.close()


async def test_a_redraw_of_many_changes_sends_at_most_one_message_per_widget(sent, seed_000):
    dashboard = Dashboard(seed_000, interval=PAUSED)
    try:
        await run_seed_000(seed_000)  # changes every tab at once
        sent.clear()
        await dashboard.refresh()
        changed = updates(sent)
        per_widget: dict[str, int] = {}
        for message in changed:
            per_widget[message.comm_id] = per_widget.get(message.comm_id, 0) + 1
        assert len(changed) >= 8  # the header, and the tables, lists and pictures of six tabs
        assert max(per_widget.values()) == 1  # held together: never a message per changed trait
        picker = by_class(dashboard.widget, "agentos-session-list")
        [picked] = [m for m in changed if m.comm_id == picker.model_id]
        assert {"_options_labels", "index"} <= picked.data[
            "state"
        ].keys()  # options and selection, one message
        sent.clear()
        await dashboard.refresh()
        assert updates(sent) == []  # nothing changed, nothing sent
    finally:
        dashboard.close()


class SteppedClock(renderer_module.Clock):
    """The renderer's clock, moved by the test: each `step()` lets one interval pass."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeping = asyncio.Event()
        self._wake = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self._wake.wait()
        self._wake.clear()
        self.elapsed += seconds

    async def step(self) -> None:
        """One interval passes; returns once the renderer has ticked and sleeps again."""
        await wait_until(self.sleeping.is_set)
        self.sleeping.clear()
        self._wake.set()
        await wait_until(self.sleeping.is_set)


async def test_under_a_flood_the_renderer_redraws_once_per_interval_and_only_the_tab_on_screen(
    sent, start_registry, monkeypatch
):
    clock = SteppedClock()
    monkeypatch.setattr(renderer_module, "SYSTEM_CLOCK", clock)
    registry = await start_registry(worker=worker())
    dashboard = Dashboard(registry, tabs=["Queues", "Events"])  # the default interval: 0.2 s
    dashboard.select("Events")
    hidden = {w.model_id for w in tree(by_class(dashboard.widget, "agentos-tab-queues"))}
    handle = registry.client().worker.get_or_create(["a"])
    sent_jobs = 0

    async def flood() -> None:
        nonlocal sent_jobs
        while True:
            await handle.send("jobs", {"n": sent_jobs}, block=True)
            sent_jobs += 1
            await asyncio.sleep(0)  # the memory store never suspends: let the worker run

    producer = asyncio.ensure_future(flood())
    try:
        for step in range(10):
            target = sent_jobs + 100
            sent.clear()
            await wait_until(lambda target=target: sent_jobs >= target)  # hundreds of events meanwhile
            assert updates(sent) == [], "the renderer drew between two ticks"
            await clock.step()
            assert dashboard.redraws == step + 1
            drawn = updates(sent)
            assert {m.comm_id for m in drawn} & hidden == set()  # the hidden Queues tab is left alone
            assert len(drawn) <= 3  # the header, the count line and the log: one message each
        assert dashboard.redraws / clock.elapsed == pytest.approx(5.0)  # 10 redraws in 2 s of its clock
        seen = text(value(dashboard.widget, "agentos-events-count")).split(" · ")[1]
        assert int(seen.split()[0].replace(",", "")) >= 10 * 100 * 2  # events each redraw took in
    finally:
        producer.cancel()
        dashboard.close()


async def test_the_header_counts_actors_whichever_tab_is_on_screen(sent, seed_000, monkeypatch):
    clock = SteppedClock()
    monkeypatch.setattr(renderer_module, "SYSTEM_CLOCK", clock)
    await seed_000.client().writer.get_or_create(PROJECT).exec("true")  # there before the dashboard
    dashboard = Dashboard(seed_000)
    try:
        dashboard.select("Tool calls")  # a tab that needs no overview of its own
        header = by_class(dashboard.widget, "agentos-dashboard-header")
        assert "counting actors…" in text(header.value)
        await clock.step()
        assert "1 actor (1 awake)" in text(header.value)
        await run_seed_000(seed_000)  # the reviewer is created: counted from its event alone
        await clock.step()
        assert "2 actors (2 awake)" in text(header.value)
    finally:
        dashboard.close()


def test_a_huge_directory_lists_its_first_entries_and_counts_the_rest():
    tree = FileTree()
    entries = [
        DirEntry(name=f"f{n:05}", path=f"/home/user/f{n:05}", kind="file", size=1)
        for n in range(MAX_ENTRIES + 3)
    ]
    tree.listed("/", [DirEntry(name="home", path="/home", kind="directory", size=0)])
    tree.listed("/home", [DirEntry(name="user", path="/home/user", kind="directory", size=0)])
    tree.listed("/home/user", entries)
    rows = tree.rows()
    assert len(rows) == 3 + MAX_ENTRIES + 1
    assert rows[-1].label.strip() == "… 3 more entries not shown"
    assert not rows[-1].path.startswith("/")  # picking it opens nothing


async def test_a_dashboard_needs_a_running_loop(seed_000):
    def outside_the_loop() -> None:
        with pytest.raises(RuntimeError, match="a dashboard needs a running event loop"):
            Dashboard(seed_000)

    await asyncio.to_thread(outside_the_loop)
