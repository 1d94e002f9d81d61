"""Who consumes what: each task is its own consumer, writes to the store are cancel-safe, and
user code that fails in odd ways never breaks delivery."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from agentos_nb import actor, queue
from agentos_nb.errors import ActorStopped, QueueFull, ValidationError
from agentos_nb.store import MemoryStore
from conftest import wait_until


class SuspendingStore(MemoryStore):
    """A memory store whose writes take a while and can be interrupted mid-way, as a real
    database's would; it says so, so the runtime shields its writes."""

    may_suspend = True

    async def enqueue(self, *args, **kwargs):
        await asyncio.sleep(0.05)
        return await super().enqueue(*args, **kwargs)

    async def complete(self, *args, **kwargs):
        await asyncio.sleep(0.05)
        return await super().complete(*args, **kwargs)


@pytest.mark.anyio
async def test_an_action_reading_another_queue_never_settles_what_the_run_loop_holds(start_registry):
    deliveries = []
    working = asyncio.Event()

    async def run(c):
        async for message in c.queue.iter("jobs"):
            deliveries.append((message.body, message.attempt))
            working.set()
            await asyncio.sleep(0.05)
            if message.attempt == 1:
                raise RuntimeError("crash mid-message")

    async def peek_control(c):
        return await c.queue.try_next("control")

    registry = await start_registry(
        a=actor(
            queues={"jobs": queue(str), "control": queue(str)},
            actions={"peek_control": peek_control},
            run=run,
            options={"restart_backoff": 0},
        )
    )
    handle = registry.client().a.get_or_create("k")
    await handle.send("jobs", "job-1")
    await working.wait()
    assert await handle.peek_control() is None
    await wait_until(lambda: len(deliveries) == 2)
    assert deliveries == [("job-1", 1), ("job-1", 2)]


@pytest.mark.anyio
async def test_an_action_that_takes_a_message_acknowledges_it_when_it_returns(start_registry):
    async def poll(c):
        message = await c.queue.try_next("inbox")
        return None if message is None else message.body

    registry = await start_registry(
        a=actor(queues={"inbox": queue(int)}, actions={"poll": poll}, options={"sleep_timeout": 0.05})
    )
    handle = registry.client().a.get_or_create("k")
    sent = await handle.send("inbox", 7)
    assert await handle.poll() == 7
    assert (await registry.store.get_message(sent.message_id)).status == "completed"
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await asyncio.wait_for(slept.get(), timeout=5)  # nothing left in flight keeps it awake
    assert await handle.poll() is None


@pytest.mark.anyio
async def test_an_action_that_fails_gives_its_message_back_as_a_failed_attempt(start_registry):
    async def poll_and_fail(c):
        await c.queue.try_next("inbox")
        raise RuntimeError("could not handle it")

    async def poll(c):
        message = await c.queue.try_next("inbox")
        return message.attempt

    registry = await start_registry(
        a=actor(queues={"inbox": queue(int)}, actions={"poll_and_fail": poll_and_fail, "poll": poll})
    )
    handle = registry.client().a.get_or_create("k")
    await handle.send("inbox", 7)
    with pytest.raises(RuntimeError, match="could not handle it"):
        await handle.poll_and_fail()
    assert await handle.poll() == 2


@pytest.mark.anyio
async def test_a_consumer_cancelled_after_its_wake_up_hands_the_message_on(start_registry):
    async def take(c):
        message = await c.queue.next("q")
        return message.body

    registry = await start_registry(a=actor(queues={"q": queue(int)}, actions={"take": take}))
    handle = registry.client().a.get_or_create("k")
    first = asyncio.create_task(handle.take())
    second = asyncio.create_task(handle.take())
    await asyncio.sleep(0.02)  # both wait in next()
    await handle.send("q", 42)  # wakes the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, timeout=5) == 42


@pytest.mark.anyio
async def test_keep_awake_while_stopping_is_refused_and_starts_nothing(start_registry):
    started = []

    async def on_sleep(c):
        async def tick():
            started.append(True)

        try:
            c.keep_awake(tick())
        except ActorStopped as error:
            started.append(error)

    registry = await start_registry(a=actor(actions={"ping": lambda c: "pong"}, on_sleep=on_sleep))
    handle = registry.client().a.get_or_create("k")
    await handle.ping()
    await registry.stop(grace=0)
    assert len(started) == 1
    assert isinstance(started[0], ActorStopped)


@pytest.mark.anyio
async def test_an_actions_own_timeout_error_is_not_reported_as_the_action_timing_out(start_registry):
    async def fails_fast(c):
        raise TimeoutError("the remote service timed out")

    registry = await start_registry(a=actor(actions={"fails_fast": fails_fast}))
    with pytest.raises(TimeoutError, match="the remote service timed out"):
        await registry.client().a.get_or_create("k").fails_fast()


@pytest.mark.anyio
async def test_a_body_that_validates_but_cannot_be_json_is_refused_with_a_validation_error(
    start_registry,
):
    class Job(BaseModel):
        payload: object

    registry = await start_registry(a=actor(queues={"anything": queue(), "jobs": queue(Job)}))
    handle = registry.client().a.get_or_create("k")
    with registry.bus.subscribe(types=["message."]) as events:
        with pytest.raises(ValidationError, match="cannot be stored as JSON"):
            await handle.send("anything", object())
        with pytest.raises(ValidationError, match="cannot be stored as JSON"):
            await handle.send("jobs", {"payload": object()})
        assert [e.type for e in events.get_nowait()] == ["message.rejected", "message.rejected"]


@pytest.mark.anyio
async def test_a_run_loop_that_turns_cancellation_into_an_error_does_not_delay_stop(start_registry):
    async def run(c):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    registry = await start_registry(a=actor(run=run, options={"restart_backoff": 30}))
    await registry.client().a.get_or_create("k").resolve()
    with registry.bus.subscribe(types=["actor.crashed"]) as crashes:
        await asyncio.wait_for(registry.stop(grace=0), timeout=5)
        (crash,) = crashes.get_nowait()
    assert crash.restart_in is None  # no restart was promised while stopping


@pytest.mark.anyio
async def test_a_send_cancelled_during_its_store_write_leaves_memory_and_store_agreeing(start_registry):
    received = []

    async def run(c):
        async for message in c.queue.iter():
            received.append(message.body)

    registry = await start_registry(store=SuspendingStore(), a=actor(queues={"q": queue(int)}, run=run))
    handle = registry.client().a.get_or_create("k")
    await handle.resolve()
    sending = asyncio.create_task(handle.send("q", 1))
    await asyncio.sleep(0.01)  # the write has started
    sending.cancel()
    await handle.send("q", 2)
    # The cancelled write still landed; the awake actor learned of it, in order.
    await wait_until(lambda: received == [1, 2])


@pytest.mark.anyio
async def test_a_completion_whose_consumer_is_cancelled_mid_write_still_answers_the_sender(
    start_registry,
):
    async def run(c):
        async for message in c.queue.iter(completable=True):
            completing = asyncio.ensure_future(message.complete(message.body * 2))
            await asyncio.sleep(0.01)  # the store write has started
            completing.cancel()

    registry = await start_registry(store=SuspendingStore(), a=actor(queues={"q": queue(int, int)}, run=run))
    result = await registry.client().a.get_or_create("k").send("q", 20, wait=True, timeout=5)
    assert result.status == "completed"
    assert result.response == 40


class FailingDeadLetterStore(MemoryStore):
    """A store whose dead-letter write fails once, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    async def dead_letter(self, message_id, error, **kwargs):
        if self.failures_left:
            self.failures_left -= 1
            raise OSError("disk full")
        return await super().dead_letter(message_id, error, **kwargs)


@pytest.mark.anyio
async def test_a_failed_dead_letter_write_keeps_the_message_and_its_place(start_registry):
    store = FailingDeadLetterStore()
    deliveries = []

    async def run(c):
        async for message in c.queue.iter():
            deliveries.append(message.attempt)
            raise RuntimeError("poison")

    registry = await start_registry(
        store=store,
        a=actor(
            queues={"q": queue(int)},
            run=run,
            options={"max_attempts": 1, "max_queue_size": 1, "restart_backoff": 0},
        ),
    )
    handle = registry.client().a.get_or_create("k")
    with registry.bus.subscribe(types=["actor.crashed"]) as crashes:
        sent = await handle.send("q", 1)
        await wait_until(lambda: store.failures_left == 0)
        errors = [(await crashes.get()).error_type for _ in range(2)]
    assert errors == ["OSError", "RuntimeError"]  # the failed give-back, then the crash: both reported
    # The store still holds it in flight; memory agrees, so the queue is still full.
    assert (await store.get_message(sent.message_id)).status == "leased"
    with pytest.raises(QueueFull):
        await handle.send("q", 2)
    await registry.stop(grace=0)
    # Still leased: a registry started on this store again counts it as a failed delivery.
    assert (await store.get_message(sent.message_id)).status == "leased"


@pytest.mark.anyio
async def test_stopping_is_false_while_the_actor_starts_and_true_once_it_sleeps(start_registry):
    seen = {}

    async def on_create(c, input):
        seen["on_create"] = c.stopping

    async def on_wake(c):
        seen["on_wake"] = c.stopping

    async def on_sleep(c):
        seen["on_sleep"] = c.stopping

    registry = await start_registry(
        a=actor(on_create=on_create, on_wake=on_wake, on_sleep=on_sleep, actions={"ping": lambda c: None})
    )
    await registry.client().a.get_or_create("k").ping()
    await registry.stop(grace=0)
    assert seen == {"on_create": False, "on_wake": False, "on_sleep": True}


def test_reserved_action_names_are_exactly_the_handles_own_attributes():
    from agentos_nb.actors.definition import RESERVED_ACTION_NAMES
    from agentos_nb.actors.handles import ActorHandle

    public = {name for name in dir(ActorHandle) if not name.startswith("_")}  # its own and inherited
    assert public == RESERVED_ACTION_NAMES
