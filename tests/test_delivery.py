"""Delivery: at-least-once with redelivery and dead letters, acknowledgements, completable messages."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from pydantic import BaseModel

from agentos_nb import MemoryStore, SendResult, actor, queue
from agentos_nb.errors import (
    AlreadyCompleted,
    MessageNotFound,
    MessageReleased,
    PreviousMessageNotCompleted,
    UnknownQueue,
    ValidationError,
)
from conftest import wait_until

pytestmark = pytest.mark.anyio

FAST_RESTART = {"restart_backoff": 0.01}


class Task(BaseModel):
    prompt: str


class ReviewReq(BaseModel):
    file: str


class ReviewResp(BaseModel):
    summary: str


async def status_of(registry, message_id: int) -> str | None:
    record = await registry.store.get_message(message_id)
    return None if record is None else record.status


async def has_status(registry, message_id: int, status: str) -> bool:
    return await status_of(registry, message_id) == status


def reviewer_actor(run, **options):
    return actor(queues={"review": queue(ReviewReq, ReviewResp)}, run=run, options=options or None)


# --- at-least-once --------------------------------------------------------------------------------


async def test_a_run_loop_that_crashes_mid_message_gets_it_again(start_registry):
    seen = []

    async def run(c):
        async for message in c.queue.iter():
            seen.append((message.body.prompt, message.attempt))
            if message.body.prompt == "a" and message.attempt == 1:
                raise RuntimeError("boom")

    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, run=run, options=FAST_RESTART)
    )
    h = registry.client().runner.get_or_create(["main"])
    first = await h.send("tasks", {"prompt": "a"})
    await h.send("tasks", {"prompt": "b"})
    await wait_until(lambda: len(seen) == 3)
    # the crashed message keeps its place at the head of the queue
    assert seen == [("a", 1), ("a", 2), ("b", 1)]
    await wait_until(lambda: has_status(registry, first.message_id, "completed"))


async def test_a_redelivery_is_an_event_between_the_two_receipts(start_registry):
    crashed = []

    async def run(c):
        async for message in c.queue.iter():
            if not crashed:
                crashed.append(message.id)
                raise RuntimeError("boom")

    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, run=run, options=FAST_RESTART)
    )
    h = registry.client().runner.get_or_create(["main"])
    await h.resolve()
    with registry.bus.subscribe(types=["message.received", "message.redelivered"]) as events:
        sent = await h.send("tasks", {"prompt": "a"})
        await wait_until(lambda: has_status(registry, sent.message_id, "completed"))
        seen = [(e.type, e.message_id, e.attempt) for e in events.get_nowait()]
    assert seen == [
        ("message.received", sent.message_id, 1),
        ("message.redelivered", sent.message_id, 1),
        ("message.received", sent.message_id, 2),
    ]


async def test_a_message_leased_when_its_actor_died_is_redelivered_on_wake(start_registry):
    store = MemoryStore()
    idle = await start_registry(store, runner=actor(queues={"tasks": queue(Task)}))
    sent = await idle.client().runner.get_or_create(["main"]).send("tasks", {"prompt": "in flight"})
    await idle.stop()
    await store.lease(sent.message_id)  # a delivery cut short: the process died mid-message
    seen = []

    async def run(c):
        async for message in c.queue.iter():
            seen.append((message.id, message.attempt))

    registry = await start_registry(store, runner=actor(queues={"tasks": queue(Task)}, run=run))
    await wait_until(lambda: len(seen) == 1)  # the registry wakes actors with stored messages
    assert seen == [(sent.message_id, 2)]
    await wait_until(lambda: has_status(registry, sent.message_id, "completed"))


async def test_a_message_leased_max_attempts_times_is_dead_lettered_on_wake(start_registry):
    store = MemoryStore()
    idle = await start_registry(store, runner=actor(queues={"tasks": queue(Task)}))
    sent = await idle.client().runner.get_or_create(["main"]).send("tasks", {"prompt": "poison"})
    await idle.stop()
    for _ in range(2):
        await store.lease(sent.message_id)
    seen = []

    async def run(c):
        async for message in c.queue.iter():
            seen.append(message.id)

    registry = await start_registry(
        store, runner=actor(queues={"tasks": queue(Task)}, run=run, options={"max_attempts": 2})
    )
    await wait_until(lambda: has_status(registry, sent.message_id, "dead"))  # buried as it woke
    letters = await registry.client().runner.get_or_create(["main"]).dead_letters()
    assert [(d.message_id, d.attempts) for d in letters] == [(sent.message_id, 2)]
    assert "without being acknowledged" in letters[0].error
    assert seen == []


# --- dead letters and replay ----------------------------------------------------------------------


def poison_runner(seen: list, healed: asyncio.Event | None = None, max_attempts: int = 3):
    async def run(c):
        async for message in c.queue.iter():
            seen.append((message.body.prompt, message.attempt))
            if message.body.prompt == "poison" and not (healed and healed.is_set()):
                raise RuntimeError("cannot digest poison")

    return actor(
        queues={"tasks": queue(Task)}, run=run, options={**FAST_RESTART, "max_attempts": max_attempts}
    )


async def test_a_message_that_keeps_failing_goes_to_dead_letters(start_registry):
    seen = []
    registry = await start_registry(runner=poison_runner(seen))
    h = registry.client().runner.get_or_create(["main"])
    poison = await h.send("tasks", {"prompt": "poison"})
    await h.send("tasks", {"prompt": "fine"})
    await wait_until(lambda: ("fine", 1) in seen)
    assert seen == [("poison", 1), ("poison", 2), ("poison", 3), ("fine", 1)]
    (letter,) = await h.dead_letters()
    assert (letter.message_id, letter.queue, letter.body, letter.attempts) == (
        poison.message_id,
        "tasks",
        Task(prompt="poison"),
        3,
    )
    assert "RuntimeError: cannot digest poison" in letter.error
    assert await status_of(registry, poison.message_id) == "dead"
    assert await h.dead_letters("tasks") == [letter]
    with pytest.raises(UnknownQueue):
        await h.dead_letters("nope")


async def test_dead_lettering_is_an_event_with_attempts_and_error(start_registry):
    registry = await start_registry(runner=poison_runner([], max_attempts=2))
    h = registry.client().runner.get_or_create(["main"])
    await h.resolve()
    with registry.bus.subscribe(types=["message.dead_lettered"]) as events:
        poison = await h.send("tasks", {"prompt": "poison"})
        with anyio.fail_after(5):
            event = await events.get()
    assert (event.message_id, event.queue, event.attempts) == (poison.message_id, "tasks", 2)
    assert "cannot digest poison" in event.error


async def test_a_replayed_dead_letter_is_delivered_again(start_registry):
    seen, healed = [], asyncio.Event()
    registry = await start_registry(runner=poison_runner(seen, healed, max_attempts=2))
    h = registry.client().runner.get_or_create(["main"])
    poison = await h.send("tasks", {"prompt": "poison"})
    await wait_until(lambda: len(seen) == 2)
    await wait_until(lambda: has_status(registry, poison.message_id, "dead"))
    healed.set()
    await h.replay(poison.message_id)
    result = await h.wait_for(poison.message_id, timeout=5)
    assert (result.status, result.message_id) == ("completed", poison.message_id)
    assert seen == [("poison", 1), ("poison", 2), ("poison", 1)]  # attempts start over
    assert await h.dead_letters() == []


async def test_replaying_an_unknown_dead_letter_raises_message_not_found(start_registry):
    seen = []
    registry = await start_registry(runner=poison_runner(seen))
    h = registry.client().runner.get_or_create(["main"])
    live = await h.send("tasks", {"prompt": "fine"})
    await wait_until(lambda: has_status(registry, live.message_id, "completed"))
    with pytest.raises(MessageNotFound):
        await h.replay(live.message_id)  # completed, not dead
    with pytest.raises(MessageNotFound):
        await h.replay(10_000)
    assert seen == [("fine", 1)]


# --- acknowledgement of plain messages ------------------------------------------------------------


async def test_a_plain_message_is_acknowledged_when_the_consumer_asks_for_the_next(start_registry):
    got, step = [], asyncio.Event()

    async def run(c):
        got.append(await c.queue.next())
        await step.wait()
        got.append(await c.queue.next())
        await asyncio.Event().wait()  # hold the second message forever

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    first = await h.send("tasks", {"prompt": "1"})
    second = await h.send("tasks", {"prompt": "2"})
    await wait_until(lambda: len(got) == 1)
    assert await status_of(registry, first.message_id) == "leased"
    with registry.bus.subscribe(types=["message.completed"]) as events:
        step.set()
        await wait_until(lambda: len(got) == 2)
        completed = [e.message_id for e in events.get_nowait()]
    assert completed == [first.message_id]
    assert await status_of(registry, first.message_id) == "completed"
    assert await status_of(registry, second.message_id) == "leased"


async def test_a_run_loop_that_returns_acknowledges_its_last_plain_message(start_registry):
    got = []

    async def run(c):
        got.append(await c.queue.next())

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    sent = await h.send("tasks", {"prompt": "only"})
    await wait_until(lambda: has_status(registry, sent.message_id, "completed"))
    assert [m.id for m in got] == [sent.message_id]


async def test_a_run_loop_that_returns_gives_back_an_uncompleted_completable_message(start_registry):
    got = []

    async def run(c):
        got.append(await c.queue.next(completable=True))

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    sent = await h.send("review", {"file": "a.py"})
    await wait_until(lambda: len(got) == 1)
    await wait_until(lambda: has_status(registry, sent.message_id, "pending"))
    assert [(m.id, m.attempt) for m in got] == [(sent.message_id, 1)]
    assert await h.dead_letters() == []


# --- completable messages -------------------------------------------------------------------------


async def test_send_and_wait_returns_the_validated_response(start_registry):
    async def run(c):
        async for message in c.queue.iter(completable=True):
            await message.complete({"summary": f"reviewed {message.body.file}"})

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    result = await h.send("review", {"file": "/home/user/src/auth.ts"}, wait=True, timeout=5)
    assert isinstance(result, SendResult)
    assert result.status == "completed"
    assert isinstance(result.response, ReviewResp)
    assert result.response.summary == "reviewed /home/user/src/auth.ts"
    assert await status_of(registry, result.message_id) == "completed"


async def test_asking_for_another_while_a_completable_is_open_raises(start_registry):
    errors, later = [], []

    async def run(c):
        message = await c.queue.next(completable=True)
        for ask in (c.queue.next, c.queue.try_next):
            try:
                await ask()
            except PreviousMessageNotCompleted as error:
                errors.append(str(error))
        await message.complete(ReviewResp(summary="done"))
        later.append(await c.queue.next())  # allowed again once completed

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    first = await h.send("review", {"file": "a.py"}, wait=True, timeout=5)
    assert first.status == "completed"
    assert len(errors) == 2
    assert f"message {first.message_id}" in errors[0]
    second = await h.send("review", {"file": "b.py"})
    await wait_until(lambda: len(later) == 1)
    assert later[0].id == second.message_id


async def test_completing_twice_raises_already_completed(start_registry):
    errors = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            await message.complete(ReviewResp(summary="first"))
            try:
                await message.complete(ReviewResp(summary="second"))
            except AlreadyCompleted as error:
                errors.append(error)

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    result = await h.send("review", {"file": "a.py"}, wait=True, timeout=5)
    await wait_until(lambda: len(errors) == 1)
    assert result.response == ReviewResp(summary="first")
    assert errors[0].code == "queue.already_completed"


async def test_a_response_of_the_wrong_shape_is_refused_and_the_message_stays_open(start_registry):
    errors = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            try:
                await message.complete({"summary": 42})
            except ValidationError as error:
                errors.append(str(error))
            await message.complete({"summary": "fixed"})

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    result = await h.send("review", {"file": "a.py"}, wait=True, timeout=5)
    assert (result.status, result.response) == ("completed", ReviewResp(summary="fixed"))
    assert len(errors) == 1
    assert "summary" in errors[0]


async def test_a_response_on_a_queue_without_response_type_is_refused(start_registry):
    errors = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            try:
                await message.complete({"summary": "unexpected"})
            except ValidationError as error:
                errors.append(str(error))
            await message.complete()

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    result = await h.send("tasks", {"prompt": "x"}, wait=True, timeout=5)
    assert (result.status, result.response) == ("completed", None)
    assert len(errors) == 1
    assert "'tasks'" in errors[0]


async def test_a_wait_that_times_out_can_be_picked_up_with_wait_for(start_registry):
    gate = asyncio.Event()

    async def run(c):
        async for message in c.queue.iter(completable=True):
            await gate.wait()
            await message.complete(ReviewResp(summary=f"slow {message.body.file}"))

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    early = await h.send("review", {"file": "a.py"}, wait=True, timeout=0.05)
    assert early.status == "timed_out"
    assert early.response is None
    assert await status_of(registry, early.message_id) == "leased"  # still queued, not lost
    waiting = asyncio.ensure_future(h.wait_for(early.message_id, timeout=5))
    await asyncio.sleep(0.01)
    gate.set()
    late = await waiting
    assert (late.status, late.message_id, late.response) == (
        "completed",
        early.message_id,
        ReviewResp(summary="slow a.py"),
    )
    again = await h.wait_for(early.message_id)  # already completed: read back from the store
    assert (again.status, again.response) == ("completed", ReviewResp(summary="slow a.py"))


async def test_wait_for_that_times_out_returns_timed_out(start_registry):
    async def run(c):
        await c.queue.next(completable=True)
        await asyncio.Event().wait()

    registry = await start_registry(reviewer=reviewer_actor(run))
    h = registry.client().reviewer.get_or_create(["main"])
    sent = await h.send("review", {"file": "a.py"})
    result = await h.wait_for(sent.message_id, timeout=0.05)
    assert (result.status, result.message_id) == ("timed_out", sent.message_id)


async def test_wait_for_an_unknown_message_raises_message_not_found(start_registry):
    registry = await start_registry(
        reviewer=reviewer_actor(None), runner=actor(queues={"tasks": queue(Task)})
    )
    h = registry.client().reviewer.get_or_create(["main"])
    with pytest.raises(MessageNotFound):
        await h.wait_for(123_456, timeout=1)
    other = await registry.client().runner.get_or_create(["main"]).send("tasks", {"prompt": "x"})
    with pytest.raises(MessageNotFound):
        await h.wait_for(other.message_id, timeout=1)  # a message of another actor


async def test_a_dead_lettered_message_resolves_a_waiting_send(start_registry):
    async def run(c):
        async for _message in c.queue.iter(completable=True):
            raise RuntimeError("reviewer broke")

    registry = await start_registry(reviewer=reviewer_actor(run, max_attempts=2, **FAST_RESTART))
    h = registry.client().reviewer.get_or_create(["main"])
    result = await h.send("review", {"file": "a.py"}, wait=True, timeout=5)
    assert result.status == "dead_lettered"
    assert result.response is None
    assert "RuntimeError: reviewer broke" in result.error
    later = await h.wait_for(result.message_id)
    assert (later.status, later.error) == ("dead_lettered", result.error)


async def test_a_stale_holder_cannot_complete_a_message_redelivered_after_a_crash(start_registry):
    held, go = [], asyncio.Event()

    async def run(c):
        async for message in c.queue.iter(completable=True):
            held.append(message)
            if message.attempt == 1:
                raise RuntimeError("crash with the message held")  # e.g. a background task keeps it
            await go.wait()
            await message.complete(ReviewResp(summary=f"attempt {message.attempt}"))

    registry = await start_registry(reviewer=reviewer_actor(run, **FAST_RESTART))
    h = registry.client().reviewer.get_or_create(["main"])
    waiting = asyncio.ensure_future(h.send("review", {"file": "a.py"}, wait=True, timeout=5))
    await wait_until(lambda: len(held) == 2)
    stale, fresh = held
    assert (stale.id, stale.attempt, fresh.attempt) == (fresh.id, 1, 2)
    with pytest.raises(MessageReleased):
        await stale.complete(ReviewResp(summary="from the crashed attempt"))
    go.set()
    result = await waiting
    assert (result.status, result.response) == ("completed", ReviewResp(summary="attempt 2"))


# --- crashes --------------------------------------------------------------------------------------


async def test_a_crashed_run_loop_emits_actor_crashed_and_restarts(start_registry):
    starts = []

    async def run(c):
        starts.append(len(starts) + 1)
        if len(starts) <= 2:
            raise RuntimeError(f"crash {len(starts)}")
        await asyncio.Event().wait()

    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, run=run, options=FAST_RESTART)
    )
    with registry.bus.subscribe(types=["actor.crashed"]) as events:
        await registry.client().runner.get_or_create(["main"]).resolve()
        await wait_until(lambda: len(starts) == 3)
        crashes = events.get_nowait()
    assert [(e.phase, e.error, e.error_type) for e in crashes] == [
        ("run", "crash 1", "RuntimeError"),
        ("run", "crash 2", "RuntimeError"),
    ]
    assert crashes[0].restart_in == 0.01
    assert crashes[1].restart_in > crashes[0].restart_in  # backoff grows
    assert crashes[0].actor.name == "runner"
