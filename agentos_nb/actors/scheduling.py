"""Scheduled action calls that outlive sleep: stored in the store, fired by the registry.

A schedule leaves the store only once its action has been called, so one cut short by a
registry stop fires again on the next start: at-least-once, like queue messages.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentos_nb.errors import ActorNotFound, RegistryNotRunning, UnknownAction, ValidationError
from agentos_nb.events import ActorRef, ScheduleFired
from agentos_nb.store.protocol import ScheduleRecord

if TYPE_CHECKING:
    from agentos_nb.actors.instance import ActorInstance
    from agentos_nb.actors.registry import Registry


class Clock:
    """The time schedules are planned and fired by. A test puts a fake one in
    `registry.scheduler.clock`, moves it, and calls `registry.scheduler.wake()`."""

    def time(self) -> float:
        """Now, as a Unix timestamp."""
        return time.time()


class Schedule:
    """`c.schedule`: call one of this actor's actions later, even if it sleeps meanwhile."""

    def __init__(self, instance: ActorInstance) -> None:
        self._instance = instance

    def now(self) -> float:
        """The scheduler's time (a Unix timestamp): what `at` and `after` are measured against."""
        return self._instance.registry.scheduler.clock.time()

    async def after(self, delay: float | timedelta, action: str, *args: Any, **kwargs: Any) -> str:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        return await self._add(self.now() + seconds, action, args, kwargs)

    async def at(self, when: datetime | float, action: str, *args: Any, **kwargs: Any) -> str:
        """`when` is an aware or local datetime, or a Unix timestamp."""
        run_at = when.timestamp() if isinstance(when, datetime) else float(when)
        return await self._add(run_at, action, args, kwargs)

    async def cancel(self, schedule_id: str) -> bool:
        """Forget a schedule; False if it already fired or never existed."""
        return await self._instance.registry.scheduler.cancel(schedule_id)

    async def _add(self, run_at: float, action: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        instance = self._instance
        if action not in instance.definition.actions:
            raise UnknownAction(f"actor {instance.ref.name!r} has no action {action!r} to schedule")
        try:
            args_json = json.dumps(list(args)).encode()
            kwargs_json = json.dumps(kwargs).encode()
        except (TypeError, ValueError) as error:
            raise ValidationError(
                f"arguments of a scheduled call must be JSON values, since they are stored: {error}"
            ) from None
        record = ScheduleRecord(
            schedule_id=uuid.uuid4().hex,
            actor_id=instance.ref.actor_id,
            run_at=run_at,
            action=action,
            args=args_json,
            kwargs=kwargs_json,
        )
        await instance.registry.scheduler.add(record)
        return record.schedule_id


class Scheduler:
    """One task per registry that sleeps until the earliest schedule is due, then fires it."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._heap: list[tuple[float, str]] = []
        self._records: dict[str, ScheduleRecord] = {}
        self._firing: set[str] = set()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.clock = Clock()

    def wake(self) -> None:
        """Look at the clock again now: a fake clock moved."""
        self._changed.set()

    async def start(self) -> None:
        for record in await self._registry.store.list_schedules():
            self._track(record)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="agentos-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def add(self, record: ScheduleRecord) -> None:
        await self._registry.store.add_schedule(record)
        self._track(record)

    async def cancel(self, schedule_id: str) -> bool:
        """False if it already fired (or is firing now) or never existed."""
        if schedule_id in self._firing:
            return False
        self._records.pop(schedule_id, None)
        return await self._registry.store.delete_schedule(schedule_id)

    def forget_actor(self, actor_id: str) -> None:
        for schedule_id in [s for s, r in self._records.items() if r.actor_id == actor_id]:
            del self._records[schedule_id]

    def _track(self, record: ScheduleRecord) -> None:
        self._records[record.schedule_id] = record
        heapq.heappush(self._heap, (record.run_at, record.schedule_id))
        self._changed.set()

    async def _loop(self) -> None:
        while True:
            self._changed.clear()
            while self._heap and self._heap[0][1] not in self._records:
                heapq.heappop(self._heap)
            if not self._heap:
                await self._changed.wait()
                continue
            delay = self._heap[0][0] - self.clock.time()
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                except TimeoutError:
                    pass
                continue
            _, schedule_id = heapq.heappop(self._heap)
            self._firing.add(schedule_id)
            self._registry.spawn(self._fire(self._records.pop(schedule_id)))

    async def _fire(self, record: ScheduleRecord) -> None:
        """Call the action, then forget the schedule; a failure is reported, never silent."""
        try:
            ref = await self._call(record)
            if ref is not None and self._registry.phase == "running":  # else cut short: fire again
                await self._forget(ref, record.schedule_id)
        finally:
            self._firing.discard(record.schedule_id)

    async def _call(self, record: ScheduleRecord) -> ActorRef | None:
        """The actor the action was called on; None if it could not be woken."""
        registry = self._registry
        try:
            instance = await registry.awake(record.actor_id)
        except (ActorNotFound, RegistryNotRunning):  # destroyed with its schedules, or stopping
            return None
        except Exception as error:  # no actor to report it on; it stays stored for the next start
            message = f"scheduled {record.action!r} could not wake actor {record.actor_id!r}"
            asyncio.get_running_loop().call_exception_handler({"message": message, "exception": error})
            return None
        if registry.bus.active:
            registry.bus.publish(
                ScheduleFired(actor=instance.ref, schedule_id=record.schedule_id, action=record.action)
            )
        try:
            await registry.invoke(
                record.actor_id, record.action, json.loads(record.args), json.loads(record.kwargs)
            )
        except Exception as error:
            registry.report_crash(instance.ref, "schedule", error)
        return instance.ref

    async def _forget(self, ref: ActorRef, schedule_id: str) -> None:
        try:
            await self._registry.store.delete_schedule(schedule_id)
        except Exception as error:  # it stays stored, and fires again on the next start
            self._registry.report_crash(ref, "schedule", error)
