"""The registry under pressure: races between creation, wakes, sleep and stop; interrupted
shutdowns; registries left on dead loops; destroyed actors; schedules; failures nobody awaits."""

from __future__ import annotations

import asyncio
import gc
import uuid

import anyio
import pytest
from pydantic import BaseModel

from agentos_nb import actor, queue, setup
from agentos_nb.errors import ActorNotFound, RegistryNotRunning, ValidationError
from agentos_nb.store import MemoryStore
from agentos_nb.store.protocol import ActorRecord
from conftest import YieldingStore, next_event, wait_until


async def let_run(turns: int = 50) -> None:
    """Give every ready task a chance to run; the memory store never suspends, so this settles."""
    for _ in range(turns):
        await asyncio.sleep(0)


def forever() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


# --- creation ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_second_get_or_create_during_on_create_waits_for_the_one_instance(start_registry):
    creating, created = asyncio.Event(), asyncio.Event()
    wakes, seen = [], []

    async def on_create(c, input):
        creating.set()
        await created.wait()  # slow provisioning

    async def run(c):
        async for message in c.queue.iter():
            seen.append(message.body)

    registry = await start_registry(
        a=actor(queues={"q": queue(int)}, on_create=on_create, on_wake=wakes.append, run=run)
    )
    client = registry.client()
    first = asyncio.create_task(client.a.get_or_create("k").send("q", 1))
    await creating.wait()
    second = asyncio.create_task(client.a.get_or_create("k").send("q", 2))
    await let_run()
    created.set()
    await asyncio.gather(first, second)
    await wait_until(lambda: sorted(seen) == [1, 2])
    assert len(wakes) == 1


@pytest.mark.anyio
async def test_a_creation_under_way_when_stop_begins_is_stopped_with_the_registry(start_registry):
    creating, created = asyncio.Event(), asyncio.Event()
    run_loops = []

    async def on_create(c, input):
        creating.set()
        await created.wait()

    async def run(c):
        run_loops.append(c.actor_id)
        try:
            async for _ in c.queue.iter():
                pass
        finally:
            run_loops.remove(c.actor_id)

    registry = await start_registry(a=actor(queues={"q": queue(int)}, on_create=on_create, run=run))
    resolving = asyncio.create_task(registry.client().a.get_or_create("k").resolve())
    await creating.wait()
    stopping = asyncio.create_task(registry.stop(grace=0))
    await let_run()
    created.set()
    await stopping
    await asyncio.gather(resolving, return_exceptions=True)
    await let_run()
    assert run_loops == []


@pytest.mark.anyio
async def test_stop_during_the_insert_of_a_new_actor_refuses_the_creation(start_registry):
    run_loops = []

    async def run(c):
        run_loops.append(c.actor_id)
        await forever()

    store = YieldingStore()
    store.held["insert_actor"] = asyncio.Event()
    registry = await start_registry(store, a=actor(run=run))
    resolving = asyncio.create_task(registry.client().a.get_or_create("k").resolve())
    await wait_until(lambda: "insert_actor" in store.calls)
    await registry.stop(grace=0)
    store.held["insert_actor"].set()
    with pytest.raises(RegistryNotRunning):
        await resolving
    await let_run()
    assert run_loops == []
    assert await store.find_actor("a", ("k",)) is None


# --- sleep ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_state_that_cannot_be_saved_at_sleep_is_reported_and_the_actor_wakes_again(start_registry):
    def poison(c):
        c.state["when"] = object()  # not JSON

    registry = await start_registry(
        a=actor(
            state={"n": 0},
            actions={"poison": poison, "nap": lambda c: c.sleep(), "ping": lambda c: "pong"},
            options={"state_save_interval": 60},
        )
    )
    handle = registry.client().a.get_or_create("k")
    with registry.bus.subscribe(types=["actor.crashed"]) as crashes:
        await handle.poison()
        await handle.nap()
        crash = await next_event(crashes, "actor.crashed")
    assert crash.phase == "save_state"
    assert crash.error_type == "ValidationError"
    with anyio.fail_after(5):
        assert await handle.ping() == "pong"


@pytest.mark.anyio
async def test_an_asked_sleep_with_a_backlog_wakes_again_to_take_it(start_registry):
    seen = []
    working = asyncio.Event()

    async def run(c):
        async for message in c.queue.iter():
            seen.append(message.body)
            if len(seen) == 1:
                working.set()
                await forever()

    registry = await start_registry(
        a=actor(
            queues={"q": queue(int)},
            actions={"nap": lambda c: c.sleep()},
            run=run,
            options={"sleep_grace_period": 0},
        )
    )
    handle = registry.client().a.get_or_create("k")
    for number in range(5):
        await handle.send("q", number)
    await working.wait()
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await handle.nap()
        await next_event(slept, "actor.slept")
    await wait_until(lambda: {1, 2, 3, 4} <= set(seen))


@pytest.mark.anyio
async def test_an_idle_sleep_with_an_unconsumed_queue_does_not_wake_again(start_registry):
    """A guard for the test above: waking for a backlog nothing consumes would only cycle."""

    async def run(c):
        async for _ in c.queue.iter("jobs"):
            pass

    registry = await start_registry(
        a=actor(queues={"jobs": queue(int), "later": queue(int)}, run=run, options={"sleep_timeout": 0.02})
    )
    with registry.bus.subscribe(types=["actor.woke", "actor.slept"]) as events:
        await registry.client().a.get_or_create("k").send("later", 1)
        await next_event(events, "actor.slept")
        await anyio.sleep(0.2)  # ten sleep timeouts: a cycling actor would have woken by now
        assert [event.type for event in events.get_nowait()] == []


@pytest.mark.anyio
async def test_a_replay_racing_sleep_is_still_delivered(start_registry):
    seen = []
    failing = [True]

    async def run(c):
        async for message in c.queue.iter():
            if failing[0]:
                raise RuntimeError("boom")
            seen.append(message.body)

    store = YieldingStore()
    registry = await start_registry(
        store,
        a=actor(
            queues={"q": queue(int)},
            actions={"nap": lambda c: c.sleep()},
            run=run,
            options={"max_attempts": 1, "restart_backoff": 0},
        ),
    )
    handle = registry.client().a.get_or_create("k")
    await handle.send("q", 7)
    await wait_until(handle.dead_letters)
    failing[0] = False
    (letter,) = await handle.dead_letters()
    store.held["replay"] = asyncio.Event()
    replaying = asyncio.create_task(handle.replay(letter.message_id))
    await wait_until(lambda: "replay" in store.calls)
    await handle.nap()
    await let_run()
    store.held["replay"].set()
    await replaying
    await wait_until(lambda: seen == [7])


# --- stop ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelling_stop_does_not_mark_the_registry_stopped_while_actors_run(start_registry):
    working, finished = asyncio.Event(), asyncio.Event()

    async def run(c):
        try:
            async for _ in c.queue.iter():
                working.set()
                await forever()  # a long job
        finally:
            finished.set()

    registry = await start_registry(a=actor(queues={"q": queue(int)}, run=run))
    await registry.client().a.get_or_create("k").send("q", 1)
    await working.wait()
    stopping = asyncio.create_task(registry.stop(grace=0.5))
    await wait_until(lambda: registry.phase == "stopping")
    stopping.cancel()  # the notebook's Stop button, during the grace period
    await asyncio.gather(stopping, return_exceptions=True)
    assert registry.phase == "stopping"
    assert not finished.is_set()
    await registry.stop(grace=0)  # waits for the shutdown under way
    assert registry.phase == "stopped"
    assert finished.is_set()


def test_a_registry_left_running_on_a_closed_loop_does_not_block_its_replacement():
    name = f"left-{uuid.uuid4().hex[:8]}"

    def make():
        return setup(use={"a": actor(actions={"ping": lambda c: "pong"})}, name=name)

    async def forget_to_stop():
        registry = await make().start().ready()
        await registry.client().a.get_or_create("k").ping()

    async def replace():
        registry = make().start()
        try:
            await registry.ready()
            return await registry.client().a.get_or_create("k").ping()
        finally:
            await registry.stop()

    asyncio.run(forget_to_stop())  # a script's first asyncio.run, or pytest's loop of one test
    assert asyncio.run(replace()) == "pong"


@pytest.mark.anyio
async def test_stop_ends_every_subscription(start_registry):
    registry = await start_registry(a=actor(actions={"ping": lambda c: "pong"}))
    seen = []

    async def read(subscription):
        async for event in subscription:
            seen.append(event.type)

    reader = asyncio.create_task(read(registry.bus.subscribe()))
    await registry.client().a.get_or_create("k").ping()
    await registry.stop()
    try:
        with anyio.fail_after(5):
            await reader
    finally:
        reader.cancel()
    assert seen[-1] == "actor.slept"  # what was buffered is still read before the end


# --- destroyed actors ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_get_or_create_handle_never_resends_a_message_its_destroyed_actor_took(start_registry):
    deliveries = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            deliveries.append((c.actor_id, message.body))
            c.destroy()
            await forever()

    registry = await start_registry(
        a=actor(queues={"q": queue(str, str)}, run=run, options={"sleep_grace_period": 0})
    )
    handle = registry.client().a.get_or_create("k")
    with anyio.fail_after(10), pytest.raises(ActorNotFound) as raised:
        await handle.send("q", "delete-account", wait=True, timeout=5)
    assert raised.value.code == "actor.destroyed"
    assert len(deliveries) == 1


# --- schedules -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_schedule_cut_short_by_stop_fires_again_on_the_next_start(start_registry):
    calls = []

    async def slow(c):
        calls.append(c.actor_id)
        await forever()

    async def plan(c):
        await c.schedule.after(0, "slow")

    store = MemoryStore()
    worker = actor(actions={"plan": plan, "slow": slow})
    first = await start_registry(store, a=worker)
    await first.client().a.get_or_create("k").plan()
    await wait_until(lambda: len(calls) == 1)
    await first.stop(grace=0)
    await start_registry(store, a=worker)
    await wait_until(lambda: len(calls) == 2)


class ForgetfulStore(MemoryStore):
    """A store that cannot delete schedules, say a full disk."""

    async def delete_schedule(self, schedule_id: str) -> bool:
        raise OSError("disk full")


@pytest.mark.anyio
async def test_a_store_error_forgetting_a_schedule_is_reported_and_later_ones_still_fire(start_registry):
    ticks = []

    async def plan(c):
        await c.schedule.after(0, "tick", 1)
        await c.schedule.after(0.01, "tick", 2)

    registry = await start_registry(
        ForgetfulStore(), a=actor(actions={"plan": plan, "tick": lambda c, n: ticks.append(n)})
    )
    with registry.bus.subscribe(types=["actor.crashed"]) as crashes:
        await registry.client().a.get_or_create("k").plan()
        crash = await next_event(crashes, "actor.crashed")
        await wait_until(lambda: ticks == [1, 2])
    assert (crash.phase, crash.error_type) == ("schedule", "OSError")


# --- failures nobody awaits ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failed_wake_whose_callers_were_cancelled_leaves_no_unretrieved_exception(start_registry):
    waking, fail = asyncio.Event(), asyncio.Event()
    failing = [False]

    async def on_wake(c):
        if failing[0]:
            waking.set()
            await fail.wait()
            raise RuntimeError("cannot wake")

    registry = await start_registry(
        a=actor(on_wake=on_wake, actions={"nap": lambda c: c.sleep(), "ping": lambda c: "pong"})
    )
    handle = registry.client().a.get_or_create("k")
    loop = asyncio.get_running_loop()
    reports = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reports.append(context["message"]))
    try:
        with registry.bus.subscribe(types=["actor.slept", "actor.crashed"]) as events:
            await handle.nap()
            await next_event(events, "actor.slept")
            failing[0] = True
            call = asyncio.create_task(handle.ping())
            await waking.wait()
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            fail.set()
            await next_event(events, "actor.crashed")
        await let_run()
        del call
        gc.collect()
    finally:
        loop.set_exception_handler(previous_handler)
    assert reports == []


# --- stored state --------------------------------------------------------------------------------


class Counter(BaseModel):
    count: int = 0


@pytest.mark.anyio
async def test_stored_state_that_no_longer_fits_raises_a_validation_error_naming_the_actor(start_registry):
    store = MemoryStore()
    await store.insert_actor(ActorRecord("a-1", "counter", ("k",), 0.0, state=b'{"count": "many"}'))
    registry = await start_registry(store, counter=actor(state=Counter, actions={"get": lambda c: c.state}))
    with pytest.raises(ValidationError) as raised:
        await registry.client().counter.get_or_create("k").get()
    assert "actor 'counter'" in str(raised.value)
    assert raised.value.details["errors"][0]["field"] == "count"
