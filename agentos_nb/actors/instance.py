"""One awake actor: its lifecycle (wake, sleep, destroy), its run loop, and its action calls.

An instance exists only while the actor is awake. Sleeping saves the state, stops every task
the actor owns and drops the instance; a later message or action wakes a fresh one from the
store. Each action runs in its own task so that sleep and registry shutdown can stop it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pydantic_core

from agentos_nb.actors.consumer import QueueConsumer
from agentos_nb.actors.context import ActorContext
from agentos_nb.actors.deadlines import TimeLimit, TimeLimitReached, being_cancelled
from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.actors.mailbox import Mailbox, MailboxClosed
from agentos_nb.actors.message import Message
from agentos_nb.actors.scheduling import Schedule
from agentos_nb.actors.state_saves import StateSaves
from agentos_nb.errors import ActionTimeout, ActorStopped, UnknownAction
from agentos_nb.events import (
    ActionFinished,
    ActionStarted,
    ActorCrashed,
    ActorEvent,
    ActorRef,
    ActorSlept,
    ActorWoke,
    CrashPhase,
    current_observer,
    current_tool_call,
)
from agentos_nb.store.protocol import ActorRecord, MessageRecord

if TYPE_CHECKING:
    from agentos_nb.actors.registry import Registry

Phase = Literal["waking", "awake", "stopping", "stopped"]
T = TypeVar("T")
_call_ids = itertools.count(1)


class ActorInstance:
    def __init__(self, registry: Registry, record: ActorRecord, definition: ActorDefinition) -> None:
        self.registry = registry
        self.definition = definition
        self.ref = ActorRef(name=record.name, key=record.key, actor_id=record.actor_id)
        self.phase: Phase = "waking"
        self.context = ActorContext(self)
        self.saves = StateSaves(lambda: self.state, definition.state_adapter, record.state, record.name)
        self.mailbox = Mailbox(
            ref=self.ref,
            definition=definition,
            plan=registry.queue_plan(record.name),
            store=registry.store,
            bus=registry.bus,
            completions=registry.completions,
            saves=self.saves,
            on_activity=self._touch,
        )
        self.consumer = QueueConsumer(self.mailbox)
        self.schedule = Schedule(self)
        self._state_adapter = definition.state_adapter
        self.state: Any = None
        self.vars: Any = None
        self._stored_input = record.input
        self._loop = asyncio.get_running_loop()
        self._last_active = self._loop.time()
        self._run_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._in_grace: set[asyncio.Future[Any]] = set()
        self._hurried = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._save_timer: asyncio.TimerHandle | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._writes = 0  # requests writing to the queues now (sends, replays)
        self._writes_drained: asyncio.Future[None] | None = None
        self.stopped_future: asyncio.Future[None] = self._loop.create_future()
        if record.state is not None:
            self.state = self._state_adapter.validate_json(record.state)

    # --- waking --------------------------------------------------------------------------------

    async def create(self, input: Any) -> None:
        """First life of an actor: initial state, then `on_create(c, input)`, state saved."""
        self.state = self.definition.initial_state()
        await self._hook("on_create", self.definition.on_create, input)
        await self.save_state()

    async def wake(self) -> None:
        """`vars`, `on_wake`, stored messages, then the run loop in the background. An actor the
        store holds no state of was stored, but a crash cut its creation short before its first
        state was saved: its creation is finished first."""
        if not self.saves.stored:
            stored_input = self._stored_input
            await self.create(None if stored_input is None else pydantic_core.from_json(stored_input))
        self.vars = self.definition.initial_vars(self.context)
        await self._hook("on_wake", self.definition.on_wake)
        await self.mailbox.load()
        self.phase = "awake"
        if self.definition.run is not None:
            self._run_task = self._loop.create_task(
                self._supervise_run(), name=f"agentos-run:{self.ref.name}:{self.ref.actor_id}"
            )
        self._arm_idle_timer(self.definition.options.sleep_timeout)
        self._emit(ActorWoke)

    # --- requests ------------------------------------------------------------------------------

    async def send(self, queue: str, body: Any, *, block: bool, deadline: float | None) -> Message:
        return await self._write(self.mailbox.enqueue(queue, body, block=block, deadline=deadline))

    async def replay(self, message_id: int) -> MessageRecord:
        """Move a dead letter back into its queue, through this awake instance."""
        return await self._write(self.mailbox.replay(message_id))

    async def _write(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a request that writes to this actor's queues; `stop()` waits for these, so a
        message is never stored behind the back of an instance that already went to sleep."""
        if self.phase != "awake":
            work.close()
            raise MailboxClosed
        self._writes += 1
        try:
            return await work
        finally:
            self._writes -= 1
            if self._writes == 0 and self._writes_drained is not None:
                self._writes_drained.set_result(None)
                self._writes_drained = None
            self._last_active = self._loop.time()

    async def call_action(
        self, name: str, args: Any, kwargs: dict[str, Any], *, sink: Callable[[Any], None] | None = None
    ) -> Any:
        action = self.definition.actions.get(name)
        if action is None:
            defined = ", ".join(sorted(self.definition.actions)) or "none"
            raise UnknownAction(f"actor {self.ref.name!r} has no action {name!r} (defined: {defined})")
        if self.phase != "awake":
            raise MailboxClosed
        call_id = next(_call_ids)
        started = time.monotonic()
        observer = current_observer.get()
        self._emit(
            ActionStarted, action=name, call_id=call_id, via=current_tool_call.get(), observer=observer
        )
        task = self._loop.create_task(self._run_action(action, args, kwargs, sink))
        self._tasks.add(task)
        error: BaseException | None = None
        try:
            async with TimeLimit(self.definition.options.action_timeout):
                return await task
        except TimeLimitReached:
            error = ActionTimeout(
                f"action {name!r} of actor {self.ref.name!r} ran past its "
                f"{self.definition.options.action_timeout:g} s timeout",
                action=name,
            )
            raise error from None
        except asyncio.CancelledError:
            if task.cancelled() and not being_cancelled():  # the actor stopped, not our caller
                error = ActorStopped(
                    f"actor {self.ref.name!r} stopped before action {name!r} finished", action=name
                )
                raise error from None
            raise
        except BaseException as raised:
            error = raised
            raise
        finally:
            self._tasks.discard(task)
            self._touch()
            self._emit(
                ActionFinished,
                action=name,
                call_id=call_id,
                duration=time.monotonic() - started,
                error=None if error is None else f"{type(error).__name__}: {error}",
                observer=observer,
            )

    async def _run_action(
        self,
        action: Callable[..., Any],
        args: Any,
        kwargs: dict[str, Any],
        sink: Callable[[Any], None] | None,
    ) -> Any:
        """An action that takes messages consumes them like the run loop: returning
        acknowledges its plain ones, failing gives them back as a failed attempt. A streaming
        action (an async generator) hands each item to `sink`, or returns them all as a list."""
        try:
            if inspect.isasyncgenfunction(action):
                result = await _drain(action(self.context, *args, **kwargs), sink)
            else:
                result = await _call(action, self.context, *args, **kwargs)
        except asyncio.CancelledError:
            await self.consumer.abandon(error=None)
            raise
        except Exception as error:
            await self.consumer.abandon(error=f"action crashed: {type(error).__name__}: {error}")
            raise
        await self.consumer.finish()
        return result

    def keep_awake(self, awaitable: Awaitable[T]) -> asyncio.Future[T]:
        if self.phase not in ("waking", "awake"):
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise ActorStopped(f"actor {self.ref.name!r} is stopping; keep_awake() cannot hold it awake")
        future = asyncio.ensure_future(awaitable)
        self._tasks.add(future)

        def done(_: asyncio.Future[T]) -> None:
            self._tasks.discard(future)
            self._touch()

        future.add_done_callback(done)
        return future

    # --- state ---------------------------------------------------------------------------------

    def state_touched(self) -> None:
        """Something may have changed the state: save it soon, once, whatever else changes."""
        if self._save_timer is None and self.phase == "awake":
            self._save_timer = self._loop.call_later(
                self.definition.options.state_save_interval, self._save_soon
            )

    def _save_soon(self) -> None:
        self._save_timer = None
        self.spawn(self._save_reporting())

    async def _save_reporting(self) -> None:
        """A periodic save that fails is an event: nobody awaits it to see the error. None is
        made while a message is in flight: saving now could store half of its effect, to be
        applied again when it is redelivered after a crash. Settling it carries the state, and
        giving it back arms the periodic save again."""
        if self.mailbox.state.in_flight:
            return
        try:
            await self.save_state()
        except Exception as error:
            self.registry.report_crash(self.ref, "save_state", error)

    def state_json(self) -> bytes | None:
        """The state as it would be saved, for previews; None if it cannot be serialized now."""
        try:
            return self._state_adapter.dump_json(self.state)
        except pydantic_core.PydanticSerializationError:
            return None

    async def save_state(self) -> None:
        """Write the state now if it changed since the store last got it."""
        write = self.saves.pending()
        if write is not None:
            await self.registry.store.save_state(self.ref.actor_id, write.data)
            self.saves.landed(write)

    # --- the run loop --------------------------------------------------------------------------

    async def _supervise_run(self) -> None:
        """Run `run(c)`; if it crashes, give back its messages, say so, and restart with backoff."""
        assert self.definition.run is not None
        options = self.definition.options
        backoff = options.restart_backoff
        while self.phase == "awake":
            progress_before = self.mailbox.state.completed_total
            try:
                await _call(self.definition.run, self.context)
            except asyncio.CancelledError:
                await self.consumer.abandon(error=None)
                raise
            except Exception as error:
                try:
                    await self.consumer.abandon(error=f"run loop crashed: {type(error).__name__}: {error}")
                except Exception as store_error:  # the messages stay leased; a restart counts them
                    self.registry.report_crash(self.ref, "run", store_error)
                if self.mailbox.state.completed_total > progress_before:
                    backoff = options.restart_backoff
                restarts = self.phase == "awake"
                self._emit(
                    ActorCrashed,
                    phase="run",
                    error=str(error),
                    error_type=type(error).__name__,
                    restart_in=backoff if restarts else None,
                )
                if not restarts:
                    return
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.05), options.restart_backoff_max)
            else:
                await self.consumer.finish()
                return

    # --- sleeping ------------------------------------------------------------------------------

    def is_idle(self) -> bool:
        run = self._run_task
        return (
            not self._tasks  # actions and keep_awake work
            and self._writes == 0
            and not self.mailbox.state.in_flight
            and (run is None or run.done() or self.mailbox.state.consumer_waiting)
        )

    def request_stop(self, *, destroy: bool, asked: bool = False) -> None:
        """Start sleeping (or being destroyed) in the background. `asked`: the actor's own
        `c.sleep()`, which, unlike an idle sleep, may leave a backlog to wake for."""
        if self.phase == "awake" and self._stop_task is None:
            self._stop_task = self.spawn(self.registry.retire(self, destroy=destroy, asked=asked))

    async def stop(self, *, grace: float) -> None:
        """Stop every task of this actor: let them finish for `grace` seconds, then cancel."""
        self.phase = "stopping"
        for timer in (self._idle_timer, self._save_timer):
            if timer is not None:
                timer.cancel()
        self._save_timer = None
        self.mailbox.state.close()
        if self._writes:  # sends already past their phase check land before anything stops
            self._writes_drained = self._loop.create_future()
            await self._writes_drained
        current = asyncio.current_task()
        running = {t for t in self._tasks if t is not current and not t.done()}
        if self._run_task is not None and self._run_task is not current:
            running.add(self._run_task)
        if running:
            self._in_grace = running
            _, late = await asyncio.wait(running, timeout=0 if self._hurried else grace)
            self._in_grace = set()
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        await self.consumer.abandon(error=None, every_task=True)

    def cut_short(self) -> None:
        """A hurried stop (a second Ctrl-C): the work `stop()` grants a grace period is cancelled
        now, and a stop that has not reached its grace period yet grants none."""
        self._hurried = True
        for task in self._in_grace:
            task.cancel()

    async def finish_sleep(self) -> None:
        await self._hook_reporting("on_sleep", self.definition.on_sleep)
        await self.save_state()
        self._emit(ActorSlept)

    async def finish_destroy(self) -> None:
        await self._hook_reporting("on_destroy", self.definition.on_destroy)

    def mark_stopped(self) -> None:
        self.phase = "stopped"
        if not self.stopped_future.done():
            self.stopped_future.set_result(None)

    def _arm_idle_timer(self, delay: float) -> None:
        self._idle_timer = self._loop.call_later(max(delay, 0.0), self._check_idle)

    def _check_idle(self) -> None:
        if self.phase != "awake":
            return
        timeout = self.definition.options.sleep_timeout
        idle_for = self._loop.time() - self._last_active
        if self.is_idle() and idle_for >= timeout:
            self.request_stop(destroy=False)
        else:
            self._arm_idle_timer(timeout - idle_for if self.is_idle() else timeout)

    def _touch(self) -> None:
        self._last_active = self._loop.time()
        self.state_touched()  # work done (a message acknowledged, a keep_awake task) may have changed state

    # --- helpers -------------------------------------------------------------------------------

    def spawn(self, awaitable: Awaitable[T]) -> asyncio.Task[T]:
        return self.registry.spawn(awaitable)

    async def _hook(self, phase: CrashPhase, hook: Callable[..., Any] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            await _call(hook, self.context, *args)
        except Exception as error:
            self.registry.report_crash(self.ref, phase, error)
            raise

    async def _hook_reporting(self, phase: CrashPhase, hook: Callable[..., Any] | None) -> None:
        """Run a shutdown hook; a failure is an event, never a reason to keep running."""
        try:
            await self._hook(phase, hook)
        except Exception:
            return

    def _emit(self, kind: type[ActorEvent], **fields: Any) -> None:
        """Publish an event about this actor; nothing is built when nobody listens."""
        bus = self.registry.bus
        if bus.active:
            bus.publish(kind(actor=self.ref, **fields))


async def _drain(items: AsyncIterator[Any], sink: Callable[[Any], None] | None) -> list[Any] | None:
    if sink is None:
        return [item async for item in items]
    async for item in items:
        sink(item)
    return None


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call user code that may be sync or async."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result
