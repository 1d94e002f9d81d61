"""Durable cron on a VM: schedules fire by the scheduler's clock (a fake one here, moved by the
test), are kept in a real SQLite file across a restart, and skip or run once what they missed
while the registry was down."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from agentos_nb import agent_os, setup
from agentos_nb.actors.scheduling import Clock
from agentos_nb.errors import ScheduleNotFound, SessionNotFound, ValidationError
from agentos_nb.software import common, pi
from agentos_nb.vm.cron import CronExec, CronPrompt, CronSchedule
from conftest import wait_until

pytestmark = pytest.mark.anyio

MONDAY_0830 = datetime(2030, 1, 7, 8, 30, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 24 * HOUR
_names = itertools.count(1)


class FakeClock(Clock):
    """The scheduler's time, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.registry = None

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.registry.scheduler.wake()


@pytest.fixture
async def start():
    """`registry, vm = await start(clock, store=...)`: a registry on `clock`, stopped after."""
    started = []

    async def start(clock: FakeClock, store: str = "memory"):
        registry = setup(
            use={"vm": agent_os(software=[common, pi])}, store=store, name=f"cron-{next(_names)}"
        )
        registry.scheduler.clock = clock
        clock.registry = registry
        registry.start()
        await registry.ready()
        started.append(registry)
        return registry, registry.client().vm.get_or_create(["cron"])

    yield start
    for registry in reversed(started):
        await registry.stop(grace=0)


async def log_lines(vm) -> list[str]:
    if not await vm.exists("/home/user/log"):
        return []
    return (await vm.read_file("/home/user/log", encoding="utf-8")).splitlines()


async def test_a_schedule_fires_when_the_clock_reaches_its_time_and_plans_the_next(start):
    clock = FakeClock(MONDAY_0830)
    _, vm = await start(clock)
    action = CronExec(command="echo ran >> /home/user/log")
    schedule = await vm.schedule_cron("0 9 * * *", action)
    assert schedule.next_run == MONDAY_0830 + HOUR / 2
    assert (schedule.timezone, schedule.missed, schedule.runs) == ("UTC", "skip", 0)
    assert [s.schedule_id for s in await vm.list_schedules()] == [schedule.schedule_id]

    clock.advance(HOUR / 2 - 1)  # 08:59:59: not yet
    await vm.exec("true")
    assert await log_lines(vm) == []
    clock.advance(1)
    await wait_until(lambda: _ran(vm, 1))
    assert await log_lines(vm) == ["ran"]
    [after] = await vm.list_schedules()
    assert after.next_run == MONDAY_0830 + HOUR / 2 + DAY
    assert (after.last_run.status, after.last_run.detail) == ("ok", "exit code 0")
    assert after.last_run.planned_at == MONDAY_0830 + HOUR / 2

    clock.advance(DAY)
    await wait_until(lambda: _ran(vm, 2))
    assert await log_lines(vm) == ["ran", "ran"]


async def _ran(vm, runs: int) -> bool:
    [schedule] = await vm.list_schedules()
    return schedule.runs == runs and schedule.last_run is not None and schedule.last_run.at >= 0


async def test_the_time_zone_decides_when_nine_oclock_is(start):
    _, vm = await start(FakeClock(MONDAY_0830))
    paris = await vm.schedule_cron("0 9 * * MON-FRI", CronExec(command="true"), timezone="Europe/Paris")
    assert paris.next_run == datetime(2030, 1, 8, 8, 0, tzinfo=UTC).timestamp()  # 09:00 in Paris is 08:00 UTC
    tokyo = await vm.schedule_cron("0 9 * * *", CronExec(command="true"), timezone="Asia/Tokyo")
    assert tokyo.next_run == datetime(2030, 1, 8, 0, 0, tzinfo=UTC).timestamp()


async def test_a_prompt_goes_to_a_named_session_or_to_a_new_one_each_run(start):
    clock = FakeClock(MONDAY_0830)
    _, vm = await start(clock)
    session = await vm.create_session("pi")
    await vm.schedule_cron("*/5 * * * *", CronPrompt(prompt="What is here?", session_id=session.session_id))
    await vm.schedule_cron("*/5 * * * *", CronPrompt(prompt="Look around, please."))
    clock.advance(5 * 60)

    async def both_ran() -> bool:
        return all(s.last_run is not None for s in await vm.list_schedules())

    await wait_until(both_ran, timeout=20)
    runs = [s.last_run for s in await vm.list_schedules()]
    assert [run.status for run in runs] == ["ok", "ok"]
    named = await vm.get_session_events(session.session_id)
    assert [u.content.text for u in named if u.session_update == "user_message_chunk"] == ["What is here?"]
    sessions = await vm.list_sessions(include_closed=True)
    assert [s.closed for s in sessions] == [False, True]  # the new one was closed after its turn


async def test_a_schedule_survives_a_restart_on_sqlite_and_skips_what_it_missed(start, tmp_path):
    store = f"sqlite:///{tmp_path / 'cron.db'}"
    clock = FakeClock(MONDAY_0830)
    registry, vm = await start(clock, store)
    schedule = await vm.schedule_cron("0 9 * * *", CronExec(command="echo ran >> /home/user/log"))
    await registry.stop()

    later = FakeClock(MONDAY_0830 + 3 * DAY + HOUR)  # Thursday 09:30: three runs missed
    _, vm = await start(later, store)
    await wait_until(lambda: _last_status(vm, "skipped"))
    [after] = await vm.list_schedules()
    assert after.schedule_id == schedule.schedule_id
    assert after.runs == 0
    assert after.last_run.planned_at == schedule.next_run  # the first missed run's timer fired, once
    assert after.next_run == MONDAY_0830 + HOUR / 2 + 4 * DAY  # Friday 09:00
    assert await log_lines(vm) == []

    later.advance(DAY - HOUR / 2)  # Friday 09:00: on time again, so it runs
    await wait_until(lambda: _ran(vm, 1))
    assert await log_lines(vm) == ["ran"]


async def test_with_run_once_a_restart_runs_what_it_missed_once(start, tmp_path):
    store = f"sqlite:///{tmp_path / 'cron.db'}"
    registry, vm = await start(FakeClock(MONDAY_0830), store)
    await vm.schedule_cron("0 9 * * *", CronExec(command="echo ran >> /home/user/log"), missed="run_once")
    await registry.stop()

    later = FakeClock(MONDAY_0830 + 3 * DAY + HOUR)
    _, vm = await start(later, store)
    await wait_until(lambda: _ran(vm, 1))
    assert await log_lines(vm) == ["ran"]  # once for the three it missed
    [after] = await vm.list_schedules()
    assert after.next_run == MONDAY_0830 + HOUR / 2 + 4 * DAY


async def _last_status(vm, status: str) -> bool:
    [schedule] = await vm.list_schedules()
    return schedule.last_run is not None and schedule.last_run.status == status


async def test_a_cancelled_schedule_never_fires_even_from_a_timer_already_due(start):
    clock = FakeClock(MONDAY_0830)
    _, vm = await start(clock)
    schedule = await vm.schedule_cron("0 9 * * *", CronExec(command="echo ran >> /home/user/log"))
    await vm.cancel_schedule(schedule.schedule_id)
    assert await vm.list_schedules() == []
    stale = await vm.run_schedule(schedule.schedule_id, planned_at=schedule.next_run, token="guessed")
    assert stale is None
    clock.advance(DAY)
    marker = await vm.schedule_cron("* * * * *", CronExec(command="echo marker >> /home/user/log"))
    clock.advance(60)
    await wait_until(lambda: _ran(vm, 1))
    assert await log_lines(vm) == ["marker"]
    await vm.cancel_schedule(marker.schedule_id)
    with pytest.raises(ScheduleNotFound, match="no cron schedule 'cron-nope'"):
        await vm.cancel_schedule("cron-nope")


async def test_a_failing_action_is_recorded_and_the_schedule_goes_on(start):
    clock = FakeClock(MONDAY_0830)
    _, vm = await start(clock)
    schedule = await vm.schedule_cron("0 9 * * *", CronExec(command="exit 3"))
    run = await vm.run_schedule(schedule.schedule_id)  # by hand: now, the plan unchanged
    assert (run.status, run.detail) == ("failed", "exit code 3")
    [after] = await vm.list_schedules()
    assert after.next_run == schedule.next_run
    assert after.last_run == run


async def test_bad_input_is_refused_with_a_clear_error(start):
    _, vm = await start(FakeClock(MONDAY_0830))
    exec_true = CronExec(command="true")
    with pytest.raises(ValidationError, match="bad cron expression '61 \\* \\* \\* \\*': Bad minute"):
        await vm.schedule_cron("61 * * * *", exec_true)
    with pytest.raises(ValidationError, match="bad cron expression 'every day'"):
        await vm.schedule_cron("every day", exec_true)
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        await vm.schedule_cron("0 9 * * *", exec_true, timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="missed must be 'skip' or 'run_once'"):
        await vm.schedule_cron("0 9 * * *", exec_true, missed="catch_up")
    with pytest.raises(ValidationError, match="the cron action is invalid"):
        await vm.schedule_cron("0 9 * * *", {"type": "exec"})
    with pytest.raises(SessionNotFound):
        await vm.schedule_cron("0 9 * * *", CronPrompt(prompt="hi", session_id="s-missing"))
    with pytest.raises(ScheduleNotFound):
        await vm.run_schedule("cron-missing")
    assert await vm.list_schedules() == []


def test_next_run_is_never_before_now():
    from zoneinfo import ZoneInfo

    from agentos_nb.vm.cron import next_run

    start = datetime(2030, 3, 31, 0, 30, tzinfo=UTC).timestamp()  # the night Paris moves to summer time
    paris = ZoneInfo("Europe/Paris")
    runs = [start]
    for _ in range(5):
        runs.append(next_run("30 2 * * *", paris, runs[-1]))
    assert all(b > a for a, b in itertools.pairwise(runs))
    assert all(b - a <= timedelta(days=1, hours=1).total_seconds() for a, b in itertools.pairwise(runs[1:]))


def _cron_html(widget) -> str:
    if "agentos-cron" in getattr(widget, "_dom_classes", ()):
        return widget.value
    return "".join(_cron_html(child) for child in getattr(widget, "children", ()))


async def test_the_dashboard_lists_schedules_with_their_next_run_escaped(start):
    from agentos_nb.jupyter.dashboard.dashboard import Dashboard

    clock = FakeClock(MONDAY_0830)
    registry, vm = await start(clock)
    schedule = await vm.schedule_cron("0 9 * * *", CronExec(command="echo '<script>x</script>' > f"))
    dashboard = Dashboard(registry, tabs=["Cron"], interval=3600.0)
    try:

        async def listed() -> bool:
            await dashboard.refresh()
            return schedule.schedule_id in _cron_html(dashboard.widget)

        await wait_until(listed)
        shown = _cron_html(dashboard.widget)
        assert "0 9 * * *" in shown
        assert "not yet" in shown
        assert "<script>" not in shown
        assert "&lt;script&gt;" in shown
        assert datetime.fromtimestamp(schedule.next_run).strftime("%a %d %b %H:%M") in shown
    finally:
        dashboard.close()


async def test_schedules_work_the_same_through_the_http_face(tmp_path, monkeypatch):
    from agentos_nb import create_client

    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTOS_NB_TOKEN", raising=False)
    registry = setup(use={"vm": agent_os(software=[common])}, name=f"cron-http-{next(_names)}")
    info = await registry.serve(port=0)
    try:
        async with create_client(info.url) as client:
            vm = client.vm.get_or_create(["remote"])
            schedule = await vm.schedule_cron("*/5 * * * *", CronExec(command="true"), missed="run_once")
            assert isinstance(schedule, CronSchedule)
            assert schedule.missed == "run_once"
            assert await vm.list_schedules() == [schedule]
            run = await vm.run_schedule(schedule.schedule_id)
            assert (run.status, run.detail) == ("ok", "exit code 0")
            with pytest.raises(ValidationError, match="unknown time zone"):
                await vm.schedule_cron("0 9 * * *", CronExec(command="true"), timezone="Nowhere/Land")
            await vm.cancel_schedule(schedule.schedule_id)
            with pytest.raises(ScheduleNotFound):
                await vm.cancel_schedule(schedule.schedule_id)
    finally:
        await registry.stop(grace=0)
