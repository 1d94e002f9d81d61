"""State commits with the acknowledgement (issue 15), in process: what handling a message did to
`state` is written in the same store write that settles the message (completion, acknowledgement
by asking for the next, an action's return, a dead letter), a consumer moving on to its next
message costs one store write, and `c.save_state()` saves at once. `test_crash.py` checks the
same across kills of a real process."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from agentos_nb import MemoryStore, actor, queue
from agentos_nb.errors import ValidationError
from agentos_nb.store.protocol import ActorRecord
from conftest import wait_until

pytestmark = pytest.mark.anyio

NO_PERIODIC_SAVE = {"state_save_interval": 3600}  # only settling writes and save_state() write it


class CountingStore(MemoryStore):
    """Counts the writes that deliver and settle messages, and saves of the state."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Counter[str] = Counter()

    async def lease(self, *args: Any, **kwargs: Any) -> None:
        self.writes["lease"] += 1
        await super().lease(*args, **kwargs)

    async def complete(self, *args: Any, **kwargs: Any) -> None:
        self.writes["complete"] += 1
        await super().complete(*args, **kwargs)

    async def acknowledge_and_lease(self, *args: Any, **kwargs: Any) -> None:
        self.writes["acknowledge_and_lease"] += 1
        await super().acknowledge_and_lease(*args, **kwargs)

    async def save_state(self, *args: Any, **kwargs: Any) -> None:
        self.writes["save_state"] += 1
        await super().save_state(*args, **kwargs)


async def has_status(store: MemoryStore, message_id: int, status: str) -> bool:
    record = await store.get_message(message_id)
    return record is not None and record.status == status


async def stored_state(store: MemoryStore, actor_id: str) -> Any:
    record = await store.get_actor(actor_id)
    assert record is not None
    return None if record.state is None else json.loads(record.state)


async def test_a_plain_message_is_acknowledged_with_the_state_and_the_next_delivery_in_one_write(
    start_registry,
):
    store = CountingStore()
    gate = asyncio.Event()
    stored_while_handling = []

    async def run(c):
        await gate.wait()
        async for message in c.queue.iter():
            stored_while_handling.append((await stored_state(store, c.actor_id))["done"])
            c.state["done"].append(message.body)

    registry = await start_registry(
        store, a=actor(state={"done": []}, queues={"jobs": queue(int)}, run=run, options=NO_PERIODIC_SAVE)
    )
    handle = registry.client().a.get_or_create("k")
    sent = [await handle.send("jobs", n) for n in range(5)]
    store.writes.clear()
    gate.set()
    await wait_until(lambda: len(stored_while_handling) == 5)
    await wait_until(lambda: has_status(store, sent[-1].message_id, "completed"))  # acked as it waits
    # the store held every earlier message's effect by the time the next was delivered
    assert stored_while_handling == [[], [0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert await stored_state(store, await handle.resolve()) == {"done": [0, 1, 2, 3, 4]}
    # the first delivery; four times the acknowledgement and the next delivery; the last one
    assert store.writes == {"acknowledge_and_lease": 6}


async def test_complete_returns_once_the_state_is_stored_with_it(start_registry):
    store = MemoryStore()
    stored_after_complete = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            c.state["done"].append(message.body)
            await message.complete(len(c.state["done"]))
            stored_after_complete.append((await stored_state(store, c.actor_id))["done"])

    registry = await start_registry(
        store,
        a=actor(state={"done": []}, queues={"jobs": queue(str, int)}, run=run, options=NO_PERIODIC_SAVE),
    )
    handle = registry.client().a.get_or_create("k")
    for body in ("x", "y"):
        assert (await handle.send("jobs", body, wait=True, timeout=5)).status == "completed"
    assert stored_after_complete == [["x"], ["x", "y"]]


async def test_an_action_that_takes_a_message_stores_the_state_with_its_acknowledgement(start_registry):
    store = MemoryStore()

    async def take(c):
        message = await c.queue.next("jobs", timeout=5)
        c.state["took"].append(message.body)

    registry = await start_registry(
        store,
        a=actor(
            state={"took": []}, queues={"jobs": queue(int)}, actions={"take": take}, options=NO_PERIODIC_SAVE
        ),
    )
    handle = registry.client().a.get_or_create("k")
    sent = await handle.send("jobs", 7)
    await handle.take()
    assert (await store.get_message(sent.message_id)).status == "completed"
    assert await stored_state(store, await handle.resolve()) == {"took": [7]}


async def test_a_dead_letter_stores_the_state_with_it(start_registry):
    store = MemoryStore()

    async def run(c):
        async for message in c.queue.iter():
            c.state["tries"] += 1
            raise RuntimeError(f"cannot do {message.body}")

    registry = await start_registry(
        store,
        a=actor(
            state={"tries": 0},
            queues={"jobs": queue(int)},
            run=run,
            options={**NO_PERIODIC_SAVE, "max_attempts": 2, "restart_backoff": 0},
        ),
    )
    handle = registry.client().a.get_or_create("k")
    sent = await handle.send("jobs", 1)
    await wait_until(lambda: has_status(store, sent.message_id, "dead"))
    assert await stored_state(store, await handle.resolve()) == {"tries": 2}


async def test_the_periodic_save_does_not_store_half_of_a_message_in_flight(start_registry):
    """A save in the middle of a message would store part of its effect; after a crash the
    message comes again and the effect would be there twice. The periodic save waits for it."""
    store = MemoryStore()
    stored_mid_message = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            c.state["done"].append(message.body)
            await asyncio.sleep(0.1)  # many periodic saves come due meanwhile
            stored_mid_message.append((await stored_state(store, c.actor_id))["done"])
            await message.complete(len(c.state["done"]))

    registry = await start_registry(
        store,
        a=actor(
            state={"done": []},
            queues={"jobs": queue(str, int)},
            run=run,
            options={"state_save_interval": 0.005},
        ),
    )
    handle = registry.client().a.get_or_create("k")
    for body in ("x", "y"):
        await handle.send("jobs", body, wait=True, timeout=5)
    assert stored_mid_message == [[], ["x"]]
    assert await stored_state(store, await handle.resolve()) == {"done": ["x", "y"]}


async def test_a_message_given_back_arms_the_periodic_save_again(start_registry):
    """While the run loop holds a message, periodic saves wait for its settling write to carry
    the state. Given back instead (the loop crashed, its restart far off), what an action changed
    meanwhile is saved soon all the same."""
    store = MemoryStore()
    holding, crash = asyncio.Event(), asyncio.Event()

    async def run(c):
        async for _message in c.queue.iter():
            holding.set()
            await crash.wait()
            raise RuntimeError("the message goes back")

    def bump(c):
        c.state["bumps"] += 1

    registry = await start_registry(
        store,
        a=actor(
            state={"bumps": 0},
            queues={"jobs": queue(int)},
            actions={"bump": bump},
            run=run,
            options={"state_save_interval": 0.01, "restart_backoff": 30},
        ),
    )
    handle = registry.client().a.get_or_create("k")
    actor_id = await handle.resolve()
    await handle.send("jobs", 1)
    await holding.wait()
    await handle.bump()
    await asyncio.sleep(0.1)  # its periodic save came due, and waited
    assert await stored_state(store, actor_id) == {"bumps": 0}
    crash.set()

    async def saved() -> bool:
        return await stored_state(store, actor_id) == {"bumps": 1}

    await wait_until(saved)


async def test_save_state_saves_now(start_registry):
    store = CountingStore()

    async def note(c, text):
        c.state["notes"].append(text)
        await c.save_state()
        await c.save_state()  # nothing changed since: nothing to write

    registry = await start_registry(
        store, a=actor(state={"notes": []}, actions={"note": note}, options=NO_PERIODIC_SAVE)
    )
    handle = registry.client().a.get_or_create("k")
    await handle.resolve()
    store.writes.clear()
    await handle.note("hello")
    assert await stored_state(store, await handle.resolve()) == {"notes": ["hello"]}
    assert store.writes == {"save_state": 1}


async def test_a_state_that_cannot_be_saved_refuses_the_acknowledgement_and_save_state(start_registry):
    """A completion promises its effect on the state is stored: with a state that cannot be
    serialised it raises instead, and the message stays in flight, to be completed once the
    state is fixed."""
    store = MemoryStore()
    outcomes = []

    async def run(c):
        async for message in c.queue.iter(completable=True):
            c.state["handle"] = object()
            for attempt in ("broken", "fixed"):
                try:
                    await message.complete(attempt)
                except ValidationError as error:
                    outcomes.append((attempt, str(error)))
                    assert (await store.get_message(message.id)).status == "leased"
                    del c.state["handle"]
                else:
                    outcomes.append((attempt, "completed"))

    async def poison(c):
        c.state["handle"] = object()
        try:
            await c.save_state()
        finally:
            del c.state["handle"]

    registry = await start_registry(
        store,
        a=actor(
            state={},
            queues={"jobs": queue(str, str)},
            actions={"poison": poison},
            run=run,
            options=NO_PERIODIC_SAVE,
        ),
    )
    handle = registry.client().a.get_or_create("k")
    result = await handle.send("jobs", "x", wait=True, timeout=5)
    assert (result.status, result.response) == ("completed", "fixed")
    assert outcomes[0][0] == "broken"
    assert "cannot be saved" in outcomes[0][1]
    assert outcomes[1] == ("fixed", "completed")
    with pytest.raises(ValidationError, match="cannot be saved"):
        await handle.poison()


async def test_an_actor_whose_creation_a_crash_cut_short_is_created_on_its_next_wake(start_registry):
    """Stored, then killed before `on_create` finished and its first state was saved: the
    store holds it with no state. Its next wake finishes the creation instead of running with
    `state` None."""
    store = MemoryStore()
    await store.insert_actor(ActorRecord("a-1", "a", ("k",), 0.0, input=b'{"start": 3}'))
    await store.enqueue("a-1", "jobs", b"1", 0.0)
    created_with = []

    def on_create(c, input):
        created_with.append(input)
        c.state["total"] = input["start"]

    async def run(c):
        async for message in c.queue.iter():
            c.state["total"] += message.body

    await start_registry(
        store,
        a=actor(state={"total": 0}, queues={"jobs": queue(int)}, on_create=on_create, run=run),
    )

    async def summed() -> bool:
        return await stored_state(store, "a-1") == {"total": 4}

    await wait_until(summed)
    assert created_with == [{"start": 3}]
