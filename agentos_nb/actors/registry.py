"""The runtime registry: where actors are found, woken, put to sleep and stopped.

A registry runs on the event loop it was started on. In a notebook that is the kernel's loop,
so `registry.start()` returns at once and actors work in the background between cells.
Starting a registry stops any running registry of the same name on the same loop first, so
re-running a setup cell never leaves two runtimes working (one left on a closed loop is dropped).

The runtime knows nothing of HTTP or widgets: what serves it from outside is attached as a
`Face` (`actors/faces.py`), which stopping drains first and closes last. The registry that
`setup(...)` returns, with `start()` serving in a script, `serve()` and `dashboard()`, is this
one with its faces composed on top (`agentos_nb/app.py`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Self, TypeVar

import pydantic
from pydantic_core import to_json

from agentos_nb.actors.completions import Completions
from agentos_nb.actors.deadlines import deadline_after
from agentos_nb.actors.definition import ActorDefinition, QueueSpec
from agentos_nb.actors.faces import Face
from agentos_nb.actors.handles import Client, DeadLetter, SendResult
from agentos_nb.actors.instance import ActorInstance
from agentos_nb.actors.mailbox import MailboxClosed
from agentos_nb.actors.overview import ActorView, overview
from agentos_nb.actors.queue_plan import QueuePlan
from agentos_nb.actors.scheduling import Scheduler
from agentos_nb.errors import (
    ActorAlreadyExists,
    ActorDestroyed,
    ActorNotFound,
    AgentOSError,
    MessageNotFound,
    RegistryNotRunning,
    UnknownQueue,
    ValidationError,
)
from agentos_nb.events import ActorCrashed, ActorCreated, ActorRef, CrashPhase, EventBus, MessageReplayed
from agentos_nb.events import ActorDestroyed as ActorDestroyedEvent
from agentos_nb.store import Store
from agentos_nb.store.protocol import ActorRecord, MessageRecord

T = TypeVar("T")
Phase = Literal["new", "starting", "running", "stopping", "stopped"]

# The registry running under each name in this process: re-running a cell replaces, never doubles.
_running: dict[str, Registry] = {}
# Grace given to the work of a registry that a new start of the same name replaces.
REPLACED_GRACE = 1.0


class Registry:
    """The runtime: the actor definitions, their store, their event bus and the actors awake,
    on one event loop. `setup(...)` returns it with its faces composed on (`agentos_nb.app`)."""

    def __init__(self, definitions: Mapping[str, ActorDefinition], store: Store, name: str) -> None:
        self.name = name
        self.definitions: dict[str, ActorDefinition] = dict(definitions)
        self.store = store
        self.bus = EventBus()
        self.scheduler = Scheduler(self)
        self.phase: Phase = "new"
        self._client = Client(self)
        self._instances: dict[str, ActorInstance] = {}
        self._queue_plans: dict[str, QueuePlan] = {}
        self._wakes: dict[str, asyncio.Task[ActorInstance]] = {}
        self._ids: dict[tuple[str, tuple[str, ...]], str] = {}
        self.completions = Completions()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._create_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Task[None] | None = None
        self._hurried = False
        self._faces: list[Face] = []

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the runtime on the running event loop (a notebook cell's) and return at once;
        `await registry.ready()` waits until it has started."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RegistryNotRunning(
                "the runtime starts on a running event loop (a notebook cell has one); in a script, "
                "start it inside `async def main()` run by asyncio.run, or use `async with registry:`"
            ) from None
        if self.phase in ("starting", "running"):
            return self
        if self.phase != "new":
            raise RegistryNotRunning(
                f"registry {self.name!r} was stopped and cannot start again; call setup(...) anew"
            )
        previous = _running.pop(self.name, None)
        _running[self.name] = self  # last in the dict: the registry started most recently
        self._loop = loop
        self.phase = "starting"
        self._startup = loop.create_task(self._start(previous), name=f"agentos-start:{self.name}")
        return self

    def attach(self, face: Face) -> None:
        """Have `face` serve this registry: stopping drains it before the actors stop and
        closes it after them."""
        if face not in self._faces:
            self._faces.append(face)

    async def _start(self, previous: Registry | None) -> None:
        try:
            # One left on another loop (an earlier asyncio.run, pytest's loop per test) cannot be
            # stopped from this one: its tasks went with its loop, so it is just dropped.
            if previous is not None and previous._loop is self._loop:
                await previous.stop(grace=REPLACED_GRACE)
            await self.store.open()
            await self.scheduler.start()
        except BaseException:
            self.phase = "stopped"
            if _running.get(self.name) is self:
                del _running[self.name]
            raise
        self.phase = "running"
        for actor_id in await self.store.actors_with_pending():
            self.spawn(self._wake_in_background(actor_id))

    async def ready(self) -> Self:
        """Wait until `start()` has finished starting; raises what made it fail."""
        await self._ensure_running()
        return self

    async def stop(self, *, grace: float | None = None) -> None:
        """Drain and stop: actors sleep (their work gets `grace` seconds, default each actor's
        `sleep_grace_period`), waiters are released, and every task is gone when this returns.
        `stop(grace=0)` while a stop is under way cuts it short: the work it waits for is cancelled.

        The shutdown runs in its own task: interrupting the caller (a notebook's Stop button)
        does not leave a registry marked stopped while its actors still run, and a later
        stop() waits for the same shutdown."""
        if self.phase == "new":
            self.phase = "stopped"
            return
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(
                self._shut_down(grace), name=f"agentos-stop:{self.name}"
            )
        elif grace == 0:
            self._cut_short()
        await asyncio.shield(self._shutdown)

    def _cut_short(self) -> None:
        """`stop(grace=0)` while a stop is under way: the work it was waiting for is cancelled."""
        self._hurried = True
        for face in list(self._faces):
            face.cut_short()
        for instance in list(self._instances.values()):
            instance.cut_short()

    async def _shut_down(self, grace: float | None) -> None:
        if _running.get(self.name) is self:
            del _running[self.name]
        if self._startup is not None and not self._startup.done():
            await asyncio.wait([self._startup])
        # Requests under way finish before the actors stop.
        await asyncio.gather(*(face.drain(grace) for face in list(self._faces)))
        self.phase = "stopping"
        try:
            await self.scheduler.stop()
            while self._wakes:  # creations and wakes under way end up in _instances
                await asyncio.wait(list(self._wakes.values()))
            await asyncio.gather(
                *(
                    self.retire(i, destroy=False, grace=0 if self._hurried else grace)
                    for i in list(self._instances.values())
                ),
                return_exceptions=True,
            )
            self.completions.fail_all(RegistryNotRunning(f"registry {self.name!r} stopped"))
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.store.close()
        finally:
            self.phase = "stopped"
            self.bus.close()  # readers' `async for event in subscription` ends
            while self._faces:  # one attached meanwhile is closed too
                await self._faces.pop(0).close()

    async def __aenter__(self) -> Self:
        self.start()
        return await self.ready()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def queue_plan(self, name: str) -> QueuePlan:
        """The queue set-up shared by every instance of actor type `name`, made on first use."""
        plan = self._queue_plans.get(name)
        if plan is None:
            plan = self._queue_plans[name] = QueuePlan(self.definitions[name])
        return plan

    def instance(self, actor_id: str) -> ActorInstance | None:
        """The live instance of an actor, if it is awake (or waking, or going to sleep)."""
        return self._instances.get(actor_id)

    async def overview(self) -> list[ActorView]:
        """Every actor with its status, a state preview and its queues' depths, right now."""
        return await overview(self)

    def client(self) -> Client:
        """The in-process client: `registry.client().writer.get_or_create(["my-project"])`."""
        return self._client

    def spawn(self, awaitable: Awaitable[T]) -> asyncio.Task[T]:
        """Run background work that the registry keeps referenced and cancels on stop."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _ensure_running(self) -> None:
        if self.phase == "running":
            return
        if self.phase == "starting" and self._startup is not None:
            await asyncio.shield(self._startup)
            return
        if self.phase == "new":
            raise RegistryNotRunning(f"registry {self.name!r} is not started; call registry.start()")
        raise RegistryNotRunning(f"registry {self.name!r} has stopped")

    # --- finding and waking actors -------------------------------------------------------------

    async def resolve(self, name: str, key: tuple[str, ...], *, create: bool, input: Any) -> str:
        """The id of actor (name, key), creating it if asked to and it does not exist."""
        await self._ensure_running()
        cached = self._ids.get((name, key))
        if cached is not None:
            return cached
        record = await self.store.find_actor(name, key)
        if record is None and create:
            return await self._create(name, key, input, exist_ok=True)
        if record is None:
            raise ActorNotFound(f"no actor {name!r} with key {list(key)!r}")
        self._ids[(name, key)] = record.actor_id
        return record.actor_id

    async def create(self, name: str, key: tuple[str, ...], *, input: Any) -> str:
        """Create actor (name, key), run its `on_create` with `input` and wake it; returns its
        id. Raises `ActorAlreadyExists` if the key is taken."""
        return await self._create(name, key, input, exist_ok=False)

    async def key_of(self, name: str, actor_id: str) -> tuple[str, ...]:
        """The key of an actor known by id; raises `ActorNotFound` unless it is one of type `name`."""
        await self._ensure_running()
        record = await self.store.get_actor(actor_id)
        if record is None or record.name != name:
            raise ActorNotFound(f"no actor {name!r} with id {actor_id!r}")
        return record.key

    async def _create(self, name: str, key: tuple[str, ...], input: Any, *, exist_ok: bool) -> str:
        """Store a new actor, then bring it to life in a task that callers waking it meanwhile
        wait on (so it gets one instance) and that stop() waits for (so it does not outlive it)."""
        try:
            input_json = to_json(input)
        except Exception as error:
            raise ValidationError(f"the input of a new actor must be a JSON value: {error}") from None
        async with self._create_lock:
            await self._ensure_running()  # stop() may have begun while we waited for the lock
            existing = await self.store.find_actor(name, key)
            if existing is not None and not exist_ok:
                raise ActorAlreadyExists(f"actor {name!r} with key {list(key)!r} already exists")
            if existing is not None:
                self._ids[(name, key)] = existing.actor_id
                return existing.actor_id
            record = ActorRecord(uuid.uuid4().hex, name, key, time.time(), input=input_json)
            await self.store.insert_actor(record)
            if self.phase != "running":  # stop() began during the insert and will not wait for us
                await self.store.delete_actor(record.actor_id)
                raise RegistryNotRunning(f"registry {self.name!r} stopped while creating {name!r}")
            creating = asyncio.get_running_loop().create_task(self._bring_to_life(record, input))
            self._track_wake(record.actor_id, creating)
        instance = await asyncio.shield(creating)
        return instance.ref.actor_id

    async def _bring_to_life(self, record: ActorRecord, input: Any) -> ActorInstance:
        """`on_create`, then the first wake; if either fails, the actor is gone again."""
        instance = ActorInstance(self, record, self.definitions[record.name])
        created = False
        try:
            await instance.create(input)
            created = True
            if self.bus.active:
                self.bus.publish(ActorCreated(actor=instance.ref))
            await instance.wake()
        except BaseException:
            await instance.stop(grace=0)
            await self.store.delete_actor(record.actor_id)
            if self._ids.get((record.name, record.key)) == record.actor_id:
                del self._ids[(record.name, record.key)]  # cached by a caller that found the record
            if created and self.bus.active:
                self.bus.publish(ActorDestroyedEvent(actor=instance.ref))
            raise
        self._instances[record.actor_id] = instance
        self._ids[(record.name, record.key)] = record.actor_id
        return instance

    async def awake(self, actor_id: str) -> ActorInstance:
        """The awake instance of an actor, waking it from the store if it sleeps."""
        instance = self._instances.get(actor_id)
        if instance is not None and instance.phase == "awake":
            return instance
        await self._ensure_running()
        while True:
            instance = self._instances.get(actor_id)
            if instance is not None:
                if instance.phase == "awake":
                    return instance
                await asyncio.shield(instance.stopped_future)
                continue
            wake = self._wakes.get(actor_id)
            if wake is None:
                # The registry may have begun to stop while we waited for the actor to sleep:
                # waking it now would leave an instance that stop() never sees.
                await self._ensure_running()
                wake = asyncio.get_running_loop().create_task(self._wake(actor_id))
                self._track_wake(actor_id, wake)
            return await asyncio.shield(wake)

    def _track_wake(self, actor_id: str, wake: asyncio.Task[ActorInstance]) -> None:
        self._wakes[actor_id] = wake
        wake.add_done_callback(functools.partial(self._wake_done, actor_id))

    def _wake_done(self, actor_id: str, wake: asyncio.Task[ActorInstance]) -> None:
        if self._wakes.get(actor_id) is wake:
            del self._wakes[actor_id]
        if not wake.cancelled():
            # Retrieved here: its callers may all have been cancelled, and a failure was
            # already reported to them or by an actor.crashed event.
            wake.exception()

    async def _wake(self, actor_id: str) -> ActorInstance:
        record = await self.store.get_actor(actor_id)
        if record is None:
            raise ActorNotFound(f"no actor with id {actor_id!r}")
        instance = self._instance_of(record)
        try:
            await instance.wake()
        except BaseException:
            await instance.stop(grace=0)
            raise
        self._instances[actor_id] = instance
        return instance

    def _instance_of(self, record: ActorRecord) -> ActorInstance:
        """A new instance from the store; state that no longer fits the model names the actor."""
        try:
            return ActorInstance(self, record, self.definitions[record.name])
        except pydantic.ValidationError as error:
            failure = ValidationError.from_pydantic(
                f"stored state of actor {record.name!r} with key {list(record.key)!r}", error
            )
            self.report_crash(_ref(record), "on_wake", failure)
            raise failure from None

    async def _wake_in_background(self, actor_id: str) -> None:
        try:
            await self.awake(actor_id)
        except (ActorNotFound, RegistryNotRunning):  # destroyed meanwhile, or stopping
            return
        except AgentOSError:  # a failing hook or stored state, already an actor.crashed event
            return
        except Exception as error:  # the store failed: no actor to attach an event to
            message = f"agentos_nb could not wake actor {actor_id!r}"
            asyncio.get_running_loop().call_exception_handler({"message": message, "exception": error})

    async def retire(
        self,
        instance: ActorInstance,
        *,
        destroy: bool,
        grace: float | None = None,
        asked: bool = False,
    ) -> None:
        """Put an awake actor to sleep, or destroy it. `asked`: the actor asked to sleep
        (`c.sleep()`) rather than falling idle, so messages it left pending wake it again."""
        if instance.phase != "awake":
            await asyncio.shield(instance.stopped_future)
            return
        try:
            await self._retire(instance, destroy=destroy, grace=grace)
        finally:  # whatever failed, the instance is gone: nobody may wait on it forever
            if self._instances.get(instance.ref.actor_id) is instance:
                del self._instances[instance.ref.actor_id]
            instance.mark_stopped()
        if destroy and self.bus.active:
            self.bus.publish(ActorDestroyedEvent(actor=instance.ref))
        if not destroy and self.phase == "running" and _left_work(instance, asked=asked):
            self.spawn(self._wake_in_background(instance.ref.actor_id))

    async def _retire(self, instance: ActorInstance, *, destroy: bool, grace: float | None) -> None:
        options = instance.definition.options
        await instance.stop(grace=options.sleep_grace_period if grace is None else grace)
        if not destroy:
            try:
                await instance.finish_sleep()
            except Exception as error:  # the state could not be saved; the actor sleeps anyway
                self.report_crash(instance.ref, "save_state", error)
            return
        actor_id = instance.ref.actor_id
        await instance.finish_destroy()
        await self.store.delete_actor(actor_id)  # first: a waiter told "gone" may check the store
        gone = ActorDestroyed(f"actor {instance.ref.name!r} was destroyed before it settled this message")
        for message_id in instance.mailbox.state.live_message_ids():
            self.completions.fail(message_id, gone)
        self.scheduler.forget_actor(actor_id)
        self._ids.pop((instance.ref.name, instance.ref.key), None)

    def report_crash(self, ref: ActorRef, phase: CrashPhase, error: BaseException) -> None:
        """Failures nobody awaits become `actor.crashed` events: never silent, never raised."""
        if self.bus.active:
            self.bus.publish(
                ActorCrashed(actor=ref, phase=phase, error=str(error), error_type=type(error).__name__)
            )

    # --- requests ------------------------------------------------------------------------------

    async def send(
        self,
        actor_id: str,
        queue: str,
        body: Any,
        *,
        wait: bool,
        timeout: float | None,
        block: bool,
    ) -> SendResult:
        """Store a message on one of the actor's queues, waking the actor: what `handle.send`
        documents, by actor id. `timeout` in seconds covers a full queue's wait and the outcome's."""
        deadline = deadline_after(timeout)
        while True:
            instance = self._instances.get(actor_id)
            if instance is None or instance.phase != "awake":
                instance = await self.awake(actor_id)
            try:
                message = await instance.send(queue, body, block=block, deadline=deadline)
                break
            except MailboxClosed:
                continue
        if not wait:
            return SendResult(status="enqueued", message_id=message.id)
        # No await since the message was stored: no consumer can have completed it yet.
        return await self.completions.outcome(message.id, deadline)

    async def invoke(
        self,
        actor_id: str,
        action: str,
        args: Any,
        kwargs: dict[str, Any],
        *,
        sink: Callable[[Any], None] | None = None,
    ) -> Any:
        """Call an action of the actor, waking it, and return what it returns; a streaming
        action's items go to `sink` as they come (then None is returned), else come back as a
        list. Raises `UnknownAction`, or `ActionTimeout` past the actor's `action_timeout`."""
        while True:
            instance = await self.awake(actor_id)
            try:
                return await instance.call_action(action, args, kwargs, sink=sink)
            except MailboxClosed:
                continue

    async def wait_for(self, actor_id: str, message_id: int, *, timeout: float | None) -> SendResult:
        """The outcome of a message sent earlier, found in the store if it has settled, else
        waited for up to `timeout` seconds ("timed_out" then). Raises `MessageNotFound` for a
        message the actor never had (or a completed one the store no longer keeps)."""
        deadline = deadline_after(timeout)
        await self._ensure_running()
        waiter = self.completions.watch(message_id)
        try:
            record = await self.store.get_message(message_id)
            if record is None or record.actor_id != actor_id:
                raise MessageNotFound(f"actor {actor_id!r} has no message {message_id}")
            if record.status == "completed":
                response = await self._stored_response(record)
                self.completions.unwatch(message_id, waiter)  # settled already: leave no waiter behind
                return SendResult(status="completed", message_id=message_id, response=response)
            if record.status == "dead":
                self.completions.unwatch(message_id, waiter)
                return SendResult(status="dead_lettered", message_id=message_id, error=record.error)
            await self.awake(actor_id)  # a message still queued needs its actor awake
        except BaseException:
            self.completions.unwatch(message_id, waiter)
            raise
        return await self.completions.outcome(message_id, deadline, waiter)

    async def dead_letters(self, actor_id: str, queue: str | None) -> list[DeadLetter]:
        """The actor's dead letters (of `queue` only, if given), bodies validated again; raises
        `UnknownQueue` for a queue it does not declare."""
        await self._ensure_running()
        record = await self._actor_record(actor_id)
        definition = self.definitions[record.name]
        if queue is not None and queue not in definition.queues:
            raise UnknownQueue(f"actor {record.name!r} has no queue {queue!r}")
        letters = []
        for message in await self.store.list_dead_letters(actor_id):
            if queue is not None and message.queue != queue:
                continue
            spec = definition.queues.get(message.queue)
            letters.append(
                DeadLetter(
                    message_id=message.message_id,
                    queue=message.queue,
                    body=_dead_body(spec, message.body),
                    attempts=message.attempt,
                    error=message.error,
                    created_at=message.created_at,
                )
            )
        return letters

    async def replay(self, actor_id: str, message_id: int) -> None:
        """Put a dead letter back at the tail of its queue, attempts reset, through the awake
        actor so that it is delivered; raises `MessageNotFound` if it is no dead letter of it."""
        instance = await self.awake(actor_id)
        record = await self.store.get_message(message_id)
        if record is None or record.actor_id != actor_id or record.status != "dead":
            raise MessageNotFound(f"actor {instance.ref.name!r} has no dead letter {message_id}")
        while True:  # through an awake instance, so that the replayed message gets delivered
            try:
                replayed = await instance.replay(message_id)
                break
            except MailboxClosed:
                instance = await self.awake(actor_id)
        if self.bus.active:
            self.bus.publish(MessageReplayed(actor=instance.ref, queue=replayed.queue, message_id=message_id))

    # --- stored outcomes -----------------------------------------------------------------------

    async def _stored_response(self, record: MessageRecord) -> Any:
        if record.response is None:
            return None
        actor = await self._actor_record(record.actor_id)
        spec = self.definitions[actor.name].queues.get(record.queue)
        if spec is None or spec.response is None:
            return json.loads(record.response)
        return spec.response.validate_json(record.response)

    async def _actor_record(self, actor_id: str) -> ActorRecord:
        record = await self.store.get_actor(actor_id)
        if record is None:
            raise ActorNotFound(f"no actor with id {actor_id!r}")
        return record

    def __repr__(self) -> str:
        return f"<Registry {self.name!r} {self.phase} actors={sorted(self.definitions)}>"


def _dead_body(spec: QueueSpec | None, raw: bytes) -> Any:
    """A dead letter's body as its queue's type reads it; one that no longer fits (the type has
    changed, or its row was damaged) is shown as stored, never hidden by an error that would
    hide every other dead letter of the actor with it."""
    if spec is not None:
        try:
            return spec.body.validate_json(raw)
        except pydantic.ValidationError:
            pass
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def running_registries() -> list[Registry]:
    """The registries running in this process, the one started most recently last. One left
    on a loop that has closed since (an earlier `asyncio.run`) runs no more: it is left out."""
    return [
        registry for registry in _running.values() if registry._loop is None or not registry._loop.is_closed()
    ]


def _ref(record: ActorRecord) -> ActorRef:
    return ActorRef(name=record.name, key=record.key, actor_id=record.actor_id)


def _left_work(instance: ActorInstance, *, asked: bool) -> bool:
    """Whether a sleeping actor must wake again: a message came during the sleep, or it asked
    to sleep with a backlog. An idle actor's backlog is one nothing consumes: waking for it
    would only cycle."""
    mailbox = instance.mailbox.state
    return mailbox.received_while_closed or (asked and mailbox.pending_count() > 0)
