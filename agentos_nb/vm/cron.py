"""Durable cron on a VM: `schedule_cron("0 9 * * MON-FRI", action, timezone=..., missed=...)`.

Rivet's cron lives in memory and is lost on restart; here each schedule is kept in the store
(the VM's "cron" blob) and its next run is one of the actor runtime's durable timers
(`c.schedule.at`), so it wakes a sleeping VM and fires after a restart. The expression is read
by cronsim (5 fields, or 6 with seconds first; Debian cron's rules on daylight-saving changes)
in the schedule's time zone.

When a run comes due more than `LATE_AFTER` seconds late (the kernel was down, say), the
schedule's `missed` policy decides: `skip` it, or `run_once` for all the runs missed. Either
way the next run is the first one after now: missed runs never pile up.

Each timer carries a token that the stored schedule must still hold, and the schedule moves to
its next run (a new timer, a new token) before the action runs. So a timer of a cancelled
schedule, or one fired again after a crash cut its run short, does nothing: a run happens at
most once; one cut short by a crash is not repeated.
"""

from __future__ import annotations

import asyncio
import secrets
import zoneinfo
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic
from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.errors import ScheduleNotFound, ValidationError

if TYPE_CHECKING:
    from agentos_nb.actors.context import ActorContext
    from agentos_nb.vm.machine import AgentVm

CRON_BLOB = "cron"
LATE_AFTER = 60.0
"""Seconds past its time after which a run counts as missed, and `missed` decides."""
MAX_SCHEDULES = 100
"""Per VM: each is a timer in the store."""

MissedRuns = Literal["skip", "run_once"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CronPrompt(_Model):
    """A cron action: send `prompt` to the session `session_id`, or, without one, to a new
    session of `agent_type` (on `model`), closed after its turn."""

    type: Literal["prompt"] = "prompt"
    prompt: str = Field(min_length=1)
    session_id: str | None = None
    agent_type: str = "pi"
    model: str | None = None


class CronExec(_Model):
    """A cron action: run `command` in the VM, as `exec` does."""

    type: Literal["exec"] = "exec"
    command: str = Field(min_length=1)
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float | None = Field(None, gt=0)


CronAction = Annotated[CronPrompt | CronExec, Field(discriminator="type")]
"""What a cron schedule does when it fires, told apart by `type` (`prompt` or `exec`)."""

_ACTION = pydantic.TypeAdapter(CronAction)


class CronRun(_Model):
    """How one run of a schedule went."""

    planned_at: float
    """When it was due (a Unix timestamp)."""
    at: float
    """When it started, or was skipped."""
    status: Literal["ok", "failed", "skipped"]
    detail: str = ""
    """The command's exit code, the turn's stop reason, what failed, or why it was skipped."""


class CronSchedule(_Model):
    """A cron schedule of a VM: when it runs, what it does, and how its last run went."""

    schedule_id: str
    expression: str
    timezone: str
    action: CronAction
    missed: MissedRuns
    next_run: float
    """When it runs next (a Unix timestamp)."""
    created_at: float
    runs: int = 0
    """Runs started (skipped ones not counted)."""
    last_run: CronRun | None = None


class _Entry(_Model):
    schedule: CronSchedule
    timer_id: str
    token: str


_ENTRIES = pydantic.TypeAdapter(list[_Entry])


def next_run(expression: str, zone: zoneinfo.ZoneInfo, after: float) -> float:
    """The first time `expression` matches after `after`, in `zone`."""
    try:
        return next(CronSim(expression, datetime.fromtimestamp(after, zone))).timestamp()
    except StopIteration:
        raise ValidationError(f"cron expression {expression!r} never matches") from None


def checked_expression(expression: Any) -> str:
    """The expression, if cronsim reads it; else a `ValidationError` naming the bad field."""
    if not isinstance(expression, str):
        raise ValidationError(f"a cron expression must be a str, not {type(expression).__name__}")
    try:
        CronSim(expression, datetime.now(zoneinfo.ZoneInfo("UTC")))
    except CronSimError as error:
        raise ValidationError(
            f"bad cron expression {expression!r}: {error} (5 fields: minute hour day month weekday, "
            "or 6 with seconds first)"
        ) from None
    return expression


def checked_zone(name: Any) -> zoneinfo.ZoneInfo:
    """The IANA time zone of that name, or a `ValidationError`."""
    if not isinstance(name, str):
        raise ValidationError(f"timezone must be a str such as 'Europe/Paris', not {type(name).__name__}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Paris'"
        ) from None


class CronTable:
    """The cron schedules of one awake VM, loaded from the store at first use."""

    def __init__(self, c: ActorContext, vm: AgentVm) -> None:
        self._c = c
        self._vm = vm
        self._entries: dict[str, _Entry] | None = None
        self._lock = asyncio.Lock()
        """Held while the table changes and is saved, never while an action runs."""

    async def add(self, expression: Any, action: Any, *, timezone: Any, missed: Any) -> CronSchedule:
        """Check everything, then keep the schedule and plan its first run."""
        expression = checked_expression(expression)
        zone = checked_zone(timezone)
        if missed not in ("skip", "run_once"):
            raise ValidationError(f"missed must be 'skip' or 'run_once', not {missed!r}")
        try:
            chosen = _ACTION.validate_python(action)
        except pydantic.ValidationError as error:
            raise ValidationError.from_pydantic("the cron action", error) from None
        if isinstance(chosen, CronPrompt) and chosen.session_id is not None:
            self._vm.sessions.get(chosen.session_id)  # SessionNotFound now rather than at every run
        now = self._c.schedule.now()
        async with self._lock:
            entries = await self._loaded()
            if len(entries) >= MAX_SCHEDULES:
                raise ValidationError(f"this VM has {MAX_SCHEDULES} cron schedules already; cancel one first")
            schedule = CronSchedule(
                schedule_id=f"cron-{secrets.token_hex(6)}",
                expression=expression,
                timezone=zone.key,
                action=chosen,
                missed=missed,
                next_run=next_run(expression, zone, now),
                created_at=now,
            )
            entry = await self._planned(schedule)
            entries[schedule.schedule_id] = entry
            await self._save()
        return schedule

    async def list(self) -> list[CronSchedule]:
        """The next to run first."""
        entries = await self._loaded()
        return sorted(
            (entry.schedule for entry in entries.values()), key=lambda s: (s.next_run, s.schedule_id)
        )

    async def cancel(self, schedule_id: str) -> None:
        """Forget the schedule, then cancel its timer."""
        async with self._lock:
            entries = await self._loaded()
            entry = entries.pop(schedule_id, None) if isinstance(schedule_id, str) else None
            if entry is None:
                raise ScheduleNotFound(f"this VM has no cron schedule {schedule_id!r}")
            await self._save()
        await self._c.schedule.cancel(entry.timer_id)  # if it fires meanwhile, its token is gone

    async def run(self, schedule_id: str, planned_at: float | None, token: str | None) -> CronRun | None:
        """Run the schedule's action: now (no `token`), or as its timer comes due. A timer whose
        token the schedule no longer holds (cancelled, or replaced) does nothing (None)."""
        async with self._lock:
            entries = await self._loaded()
            entry = entries.get(schedule_id)
            if entry is None:
                if token is not None:
                    return None
                raise ScheduleNotFound(f"this VM has no cron schedule {schedule_id!r}")
            now = self._c.schedule.now()
            schedule = entry.schedule
            planned = now if planned_at is None else planned_at
            skipped = None
            if token is not None:
                if token != entry.token:
                    return None
                if now - planned > LATE_AFTER and schedule.missed == "skip":
                    skipped = CronRun(
                        planned_at=planned,
                        at=now,
                        status="skipped",
                        detail=f"{now - planned:.0f} s late (missed: skip)",
                    )
                zone = zoneinfo.ZoneInfo(schedule.timezone)
                following = next_run(schedule.expression, zone, max(now, planned))
                schedule = schedule.model_copy(update={"next_run": following, "last_run": skipped})
                entry = await self._planned(schedule)
            if skipped is None:
                schedule = schedule.model_copy(update={"runs": schedule.runs + 1})
            entries[schedule_id] = entry.model_copy(update={"schedule": schedule})
            await self._save()
        if skipped is not None:
            return skipped
        outcome = await self._perform(schedule.action, planned, now)
        async with self._lock:
            entries = await self._loaded()
            current = entries.get(schedule_id)
            if current is not None:
                updated = current.schedule.model_copy(update={"last_run": outcome})
                entries[schedule_id] = current.model_copy(update={"schedule": updated})
                await self._save()
        return outcome

    # --- inside ----------------------------------------------------------------------------

    async def _planned(self, schedule: CronSchedule) -> _Entry:
        """A new timer for the schedule's next run, with a token of its own."""
        token = secrets.token_hex(8)
        timer_id = await self._c.schedule.at(
            schedule.next_run, "run_schedule", schedule.schedule_id, planned_at=schedule.next_run, token=token
        )
        return _Entry(schedule=schedule, timer_id=timer_id, token=token)

    async def _perform(self, action: CronPrompt | CronExec, planned: float, started: float) -> CronRun:
        try:
            if isinstance(action, CronExec):
                result = await self._vm.exec(
                    action.command, env=action.env, cwd=action.cwd, timeout=action.timeout
                )
                status: Literal["ok", "failed"] = "ok" if result.exit_code == 0 else "failed"
                detail = f"exit code {result.exit_code}"
            else:
                sessions = self._vm.sessions
                session_id = action.session_id
                if session_id is None:
                    created = await sessions.create(
                        action.agent_type,
                        model=action.model,
                        env=None,
                        cwd=None,
                        additional_instructions=None,
                    )
                    session_id = created.session_id
                try:
                    prompted = await sessions.prompt(session_id, action.prompt)
                finally:
                    if action.session_id is None:
                        await sessions.close(session_id)
                status = "ok" if prompted.stop_reason == "end_turn" else "failed"
                detail = f"session {session_id}: {prompted.stop_reason}"
                if prompted.error:
                    detail += f" ({prompted.error})"
        except Exception as error:  # kept as the run's outcome, for list_schedules to show
            status, detail = "failed", f"{type(error).__name__}: {error}"
        return CronRun(planned_at=planned, at=started, status=status, detail=detail)

    async def _loaded(self) -> dict[str, _Entry]:
        if self._entries is None:
            saved = await self._c.load_blob(CRON_BLOB)
            entries = _ENTRIES.validate_json(saved) if saved else []
            if self._entries is None:
                self._entries = {entry.schedule.schedule_id: entry for entry in entries}
        return self._entries

    async def _save(self) -> None:
        entries = list((self._entries or {}).values())
        await self._c.save_blob(CRON_BLOB, _ENTRIES.dump_json(entries))


def saved_schedules(saved: bytes) -> list[CronSchedule]:
    """The schedules a VM saved (its "cron" blob), for views that read the store."""
    return [entry.schedule for entry in _ENTRIES.validate_json(saved)]
