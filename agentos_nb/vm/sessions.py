"""Agent sessions in a VM: the table of them, their turns and their numbered updates.

This module knows nothing of any agent or model. An agent type (the `pi` package brings one)
opens an `AgentSession`, which runs turns and reports what happens through `emit`; the table
numbers and keeps those updates, publishes them on the bus, and feeds `stream_prompt`.

Choices where Rivet's users complain:
- A prompt sent while a turn of the same session runs waits for it (first come, first
  served), rather than being refused: cells and queue loops can send without coordinating.
- `cancel_prompt` returns only once the turn has stopped, and the turn then ends with the
  stop reason `cancelled`; its `send_prompt` returns normally.
- Sessions outlive sleep: their conversation and updates are saved with the VM, listed again
  on wake, and reopened at their next prompt. Keys and model objects are never saved: they are
  kept in this process, so a session reopened here gets them back, while one reopened by
  another process falls back to the host's keys (and says so if its model changed). The
  session shell's state, such as its cwd, starts afresh.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import functools
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import pydantic

from agentos_nb.actors.deadlines import CancelRequest
from agentos_nb.errors import SessionClosed, SessionNotFound, UnknownAgentType
from agentos_nb.vm.session_models import (
    AgentTypeInfo,
    Notice,
    PromptResult,
    SessionInfo,
    SessionUpdate,
    StopReason,
    TextContent,
    TurnEnded,
    Usage,
    UserMessageChunk,
)
from agentos_nb.vm.session_models import SessionClosed as SessionClosedEvent
from agentos_nb.vm.session_models import SessionCreated as SessionCreatedEvent
from agentos_nb.vm.session_models import SessionUpdated as SessionUpdatedEvent
from agentos_nb.vm.shell import HOME

if TYPE_CHECKING:
    from agentos_nb.actors.context import ActorContext
    from agentos_nb.vm.machine import AgentVm

CLOSED_SESSIONS_KEPT = 100
"""Closed sessions whose info and updates stay readable; older ones are forgotten."""

_UPDATES = pydantic.TypeAdapter(list[SessionUpdate])

Emit = Callable[[SessionUpdate], None]


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    text: str
    stop_reason: StopReason
    usage: Usage
    error: str | None = None


class AgentSession(Protocol):
    """One conversation of an agent type, as the table drives it."""

    model: str
    offline: bool
    model_reason: str

    async def run_turn(self, text: str, emit: Emit) -> TurnOutcome:
        """Answer `text`, reporting updates through `emit`. Cancellation stops the turn and
        must leave the conversation able to go on."""
        ...

    def export(self) -> bytes:
        """The conversation so far, to be handed back as `SessionRequest.saved`."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionRequest:
    session_id: str
    vm: AgentVm
    cwd: str
    env: Mapping[str, str] = field(repr=False)
    """The session's secrets and settings (API keys, base URLs): for the model client, never the VM."""
    model: Any
    additional_instructions: str | None
    saved: bytes | None = None
    """A conversation exported before the VM slept, to continue."""


class AgentType(Protocol):
    description: str

    async def open_session(self, request: SessionRequest) -> AgentSession: ...


@dataclass(frozen=True, slots=True)
class _Unsaved:
    """What a session needs but the store must never hold: its keys, and a model object."""

    model: Any
    env: Mapping[str, str] = field(repr=False)


_UNSAVED: dict[str, _Unsaved] = {}
"""By session id, for as long as this process lives: a session reopened after its VM slept
gets its keys and model back; after a restart, it falls back to what was saved."""


@dataclass
class _Session:
    info: SessionInfo
    kind: AgentType
    request: SessionRequest
    """How to open the agent again; `saved` holds the conversation while it is not open."""
    agent: AgentSession | None = None
    """None until opened: a session restored on wake opens at its first prompt."""
    updates: list[SessionUpdate] = field(default_factory=list)
    turn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    turn: asyncio.Task[PromptResult] | None = None
    started: bool = False
    cancellation: CancelRequest = field(default_factory=CancelRequest)
    """`cancel_prompt`'s request to stop the running turn; a new one for every turn."""
    listeners: set[Callable[[SessionUpdate], None]] = field(default_factory=set)


class Sessions:
    """The sessions of one awake VM."""

    def __init__(self, c: ActorContext, vm: AgentVm, agent_types: Mapping[str, AgentType]) -> None:
        self._c = c
        self._vm = vm
        self._agent_types = dict(agent_types)
        self._live: dict[str, _Session] = {}
        self._closed: collections.OrderedDict[str, _Session] = collections.OrderedDict()

    # --- actions ---------------------------------------------------------------------------

    def agent_types(self) -> list[AgentTypeInfo]:
        return [AgentTypeInfo(name=name, description=t.description) for name, t in self._agent_types.items()]

    async def create(
        self,
        agent_type: str,
        *,
        model: Any,
        env: Mapping[str, str] | None,
        cwd: str | None,
        additional_instructions: str | None,
    ) -> SessionInfo:
        kind = self._agent_types.get(agent_type) if isinstance(agent_type, str) else None
        if kind is None:
            known = ", ".join(sorted(self._agent_types)) or "none: install one, e.g. software=[common, pi]"
            raise UnknownAgentType(f"this VM has no agent type {agent_type!r} (installed: {known})")
        env = _checked_env(env)
        if additional_instructions is not None and not isinstance(additional_instructions, str):
            raise TypeError("additional_instructions must be a str")
        directory = HOME if cwd is None else await self._vm.checked_cwd(cwd)
        request = SessionRequest(
            session_id=f"s-{secrets.token_hex(6)}",
            vm=self._vm,
            cwd=directory,
            env=env,
            model=model,
            additional_instructions=additional_instructions,
        )
        agent = await kind.open_session(request)
        info = SessionInfo(
            session_id=request.session_id,
            agent_type=agent_type,
            model=agent.model,
            model_reason=agent.model_reason,
            offline=agent.offline,
            cwd=directory,
            created_at=time.time(),
        )
        session = _Session(info=info, kind=kind, request=request, agent=agent)
        self._live[request.session_id] = session
        _UNSAVED[request.session_id] = _Unsaved(model, env)
        c = self._c
        if c.events.active:
            c.events.publish(SessionCreatedEvent(actor=c.ref, session=info))
        self._emit(
            session,
            Notice(
                level="warning" if info.offline else "info",
                text=f"{agent_type} on {info.model}: {info.model_reason}",
            ),
        )
        self._vm.changed()
        return info

    async def prompt(self, session_id: str, text: str, listener: Emit | None = None) -> PromptResult:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a prompt must be a non-empty str")
        session = self._session(session_id)
        async with session.turn_lock:  # a second prompt waits for the turn before it
            if session.info.closed:
                raise SessionClosed(f"session {session_id!r} was closed while this prompt waited")
            agent = await self._opened(session)
            if listener is not None:
                session.listeners.add(listener)
            session.started = False
            session.cancellation = CancelRequest()
            session.turn = asyncio.create_task(self._turn(session, agent, text))
            try:
                return await session.turn
            finally:
                session.turn = None
                if listener is not None:
                    session.listeners.discard(listener)

    async def stream(self, session_id: str, text: str) -> AsyncIterator[SessionUpdate]:
        """The updates of one turn as they happen, ending with its `turn_ended`."""
        updates: asyncio.Queue[SessionUpdate] = asyncio.Queue()
        listener = updates.put_nowait
        turn = asyncio.create_task(self.prompt(session_id, text, listener=listener))
        try:
            while True:
                getter = asyncio.ensure_future(updates.get())
                await asyncio.wait({getter, turn}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                update = getter.result()
                yield update
                if isinstance(update, TurnEnded):
                    break
            while not updates.empty():
                yield updates.get_nowait()
            await turn  # a prompt refused (closed, bad text) raises here
        finally:
            if not turn.done():  # the caller stopped reading: this turn stops too, and only this one
                session = self._live.get(session_id) or self._closed.get(session_id)
                if session is not None and listener in session.listeners:
                    await self.cancel(session_id)
                else:
                    turn.cancel()  # still waiting for another caller's turn
                await asyncio.wait({turn})

    async def cancel(self, session_id: str) -> bool:
        """Stop the running turn and wait until it has stopped; False when none was running."""
        session = self._session(session_id, closed_ok=True)
        turn = session.turn
        if turn is None or turn.done():
            return False
        # A turn not started yet sees the request as it starts.
        session.cancellation.cancel(turn if session.started else None)
        await asyncio.wait({turn})
        return True

    async def close(self, session_id: str) -> None:
        """Stop the session's turn, if any, and free its agent; its info and updates stay readable."""
        session = self._session(session_id, closed_ok=True)
        if session.info.closed:
            return
        # Closed before the first await: a prompt waiting for the turn, or a second close, sees it.
        session.info = session.info.model_copy(update={"closed": True})
        del self._live[session_id]
        self._closed[session_id] = session
        while len(self._closed) > CLOSED_SESSIONS_KEPT:
            self._closed.popitem(last=False)
        _UNSAVED.pop(session_id, None)
        try:
            await self.cancel(session_id)
        finally:
            agent, session.agent = session.agent, None
            if agent is not None:
                await agent.close()
        c = self._c
        if c.events.active:
            c.events.publish(SessionClosedEvent(actor=c.ref, session_id=session_id))

    def list(self, *, include_closed: bool = False) -> list[SessionInfo]:
        sessions = [*self._live.values(), *(self._closed.values() if include_closed else ())]
        return [s.info for s in sorted(sessions, key=lambda s: s.info.created_at)]

    def get(self, session_id: str) -> SessionInfo:
        return self._session(session_id, closed_ok=True).info

    def events(self, session_id: str, since: int = 0) -> builtins.list[SessionUpdate]:
        if not isinstance(since, int) or since < 0:
            raise ValueError(f"since must be a sequence number (an int >= 0), not {since!r}")
        updates = self._session(session_id, closed_ok=True).updates
        return updates[since:]  # update n sits at index n - 1

    # --- sleep, wake and destruction ---------------------------------------------------------

    async def cancel_turns(self) -> None:
        for session_id in list(self._live):
            await self.cancel(session_id)

    def export(self) -> bytes:
        """The open sessions, for the VM's next life: no keys, and a model only as its name or
        its settings. (Blocking: run it in a thread.)"""
        saved = []
        for session in self._live.values():
            conversation = session.agent.export() if session.agent else session.request.saved or b""
            saved.append(
                {
                    "info": session.info.model_dump(mode="json"),
                    "model": _model_spec(session.request.model),
                    "additional_instructions": session.request.additional_instructions,
                    "conversation": conversation.decode(),
                    "updates": _UPDATES.dump_python(session.updates, mode="json"),
                }
            )
        return json.dumps(saved).encode()

    async def restore(self, saved: bytes) -> None:
        """List the sessions of the last life again; each reopens at its next prompt."""
        entries = await asyncio.to_thread(_parse_saved, saved)
        for info, updates, entry in entries:
            kind = self._agent_types.get(info.agent_type)
            if kind is None:
                continue  # its package is gone from this VM type
            kept = _UNSAVED.get(info.session_id)
            request = SessionRequest(
                session_id=info.session_id,
                vm=self._vm,
                cwd=info.cwd,
                env=kept.env if kept else {},
                model=kept.model if kept else entry["model"],
                additional_instructions=entry["additional_instructions"],
                saved=entry["conversation"].encode() or None,
            )
            self._live[info.session_id] = _Session(info=info, kind=kind, request=request, updates=updates)

    async def release(self, *, forget: bool = False) -> None:
        """Close every agent (and its model client): the VM sleeps, stops or is destroyed.
        With `forget`, the keys kept for reopening go too."""
        await self.cancel_turns()
        for session_id, session in self._live.items():
            if session.agent is not None:
                session.request = replace(session.request, saved=session.agent.export())
                agent, session.agent = session.agent, None
                await agent.close()
            if forget:
                _UNSAVED.pop(session_id, None)

    # --- inside ----------------------------------------------------------------------------

    async def _opened(self, session: _Session) -> AgentSession:
        """The session's agent, opened again if the VM slept since; says so if its model changed."""
        if session.agent is not None:
            return session.agent
        agent = await session.kind.open_session(session.request)
        before = session.info.model
        session.agent = agent
        session.request = replace(session.request, saved=None)
        session.info = session.info.model_copy(
            update={"model": agent.model, "model_reason": agent.model_reason, "offline": agent.offline}
        )
        if agent.model != before:
            self._emit(
                session,
                Notice(
                    level="warning",
                    text=f"reopened after the VM slept on {agent.model}, not {before}: {agent.model_reason}",
                ),
            )
        return agent

    async def _turn(self, session: _Session, agent: AgentSession, text: str) -> PromptResult:
        session.started = True
        session.info = session.info.model_copy(update={"busy": True, "turns": session.info.turns + 1})
        emit = functools.partial(self._emit, session)
        emit(UserMessageChunk(content=TextContent(text=text)))
        try:
            if session.cancellation.requested:  # cancelled before it began
                outcome = TurnOutcome("", "cancelled", Usage())
            else:
                outcome = await agent.run_turn(text, emit)
        except asyncio.CancelledError:
            if not session.cancellation.resolve():  # the VM is stopping, or the caller was cancelled
                emit(TurnEnded(stop_reason="cancelled", error="the VM stopped before the turn ended"))
                raise
            outcome = TurnOutcome("", "cancelled", Usage())
        except Exception as error:  # an agent's own failure ends its turn, never the VM's action
            outcome = TurnOutcome(
                "", "error", Usage(), error=f"the agent failed: {type(error).__name__}: {error}"
            )
        finally:
            session.info = session.info.model_copy(update={"busy": False})
        emit(TurnEnded(stop_reason=outcome.stop_reason, usage=outcome.usage, error=outcome.error))
        self._vm.changed()  # the conversation grew, and the tools may have changed files
        return PromptResult(
            session_id=session.info.session_id,
            text=outcome.text,
            stop_reason=outcome.stop_reason,
            usage=outcome.usage,
            error=outcome.error,
        )

    def _emit(self, session: _Session, update: SessionUpdate) -> None:
        numbered = update.model_copy(
            update={"seq": len(session.updates) + 1, "session_id": session.info.session_id}
        )
        session.updates.append(numbered)
        for listener in session.listeners:
            listener(numbered)
        c = self._c
        if c.events.active:
            c.events.publish(SessionUpdatedEvent(actor=c.ref, update=numbered))

    def _session(self, session_id: str, *, closed_ok: bool = False) -> _Session:
        session = self._live.get(session_id)
        if session is not None:
            return session
        closed = self._closed.get(session_id)
        if closed is not None:
            if closed_ok:
                return closed
            raise SessionClosed(f"session {session_id!r} is closed; create a new one")
        raise SessionNotFound(f"this VM has no session {session_id!r}")


def _model_spec(model: Any) -> Any:
    """A model as the store may keep it: a name, or settings without their key."""
    if isinstance(model, str):
        return model
    if isinstance(model, pydantic.BaseModel):
        return model.model_dump(mode="json", exclude={"api_key"})
    return None


def saved_sessions(saved: bytes) -> list[tuple[SessionInfo, list[SessionUpdate]]]:
    """The sessions a VM saved (its "sessions" blob), for tools that read a store."""
    return [(info, updates) for info, updates, _ in _parse_saved(saved)]


def _parse_saved(saved: bytes) -> list[tuple[SessionInfo, list[SessionUpdate], dict[str, Any]]]:
    parsed = []
    for entry in json.loads(saved):
        info = SessionInfo.model_validate(entry["info"]).model_copy(update={"busy": False})
        parsed.append((info, _UPDATES.validate_python(entry["updates"]), entry))
    return parsed


def _checked_env(env: Mapping[str, str] | None) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping of names to str values, not {type(env).__name__}")
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"env must map str names to str values; {name!r} does not")
    return dict(env)
