"""Agent sessions in a VM: the table of them, their turns and their numbered updates.

This module knows nothing of any agent or model. An agent type (the `pi` package brings one)
opens an `AgentSession`, which runs turns and reports what happens through `emit`; the table
numbers and keeps those updates, publishes them on the bus, and feeds `stream_prompt`.

Choices where Rivet's users complain:
- A prompt sent while a turn of the same session runs waits for it (first come, first
  served), rather than being refused: cells and queue loops can send without coordinating.
- `cancel_prompt` returns only once the turn has stopped, and the turn then ends with the
  stop reason `cancelled`; its `send_prompt` returns normally.
- A session may ask before it uses a tool (its permission policy, `vm/permissions.py`): the
  turn waits on the answer for as long as the turn lasts, and a cancel refuses it. What the
  user answered "always" is saved with the session.
- `set_model` changes the model from the next turn: the agent is reopened on the new model with
  the conversation so far, and the transcript says so.
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
from agentos_nb.vm.mcp_servers import McpHttpServer, McpStdioServer, checked_mcp_servers
from agentos_nb.vm.permissions import SessionPermissions, checked_mode, checked_policy
from agentos_nb.vm.session_models import (
    AgentTypeInfo,
    CurrentModeUpdate,
    Notice,
    PermissionPolicy,
    PermissionRequest,
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
    permissions: SessionPermissions | None = None
    """The session's policy, mode and remembered answers; its tools ask through them."""
    mcp_servers: tuple[McpStdioServer | McpHttpServer, ...] = field(default=(), repr=False)
    """MCP servers whose tools the agent offers beside its own; like `env`, never saved."""


class AgentType(Protocol):
    description: str

    async def open_session(self, request: SessionRequest) -> AgentSession: ...


@dataclass(frozen=True, slots=True)
class _Unsaved:
    """What a session needs but the store must never hold: its keys, and a model object."""

    model: Any
    env: Mapping[str, str] = field(repr=False)
    mcp_servers: tuple[McpStdioServer | McpHttpServer, ...] = field(default=(), repr=False)


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
    model_change: str | None = None
    """The model `set_model` chose, by name, until the next turn starts on it."""


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
        permissions: Any = None,
        mcp_servers: Any = None,
    ) -> SessionInfo:
        kind = self._agent_types.get(agent_type) if isinstance(agent_type, str) else None
        if kind is None:
            known = ", ".join(sorted(self._agent_types)) or "none: install one, e.g. software=[common, pi]"
            raise UnknownAgentType(f"this VM has no agent type {agent_type!r} (installed: {known})")
        env = _checked_env(env)
        servers = checked_mcp_servers(mcp_servers)
        given = getattr(kind, "permissions", None) if permissions is None else permissions
        policy = self._checked_policy(given)
        if additional_instructions is not None and not isinstance(additional_instructions, str):
            raise TypeError("additional_instructions must be a str")
        directory = HOME if cwd is None else await self._vm.checked_cwd(cwd)
        session_id = f"s-{secrets.token_hex(6)}"
        request = SessionRequest(
            session_id=session_id,
            vm=self._vm,
            cwd=directory,
            env=env,
            model=model,
            additional_instructions=additional_instructions,
            permissions=SessionPermissions(policy, functools.partial(self._emit_to, session_id)),
            mcp_servers=servers,
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
            permissions=policy,
            mcp_servers=[server.name for server in servers],
        )
        session = _Session(info=info, kind=kind, request=request, agent=agent)
        self._live[request.session_id] = session
        _UNSAVED[request.session_id] = _Unsaved(model, env, servers)
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
            if session.model_change is not None and session.agent is not None:
                # The conversation goes on with the model `set_model` chose: reopened on it.
                session.request = replace(session.request, saved=session.agent.export())
                agent, session.agent = session.agent, None
                await agent.close()
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

    def respond_permission(self, session_id: str, request_id: str, option: str) -> None:
        """Answer a permission request the session's turn waits on."""
        session = self._session(session_id, closed_ok=True)
        self._permissions(session).respond(request_id, option)
        self._vm.changed()  # an "always" is saved with the session

    def set_mode(self, session_id: str, mode: str) -> SessionInfo:
        """Change the session's mode; the next tool call follows it."""
        session = self._session(session_id)
        chosen = checked_mode(mode)
        self._permissions(session).mode = chosen
        if session.info.mode != chosen:
            session.info = session.info.model_copy(update={"mode": chosen})
            self._emit(session, CurrentModeUpdate(current_mode_id=chosen))
            self._vm.changed()
        return session.info

    async def set_model(self, session_id: str, model: Any) -> SessionInfo:
        """Use `model` from the session's next turn on. The agent type is asked to open a session
        on it at once, so a model it cannot use is refused here (`ModelNotAvailable`)."""
        session = self._session(session_id)
        # A probe, for its model alone: no conversation, and no MCP servers started for it.
        probe = await session.kind.open_session(
            replace(session.request, model=model, saved=None, mcp_servers=())
        )
        name, reason = probe.model, probe.model_reason
        await probe.close()
        session.request = replace(session.request, model=model)
        if not session.info.closed:  # closed while probing: its keys must not outlive it here
            request = session.request
            _UNSAVED[session_id] = _Unsaved(model, request.env, request.mcp_servers)
        session.model_change = name
        notice = f"the model will be {name} from the next turn ({reason})"
        self._emit(session, Notice(level="info", text=notice))
        self._vm.changed()
        return session.info

    def pending_permissions(self, session_id: str) -> builtins.list[PermissionRequest]:
        """The permission requests the session's turn waits on."""
        return self._permissions(self._session(session_id, closed_ok=True)).pending

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
                    "permissions": self._permissions(session).export(),
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
                permissions=SessionPermissions.restore(
                    entry.get("permissions"), functools.partial(self._emit_to, info.session_id)
                ),
                mcp_servers=kept.mcp_servers if kept else (),
            )
            lost_servers = info.mcp_servers and not request.mcp_servers
            if lost_servers:
                info = info.model_copy(update={"mcp_servers": []})
            session = _Session(info=info, kind=kind, request=request, updates=updates)
            self._live[info.session_id] = session
            if lost_servers:
                self._emit(
                    session,
                    Notice(
                        level="warning",
                        text="reopened in a new process without its MCP servers, whose settings are "
                        "never saved (they may hold secrets); create a new session to use them",
                    ),
                )

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
        if session.model_change is not None:
            session.model_change = None
            self._emit(session, Notice(level="info", text=f"model changed from {before} to {agent.model}"))
        elif agent.model != before:
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

    def _emit_to(self, session_id: str, update: SessionUpdate) -> None:
        session = self._live.get(session_id) or self._closed.get(session_id)
        if session is not None:
            self._emit(session, update)

    def _permissions(self, session: _Session) -> SessionPermissions:
        permissions = session.request.permissions
        if permissions is None:  # a request made without the table: the policy asks nothing
            permissions = SessionPermissions(
                PermissionPolicy(), functools.partial(self._emit_to, session.info.session_id)
            )
            session.request = replace(session.request, permissions=permissions)
        return permissions

    def _checked_policy(self, given: Any) -> PermissionPolicy:
        """The policy, each `host:` name checked against this VM's toolkits."""
        policy = checked_policy(given)
        tools = {kit.name: set(kit.tools) for kit in self._vm.spec.toolkits}
        for name in policy.ask:
            if not name.startswith("host:") or name == "host:*":
                continue
            kit, _, tool = name.removeprefix("host:").partition(".")
            if kit not in tools or (tool and tool not in tools[kit]):
                known = ", ".join(f"host:{k}.{t}" for k in sorted(tools) for t in sorted(tools[k])) or "none"
                raise ValueError(
                    f"permissions: {name!r} names no host tool of this VM (its host tools: {known})"
                )
        return policy

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
