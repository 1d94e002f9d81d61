"""One `%%agent` turn: its session, its live display, and its result.

The reply streams into the cell through one display handle, redrawn at most `REDRAWS_PER_SECOND`
times a second however fast the updates come. A terminal cannot redraw, so there each update is
printed once, as a line, as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from IPython.core.displaypub import DisplayPublisher
from IPython.display import DisplayHandle, display

from agentos_nb.actors.handles import ActorHandle
from agentos_nb.errors import SessionNotFound
from agentos_nb.jupyter import displays
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    Notice,
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
        if self.stopped is not None:
            return f"{self.stopped}: cancelled", displays.WARN
        if ended is None:
            return "running…", displays.INFO
        return ended.stop_reason, displays.STOP_COLORS.get(ended.stop_reason, displays.BAD)

    @property
    def over(self) -> bool:
        return self.ended is not None or self.stopped is not None

    def heading(self) -> list[str]:
        model = f"{self.session.model} (offline)" if self.session.offline else self.session.model
        return [self.where, f"session {displays.short_id(self.session.session_id)}", model]

    def _repr_html_(self) -> str:
        status, color = self._status()
        where, *facts = self.heading()
        head = f"<b>{displays.esc(where)}</b> {displays.muted(' · '.join(facts))}"
        steps = displays.steps(self.updates)
        body = displays.steps_html(steps)
        if self.over:  # the reply is the result, shown on its own: fold the rest
            calls = sum(step.kind == "tool_call" for step in steps)
            summary = displays.muted(f"transcript: {calls} tool call{'s' * (calls != 1)}")
            body = f"<details><summary>{summary}</summary>{body}</details>"
            if self.show_result:
                body += displays.prompt_result_html(self.result())
        return displays.box(f"<div>{head} {displays.badge(status, color)}</div>{body}", color)

    def __repr__(self) -> str:
        status, _ = self._status()
        text = f"{' · '.join(self.heading())} [{status}]\n{displays.steps_text(displays.steps(self.updates))}"
        if self.over and self.show_result:
            text += "\n" + displays.prompt_result_text(self.result())
        return text


class TurnSink(Protocol):
    def start(self, turn: LiveTurn) -> None: ...
    def changed(self) -> None: ...
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

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._draw()

    def _draw(self) -> None:
        self._timer = None
        self._last = self._loop.time()
        if self._handle is not None:
            self._handle.update(self._turn)


class LineSink:
    """A terminal: every update printed once, as it comes; the agent's text as it streams."""

    def __init__(self) -> None:
        self._turn: LiveTurn | None = None
        self._shown = 0
        self._mid_line = False

    def start(self, turn: LiveTurn) -> None:
        self._turn = turn
        print(" · ".join(turn.heading()))

    def changed(self) -> None:
        assert self._turn is not None
        for update in self._turn.updates[self._shown :]:
            self._print(update)
        self._shown = len(self._turn.updates)

    def close(self) -> None:
        self.changed()
        if self._mid_line:
            print()
        assert self._turn is not None
        if self._turn.over and self._turn.show_result:
            print(displays.prompt_result_text(self._turn.result()))

    def _print(self, update: SessionUpdate) -> None:
        if isinstance(update, AgentMessageChunk | AgentThoughtChunk):
            print(update.content.text, end="", flush=True)
            self._mid_line = not update.content.text.endswith("\n")
            return
        line = None
        if isinstance(update, ToolCall):
            line = f"  [tool] {update.title}"
        elif isinstance(update, ToolCallUpdate):
            output = (update.raw_output or "").strip().splitlines()
            line = f"  [{update.status}] {output[0][:200] if output else ''}"
        elif isinstance(update, Notice):
            line = f"  ({update.level}) {update.text}"
        if line is not None:
            print(("\n" if self._mid_line else "") + line, flush=True)
            self._mid_line = False


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
            async with asyncio.timeout(turn.timeout) as deadline:
                async with contextlib.aclosing(vm.stream_prompt(session_id, prompt)) as updates:
                    async for update in updates:
                        turn.add(update)
                        sink.changed()
        except asyncio.CancelledError:
            turn.stopped = "interrupted"
            raise
        except TimeoutError:
            if not deadline.expired():
                raise
            turn.stopped = f"timed out after {turn.timeout:g} s"
            if turn.started:
                for update in await vm.get_session_events(session_id, since=turn.last_seq):
                    turn.add(update)
                    if isinstance(update, TurnEnded):
                        break
    finally:
        sink.close()
    return turn.result()
