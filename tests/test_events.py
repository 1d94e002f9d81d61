"""The event bus: typed events, filters, bounded buffers that drop instead of blocking."""

from __future__ import annotations

import asyncio
import uuid

import anyio
import pytest

from agentos_nb import actor, queue, setup
from agentos_nb.events import (
    ActionFinished,
    ActionStarted,
    ActorBroadcast,
    ActorCreated,
    ActorWoke,
    Event,
    EventBus,
    EventsDropped,
    MessageCompleted,
    MessageEnqueued,
    MessageReceived,
)
from conftest import wait_until


@pytest.fixture
async def registry():
    """A running registry with one `worker` actor type; stopped after the test."""

    async def run(c):
        async for message in c.queue.iter():
            c.vars.append(message.body)

    def shout(c, word, times=1):
        for i in range(times):
            c.broadcast(word, i)
        return times

    worker = actor(vars=lambda c: [], queues={"jobs": queue(int)}, run=run, actions={"shout": shout})
    registry = setup(use={"worker": worker}, name=f"events-{uuid.uuid4().hex[:8]}")
    await registry.start().ready()
    yield registry
    await registry.stop(grace=0)


async def collect(subscription, count: int, *, timeout: float = 5.0) -> list[Event]:
    with anyio.fail_after(timeout):
        return [await subscription.get() for _ in range(count)]


@pytest.mark.anyio
async def test_the_bus_delivers_typed_events_in_order(registry):
    with registry.bus.subscribe() as events:
        handle = registry.client().worker.get_or_create("k")
        await handle.send("jobs", 5)
        seen = await collect(events, 5)
        actor_id = await handle.resolve()
        assert [type(e) for e in seen[:2]] == [ActorCreated, ActorWoke]
        assert [type(e) for e in seen[2:]] == [MessageEnqueued, MessageReceived, MessageCompleted]
        assert [e.type for e in seen[2:]] == ["message.enqueued", "message.received", "message.completed"]
        assert {e.actor.actor_id for e in seen} == {actor_id}
        assert {(e.actor.name, e.actor.key) for e in seen} == {("worker", ("k",))}
        enqueued, received, completed = seen[2:]
        assert (enqueued.queue, received.queue, completed.queue) == ("jobs", "jobs", "jobs")
        assert enqueued.message_id == received.message_id == completed.message_id
        assert enqueued.size == len(b"5")
        assert received.attempt == 1
        assert completed.response is None


@pytest.mark.anyio
async def test_actions_emit_started_and_finished_with_the_same_call_id(registry):
    handle = registry.client().worker.get_or_create("k")
    await handle.resolve()
    with registry.bus.subscribe(types=["action."]) as events:
        assert await handle.shout("hi") == 1
        started, finished = await collect(events, 2)
    assert isinstance(started, ActionStarted)
    assert isinstance(finished, ActionFinished)
    assert (started.action, finished.action) == ("shout", "shout")
    assert started.call_id == finished.call_id
    assert finished.duration >= 0
    assert finished.error is None


@pytest.mark.anyio
async def test_a_failing_action_reports_its_error_in_action_finished():
    def fail(c):
        raise KeyError("missing")

    async with setup(use={"worker": actor(actions={"fail": fail})}, name="events-fail") as registry:
        with registry.bus.subscribe(types=["action.finished"]) as events:
            with pytest.raises(KeyError):
                await registry.client().worker.get_or_create("k").fail()
            (finished,) = await collect(events, 1)
    assert finished.error == "KeyError: 'missing'"


@pytest.mark.anyio
async def test_broadcast_publishes_an_actor_broadcast_event(registry):
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.broadcast"]) as events:
        await handle.shout("hello", times=2)
        first, second = await collect(events, 2)
    assert isinstance(first, ActorBroadcast)
    assert (first.name, first.args) == ("hello", (0,))
    assert (second.name, second.args) == ("hello", (1,))
    assert first.actor.key == ("k",)


@pytest.mark.anyio
async def test_types_filter_keeps_exact_types_and_families(registry):
    handle = registry.client().worker.get_or_create("k")
    exact = registry.bus.subscribe(types=["message.completed", "actor.broadcast"])
    family = registry.bus.subscribe(types=["message."])
    try:
        await handle.send("jobs", 1)
        await handle.shout("x")
        assert sorted(e.type for e in await collect(exact, 2)) == ["actor.broadcast", "message.completed"]
        assert [e.type for e in await collect(family, 3)] == [
            "message.enqueued",
            "message.received",
            "message.completed",
        ]
    finally:
        exact.close()
        family.close()


@pytest.mark.anyio
async def test_a_slow_subscriber_keeps_the_newest_events_and_is_told_how_many_it_lost(registry):
    handle = registry.client().worker.get_or_create("k")
    slow = registry.bus.subscribe(buffer=10, types=["actor.broadcast"])
    everything = registry.bus.subscribe(buffer=10_000, types=["actor.broadcast"])
    try:
        with anyio.fail_after(10):  # the runtime does not wait for the slow reader
            assert await handle.shout("tick", times=1000) == 1000
        dropped = await slow.get()
        assert isinstance(dropped, EventsDropped)
        assert dropped.count == 990
        assert slow.missed == 990
        kept = [(await slow.get()).args[0] for _ in range(10)]
        assert kept == list(range(990, 1000))
        assert slow.get_nowait() == []
        assert [e.args[0] for e in everything.get_nowait()] == list(range(1000))
        assert everything.missed == 0
    finally:
        slow.close()
        everything.close()


@pytest.mark.anyio
async def test_a_slow_subscriber_does_not_hold_back_queue_processing(registry):
    handle = registry.client().worker.get_or_create("k")
    await handle.resolve()
    slow = registry.bus.subscribe(buffer=10)
    full = registry.bus.subscribe(buffer=100_000)
    completed = registry.bus.subscribe(buffer=100_000, types=["message.completed"])
    try:
        for i in range(1000):
            await handle.send("jobs", i)
        done = await collect(completed, 1000, timeout=30)
        assert len({e.message_id for e in done}) == 1000
        assert registry._instances[await handle.resolve()].vars == list(range(1000))
        all_events = full.get_nowait()
        assert full.missed == 0
        assert len(all_events) == 3000  # enqueued, received and completed for each message
        first = await slow.get()
        assert isinstance(first, EventsDropped)
        assert first.count == 2990
        assert slow.get_nowait() == all_events[-10:]
    finally:
        slow.close()
        full.close()
        completed.close()


@pytest.mark.anyio
async def test_get_nowait_returns_what_is_buffered_without_waiting():
    bus = EventBus()
    subscription = bus.subscribe(buffer=3)
    assert subscription.get_nowait() == []
    for n in range(5):
        bus.publish(EventsDropped(count=n))  # any event type will do
    events = subscription.get_nowait()
    assert [type(e) for e in events] == [EventsDropped] * 4
    assert events[0].count == 2  # the report of the two lost events comes first
    assert [e.count for e in events[1:]] == [2, 3, 4]
    assert subscription.get_nowait() == []


@pytest.mark.anyio
async def test_get_waits_for_the_next_event():
    bus = EventBus()
    subscription = bus.subscribe()
    waiting = asyncio.ensure_future(subscription.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    bus.publish(EventsDropped(count=7))
    with anyio.fail_after(5):
        assert (await waiting).count == 7


@pytest.mark.anyio
async def test_closing_a_subscription_ends_async_for():
    bus = EventBus()
    subscription = bus.subscribe()
    received = []

    async def reader():
        async for event in subscription:
            received.append(event.count)

    task = asyncio.ensure_future(reader())
    bus.publish(EventsDropped(count=1))
    await wait_until(lambda: received == [1])
    subscription.close()
    with anyio.fail_after(5):
        await task
    bus.publish(EventsDropped(count=2))
    assert received == [1]
    assert not bus.active


@pytest.mark.anyio
async def test_a_closed_subscription_still_yields_what_it_had_buffered():
    bus = EventBus()
    subscription = bus.subscribe()
    bus.publish(EventsDropped(count=1))
    subscription.close()
    bus.publish(EventsDropped(count=2))
    assert [e.count async for e in subscription] == [1]


def test_a_buffer_must_hold_at_least_one_event():
    with pytest.raises(ValueError, match="at least 1"):
        EventBus().subscribe(buffer=0)


@pytest.mark.anyio
async def test_events_are_not_built_when_nobody_listens(registry):
    assert not registry.bus.active
    handle = registry.client().worker.get_or_create("k")
    await handle.send("jobs", 1)
    with registry.bus.subscribe(types=["message.enqueued"]) as events:
        assert registry.bus.active
        await handle.send("jobs", 2)
        (enqueued,) = await collect(events, 1)
    assert not registry.bus.active
    assert enqueued.message_id == 2


@pytest.mark.anyio
async def test_closing_a_subscription_ends_every_reader_waiting_on_it():
    bus = EventBus()
    subscription = bus.subscribe()
    first, second = [], []

    async def reader(into):
        async for event in subscription:
            into.append(event.count)

    readers = [asyncio.ensure_future(reader(first)), asyncio.ensure_future(reader(second))]
    await asyncio.sleep(0)  # both wait now
    bus.publish(EventsDropped(count=1))
    await wait_until(lambda: first + second == [1])
    subscription.close()
    with anyio.fail_after(5):
        await asyncio.gather(*readers)
    assert first + second == [1]


@pytest.mark.anyio
async def test_a_cancelled_reader_does_not_disturb_another_reader():
    bus = EventBus()
    subscription = bus.subscribe()
    cancelled = asyncio.ensure_future(subscription.get())
    waiting = asyncio.ensure_future(subscription.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    bus.publish(EventsDropped(count=3))
    with anyio.fail_after(5):
        assert (await waiting).count == 3
    assert cancelled.cancelled()


@pytest.mark.anyio
async def test_a_filter_that_raises_skips_the_event_and_never_breaks_the_runtime(registry):
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(accept=lambda e: e.queue == "jobs") as events:  # not every event has one
        await handle.send("jobs", 1)
        assert await handle.shout("x") == 1
        seen = await collect(events, 3)
    assert [e.type for e in seen] == ["message.enqueued", "message.received", "message.completed"]


@pytest.mark.anyio
async def test_types_and_accept_filters_combine(registry):
    handle = registry.client().worker.get_or_create("k")
    with registry.bus.subscribe(types=["actor.broadcast"], accept=lambda e: e.args[0] % 2 == 1) as events:
        await handle.shout("tick", times=5)
        assert [e.args[0] for e in await collect(events, 2)] == [1, 3]
        assert events.get_nowait() == []
