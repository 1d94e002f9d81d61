"""Actor lifecycle, state, scheduling, registry start/stop and handles."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import anyio
import pytest
from pydantic import BaseModel

import agentos_nb.actors.registry as registry_module
from agentos_nb import actor, queue, setup
from agentos_nb.errors import (
    ActionTimeout,
    ActorAlreadyExists,
    ActorNotFound,
    ActorStopped,
    InvalidDefinition,
    RegistryNotRunning,
    UnknownAction,
    UnknownActorType,
    ValidationError,
)
from conftest import next_event, wait_until

FAST_SLEEP = {"sleep_timeout": 0.05, "state_save_interval": 0}


@pytest.fixture
def start(start_registry):
    """conftest's `start_registry`, under this module's shorter name."""
    return start_registry


# --- hooks -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_runs_on_create_with_input_then_on_wake_then_run(start):
    calls = []

    async def run(c):
        calls.append(("run",))

    worker = actor(
        on_create=lambda c, input: calls.append(("on_create", input)),
        on_wake=lambda c: calls.append(("on_wake",)),
        run=run,
        actions={"ping": lambda c: "pong"},
    )
    registry = await start(worker=worker)
    handle = await registry.client().worker.create("k", input={"seed": 7})
    await wait_until(lambda: len(calls) == 3)
    assert calls == [("on_create", {"seed": 7}), ("on_wake",), ("run",)]
    assert await handle.ping() == "pong"


@pytest.mark.anyio
async def test_wake_after_sleep_runs_on_wake_and_run_but_not_on_create(start):
    calls = []

    async def run(c):
        calls.append("run")

    worker = actor(
        on_create=lambda c, input: calls.append("on_create"),
        on_wake=lambda c: calls.append("on_wake"),
        on_sleep=lambda c: calls.append("on_sleep"),
        run=run,
        actions={"nap": lambda c: c.sleep(), "ping": lambda c: "pong"},
    )
    registry = await start(worker=worker)
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await handle.nap()
        await next_event(slept, "actor.slept")
    assert await handle.ping() == "pong"
    await wait_until(lambda: len(calls) == 6)
    assert calls == ["on_create", "on_wake", "run", "on_sleep", "on_wake", "run"]


# --- state and vars ----------------------------------------------------------------------------


class Counter(BaseModel):
    count: int = 0
    names: list[str] = []


@pytest.mark.anyio
async def test_pydantic_state_is_saved_on_sleep_and_restored_on_wake(start):
    def add(c, name):
        c.state.count += 1
        c.state.names.append(name)
        return c.state.count

    counter = actor(state=Counter, actions={"add": add, "get": lambda c: c.state}, options=FAST_SLEEP)
    registry = await start(counter=counter)
    handle = registry.client().counter.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept", "actor.woke"]) as events:
        assert await handle.add("a") == 1
        assert await handle.add("b") == 2
        await next_event(events, "actor.slept")
        state = await handle.get()
        await next_event(events, "actor.woke")
    assert isinstance(state, Counter)
    assert state == Counter(count=2, names=["a", "b"])


@pytest.mark.anyio
async def test_dict_state_is_saved_on_sleep_and_restored_on_wake(start):
    def put(c, key, value):
        c.state["items"][key] = value

    shelf = actor(state={"items": {}}, actions={"put": put, "get": lambda c: c.state}, options=FAST_SLEEP)
    registry = await start(shelf=shelf)
    handle = registry.client().shelf.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await handle.put("x", [1, 2])
        await next_event(slept, "actor.slept")
    assert await handle.get() == {"items": {"x": [1, 2]}}
    # The definition's default was copied, not shared, so a second actor starts empty.
    assert await registry.client().shelf.get_or_create("other").get() == {"items": {}}


@pytest.mark.anyio
async def test_state_assigned_through_context_is_saved(start):
    def replace(c, count):
        c.state = Counter(count=count)

    counter = actor(state=Counter, actions={"replace": replace, "get": lambda c: c.state}, options=FAST_SLEEP)
    registry = await start(counter=counter)
    handle = registry.client().counter.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await handle.replace(41)
        await next_event(slept, "actor.slept")
    assert (await handle.get()).count == 41


@pytest.mark.anyio
async def test_state_changed_by_the_run_loop_is_saved_without_waiting_for_sleep(start):
    async def run(c):
        async for message in c.queue.iter():
            c.state["total"] += message.body

    worker = actor(
        state={"total": 0}, queues={"jobs": queue(int)}, run=run, options={"state_save_interval": 0}
    )
    registry = await start(worker=worker)
    handle = registry.client().worker.get_or_create("k")
    await handle.send("jobs", 2)
    await handle.send("jobs", 3)
    actor_id = await handle.resolve()

    async def saved():
        return (await registry.store.get_actor(actor_id)).state == b'{"total":5}'

    await wait_until(saved)
    assert registry._instances[actor_id].phase == "awake"


@pytest.mark.anyio
async def test_vars_are_rebuilt_on_wake_and_not_saved(start):
    built = []

    def make_vars(c):
        built.append(c.key)
        return {"hits": 0}

    def hit(c):
        c.vars["hits"] += 1
        return c.vars["hits"]

    cache = actor(state={"hits": 0}, vars=make_vars, actions={"hit": hit}, options=FAST_SLEEP)
    registry = await start(cache=cache)
    handle = registry.client().cache.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        assert [await handle.hit(), await handle.hit()] == [1, 2]
        await next_event(slept, "actor.slept")
    assert await handle.hit() == 1
    assert built == [("k",), ("k",)]


@pytest.mark.anyio
async def test_plain_vars_value_is_copied_per_wake(start):
    def hit(c):
        c.vars.append("hit")
        return len(c.vars)

    cache = actor(vars=[], actions={"hit": hit}, options=FAST_SLEEP)
    registry = await start(cache=cache)
    handle = registry.client().cache.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        assert await handle.hit() == 1
        await next_event(slept, "actor.slept")
    assert await handle.hit() == 1
    assert await registry.client().cache.get_or_create("other").hit() == 1


# --- sleep and wake ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_idle_actor_sleeps_after_sleep_timeout_and_an_action_wakes_it(start):
    worker = actor(actions={"ping": lambda c: "pong"}, options={"sleep_timeout": 0.2})
    registry = await start(worker=worker)
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.", "action.finished"]) as events:
        assert await handle.ping() == "pong"
        finished = await next_event(events, "action.finished")
        slept = await next_event(events, "actor.slept")
        assert slept.at - finished.at >= 0.15  # not before sleep_timeout (wall clock tolerance)
        assert await handle.ping() == "pong"
        woke = await next_event(events, "actor.woke")
    assert woke.actor.actor_id == slept.actor.actor_id == await handle.resolve()


@pytest.mark.anyio
async def test_a_message_wakes_a_sleeping_actor_and_is_processed(start):
    seen = []

    async def run(c):
        async for message in c.queue.iter():
            seen.append(message.body)

    worker = actor(queues={"jobs": queue(str)}, run=run, options=FAST_SLEEP)
    registry = await start(worker=worker)
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept", "actor.woke"]) as events:
        await handle.resolve()
        await next_event(events, "actor.woke")
        await next_event(events, "actor.slept")
        await handle.send("jobs", "first")
        await next_event(events, "actor.woke")
        await wait_until(lambda: seen == ["first"])


@pytest.mark.anyio
async def test_keep_awake_holds_off_sleep_until_the_work_is_done(start):
    async def background(c):
        for _ in range(6):  # six sleep timeouts in all
            await asyncio.sleep(0.05)
        c.broadcast("done")

    def begin(c):
        c.keep_awake(background(c))

    worker = actor(actions={"begin": begin}, options=FAST_SLEEP)
    registry = await start(worker=worker)
    with registry.bus.subscribe(types=["actor.slept", "actor.broadcast"]) as events:
        await registry.client().worker.get_or_create("k").begin()
        first = await anext(events)
        second = await anext(events)
    assert (first.type, first.name) == ("actor.broadcast", "done")
    assert second.type == "actor.slept"


@pytest.mark.anyio
async def test_keep_awake_returns_a_future_of_the_result(start):
    async def work():
        await asyncio.sleep(0)
        return 42

    async def begin(c):
        return await c.keep_awake(work())

    registry = await start(worker=actor(actions={"begin": begin}))
    assert await registry.client().worker.get_or_create("k").begin() == 42


@pytest.mark.anyio
async def test_sleep_from_an_action_puts_the_actor_to_sleep(start):
    worker = actor(state={"n": 0}, actions={"nap": lambda c: c.sleep(), "ping": lambda c: "pong"})
    registry = await start(worker=worker)  # default sleep_timeout of 30 s: only c.sleep() can do it
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept", "actor.woke"]) as events:
        await handle.nap()
        assert (await next_event(events, "actor.slept")).actor.key == ("k",)
        assert await handle.ping() == "pong"
        await next_event(events, "actor.woke")


@pytest.mark.anyio
async def test_destroy_from_an_action_removes_the_actor_and_its_state(start):
    destroyed = []

    def bump(c):
        c.state["n"] += 1
        return c.state["n"]

    worker = actor(
        state={"n": 0},
        actions={"bump": bump, "destroy": lambda c: c.destroy()},
        on_destroy=lambda c: destroyed.append(c.state["n"]),
    )
    registry = await start(worker=worker)
    client = registry.client()
    maker = client.worker.get_or_create("k")
    getter = client.worker.get("k")
    assert await maker.bump() == 1
    assert await getter.bump() == 2
    old_id = await maker.resolve()
    with registry.bus.subscribe(types=["actor.destroyed"]) as events:
        await maker.destroy()
        assert (await next_event(events, "actor.destroyed")).actor.actor_id == old_id
    assert destroyed == [2]
    with pytest.raises(ActorNotFound):
        await getter.bump()
    with pytest.raises(ActorNotFound):
        await client.worker.get("k").bump()
    assert await maker.bump() == 1  # a fresh actor with fresh state
    assert await maker.resolve() != old_id
    assert await client.worker.get("k").bump() == 2


@pytest.mark.anyio
async def test_a_call_while_the_actor_falls_asleep_wakes_it_again(start):
    gate = asyncio.Event()

    async def on_sleep(c):
        await gate.wait()

    worker = actor(on_sleep=on_sleep, actions={"nap": lambda c: c.sleep(), "ping": lambda c: "pong"})
    registry = await start(worker=worker)
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept", "actor.woke"]) as events:
        await handle.resolve()
        await next_event(events, "actor.woke")
        await handle.nap()
        call = asyncio.ensure_future(handle.ping())
        await asyncio.sleep(0.01)
        assert not call.done()  # waits for the sleep to finish, then wakes the actor
        gate.set()
        with anyio.fail_after(5):
            assert await call == "pong"
        assert [(await anext(events)).type for _ in range(2)] == ["actor.slept", "actor.woke"]


@pytest.mark.anyio
async def test_a_waiting_send_to_a_destroyed_actor_raises_actor_not_found(start):
    async def run(c):
        async for _message in c.queue.iter(completable=True):
            c.destroy()
            await asyncio.Event().wait()  # never completes: cancelled when the grace ends

    worker = actor(queues={"jobs": queue(int, int)}, run=run, options={"sleep_grace_period": 0})
    registry = await start(worker=worker)
    await registry.client().worker.create("k")
    with pytest.raises(ActorNotFound, match="destroyed"):
        await registry.client().worker.get("k").send("jobs", 1, wait=True, timeout=5)
    assert await registry.store.list_actors() == []


# --- scheduling --------------------------------------------------------------------------------


def scheduled_actor(fired, **options):
    async def plan_after(c, delay, *args):
        return await c.schedule.after(delay, "fire", *args)

    async def plan_at(c, when, *args):
        return await c.schedule.at(when, "fire", *args)

    async def plan_and_sleep(c, delay, label):
        await c.schedule.after(delay, "fire", label)
        c.sleep()

    async def cancel(c, schedule_id):
        return await c.schedule.cancel(schedule_id)

    async def plan_bad(c):
        return await c.schedule.after(1, "fire", {1, 2})

    async def plan_unknown(c):
        return await c.schedule.after(1, "nope")

    def fire(c, label, extra=None):
        fired.append((label, extra))

    return actor(
        actions={
            "plan_after": plan_after,
            "plan_at": plan_at,
            "plan_and_sleep": plan_and_sleep,
            "cancel": cancel,
            "plan_bad": plan_bad,
            "plan_unknown": plan_unknown,
            "fire": fire,
        },
        options=options or None,
    )


@pytest.mark.anyio
async def test_schedule_after_calls_the_action_later_with_its_arguments(start):
    fired = []
    registry = await start(timer=scheduled_actor(fired))
    handle = registry.client().timer.get_or_create("k")
    schedule_id = await handle.plan_after(0.05, "hello", {"n": 1})
    assert isinstance(schedule_id, str)
    await wait_until(lambda: fired == [("hello", {"n": 1})])


@pytest.mark.anyio
async def test_schedule_at_accepts_a_datetime_and_a_timestamp(start):
    fired = []
    registry = await start(timer=scheduled_actor(fired))
    handle = registry.client().timer.get_or_create("k")
    await handle.plan_at((datetime.now() + timedelta(seconds=0.05)).timestamp(), "stamp")
    await handle.plan_at(datetime.now() + timedelta(seconds=0.1), "datetime")
    await wait_until(lambda: len(fired) == 2)
    assert fired == [("stamp", None), ("datetime", None)]


@pytest.mark.anyio
async def test_schedule_fires_after_the_actor_slept_and_wakes_it(start):
    fired = []
    registry = await start(timer=scheduled_actor(fired))
    handle = registry.client().timer.get_or_create("k")
    with registry.bus.subscribe(types=["actor.slept", "actor.woke", "schedule.fired"]) as events:
        await handle.resolve()
        await handle.plan_and_sleep(0.5, "late")
        kinds = [(await anext(events)).type for _ in range(4)]
    assert kinds == ["actor.woke", "actor.slept", "actor.woke", "schedule.fired"]
    await wait_until(lambda: fired == [("late", None)])


@pytest.mark.anyio
async def test_schedule_cancel_stops_the_call(start):
    fired = []
    registry = await start(timer=scheduled_actor(fired))
    handle = registry.client().timer.get_or_create("k")
    cancelled = await handle.plan_after(0.05, "cancelled")
    assert await handle.cancel(cancelled) is True
    assert await handle.cancel(cancelled) is False
    await handle.plan_after(0.1, "marker")  # due after the cancelled one would have been
    await wait_until(lambda: fired == [("marker", None)])
    assert await handle.cancel("no-such-schedule") is False


@pytest.mark.anyio
async def test_schedule_with_non_json_arguments_is_refused(start):
    fired = []
    registry = await start(timer=scheduled_actor(fired))
    handle = registry.client().timer.get_or_create("k")
    with pytest.raises(ValidationError, match="JSON"):
        await handle.plan_bad()
    with pytest.raises(UnknownAction):
        await handle.plan_unknown()
    assert await registry.store.list_schedules() == []


# --- the registry ------------------------------------------------------------------------------


def own_tasks(before: set[asyncio.Task]) -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()}


@pytest.mark.anyio
async def test_stop_lets_a_message_in_progress_finish_then_stops_everything():
    before = asyncio.all_tasks()
    gate = asyncio.Event()
    progress = []

    async def run(c):
        async for message in c.queue.iter():
            progress.append(("started", message.body))
            await gate.wait()
            progress.append(("finished", message.body))

    registry = setup(use={"worker": actor(queues={"jobs": queue(int)}, run=run)}, name="stop-drain")
    await registry.start().ready()
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["message.completed"]) as completed:
        await handle.send("jobs", 1)
        await wait_until(lambda: progress == [("started", 1)])
        stopping = asyncio.ensure_future(registry.stop(grace=5))
        await wait_until(lambda: registry.phase == "stopping")
        assert progress == [("started", 1)]
        gate.set()
        await stopping
        assert (await next_event(completed, "message.completed")).message_id == 1
    assert progress == [("started", 1), ("finished", 1)]
    assert registry.phase == "stopped"
    assert own_tasks(before) == set()
    with pytest.raises(RegistryNotRunning):
        await handle.send("jobs", 2)
    with pytest.raises(RegistryNotRunning):
        await registry.client().worker.get_or_create("other").send("jobs", 2)
    with pytest.raises(RegistryNotRunning):
        registry.start()


@pytest.mark.anyio
async def test_stop_cancels_work_that_outlives_the_grace_period():
    before = asyncio.all_tasks()
    outcome = []

    async def stuck(c):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    registry = setup(use={"worker": actor(actions={"stuck": stuck})}, name="stop-cancel")
    await registry.start().ready()
    call = asyncio.ensure_future(registry.client().worker.get_or_create("k").stuck())
    await wait_until(lambda: registry._instances)
    await asyncio.sleep(0)  # let the action start
    await registry.stop(grace=0.01)
    assert outcome == ["cancelled"]
    with pytest.raises(ActorStopped, match="stuck"):
        await call
    assert own_tasks(before) == set()


@pytest.mark.anyio
async def test_a_call_waiting_on_a_falling_asleep_actor_does_not_wake_it_once_stop_began():
    before = asyncio.all_tasks()
    gate = asyncio.Event()

    async def on_sleep(c):
        await gate.wait()

    async def run(c):
        async for _ in c.queue.iter():
            pass

    worker = actor(
        queues={"jobs": queue(int)},
        run=run,
        on_sleep=on_sleep,
        actions={"nap": lambda c: c.sleep(), "ping": lambda c: "pong"},
    )
    registry = setup(use={"worker": worker}, name="stop-race")
    await registry.start().ready()
    handle = registry.client().worker.get_or_create("k")
    await handle.nap()
    call = asyncio.ensure_future(handle.ping())  # waits for the actor to finish sleeping
    await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(registry.stop(grace=0))
    await wait_until(lambda: registry.phase == "stopping")
    gate.set()
    with anyio.fail_after(5):
        await stopping
    with pytest.raises(RegistryNotRunning):
        await call
    assert registry._instances == {}
    assert own_tasks(before) == set()


@pytest.mark.anyio
async def test_restarting_a_setup_with_the_same_names_stops_the_first_registry(monkeypatch):
    monkeypatch.setattr(registry_module, "REPLACED_GRACE", 0.05)
    events = []

    def make_worker(label):
        async def run(c):
            events.append((label, "run"))
            try:
                await asyncio.Event().wait()  # never returns by itself
            except asyncio.CancelledError:
                events.append((label, "cancelled"))
                raise

        return actor(run=run, actions={"who": lambda c: label})

    first = setup(use={"cell_worker": make_worker("first")})
    await first.start().ready()
    old_handle = first.client().cell_worker.get_or_create("k")
    assert await old_handle.who() == "first"
    await wait_until(lambda: events == [("first", "run")])

    second = setup(use={"cell_worker": make_worker("second")})
    try:
        await second.start().ready()
        assert first.phase == "stopped"
        assert ("first", "cancelled") in events
        assert first._tasks == set()
        with pytest.raises(RegistryNotRunning):
            await old_handle.who()
        assert await second.client().cell_worker.get_or_create("k").who() == "second"
        await wait_until(lambda: ("second", "run") in events)
    finally:
        await second.stop(grace=0)
    assert events == [("first", "run"), ("first", "cancelled"), ("second", "run"), ("second", "cancelled")]


@pytest.mark.anyio
async def test_an_unnamed_registry_is_default_and_one_with_other_actors_beside_it_is_numbered():
    first = setup(use={"cell_worker": actor()})
    assert first.name == "default"
    await first.start().ready()
    try:
        beside = setup(use={"other_worker": actor(), "cell_worker": actor()})
        assert beside.name == "default-2"  # other actors: it must not replace the first
        again = setup(use={"cell_worker": actor()})
        assert again.name == "default"  # the same cell run again: it replaces the first
    finally:
        await first.stop(grace=0)


@pytest.mark.anyio
async def test_async_with_starts_and_stops_the_registry():
    registry = setup(use={"worker": actor(actions={"ping": lambda c: "pong"})}, name="async-with")
    async with registry as running:
        assert running is registry
        assert registry.phase == "running"
        assert await registry.client().worker.get_or_create("k").ping() == "pong"
    assert registry.phase == "stopped"


def test_start_without_a_running_loop_explains_what_to_do():
    registry = setup(use={"worker": actor()}, name="no-loop")
    with pytest.raises(RegistryNotRunning, match="running event loop") as raised:
        registry.start(serve=False)
    assert "async with registry" in str(raised.value)
    assert registry.phase == "new"


@pytest.mark.anyio
async def test_calls_before_start_raise_registry_not_running():
    registry = setup(use={"worker": actor(actions={"ping": lambda c: "pong"})}, name="not-started")
    with pytest.raises(RegistryNotRunning, match="not started"):
        await registry.client().worker.get_or_create("k").ping()


@pytest.mark.anyio
async def test_a_crashing_on_create_fails_create_and_leaves_no_actor(start):
    def on_create(c, input):
        raise RuntimeError(f"bad input {input}")

    registry = await start(worker=actor(on_create=on_create, actions={"ping": lambda c: "pong"}))
    client = registry.client()
    with registry.bus.subscribe(types=["actor."]) as events:
        with pytest.raises(RuntimeError, match="bad input 3"):
            await client.worker.create("k", input=3)
        crashed = await next_event(events, "actor.crashed")
        assert events.get_nowait() == []  # no actor.created, no actor.woke
    assert (crashed.phase, crashed.error_type) == ("on_create", "RuntimeError")
    assert await registry.store.list_actors() == []
    assert registry._instances == {}
    with pytest.raises(ActorNotFound):
        await client.worker.get("k").ping()
    with pytest.raises(RuntimeError):
        await client.worker.get_or_create("k").ping()
    assert await registry.store.list_actors() == []


# --- handles -----------------------------------------------------------------------------------


def keyed_actor():
    return actor(actions={"whoami": lambda c: (c.name, c.key, c.actor_id)})


@pytest.mark.anyio
async def test_get_or_create_returns_the_same_actor_for_a_key(start):
    registry = await start(worker=keyed_actor())
    client = registry.client()
    first = await client.worker.get_or_create(["a", "b"]).whoami()
    again = await client.worker.get_or_create(("a", "b")).whoami()
    other = await client.worker.get_or_create(["a"]).whoami()
    assert first == again
    assert first[:2] == ("worker", ("a", "b"))
    assert other[1] == ("a",)
    assert other[2] != first[2]


@pytest.mark.anyio
async def test_a_string_key_is_a_one_part_list_key(start):
    registry = await start(worker=keyed_actor())
    client = registry.client()
    by_str = await client.worker.get_or_create("main").whoami()
    by_list = await client.worker.get_or_create(["main"]).whoami()
    assert by_str == by_list
    assert by_str[1] == ("main",)
    with pytest.raises(ValidationError):
        client.worker.get_or_create(["main", 3])


@pytest.mark.anyio
async def test_get_never_creates(start):
    registry = await start(worker=keyed_actor())
    client = registry.client()
    handle = client.worker.get("missing")
    with pytest.raises(ActorNotFound):
        await handle.whoami()
    assert await registry.store.list_actors() == []
    await client.worker.get_or_create("missing").whoami()
    assert (await handle.whoami())[1] == ("missing",)


@pytest.mark.anyio
async def test_create_twice_raises_actor_already_exists(start):
    registry = await start(worker=keyed_actor())
    client = registry.client()
    handle = await client.worker.create("k")
    assert (await handle.whoami())[1] == ("k",)
    with pytest.raises(ActorAlreadyExists):
        await client.worker.create("k")
    with pytest.raises(ActorAlreadyExists):
        await client.worker.create(["k"])
    assert len(await registry.store.list_actors()) == 1


@pytest.mark.anyio
async def test_get_for_id_finds_the_actor_only_under_its_own_name(start):
    registry = await start(worker=keyed_actor(), other=keyed_actor())
    client = registry.client()
    actor_id = await client.worker.get_or_create("k").resolve()
    handle = client.worker.get_for_id(actor_id)
    assert handle.key is None
    assert await handle.whoami() == ("worker", ("k",), actor_id)
    assert handle.key == ("k",)
    with pytest.raises(ActorNotFound):
        await client.other.get_for_id(actor_id).whoami()
    with pytest.raises(ActorNotFound):
        await client.worker.get_for_id("no-such-id").whoami()


@pytest.mark.anyio
async def test_unknown_actor_name_raises_unknown_actor_type(start):
    registry = await start(worker=keyed_actor())
    client = registry.client()
    with pytest.raises(UnknownActorType, match="nobody"):
        client.nobody  # noqa: B018
    with pytest.raises(UnknownActorType):
        client["nobody"]
    assert not hasattr(client, "nobody")  # it is an AttributeError too
    assert client["worker"].get_or_create("k").name == "worker"


@pytest.mark.anyio
async def test_unknown_action_raises_unknown_action(start):
    registry = await start(worker=keyed_actor())
    handle = registry.client().worker.get_or_create("k")
    with pytest.raises(UnknownAction, match="whoami"):  # the message lists what is defined
        handle.nope  # noqa: B018
    with pytest.raises(UnknownAction):
        await handle.call("nope")
    assert "whoami" in dir(handle)


@pytest.mark.anyio
async def test_actions_of_one_actor_interleave(start):
    def events(c):
        return {"a": asyncio.Event(), "b": asyncio.Event()}

    async def left(c):
        c.vars["a"].set()
        await c.vars["b"].wait()
        return "left"

    async def right(c):
        c.vars["b"].set()
        await c.vars["a"].wait()
        return "right"

    registry = await start(pair=actor(vars=events, actions={"left": left, "right": right}))
    handle = registry.client().pair.get_or_create("k")
    with anyio.fail_after(5):
        assert await asyncio.gather(handle.left(), handle.right()) == ["left", "right"]


@pytest.mark.anyio
async def test_an_action_can_call_another_action_of_the_same_actor(start):
    async def outer(c, n):
        me = c.actors.worker.get_for_id(c.actor_id)
        return await me.inner(n) + 1

    def inner(c, n):
        c.state["inner_calls"] += 1
        return n * 10

    registry = await start(worker=actor(state={"inner_calls": 0}, actions={"outer": outer, "inner": inner}))
    handle = registry.client().worker.get_or_create("k")
    with anyio.fail_after(5):
        assert await handle.outer(4) == 41
    assert registry._instances[await handle.resolve()].state == {"inner_calls": 1}


@pytest.mark.anyio
async def test_an_action_raising_actor_not_found_is_not_retried(start):
    runs = []

    async def look_up(c):
        runs.append("look_up")
        return await c.actors.worker.get("missing").ping()

    registry = await start(worker=actor(actions={"look_up": look_up, "ping": lambda c: "pong"}))
    handle = registry.client().worker.get_or_create("k")
    with pytest.raises(ActorNotFound, match="missing"):
        await handle.look_up()
    assert runs == ["look_up"]  # a get_or_create handle retries only when its own actor is gone
    assert len(await registry.store.list_actors()) == 1


@pytest.mark.anyio
async def test_action_timeout_raises_and_cancels_the_action(start):
    outcome = []

    async def hang(c):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    registry = await start(worker=actor(actions={"hang": hang}, options={"action_timeout": 0.05}))
    with pytest.raises(ActionTimeout, match="hang"):
        await registry.client().worker.get_or_create("k").hang()
    assert outcome == ["cancelled"]


@pytest.mark.anyio
async def test_an_exception_in_an_action_reaches_the_caller_unchanged(start):
    class Refused(Exception):
        def __init__(self, reason):
            super().__init__(reason)
            self.reason = reason

    raised = []

    def refuse(c, reason):
        error = Refused(reason)
        raised.append(error)
        raise error

    registry = await start(worker=actor(actions={"refuse": refuse, "ping": lambda c: "pong"}))
    handle = registry.client().worker.get_or_create("k")
    with pytest.raises(Refused) as caught:
        await handle.refuse("no thanks")
    assert caught.value is raised[0]
    assert caught.value.reason == "no thanks"
    assert await handle.ping() == "pong"  # the actor keeps working


@pytest.mark.parametrize(
    "options",
    [{"sleep_timeout": 0}, {"sleep_timeout": -1}, {"action_timeout": "soon"}, {"no_such_option": 1}],
)
def test_bad_options_raise_invalid_definition(options):
    with pytest.raises(InvalidDefinition, match="options"):
        actor(options=options)


@pytest.mark.parametrize("name", ["send", "key", "name", "call", "resolve", "_private", "class", "not-an-id"])
def test_reserved_or_invalid_action_names_raise_invalid_definition(name):
    with pytest.raises(InvalidDefinition, match=repr(name)):
        actor(actions={name: lambda c: None})


def test_bad_state_and_hooks_raise_invalid_definition():
    with pytest.raises(InvalidDefinition, match="state"):
        actor(state=[1, 2])
    with pytest.raises(InvalidDefinition, match="run"):
        actor(run="not callable")
    with pytest.raises(InvalidDefinition, match="queue"):
        actor(queues={"jobs": int})
