"""Property tests: whatever mix of good bodies, bad bodies and crashing consumers, the queue's
delivery guarantees hold."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agentos_nb import actor, errors, queue, setup

MAX_ATTEMPTS = 3


class Job(BaseModel):
    n: int


# A send is either a good body (its failures: how many deliveries crash before it succeeds)
# or a bad body that must be refused.
sends = st.lists(
    st.one_of(st.integers(min_value=0, max_value=MAX_ATTEMPTS + 1), st.just("bad")),
    max_size=40,
)


async def scenario(plan: list[int | str]) -> None:
    failures_before_success: dict[int, int] = {}
    deliveries: list[tuple[int, int]] = []
    completed: list[int] = []
    all_settled = asyncio.Event()

    async def run(c):
        async for message in c.queue.iter():
            n = message.body.n
            deliveries.append((n, message.attempt))
            if message.attempt <= failures_before_success[n]:
                raise RuntimeError(f"job {n} failed on attempt {message.attempt}")
            completed.append(n)

    registry = setup(
        use={
            "worker": actor(
                queues={"jobs": queue(Job)},
                run=run,
                options={
                    "max_attempts": MAX_ATTEMPTS,
                    "restart_backoff": 0,
                    "restart_backoff_max": 0,
                },
            )
        },
        name="property-worker",
    )
    async with registry:
        events = registry.bus.subscribe(types=["message.completed", "message.dead_lettered"])
        worker = registry.client().worker.get_or_create("w")
        accepted: list[int] = []
        for n, item in enumerate(plan):
            if item == "bad":
                with pytest.raises(errors.ValidationError, match="n: Input should be a valid integer"):
                    await worker.send("jobs", {"n": "not a number"})
                continue
            failures_before_success[n] = item
            await worker.send("jobs", {"n": n})
            accepted.append(n)

        settled: set[int] = set()

        async def wait_all() -> None:
            async for _event in events:
                settled.add(_event.message_id)
                if len(settled) == len(accepted):
                    all_settled.set()
                    return

        if accepted:
            await asyncio.wait_for(wait_all(), timeout=30)
        dead = {letter.body.n for letter in await worker.dead_letters()}

    # Every accepted job either completed exactly once or was dead-lettered, never both.
    expected_dead = {n for n in accepted if failures_before_success[n] >= MAX_ATTEMPTS}
    assert dead == expected_dead
    assert sorted(completed) == sorted(set(accepted) - expected_dead)
    assert len(completed) == len(set(completed))
    # FIFO with redelivery at the head: each job's deliveries (one per failure plus one to
    # succeed, capped by max_attempts) come together, in send order.
    assert deliveries == [
        (n, attempt)
        for n in accepted
        for attempt in range(1, min(failures_before_success[n] + 1, MAX_ATTEMPTS) + 1)
    ]
    # Refused bodies were never delivered.
    assert {n for n, _ in deliveries} <= set(accepted)


@settings(max_examples=40, deadline=None)
@given(sends)
def test_every_accepted_message_is_completed_once_or_dead_lettered_in_fifo_order(
    plan: list[int | str],
) -> None:
    asyncio.run(scenario(plan))


def test_error_codes_are_unique_and_stable() -> None:
    def subclasses(cls: type) -> list[type]:
        return [cls, *(c for sub in cls.__subclasses__() for c in subclasses(sub))]

    classes = subclasses(errors.AgentOSError)
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert errors.QueueFull.code == "queue.full"
    assert errors.MessageTooLarge.code == "queue.message_too_large"
    assert errors.QueueFull("full").to_dict() == {"error": "queue.full", "message": "full"}
