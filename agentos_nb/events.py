"""Typed events and the one bus that carries them.

Widgets, logs, tests and the HTTP event stream all read this bus, so it must never slow the
runtime: publishing is synchronous and O(subscribers), each subscriber has a bounded ring
buffer, and a subscriber that falls behind loses its oldest events and is told how many.
Producers check `bus.active` before building an event, so an unobserved runtime pays nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ActorRef(BaseModel):
    """Which actor an event is about."""

    model_config = ConfigDict(frozen=True)

    name: str
    key: tuple[str, ...]
    actor_id: str


class Event(BaseModel):
    """Base of every event: a `type` tag and a wall-clock timestamp."""

    model_config = ConfigDict(frozen=True)

    type: str
    at: float = Field(default_factory=time.time)


class ActorEvent(Event):
    """An event about one actor: `actor` names it."""

    actor: ActorRef


class ActorCreated(ActorEvent):
    """An actor was created and its `on_create` ran; `actor.woke` follows."""

    type: Literal["actor.created"] = "actor.created"


class ActorWoke(ActorEvent):
    """An actor woke: loaded from the store, or just created."""

    type: Literal["actor.woke"] = "actor.woke"


class ActorSlept(ActorEvent):
    """An actor went to sleep: its state is saved, its messages wait in the store."""

    type: Literal["actor.slept"] = "actor.slept"


class ActorDestroyed(ActorEvent):
    """An actor was destroyed, with its state, queues and schedules."""

    type: Literal["actor.destroyed"] = "actor.destroyed"


CrashPhase = Literal["run", "on_create", "on_wake", "on_sleep", "on_destroy", "schedule", "save_state"]


class ActorCrashed(ActorEvent):
    """User code failed outside a request: the run loop, a lifecycle hook or a schedule."""

    type: Literal["actor.crashed"] = "actor.crashed"
    phase: CrashPhase
    error: str
    error_type: str
    restart_in: float | None = None


class ActorBroadcast(ActorEvent):
    """What an actor published with `c.broadcast(name, *args)`."""

    type: Literal["actor.broadcast"] = "actor.broadcast"
    name: str
    args: tuple[Any, ...] = ()


class MessageEnqueued(ActorEvent):
    """A message was stored on a queue; `size` is its body's length in bytes, as JSON."""

    type: Literal["message.enqueued"] = "message.enqueued"
    queue: str
    message_id: int
    size: int


class MessageRejected(ActorEvent):
    """A send the queue refused, nothing stored: `code` is the error's (`queue.full`, ...)."""

    type: Literal["message.rejected"] = "message.rejected"
    queue: str
    code: str
    reason: str


class MessageReceived(ActorEvent):
    """A consumer took a message; `attempt` counts its deliveries, from 1."""

    type: Literal["message.received"] = "message.received"
    queue: str
    message_id: int
    attempt: int


class MessageCompleted(ActorEvent):
    """A message was acknowledged; `response` is a completable one's answer."""

    type: Literal["message.completed"] = "message.completed"
    queue: str
    message_id: int
    response: Any = None


class MessageRedelivered(ActorEvent):
    """A message went back to its queue unacknowledged, to be delivered again."""

    type: Literal["message.redelivered"] = "message.redelivered"
    queue: str
    message_id: int
    attempt: int


class MessageDeadLettered(ActorEvent):
    """A message failed its last attempt and left its queue for the dead letters."""

    type: Literal["message.dead_lettered"] = "message.dead_lettered"
    queue: str
    message_id: int
    attempts: int
    error: str


class MessageReplayed(ActorEvent):
    """A dead letter went back to the tail of its queue (`replay`)."""

    type: Literal["message.replayed"] = "message.replayed"
    queue: str
    message_id: int


class ToolCallRef(BaseModel):
    """The host-tool call under way: who called which tool."""

    model_config = ConfigDict(frozen=True)

    caller: ActorRef
    call_id: int
    toolkit: str
    tool: str


current_tool_call: ContextVar[ToolCallRef | None] = ContextVar("agentos_current_tool_call", default=None)
"""Set while a host tool runs, so that the actions it calls say whose tool call made them."""


current_observer: ContextVar[str | None] = ContextVar("agentos_current_observer", default=None)
"""Set by a viewer (the dashboard) around the reads it makes to draw itself, so that the
actions they call say so, and an event log can leave them out."""


class ActionStarted(ActorEvent):
    """An action call began; `call_id` pairs it with its `action.finished`."""

    type: Literal["action.started"] = "action.started"
    action: str
    call_id: int
    via: ToolCallRef | None = None
    """The host-tool call that asked for this action, if one did (seed 000: the reviewer's
    actions come from the writer's `review.submit`)."""
    observer: str | None = None
    """The viewer that called it to show it (`dashboard`), not to do work."""


class ActionFinished(ActorEvent):
    """An action call ended after `duration` seconds; `error` says why if it failed."""

    type: Literal["action.finished"] = "action.finished"
    action: str
    call_id: int
    duration: float
    error: str | None = None
    observer: str | None = None
    """As in its `action.started`."""


class ScheduleFired(ActorEvent):
    """A schedule came due and its action is being called."""

    type: Literal["schedule.fired"] = "schedule.fired"
    schedule_id: str
    action: str


class ShellCommandRun(ActorEvent):
    """A VM ran an `exec` command (a session's own shell reports through its updates)."""

    type: Literal["shell.command"] = "shell.command"
    command: str
    cwd: str
    exit_code: int
    duration: float
    timed_out: bool = False


class VmHostCrashed(ActorEvent):
    """The host process of this VM died or was killed; the VM came back from its last snapshot."""

    type: Literal["vm.host_crashed"] = "vm.host_crashed"
    command: str | None
    """The command that was running in this VM when its host died, if one was."""
    exit_code: int | None
    signal: int | None


class ProcessStarted(ActorEvent):
    """A VM started a process (`spawn`); its output follows as `process.output` events."""

    type: Literal["process.started"] = "process.started"
    pid: int
    command: str


class ProcessOutputEvent(ActorEvent):
    """A chunk of a running process's output, as it came (the process keeps its latest output
    too: `process_output`)."""

    type: Literal["process.output"] = "process.output"
    pid: int
    stream: Literal["stdout", "stderr"]
    data: str
    offset: int


class ProcessEnded(ActorEvent):
    """A process ended: `exited` with `exit_code`, `killed` (by `signal`), or `lost` with its VM."""

    type: Literal["process.ended"] = "process.ended"
    pid: int
    command: str
    status: Literal["exited", "killed", "lost"]
    exit_code: int | None
    signal: str | None = None
    error: str | None = None
    duration: float


class ToolCallStarted(ActorEvent):
    """A VM (`actor`, the caller) called a host tool."""

    type: Literal["tool.call_started"] = "tool.call_started"
    call_id: int
    toolkit: str
    tool: str
    input: dict[str, Any]


class ToolCallRejected(ActorEvent):
    """A VM called a host tool it may not use (`host_tool(callers=...)`): nothing ran."""

    type: Literal["tool.call_rejected"] = "tool.call_rejected"
    toolkit: str
    tool: str
    reason: str


class ToolCallFinished(ActorEvent):
    """A host tool call ended after `duration` seconds: with `result` if `ok`, else with
    `error` (a `ToolErrorCode`) and `message`."""

    type: Literal["tool.call_finished"] = "tool.call_finished"
    call_id: int
    toolkit: str
    tool: str
    input: dict[str, Any]
    ok: bool
    result: Any = None
    error: str | None = None
    message: str | None = None
    duration: float


class EventsDropped(Event):
    """Told to a subscriber, in place, when its buffer overflowed and lost `count` events."""

    type: Literal["events.dropped"] = "events.dropped"
    count: int


EventFilter = Callable[[Event], bool]


class Subscription:
    """One reader of the bus: a bounded buffer, read with `await get()` or `async for`."""

    def __init__(self, bus: EventBus, buffer: int, accept: EventFilter | None) -> None:
        if buffer < 1:
            raise ValueError(f"an event buffer holds at least 1 event, not {buffer}")
        self._bus = bus
        self._buffer: deque[Event] = deque(maxlen=buffer)
        self._accept = accept
        self._waiter: asyncio.Future[None] | None = None
        self._unreported_drops = 0
        self.missed = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        """Buffer `event` if the filter wants it; never blocks. A full buffer drops its oldest
        event, counted in `missed` and told to the reader by an `EventsDropped` ahead of the rest."""
        if self._accept is not None:
            try:
                if not self._accept(event):
                    return
            except Exception:  # a filter that cannot judge an event does not want it
                return
        if len(self._buffer) == self._buffer.maxlen:
            self.missed += 1
            self._unreported_drops += 1
        self._buffer.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> list[Event]:
        """Everything buffered now, oldest first, with an `EventsDropped` in front if any were lost."""
        events: list[Event] = []
        if self._unreported_drops:
            events.append(EventsDropped(count=self._unreported_drops))
            self._unreported_drops = 0
        events.extend(self._buffer)
        self._buffer.clear()
        return events

    async def get(self) -> Event:
        """The next event; raises `StopAsyncIteration` once the subscription is closed and empty."""
        while True:
            if self._unreported_drops:
                count, self._unreported_drops = self._unreported_drops, 0
                return EventsDropped(count=count)
            if self._buffer:
                return self._buffer.popleft()
            if self.closed:
                raise StopAsyncIteration
            # Readers waiting together share one future, so that an event or close() wakes them all.
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait([waiter])  # a cancelled reader must not cancel the others' future
            finally:
                if self._waiter is waiter and waiter.done():
                    self._waiter = None

    def close(self) -> None:
        """Stop receiving: the reader finishes what is buffered, then its `async for` ends."""
        self.closed = True
        self._bus.unsubscribe(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of events to subscribers; publishing never blocks and never raises."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    @property
    def active(self) -> bool:
        """Whether anyone subscribes: check it before building an event nobody would read."""
        return bool(self._subscriptions)

    def publish(self, event: Event) -> None:
        """Offer `event` to every subscription; a slow reader loses its oldest, never stalls this."""
        for subscription in self._subscriptions:
            subscription.offer(event)

    def subscribe(
        self,
        *,
        buffer: int = 1000,
        types: Iterable[str] | None = None,
        accept: EventFilter | None = None,
    ) -> Subscription:
        """Start reading events; `types` keeps only those tags (a prefix ending in "." matches a family)."""
        subscription = Subscription(self, buffer, _combine_filters(types, accept))
        self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop offering events to `subscription` (`subscription.close()` does it too); an
        unknown one is ignored."""
        self._subscriptions = [s for s in self._subscriptions if s is not subscription]

    def close(self) -> None:
        """End every subscription (the runtime is stopping): readers finish what is buffered,
        then their `async for` ends instead of waiting forever."""
        for subscription in self._subscriptions:
            subscription.close()


def _combine_filters(types: Iterable[str] | None, accept: EventFilter | None) -> EventFilter | None:
    if types is None:
        return accept
    types = list(types)
    exact = {t for t in types if not t.endswith(".")}
    prefixes = tuple(t for t in types if t.endswith("."))

    def type_matches(event: Event) -> bool:
        return event.type in exact or (bool(prefixes) and event.type.startswith(prefixes))

    if accept is None:
        return type_matches
    return lambda event: type_matches(event) and accept(event)
