"""A real kernel, driven through jupyter_client: the magics stream and return, background actors
advance while the kernel is idle, and a queued "Run All" runs every cell in order.

One kernel serves the whole module. It gets an environment without model keys or base URLs,
so its sessions use the offline model.
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from jupyter_client.manager import AsyncKernelManager

from agentos_nb.demo import WRITER_PROMPT
from conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
REPLY_TIMEOUT = 60.0

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Execution:
    """What one execute_request got: its reply, and its iopub messages in order."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reply["status"] == "ok"

    def of_type(self, *kinds: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in kinds]

    def stream(self, name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == name)

    @property
    def result(self) -> dict[str, Any]:
        (message,) = self.of_type("execute_result")
        return message["content"]["data"]


class Kernel:
    """Sends cells, and sorts what comes back by the request it answers."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._iopub: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._idle: set[str] = set()
        self._replies: dict[str, dict[str, Any]] = {}

    def send(self, code: str, cell_id: str | None = None) -> str:
        """Execute `code`; with `cell_id`, as JupyterLab runs a cell: naming it in the metadata."""
        if cell_id is None:
            return self.client.execute(code)
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
        message = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.client.shell_channel.send(message)
        return message["header"]["msg_id"]

    async def _next_iopub(self) -> None:
        message = await self.client.get_iopub_msg()
        parent = message["parent_header"].get("msg_id")
        if message["msg_type"] == "status":
            if message["content"]["execution_state"] == "idle":
                self._idle.add(parent)
        else:
            self._iopub[parent].append(message)

    async def shows(self, msg_id: str, text: str) -> None:
        """Wait until a display of the request's output shows `text`."""
        with anyio.fail_after(REPLY_TIMEOUT):
            while not any(
                text in m["content"].get("data", {}).get("text/plain", "") for m in self._iopub[msg_id]
            ):
                assert msg_id not in self._idle, f"the cell ended without showing {text!r}"
                await self._next_iopub()

    async def outcome(self, msg_id: str) -> Execution:
        with anyio.fail_after(REPLY_TIMEOUT):
            while msg_id not in self._idle:
                await self._next_iopub()
            while msg_id not in self._replies:
                reply = await self.client.get_shell_msg()
                self._replies[reply["parent_header"]["msg_id"]] = reply["content"]
        return Execution(self._replies.pop(msg_id), self._iopub.pop(msg_id, []))

    async def run(self, code: str, cell_id: str | None = None) -> Execution:
        return await self.outcome(self.send(code, cell_id))

    async def ok(self, code: str, cell_id: str | None = None) -> Execution:
        done = await self.run(code, cell_id)
        assert done.ok, (done.reply.get("ename"), done.reply.get("evalue"), done.stream("stderr"))
        return done


def kernel_environment(ipython_dir: Path) -> dict[str, str]:
    """This process's environment without any model key or base URL."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["IPYTHONDIR"] = str(ipython_dir)
    return env


@pytest.fixture(scope="module")
async def manager(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncKernelManager]:
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel(env=kernel_environment(tmp_path_factory.mktemp("ipython")), cwd=str(ROOT))
    try:
        yield manager
    finally:
        await manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
async def kernel(manager: AsyncKernelManager) -> AsyncIterator[Kernel]:
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=REPLY_TIMEOUT)
        kernel = Kernel(client)
        await kernel.ok("%load_ext agentos_nb")
        yield kernel
    finally:
        client.stop_channels()


def plain(message: dict[str, Any]) -> str:
    return message["content"]["data"]["text/plain"]


async def test_the_kernel_has_no_model_keys(kernel: Kernel) -> None:
    done = await kernel.ok(
        "import os\nprint(sorted(k for k in os.environ if k.endswith(('_API_KEY', '_BASE_URL'))))"
    )
    assert done.stream() == "[]\n"


async def test_without_a_registry_the_magics_say_to_start_one(kernel: Kernel) -> None:
    await kernel.ok(
        "from agentos_nb.actors.registry import running_registries\n"
        "for running in running_registries():\n    await running.stop()"
    )
    done = await kernel.run("%agentos ls writer/my-project")
    assert (done.reply["status"], done.reply["ename"]) == ("error", "UsageError")
    assert "no agentos_nb registry is running in this kernel: start one first" in done.reply["evalue"]


async def test_an_agent_cell_streams_and_returns_the_prompt_result(kernel: Kernel) -> None:
    await kernel.ok(
        "from agentos_nb.demo import seed_000_registry\nregistry = seed_000_registry()\nregistry.start()\n"
        "await registry.ready()"
    )
    done = await kernel.ok(f"%%agent writer my-project\n{WRITER_PROMPT}")
    shown = done.of_type("display_data", "update_display_data")
    kinds = [m["msg_type"] for m in shown]
    assert kinds[0] == "display_data"
    assert len(kinds) >= 2
    assert set(kinds[1:]) == {"update_display_data"}
    assert len({m["content"]["transient"]["display_id"] for m in shown}) == 1
    # live while the turn ran, then its end; all of it before the cell's value
    assert "[running…]" in plain(shown[0])
    assert "[end_turn]" in plain(shown[-1])
    assert "[completed] bash: agentos-review submit --path /home/user/api.ts" in plain(shown[-1])
    assert done.messages.index(shown[-1]) < done.messages.index(done.of_type("execute_result")[0])
    reply = (await kernel.ok("print(_.text)\nprint(type(_).__name__, _.stop_reason)")).stream()
    text, kind = reply.rstrip("\n").rsplit("\n", 1)
    assert kind == "PromptResult end_turn"
    assert "submitted it" in text
    assert done.result["text/plain"].startswith(text)
    assert html.escape(text.splitlines()[0]) in done.result["text/html"]
    # the live display streamed the reply, and leaves it to the cell's value once answered
    assert text.splitlines()[0] not in plain(shown[-1])
    assert html.escape(text.splitlines()[0]) not in shown[-1]["content"]["data"]["text/html"]


async def test_updates_show_while_a_tool_runs(kernel: Kernel) -> None:
    await kernel.ok(
        "from agentos_nb import agent_os, setup\n"
        "from agentos_nb.offline import Bash, Reply, offline_model\n"
        "from agentos_nb.software import Pi, common\n"
        "napper = setup(use={'vm': agent_os(software=[common, Pi(model=offline_model(\n"
        "    script=[Bash('sleep 0.5'), Reply('rested')]))])}, name='napper')\n"
        "napper.start()\nawait napper.ready()"
    )
    done = await kernel.ok("%%agent vm main --registry napper\nTake a nap.")
    updates = [plain(m) for m in done.of_type("update_display_data")]
    assert any("[running] bash: sleep 0.5" in update for update in updates[:-1])
    assert "[completed] bash: sleep 0.5" in updates[-1]
    assert done.result["text/plain"].startswith("rested\n[end_turn]")
    await kernel.ok("await napper.stop()")


async def test_interrupting_an_agent_cell_cancels_the_turn(
    kernel: Kernel, manager: AsyncKernelManager
) -> None:
    await kernel.ok(
        "from agentos_nb import agent_os, setup\n"
        "from agentos_nb.offline import Bash, Reply, offline_model\n"
        "from agentos_nb.software import Pi, common\n"
        "sleeper = setup(use={'vm': agent_os(software=[common, Pi(model=offline_model(\n"
        "    script=[Bash('sleep 60'), Reply('never')]))])}, name='sleeper')\n"
        "sleeper.start()\nawait sleeper.ready()"
    )
    msg_id = kernel.send("%%agent vm main --registry sleeper\nSleep for a minute.")
    await kernel.shows(msg_id, "[running] bash: sleep 60")
    await manager.interrupt_kernel()  # the notebook's Stop button
    done = await kernel.outcome(msg_id)
    assert done.reply["status"] == "error"
    assert "[interrupted: cancelled]" in plain(done.of_type("update_display_data")[-1])
    # the turn stopped for real, and the session takes the next prompt
    after = await kernel.ok("%%agent vm main --registry sleeper\nAre you awake?")
    assert "[end_turn]" in after.result["text/plain"]
    await kernel.ok("await sleeper.stop()")


async def test_background_actors_advance_while_the_kernel_is_idle(kernel: Kernel, tmp_path: Path) -> None:
    ticks = tmp_path / "ticks"
    await kernel.ok(
        "from pathlib import Path\n"
        "from agentos_nb import actor, setup\n"
        f"TICKS = Path({str(ticks)!r})\n"
        "async def tick(c):\n"
        "    c.state['ticks'] += 1\n"
        "    TICKS.write_text(str(c.state['ticks']))\n"
        "    await c.schedule.after(0.02, 'tick')\n"
        "async def count(c):\n"
        "    return c.state['ticks']\n"
        "clock = setup(use={'ticker': actor(state={'ticks': 0}, actions={'tick': tick, 'count': count})},"
        " name='clock')\n"
        "clock.start()\n"
        "ticker = clock.client().ticker.get_or_create('main')\n"
        "await ticker.tick()"
    )
    # No request is sent while we wait: the kernel is idle, and its loop runs the schedule.
    await wait_until(lambda: ticks.exists() and int(ticks.read_text() or 0) >= 10, timeout=30, interval=0.05)
    counted = await kernel.ok("await ticker.count()")
    assert int(counted.result["text/plain"]) >= 10
    await kernel.ok("await clock.stop()")


RUN_ALL = [
    (
        "import asyncio\nfrom agentos_nb.demo import seed_000_registry\nregistry = seed_000_registry()\n"
        "registry.start()\nprint('started')",
        "started",
    ),
    ("await registry.ready()\nprint(registry.phase)", "running"),
    (f"%%agent writer my-project\n{WRITER_PROMPT}", "[end_turn]"),
    ("%agentos ls writer/my-project", "api.ts"),
    ("await asyncio.sleep(0.1)\nprint('slept')", "slept"),
    ("%agentos cat reviewer/my-project /home/user/api.ts", "A small REST API for users"),
    (
        "reviewer = registry.client().reviewer.get(['my-project'])\n(await reviewer.exec('ls')).stdout",
        "api.ts",
    ),
    ("x = 41\nx + 1", "42"),
    ("%agentos tools", "agentos dashboard of registry 'seed-000'"),
]


async def test_a_queued_run_all_runs_every_cell_in_order(kernel: Kernel) -> None:
    sent = [kernel.send(code) for code, _ in RUN_ALL]  # all at once, as "Run All" does
    counts = []
    for msg_id, (code, expected) in zip(sent, RUN_ALL, strict=True):
        done = await kernel.outcome(msg_id)
        assert done.ok, (code, done.reply.get("evalue"))
        counts.append(done.reply["execution_count"])
        shown = done.stream() + "".join(
            m["content"]["data"]["text/plain"] for m in done.of_type("execute_result")
        )
        assert expected in shown, (code, shown)
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)


async def test_agentos_subcommands(kernel: Kernel) -> None:
    await kernel.ok(
        "from agentos_nb import actor, queue, setup\n"
        "inbox = setup(use={'inbox': actor(queues={'jobs': queue(dict)})}, name='inbox')\n"
        "inbox.start()\nawait inbox.ready()"
    )
    sent = await kernel.ok('%agentos send inbox/main jobs {"title": "Fix the login"}')
    assert sent.result["text/plain"].startswith("SendResult enqueued, message ")
    assert "enqueued" in sent.result["text/html"]
    for command, tab in (("dashboard", "Actors"), ("events", "Events"), ("tools", "Tool calls")):
        done = await kernel.ok(f"board = %agentos {command} --registry inbox\nboard.titles")
        assert tab in done.result["text/plain"]
        shown = await kernel.ok("board")
        assert "application/vnd.jupyter.widget-view+json" in shown.result
    listed = await kernel.ok("%agentos ls writer/my-project --registry seed-000")
    assert "api.ts" in listed.result["text/plain"]
    await kernel.ok("await inbox.stop()")


async def test_running_a_cell_again_closes_the_dashboards_its_last_run_made(kernel: Kernel) -> None:
    await kernel.ok(
        "from agentos_nb import actor, setup\n"
        "watched = setup(use={'idle': actor()}, name='watched')\nwatched.start()\nawait watched.ready()"
    )
    await kernel.ok("first = watched.dashboard()", cell_id="cell-a")
    await kernel.ok("other = watched.dashboard()", cell_id="cell-b")
    # the cell run again: its new output replaces the first dashboard; both of this run stay
    await kernel.ok(
        "second = watched.dashboard()\nalso = watched.dashboard(tabs=['Events'])", cell_id="cell-a"
    )
    done = await kernel.ok(
        "import asyncio\nawait asyncio.sleep(0)\n"
        "print(first.closed, first.running, second.closed, also.closed, other.closed)"
    )
    assert done.stream() == "True False False False False\n"
    await kernel.ok("await watched.stop()")


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("%%agent writer --timeout soon\nhello", "argument --timeout: must be a positive number of seconds"),
        (
            "%agentos cat writer/my-project /nowhere",
            "FileNotFoundError: [Errno 2] file not found: '/nowhere'",
        ),
        ("%agentos frob", "unknown subcommand 'frob'"),
    ],
)
async def test_a_bad_line_is_a_usage_error_without_a_traceback(kernel: Kernel, code: str, says: str) -> None:
    await kernel.ok("registry.start()\nawait registry.ready()")  # seed 000, as the Run All left it
    done = await kernel.run(code)
    assert (done.reply["status"], done.reply["ename"]) == ("error", "UsageError")
    assert says in done.reply["evalue"]
    assert not any("agentos_nb" in line for line in done.reply["traceback"])
    assert done.stream("stderr").startswith(f"UsageError: {done.reply['evalue'].splitlines()[0]}")


async def test_unloading_and_loading_again(kernel: Kernel) -> None:
    await kernel.ok("%unload_ext agentos_nb")
    done = await kernel.run("%%agent writer my-project\nhello")
    assert done.reply["evalue"] == "Cell magic `%%agent` not found."
    await kernel.ok("%load_ext agentos_nb")
    assert "[end_turn]" in (await kernel.ok("%%agent writer my-project\nWhat is here?")).result["text/plain"]
