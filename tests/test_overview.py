"""What a dashboard reads of a registry: `overview()`, `running_registries()` and `ActionStarted.via`."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from agentos_nb import actor, queue, setup
from agentos_nb.actors.registry import running_registries
from agentos_nb.demo import PROJECT, WRITER_PROMPT, seed_000_registry
from agentos_nb.events import ActionStarted
from conftest import wait_until

pytestmark = pytest.mark.anyio


class Job(BaseModel):
    n: int


async def test_overview_counts_waiting_and_in_flight_messages_per_queue(start_registry):
    async def run(c):
        message = await c.queue.next()
        c.state["held"] = message.body.n
        await asyncio.Event().wait()  # hold it until the registry stops

    registry = await start_registry(
        worker=actor(state={"held": None}, queues={"jobs": queue(Job, max_size=5)}, run=run)
    )
    worker = registry.client().worker.get_or_create(["a"])
    for n in range(3):
        await worker.send("jobs", {"n": n})

    async def one_held_two_waiting() -> bool:
        [view] = await registry.overview()
        return view.queues[0].in_flight == 1 and view.queues[0].depth == 2

    await wait_until(one_held_two_waiting)
    [view] = await registry.overview()
    assert (view.name, view.key, view.status) == ("worker", ("a",), "awake")
    assert view.queues[0].name == "jobs"
    assert view.queues[0].max_size == 5
    assert '"held":0' in view.state_preview


async def test_a_sleeping_actor_shows_its_saved_state_and_empty_queues(start_registry):
    def note(c, text):
        c.state["notes"].append(text)

    def snooze(c):
        c.sleep()

    registry = await start_registry(
        notes=actor(
            state={"notes": []}, queues={"jobs": queue(Job)}, actions={"note": note, "snooze": snooze}
        )
    )
    notes = registry.client().notes.get_or_create(["b"])
    await notes.note("<b>" + "y" * 400)
    await notes.snooze()

    async def asleep() -> bool:
        [view] = await registry.overview()
        return view.status == "asleep"

    await wait_until(asleep)
    [view] = await registry.overview()
    assert view.state_preview.startswith('{"notes":["<b>yyy')
    assert len(view.state_preview) == 200
    assert view.state_preview.endswith("…")
    assert [(q.name, q.depth, q.in_flight) for q in view.queues] == [("jobs", 0, 0)]


async def test_running_registries_lists_the_most_recently_started_last():
    first = setup(use={"a": actor(state={})}, name="overview-first")
    second = setup(use={"a": actor(state={})}, name="overview-second")
    async with first, second:
        names = [r.name for r in running_registries()]
        assert names.index("overview-first") < names.index("overview-second")
        again = setup(use={"a": actor(state={})}, name="overview-first")  # a setup cell run again
        async with again:
            assert running_registries()[-1] is again
            assert first not in running_registries()
    assert again not in running_registries()


async def test_actions_a_host_tool_calls_name_that_tool_call():
    registry = seed_000_registry()
    async with registry:
        events = registry.bus.subscribe(types=["action.started"], buffer=1000)
        writer = registry.client().writer.get_or_create(PROJECT)
        session = await writer.create_session("pi")
        await writer.send_prompt(session.session_id, WRITER_PROMPT)
        started = [e for e in events.get_nowait() if isinstance(e, ActionStarted)]
    by_actor = {(e.actor.name, e.action): e.via for e in started}
    assert by_actor[("writer", "send_prompt")] is None  # the notebook asked, not a tool
    via = by_actor[("reviewer", "send_prompt")]
    assert via is not None
    assert (via.caller.name, via.caller.key, via.toolkit, via.tool) == (
        "writer",
        tuple(PROJECT),
        "review",
        "submit",
    )
    assert by_actor[("reviewer", "write_file")] == via
