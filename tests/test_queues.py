"""Queue semantics: typed bodies checked at the sender, FIFO order, limits and the consumer API."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from agentos_nb import actor, queue
from agentos_nb.errors import MessageTooLarge, QueueFull, UnknownQueue, ValidationError
from conftest import wait_until

pytestmark = pytest.mark.anyio


class Task(BaseModel):
    prompt: str


class Meta(BaseModel):
    size: int


class Upload(BaseModel):
    name: str
    meta: Meta


class Issue(BaseModel):
    title: str
    body: str


def gated_recorder(seen: list, gate: asyncio.Event, names=None):
    """A run loop that waits for `gate`, then records every message it gets."""

    async def run(c):
        await gate.wait()
        async for message in c.queue.iter(names):
            seen.append(message)

    return run


async def stored(registry, handle) -> list:
    """The messages the store still holds for the actor (pending or leased)."""
    return await registry.store.load_queues(await handle.resolve())


async def stored_is_empty(registry, handle) -> bool:
    return await stored(registry, handle) == []


async def test_messages_of_one_queue_are_delivered_in_send_order(start_registry):
    seen, gate = [], asyncio.Event()
    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, run=gated_recorder(seen, gate))
    )
    h = registry.client().runner.get_or_create(["main"])
    prompts = [f"task {i}" for i in range(20)]
    for prompt in prompts:
        await h.send("tasks", {"prompt": prompt})
    gate.set()
    await wait_until(lambda: len(seen) == 20)
    assert [m.body.prompt for m in seen] == prompts


async def test_consuming_several_queues_takes_the_oldest_message_first(start_registry):
    seen, gate = [], asyncio.Event()
    registry = await start_registry(
        runner=actor(queues={"a": queue(Task), "b": queue(Task)}, run=gated_recorder(seen, gate, ["a", "b"]))
    )
    h = registry.client().runner.get_or_create(["main"])
    sends = [("a", "a1"), ("b", "b1"), ("b", "b2"), ("a", "a2"), ("b", "b3"), ("a", "a3")]
    for name, prompt in sends:
        await h.send(name, {"prompt": prompt})
    gate.set()
    await wait_until(lambda: len(seen) == 6)
    assert [(m.name, m.body.prompt) for m in seen] == sends


async def test_consuming_one_queue_leaves_the_others_alone(start_registry):
    seen, gate = [], asyncio.Event()
    registry = await start_registry(
        runner=actor(queues={"a": queue(Task), "b": queue(Task)}, run=gated_recorder(seen, gate, "b"))
    )
    h = registry.client().runner.get_or_create(["main"])
    await h.send("a", {"prompt": "a1"})
    await h.send("b", {"prompt": "b1"})
    gate.set()
    await wait_until(lambda: len(seen) == 1)
    await h.send("b", {"prompt": "b2"})
    await wait_until(lambda: len(seen) == 2)
    assert [m.body.prompt for m in seen] == ["b1", "b2"]
    assert [(r.queue, r.body) for r in await stored(registry, h)] == [("a", b'{"prompt":"a1"}')]


async def test_a_bad_body_is_refused_at_the_sender_naming_the_field(start_registry):
    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}))
    h = registry.client().runner.get_or_create(["main"])
    with pytest.raises(ValidationError) as raised:
        await h.send("tasks", {"prompt": 42})
    assert "prompt" in str(raised.value)
    assert "tasks" in str(raised.value)
    assert [e["field"] for e in raised.value.details["errors"]] == ["prompt"]
    assert raised.value.code == "validation_error"


async def test_a_bad_nested_body_names_the_dotted_field_path(start_registry):
    registry = await start_registry(uploader=actor(queues={"uploads": queue(Upload)}))
    h = registry.client().uploader.get_or_create(["main"])
    with pytest.raises(ValidationError) as raised:
        await h.send("uploads", {"name": "a.txt", "meta": {"size": "big"}})
    assert "meta.size" in str(raised.value)
    assert [e["field"] for e in raised.value.details["errors"]] == ["meta.size"]


async def test_a_refused_body_stores_nothing_and_is_never_delivered(start_registry):
    seen, gate = [], asyncio.Event()
    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, run=gated_recorder(seen, gate))
    )
    h = registry.client().runner.get_or_create(["main"])
    await h.resolve()
    with registry.bus.subscribe(types=["message."]) as events:
        with pytest.raises(ValidationError):
            await h.send("tasks", {"wrong": "field"})
        assert await stored(registry, h) == []
        await h.send("tasks", {"prompt": "good"})
        gate.set()
        await wait_until(lambda: len(seen) == 1)
        types = [e.type for e in events.get_nowait()]
    assert [m.body.prompt for m in seen] == ["good"]
    assert types[:2] == ["message.rejected", "message.enqueued"]
    assert types.count("message.enqueued") == 1


async def test_a_send_to_an_undeclared_queue_raises_and_stores_nothing(start_registry):
    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}))
    h = registry.client().runner.get_or_create(["main"])
    await h.resolve()
    with registry.bus.subscribe(types=["message."]) as events:
        with pytest.raises(UnknownQueue) as raised:
            await h.send("taks", {"prompt": "typo"})
        rejected = events.get_nowait()
    assert "'taks'" in str(raised.value)
    assert "tasks" in str(raised.value)  # the declared queues are listed
    assert await stored(registry, h) == []
    assert [(e.type, e.code) for e in rejected] == [("message.rejected", "queue.unknown")]


async def test_a_full_queue_refuses_and_loses_nothing(start_registry):
    seen, gate = [], asyncio.Event()
    registry = await start_registry(
        runner=actor(
            queues={"tasks": queue(Task)}, run=gated_recorder(seen, gate), options={"max_queue_size": 3}
        )
    )
    h = registry.client().runner.get_or_create(["main"])
    accepted, refused = [], []
    for i in range(5):
        try:
            await h.send("tasks", {"prompt": str(i)})
            accepted.append(str(i))
        except QueueFull as error:
            refused.append((str(i), error.details["limit"]))
    assert (accepted, refused) == (["0", "1", "2"], [("3", 3), ("4", 3)])
    assert len(await stored(registry, h)) == 3
    gate.set()
    await wait_until(lambda: len(seen) == 3)
    for i in (3, 4):  # the producer retries what was refused
        await h.send("tasks", {"prompt": str(i)})
    await wait_until(lambda: len(seen) == 5)
    await wait_until(lambda: stored_is_empty(registry, h))
    assert [m.body.prompt for m in seen] == ["0", "1", "2", "3", "4"]
    assert len({m.id for m in seen}) == 5
    assert {(await registry.store.get_message(m.id)).status for m in seen} == {"completed"}


async def test_a_queue_max_size_overrides_the_actor_limit(start_registry):
    registry = await start_registry(
        runner=actor(
            queues={"small": queue(Task), "big": queue(Task, max_size=4)}, options={"max_queue_size": 2}
        )
    )
    h = registry.client().runner.get_or_create(["main"])
    for i in range(4):
        await h.send("big", {"prompt": str(i)})
    for i in range(2):
        await h.send("small", {"prompt": str(i)})
    with pytest.raises(QueueFull):
        await h.send("big", {"prompt": "one too many"})
    with pytest.raises(QueueFull):
        await h.send("small", {"prompt": "one too many"})
    assert [r.queue for r in await stored(registry, h)] == ["big"] * 4 + ["small"] * 2


async def test_a_body_over_max_message_bytes_is_refused(start_registry):
    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, options={"max_message_bytes": 100})
    )
    h = registry.client().runner.get_or_create(["main"])
    # {"prompt":"..."} is 13 bytes of JSON around the prompt
    await h.send("tasks", {"prompt": "x" * 87})
    with pytest.raises(MessageTooLarge) as raised:
        await h.send("tasks", {"prompt": "x" * 88})
    assert raised.value.details == {"size": 101, "limit": 100}
    assert [len(r.body) for r in await stored(registry, h)] == [100]


async def test_a_queue_max_message_bytes_overrides_the_actor_limit(start_registry):
    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task, max_message_bytes=20), "other": queue(Task)})
    )
    h = registry.client().runner.get_or_create(["main"])
    await h.send("other", {"prompt": "x" * 100})
    with pytest.raises(MessageTooLarge):
        await h.send("tasks", {"prompt": "x" * 8})
    assert [r.queue for r in await stored(registry, h)] == ["other"]


async def test_a_blocking_send_waits_for_room_then_succeeds(start_registry):
    seen, gate = [], asyncio.Event()
    registry = await start_registry(
        runner=actor(
            queues={"tasks": queue(Task)}, run=gated_recorder(seen, gate), options={"max_queue_size": 1}
        )
    )
    h = registry.client().runner.get_or_create(["main"])
    await h.send("tasks", {"prompt": "first"})
    blocked = asyncio.ensure_future(h.send("tasks", {"prompt": "second"}, block=True))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    assert [r.body for r in await stored(registry, h)] == [b'{"prompt":"first"}']
    gate.set()
    result = await asyncio.wait_for(blocked, 5)
    assert result.status == "enqueued"
    await wait_until(lambda: len(seen) == 2)
    assert [m.body.prompt for m in seen] == ["first", "second"]
    assert seen[1].id == result.message_id


async def test_a_blocking_send_whose_timeout_expires_raises_queue_full(start_registry):
    registry = await start_registry(
        runner=actor(queues={"tasks": queue(Task)}, options={"max_queue_size": 1})
    )
    h = registry.client().runner.get_or_create(["main"])
    await h.send("tasks", {"prompt": "first"})
    with pytest.raises(QueueFull):
        await h.send("tasks", {"prompt": "second"}, block=True, timeout=0.05)
    assert [r.body for r in await stored(registry, h)] == [b'{"prompt":"first"}']


async def test_next_with_a_timeout_returns_none_when_nothing_comes(start_registry):
    results = []

    async def run(c):
        results.append(await c.queue.next(timeout=0.05))
        results.append(await c.queue.next(timeout=10))

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    await h.resolve()
    await wait_until(lambda: len(results) == 1)
    assert results == [None]
    await h.send("tasks", {"prompt": "late"})
    await wait_until(lambda: len(results) == 2)
    assert results[1].body == Task(prompt="late")


async def test_next_batch_returns_up_to_count_oldest_first(start_registry):
    batches, gate = [], asyncio.Event()

    async def run(c):
        await gate.wait()
        while batch := await c.queue.next_batch(3):  # empty only when the actor stops
            batches.append([m.body.prompt for m in batch])

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    for i in range(5):
        await h.send("tasks", {"prompt": str(i)})
    gate.set()
    await wait_until(lambda: len(batches) == 2)
    assert batches == [["0", "1", "2"], ["3", "4"]]
    await h.send("tasks", {"prompt": "5"})  # an empty queue: the batch waits for at least one
    await wait_until(lambda: len(batches) == 3)
    assert batches[2] == ["5"]


async def test_next_batch_refuses_a_count_below_one(start_registry):
    errors = []

    async def run(c):
        try:
            await c.queue.next_batch(0)
        except ValueError as error:
            errors.append(str(error))

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    await registry.client().runner.get_or_create(["main"]).resolve()
    await wait_until(lambda: len(errors) == 1)
    assert "at least 1" in errors[0]


async def test_try_next_never_waits(start_registry):
    results, gate = [], asyncio.Event()

    async def run(c):
        results.append(await c.queue.try_next())  # empty queue: None at once
        await gate.wait()
        results.append(await c.queue.try_next())
        results.append(await c.queue.try_next())  # drained again

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    await h.resolve()
    await wait_until(lambda: len(results) == 1)
    assert results == [None]
    await h.send("tasks", {"prompt": "only"})
    gate.set()
    await wait_until(lambda: len(results) == 3)
    assert results[1].body.prompt == "only"
    assert results[2] is None


async def test_consuming_an_undeclared_queue_raises_unknown_queue(start_registry):
    errors = []

    async def run(c):
        try:
            await c.queue.next("nope", timeout=1)
        except UnknownQueue as error:
            errors.append(str(error))

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    await registry.client().runner.get_or_create(["main"]).resolve()
    await wait_until(lambda: len(errors) == 1)
    assert "'nope'" in errors[0]


async def test_an_action_pushes_onto_its_own_queue_like_a_webhook_ingest(start_registry):
    seen = []

    async def ingest_issue(c, title: str, body: str):
        return await c.queue.push("issues", {"title": title, "body": body})

    async def run(c):
        async for message in c.queue.iter():
            seen.append(message)

    registry = await start_registry(
        issue_worker=actor(queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run)
    )
    h = registry.client().issue_worker.get_or_create(["main"])
    message_id = await h.ingest_issue(
        "Login redirect broken", "Users are redirected to /undefined after login on mobile"
    )
    await wait_until(lambda: len(seen) == 1)
    assert seen[0].id == message_id
    assert seen[0].name == "issues"
    assert seen[0].body == Issue(
        title="Login redirect broken", body="Users are redirected to /undefined after login on mobile"
    )


async def test_a_push_with_a_bad_body_raises_in_the_action(start_registry):
    async def ingest_issue(c, title):
        await c.queue.push("issues", {"title": title})

    async def push_elsewhere(c):
        await c.queue.push("tickets", {"title": "t", "body": "b"})

    registry = await start_registry(
        issue_worker=actor(
            queues={"issues": queue(Issue)},
            actions={"ingest_issue": ingest_issue, "push_elsewhere": push_elsewhere},
        )
    )
    h = registry.client().issue_worker.get_or_create(["main"])
    with pytest.raises(ValidationError, match="body"):
        await h.ingest_issue("no body")
    with pytest.raises(UnknownQueue):
        await h.push_elsewhere()
    assert await stored(registry, h) == []


async def test_a_first_delivery_has_attempt_one_and_knows_its_queue_and_id(start_registry):
    seen = []

    async def run(c):
        async for message in c.queue.iter():
            seen.append(message)

    registry = await start_registry(runner=actor(queues={"tasks": queue(Task)}, run=run))
    h = registry.client().runner.get_or_create(["main"])
    result = await h.send("tasks", {"prompt": "hello"})
    await wait_until(lambda: len(seen) == 1)
    assert result.status == "enqueued"
    assert (seen[0].id, seen[0].name, seen[0].attempt) == (result.message_id, "tasks", 1)


def room_race_actor(got: list, go: asyncio.Event, give_up):
    """A consumer holding the only place of a full queue; when `go` is set it runs `give_up`."""

    async def run(c):
        got.append(await c.queue.next())
        await go.wait()
        await give_up(c)
        got.append(await c.queue.next(timeout=10))

    return actor(queues={"tasks": queue(Task)}, run=run, options={"max_queue_size": 1})


async def blocked_senders(h):
    """Fill the queue, then block two senders on it, the quitter first in line."""
    await h.send("tasks", {"prompt": "first"})
    quitter = asyncio.ensure_future(h.send("tasks", {"prompt": "quitter"}, block=True))
    await asyncio.sleep(0.01)
    patient = asyncio.ensure_future(h.send("tasks", {"prompt": "patient"}, block=True))
    await asyncio.sleep(0.01)
    assert not quitter.done()
    assert not patient.done()
    return quitter, patient


async def test_a_blocked_sender_that_gives_up_leaves_the_room_to_the_next(start_registry):
    got, go, senders = [], asyncio.Event(), {}

    async def give_up(c):
        senders["quitter"].cancel()  # the quitter gives up (a timeout would do the same) ...
        assert await c.queue.try_next() is None  # ... as the same step acknowledges "first"

    registry = await start_registry(runner=room_race_actor(got, go, give_up))
    h = registry.client().runner.get_or_create(["main"])
    senders["quitter"], patient = await blocked_senders(h)
    go.set()
    assert (await asyncio.wait_for(patient, 5)).status == "enqueued"
    await wait_until(lambda: len(got) == 2)
    assert [m.body.prompt for m in got] == ["first", "patient"]
    assert senders["quitter"].cancelled()


async def test_a_blocked_sender_woken_then_cancelled_passes_the_room_on(start_registry):
    got, go, senders = [], asyncio.Event(), {}

    async def give_up(c):
        assert await c.queue.try_next() is None  # acknowledges "first": the room goes to the quitter ...
        senders["quitter"].cancel()  # ... which gives up before it could take it

    registry = await start_registry(runner=room_race_actor(got, go, give_up))
    h = registry.client().runner.get_or_create(["main"])
    senders["quitter"], patient = await blocked_senders(h)
    go.set()
    assert (await asyncio.wait_for(patient, 5)).status == "enqueued"
    await wait_until(lambda: len(got) == 2)
    assert [m.body.prompt for m in got] == ["first", "patient"]
    assert senders["quitter"].cancelled()


@pytest.mark.anyio
async def test_a_loop_that_ignores_the_stop_answer_cannot_starve_the_event_loop(start_registry):
    asked = 0

    async def run(c):
        nonlocal asked
        while True:  # never checks for [], as a careless run loop might
            await c.queue.next_batch(10)
            asked += 1

    registry = await start_registry(
        looper=actor(queues={"q": queue(int)}, run=run, options={"sleep_grace_period": 0.3})
    )
    looper = registry.client().looper.get_or_create("k")
    await looper.send("q", 1)
    await wait_until(lambda: asked == 1)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    await registry.stop()  # closes the mailbox, then cancels the loop after its grace period
    ticking.cancel()
    assert ticks >= 5  # the loop kept turning while the careless run loop was asking
    assert asked < 20  # it was answered slowly, not spun
