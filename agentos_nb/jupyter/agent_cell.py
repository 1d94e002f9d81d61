"""One `%%agent` turn: its session, its live display, and its result.

The reply streams into the cell through one display handle, redrawn at most `REDRAWS_PER_SECOND`
times a second however fast the updates come. A terminal cannot redraw, so there each step is
shown once, as it completes. Either way the reply is shown once: when the turn is answered, the
live display folds away the way to the reply and leaves the reply to the result (the cell's
value, or shown below the transcript for a turn no cell returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from IPython.core.displaypub import DisplayPublisher
from IPython.display import DisplayHandle, display

from agentos_nb.actors.deadlines import TimeLimit, TimeLimitReached
from agentos_nb.actors.handles import ActorHandle
from agentos_nb.errors import SessionNotFound
from agentos_nb.jupyter import displays
from agentos_nb.jupyter.permission_buttons import PermissionButtons, Respond
from agentos_nb.jupyter.transcript import TranscriptItem, transcript_items
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    Notice,
    PermissionRequest,
    PermissionResponse,
    PromptResult,
    SessionInfo,
    SessionUpdate,
    ToolCall,
    ToolCallUpdate,
    TurnEnded,
    Usage,
    UserMessageChunk,
)

REDRAWS_PER_SECOND = 10


@dataclass
class LiveTurn:
    """What the cell shows of a turn: who, which session, and the updates so far."""

    where: str
    session: SessionInfo
    timeout: float | None = None
    show_result: bool = False
    """Show the reply once the turn ended: when no cell shows the result (a background turn)."""
    updates: list[SessionUpdate] = field(default_factory=list)
    stopped: str | None = None
    """Why the cell stopped reading before the turn ended: it timed out, or was interrupted."""
    failed: str | None = None
    """The error that ended the cell's reading (the cell raises it; the display says it)."""
    answered: bool = False
    """The turn's result goes back to the cell, which shows the reply: not shown here too."""

    def add(self, update: SessionUpdate) -> None:
        self.updates.append(update)

    @property
    def started(self) -> bool:
        """The turn began (it may have waited for another turn of its session)."""
        return any(isinstance(u, UserMessageChunk) for u in self.updates)

    @property
    def last_seq(self) -> int:
        return self.updates[-1].seq if self.updates else 0

    @property
    def ended(self) -> TurnEnded | None:
        last = self.updates[-1] if self.updates else None
        return last if isinstance(last, TurnEnded) else None

    def result(self) -> PromptResult:
        """What `send_prompt` would have returned; a turn stopped before it began is cancelled."""
        ended = self.ended
        return PromptResult(
            session_id=self.session.session_id,
            text=displays.reply_of(self.updates),
            stop_reason="cancelled" if ended is None else ended.stop_reason,
            usage=Usage() if ended is None else ended.usage,
            error=None if ended is None else ended.error,
        )

    def _status(self) -> tuple[str, str]:
        ended = self.ended
        if self.failed is not None:
            return f"failed: {self.failed}", displays.BAD
        if self.stopped is not None:
            return f"{self.stopped}: cancelled", displays.WARN
        if ended is None:
            answered = {u.request_id for u in self.updates if isinstance(u, PermissionResponse)}
            if any(isinstance(u, PermissionRequest) and u.request_id not in answered for u in self.updates):
                return "waiting for your answer", displays.WARN
            return "running…", displays.INFO
        return ended.stop_reason, displays.STOP_COLORS.get(ended.stop_reason, displays.BAD)

    def heading(self) -> list[str]:
        model = f"{self.session.model} (offline)" if self.session.offline else self.session.model
        return [self.where, f"session {displays.short_id(self.session.session_id)}", model]

    def transcript(self) -> list[TranscriptItem]:
        """The turn so far; once answered, without the reply, which the result shows."""
        found = transcript_items(self.updates)
        last = found[-1] if found else None
        if last is not None and last.kind == "turn":  # the heading shows how it ended
            found.pop()
            last = found[-1] if found else None
        if self.answered and last is not None and last.kind == "agent" and last.text == self.result().text:
            found.pop()
        return found

    def _repr_html_(self) -> str:
        status, color = self._status()
        where, *facts = self.heading()
        head = f"<b>{displays.esc(where)}</b> {displays.muted(' · '.join(facts))}"
        found = self.transcript()
        body = displays.transcript_html(found)
        if self.answered:  # folded: what matters now is the reply, shown with the result
            calls = sum(item.kind == "tool" for item in found)
            summary = displays.muted(f"transcript: {calls} tool call{'s' * (calls != 1)}")
            body = f"<details><summary>{summary}</summary>{body}</details>"
            if self.show_result:
                body += displays.prompt_result_html(self.result())
        return displays.box(f"<div>{head} {displays.badge(status, color)}</div>{body}", color)

    def __repr__(self) -> str:
        status, _ = self._status()
        text = f"{' · '.join(self.heading())} [{status}]\n{displays.transcript_text(self.transcript())}"
        if self.answered and self.show_result:
            text += "\n" + displays.prompt_result_text(self.result())
        return text


class TurnSink(Protocol):
    def start(self, turn: LiveTurn) -> None: ...
    def changed(self) -> None: ...
    def ask(self, request: PermissionRequest, respond: Respond) -> None: ...
    def answered(self, response: PermissionResponse) -> None: ...
    def close(self) -> None: ...


class DisplaySink:
    """A notebook: one display (a new one, or `handle`'s), redrawn at most every `interval`
    seconds, and once at the end."""

    def __init__(self, handle: DisplayHandle | None = None, interval: float = 1 / REDRAWS_PER_SECOND) -> None:
        self.interval = interval
        self._loop = asyncio.get_running_loop()
        self._handle = handle
        self._turn: LiveTurn | None = None
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.asks: dict[str, PermissionButtons] = {}
        """The permission requests shown, each with its buttons, by request id."""

    def start(self, turn: LiveTurn) -> None:
        self._turn = turn
        if self._handle is None:
            self._handle = display(turn, display_id=True)
        else:
            self._handle.update(turn)
        self._last = self._loop.time()

    def changed(self) -> None:
        if self._timer is not None:
            return  # a redraw is due already, and will show this change too
        wait = self._last + self.interval - self._loop.time()
        if wait <= 0:
            self._draw()
        else:
            self._timer = self._loop.call_later(wait, self._draw)

    def ask(self, request: PermissionRequest, respond: Respond) -> None:
        """Buttons that answer the request, below the transcript."""
        buttons = self.asks[request.request_id] = PermissionButtons(request, respond)
        display(buttons)

    def answered(self, response: PermissionResponse) -> None:
        buttons = self.asks.get(response.request_id)
        if buttons is not None:
            buttons.answered(response)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for buttons in self.asks.values():  # the turn is over: what it waited on was cancelled
            buttons.ended()
        self._draw()

    def _draw(self) -> None:
        self._timer = None
        self._last = self._loop.time()
        if self._handle is not None:
            self._handle.update(self._turn)


class LineSink:
    """A terminal: each step shown once, as it completes (a message once the next step begins),
    through IPython's display publisher, which prints there. The reply, the message still open
    when the turn is answered, is left to the result."""

    def __init__(self) -> None:
        self._turn: LiveTurn | None = None
        self._shown = 0
        self._message: tuple[type[SessionUpdate], str] | None = None
        """A message being written: its kind (the agent's, or its thoughts) and text so far."""

    def start(self, turn: LiveTurn) -> None:
        self._turn = turn
        _line(" · ".join(turn.heading()))

    def ask(self, request: PermissionRequest, respond: Respond) -> None:
        """A terminal has no buttons: how to answer from code."""
        session_id = self._turn.session.session_id if self._turn else ""
        _line(
            f"  [permission] {request.tool_call.title}: the turn waits; answer with "
            f"await vm.respond_permission({session_id!r}, {request.request_id!r}, 'allow_once')"
        )

    def answered(self, response: PermissionResponse) -> None:
        return None  # its line comes with the transcript

    def changed(self) -> None:
        assert self._turn is not None
        for update in self._turn.updates[self._shown :]:
            self._take(update)
        self._shown = len(self._turn.updates)

    def close(self) -> None:
        self.changed()
        turn = self._turn
        assert turn is not None
        if not turn.answered or self._message is None or self._message[1] != turn.result().text:
            self._end_message()
        if turn.answered and turn.show_result:
            _line(displays.prompt_result_text(turn.result()))

    def _take(self, update: SessionUpdate) -> None:
        if isinstance(update, AgentMessageChunk | AgentThoughtChunk):
            if self._message is not None and self._message[0] is type(update):
                self._message = (type(update), self._message[1] + update.content.text)
            else:
                self._end_message()
                self._message = (type(update), update.content.text)
            return
        if isinstance(update, TurnEnded):
            return  # the message still open is the reply: close() decides
        self._end_message()
        if isinstance(update, ToolCall):
            _line(f"  [tool] {update.title}")
        elif isinstance(update, ToolCallUpdate):
            output = (update.raw_output or "").strip().splitlines()
            _line(f"  [{update.status}] {output[0][:200] if output else ''}")
        elif isinstance(update, Notice):
            _line(f"  ({update.level}) {update.text}")

    def _end_message(self) -> None:
        if self._message is not None:
            _line(self._message[1].rstrip("\n"))
            self._message = None


def _line(text: str) -> None:
    """One line (or block) of text, as a terminal's display shows it."""
    display({"text/plain": text}, raw=True)


def updatable(shell: Any) -> bool:
    """Whether displays can be updated in place: not in a terminal, where they are printed."""
    return type(shell.display_pub) is not DisplayPublisher


def sink_for(shell: Any, handle: DisplayHandle | None) -> TurnSink:
    """A display handle where displays can be updated; lines where they are only printed."""
    return DisplaySink(handle) if updatable(shell) else LineSink()


@dataclass
class SessionMemory:
    """The session each (registry, actor, key, agent, model) continues, and a lock per such key
    so that two turns started at once do not open two sessions."""

    remembered: dict[Hashable, str] = field(default_factory=dict)
    locks: dict[Hashable, asyncio.Lock] = field(default_factory=dict)

    async def session(
        self, vm: ActorHandle, key: Hashable, *, agent: str, model: str | None, new: bool
    ) -> SessionInfo:
        async with self.locks.setdefault(key, asyncio.Lock()):
            remembered = self.remembered.get(key)
            if remembered is not None and not new:
                with contextlib.suppress(SessionNotFound):  # gone with its registry or its VM
                    info: SessionInfo = await vm.get_session(remembered)
                    if not info.closed:
                        return info
            info = await vm.create_session(agent, model=model)
            self.remembered[key] = info.session_id
            return info


async def run_turn(vm: ActorHandle, turn: LiveTurn, prompt: str, sink: TurnSink) -> PromptResult:
    """Stream one turn into `sink`. Leaving the stream (past the turn's timeout, or when the
    cell is interrupted) cancels the turn; after a timeout, its end is read from the session's
    kept updates."""
    session_id = turn.session.session_id
    sink.start(turn)
    try:
        try:
            async with (
                TimeLimit(turn.timeout),
                contextlib.aclosing(vm.stream_prompt(session_id, prompt)) as updates,
            ):
                async for update in updates:
                    turn.add(update)
                    if isinstance(update, PermissionRequest):
                        sink.ask(
                            update, functools.partial(vm.respond_permission, session_id, update.request_id)
                        )
                    elif isinstance(update, PermissionResponse):
                        sink.answered(update)
                    sink.changed()
        except asyncio.CancelledError:
            turn.stopped = "interrupted"
            raise
        except TimeLimitReached:
            turn.stopped = f"timed out after {turn.timeout:g} s"
            if turn.started:
                for update in await vm.get_session_events(session_id, since=turn.last_seq):
                    turn.add(update)
                    if isinstance(update, TurnEnded):
                        break
        except Exception as error:  # without it, the display would say "running…" for ever
            turn.failed = f"{type(error).__name__}: {error}"
            raise
        turn.answered = True
    finally:
        sink.close()
    return turn.result()
