"""Time limits and cancels told apart from what the work inside them raises (`actors/deadlines.py`)."""

from __future__ import annotations

import asyncio

import pytest

from agentos_nb.actors.deadlines import CancelRequest, TimeLimit, TimeLimitReached, being_cancelled

pytestmark = pytest.mark.anyio


async def test_a_time_limit_that_runs_out_says_it_was_its_own():
    with pytest.raises(TimeLimitReached) as raised:
        async with TimeLimit(0.01):
            await asyncio.sleep(5)
    assert isinstance(raised.value, TimeoutError)


async def test_a_timeout_raised_inside_is_the_work_s_own():
    with pytest.raises(TimeoutError) as raised:
        async with TimeLimit(5):
            raise TimeoutError("the tool's own")
    assert type(raised.value) is TimeoutError
    async with TimeLimit(None):
        await asyncio.sleep(0)


async def test_a_cancel_from_elsewhere_as_the_time_runs_out_wins():
    async def limited() -> None:
        async with TimeLimit(0):  # runs out on the next turn of the loop...
            asyncio.get_running_loop().call_soon(task.cancel)  # ...and so does this cancel
            await asyncio.sleep(5)

    task = asyncio.ensure_future(limited())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_being_cancelled_tells_a_cancel_of_this_task_from_one_below():
    seen: list[bool] = []

    async def waits_on(inner: asyncio.Future[None]) -> None:
        try:
            await inner
        except asyncio.CancelledError:
            seen.append(being_cancelled())

    inner = asyncio.get_running_loop().create_future()
    below = asyncio.ensure_future(waits_on(inner))
    await asyncio.sleep(0)
    inner.cancel()  # what it awaited was cancelled, not the task
    await below
    outer = asyncio.ensure_future(waits_on(asyncio.get_running_loop().create_future()))
    await asyncio.sleep(0)
    outer.cancel()
    await outer
    assert seen == [False, True]
    assert not being_cancelled()


async def test_a_cancel_request_takes_back_its_own_cancel_only():
    async def turn(request: CancelRequest, outcome: list[str]) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            if not request.resolve():
                outcome.append("propagated")
                raise
            outcome.append("stopped as asked")
        outcome.append(f"goes on, cancelling={asyncio.current_task().cancelling()}")

    ours, outcome = CancelRequest(), []
    task = asyncio.ensure_future(turn(ours, outcome))
    await asyncio.sleep(0)
    ours.cancel(task)
    ours.cancel(task)  # asked twice: both are taken back
    await task
    assert outcome == ["stopped as asked", "goes on, cancelling=0"]

    both, outcome = CancelRequest(), []
    task = asyncio.ensure_future(turn(both, outcome))
    await asyncio.sleep(0)
    both.cancel(task)
    task.cancel()  # from elsewhere too: that one wins
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["propagated"]

    unasked, outcome = CancelRequest(), []
    task = asyncio.ensure_future(turn(unasked, outcome))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["propagated"]


async def test_a_cancel_request_before_the_work_starts_is_only_remembered():
    request = CancelRequest()
    assert not request.requested
    request.cancel(None)
    assert request.requested
    assert asyncio.current_task().cancelling() == 0
