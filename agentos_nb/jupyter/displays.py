"""Rich displays: compact HTML in notebooks, readable text in terminal IPython.

The runtime's result types know nothing of Jupyter (dependencies point one way), so their
displays are formatters registered with the running IPython shell rather than `_repr_html_`
methods. `import agentos_nb` registers them when a shell is running, `%load_ext agentos_nb`
makes sure of it, and `%unload_ext agentos_nb` puts back whatever was there before.
Every string that reaches HTML goes through `html.escape`.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agentos_nb.actors.handles import ActorHandle, SendResult
from agentos_nb.jupyter.markdown_html import markdown_html
from agentos_nb.jupyter.transcript import PERMISSION_ENDINGS, TranscriptItem
from agentos_nb.vm.models import DirEntry, ExecResult
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    CurrentModeUpdate,
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

OUTPUT_CHARS = 4000
"""How much of a tool's output, a command's output or a response a display shows."""
FILE_CHARS = 200_000
"""How much of a file `%agentos cat` shows."""
LISTED = 1000
"""How many entries of a directory `%agentos ls` shows (the Listing keeps them all)."""

OK, BAD, WARN, INFO, MUTED = "#2e7d32", "#c62828", "#e65100", "#1565c0", "#757575"
FONT = "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;line-height:1.4"
PRE = (
    "margin:4px 0;padding:4px 6px;white-space:pre-wrap;word-break:break-word;max-height:24em;"
    "overflow:auto;background:var(--jp-layout-color2,#f5f5f5);border-radius:3px;font-size:12px"
)


# --- HTML pieces ---------------------------------------------------------------------------


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def badge(text: str, color: str) -> str:
    return (
        f'<span style="display:inline-block;padding:0 6px;border-radius:3px;border:1px solid {color};'
        f'color:{color};font-size:11px;font-weight:600">{esc(text)}</span>'
    )


def muted(text: str) -> str:
    return f'<span style="color:{MUTED}">{esc(text)}</span>'


def pre(text: str, color: str | None = None) -> str:
    style = PRE if color is None else f"{PRE};color:{color}"
    return f'<pre style="{style}">{esc(text)}</pre>'


def box(body: str, accent: str) -> str:
    return f'<div style="{FONT};border-left:3px solid {accent};padding:2px 8px;margin:2px 0">{body}</div>'


def clip(text: str, limit: int = OUTPUT_CHARS) -> str:
    """At most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit:,} more characters)"


def as_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except ValueError:  # a circular structure
        return repr(value)


def usage_text(usage: Usage) -> str:
    parts = [f"{usage.requests} request{'s' * (usage.requests != 1)}"]
    if usage.input_tokens or usage.output_tokens:
        parts.append(f"{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens")
    parts.append(f"{usage.tool_calls} tool call{'s' * (usage.tool_calls != 1)}")
    return " · ".join(parts)


def short_id(identifier: str) -> str:
    return identifier[:8]


STOP_COLORS = {"end_turn": OK, "cancelled": WARN, "max_tokens": WARN, "max_turn_requests": WARN}
SEND_COLORS = {"enqueued": INFO, "completed": OK, "timed_out": WARN, "dead_lettered": BAD}


# --- the runtime's types ---------------------------------------------------------------------


def prompt_result_html(result: PromptResult) -> str:
    color = STOP_COLORS.get(result.stop_reason, BAD)
    body = f'<div style="white-space:pre-wrap">{esc(result.text)}</div>' if result.text else ""
    if result.error:
        body += pre(result.error, BAD)
    footer = f"{badge(result.stop_reason, color)} {muted(usage_text(result.usage))}"
    footer += f" {muted('· session ' + short_id(result.session_id))}"
    return box(f"{body}<div>{footer}</div>", color)


def prompt_result_text(result: PromptResult) -> str:
    lines = [result.text] if result.text else []
    if result.error:
        lines.append(f"error: {result.error}")
    lines.append(f"[{result.stop_reason}] {usage_text(result.usage)} · session {short_id(result.session_id)}")
    return "\n".join(lines)


def exec_result_html(result: ExecResult) -> str:
    color = OK if result.exit_code == 0 else BAD
    body = pre(clip(result.stdout)) if result.stdout else ""
    body += pre(clip(result.stderr), BAD) if result.stderr else ""
    flags = [badge(f"exit {result.exit_code}", color)]
    flags += [badge("output cut", WARN)] if result.truncated else []
    flags += [badge("timed out", WARN)] if result.timed_out else []
    return box(f"{body}<div>{' '.join(flags)}</div>", color)


def exec_result_text(result: ExecResult) -> str:
    lines = [clip(text).rstrip("\n") for text in (result.stdout, result.stderr) if text]
    flags = [f"exit {result.exit_code}"]
    flags += ["output cut"] if result.truncated else []
    flags += ["timed out"] if result.timed_out else []
    lines.append(f"[{', '.join(flags)}]")
    return "\n".join(lines)


def send_result_html(result: SendResult) -> str:
    color = SEND_COLORS[result.status]
    body = f"{badge(result.status, color)} {muted(f'message {result.message_id}')}"
    if result.response is not None:
        body += pre(clip(as_json(result.response)))
    if result.error:
        body += pre(result.error, BAD)
    return box(body, color)


def send_result_text(result: SendResult) -> str:
    lines = [f"SendResult {result.status}, message {result.message_id}"]
    if result.response is not None:
        lines.append(clip(as_json(result.response)))
    if result.error:
        lines.append(f"error: {result.error}")
    return "\n".join(lines)


def _session_facts(info: SessionInfo) -> list[str]:
    state = "closed" if info.closed else "busy" if info.busy else "open"
    model = f"{info.model} (offline)" if info.offline else info.model
    turns = f"{info.turns} turn{'s' * (info.turns != 1)}"
    return [info.agent_type, model, turns, state, f"cwd {info.cwd}"]


def session_info_html(info: SessionInfo) -> str:
    color = MUTED if info.closed else WARN if info.offline else OK
    head = f"<b>session {esc(info.session_id)}</b> {muted(' · '.join(_session_facts(info)))}"
    return box(f"<div>{head}</div><div>{muted(info.model_reason)}</div>", color)


def session_info_text(info: SessionInfo) -> str:
    return f"session {info.session_id} · {' · '.join(_session_facts(info))}\n  {info.model_reason}"


def _handle_facts(handle: ActorHandle) -> tuple[str, str | None]:
    """`writer/my-project` and the actor's id once a call has looked it up."""
    label = "/".join((handle.name, *handle.key)) if handle.key is not None else handle.name
    return label, handle.actor_id


def actor_handle_html(handle: ActorHandle) -> str:
    label, actor_id = _handle_facts(handle)
    key = "(by id)" if handle.key is None else f"key {list(handle.key)!r}"
    facts = [key, f"id {actor_id}" if actor_id else "id not looked up yet"]
    return box(f"<b>{esc(label)}</b> {muted(' · '.join(facts))}", INFO)


def actor_handle_text(handle: ActorHandle) -> str:
    label, actor_id = _handle_facts(handle)
    return f"<ActorHandle {label}{f' id={actor_id}' if actor_id else ''}>"


def update_text(update: SessionUpdate) -> str:
    """One line per update: `#4 tool_call bash: ls -la`."""
    head = f"#{update.seq} {update.session_update}"
    if isinstance(update, UserMessageChunk | AgentMessageChunk | AgentThoughtChunk):
        return f"{head} {update.content.text!r}"
    if isinstance(update, ToolCall):
        return f"{head} {update.title}"
    if isinstance(update, ToolCallUpdate):
        return f"{head} {update.status}: {(update.raw_output or '').strip()[:200]!r}"
    if isinstance(update, Notice):
        return f"{head} {update.level}: {update.text}"
    if isinstance(update, PermissionRequest):
        return f"{head} {update.request_id}: {update.tool_call.title}"
    if isinstance(update, PermissionResponse):
        return f"{head} {update.request_id}: {update.option_id or update.outcome}"
    if isinstance(update, CurrentModeUpdate):
        return f"{head} {update.current_mode_id}"
    return f"{head} {update.stop_reason}{f': {update.error}' if update.error else ''}"


# --- transcripts -------------------------------------------------------------------------------


def reply_of(updates: Iterable[SessionUpdate]) -> str:
    """The turn's final text as `send_prompt` gives it: the agent's last message, a message being
    the text chunks between two tool calls (or notices, such as a retry)."""
    reply = current = ""
    for update in updates:
        if isinstance(update, AgentMessageChunk):
            current += update.content.text
        elif isinstance(update, ToolCall | ToolCallUpdate | Notice):
            reply, current = current or reply, ""
    return current or reply


TOOL_MARKS = {"completed": ("✓", OK), "failed": ("✗", BAD)}
LEVEL_COLORS = {"info": INFO, "warning": WARN, "error": BAD}


def transcript_html(items: Sequence[TranscriptItem]) -> str:
    """A turn as it goes: the prompt, messages, and tool calls folded to their input (while they
    run) or output; the turn's end is the caller's to show."""
    parts = []
    for item in items:
        if item.kind == "user":
            parts.append(f'<div style="color:{MUTED};white-space:pre-wrap">› {esc(clip(item.text))}</div>')
        elif item.kind == "agent":
            parts.append(f'<div style="margin:2px 0">{markdown_html(item.text)}</div>')
        elif item.kind == "thought":
            parts.append(
                f'<div style="color:{MUTED};font-style:italic;white-space:pre-wrap">{esc(item.text)}</div>'
            )
        elif item.kind == "tool":
            mark, color = TOOL_MARKS.get(item.status, ("…", MUTED))
            title = esc(item.title or "tool call")
            summary = f'<span style="color:{color}">{mark}</span> <code>{title}</code>'
            shown = item.output or as_json(item.input)
            parts.append(f"<details><summary>{summary}</summary>{pre(clip(shown))}</details>")
        elif item.kind == "permission":
            answer = PERMISSION_ENDINGS.get(item.status, "waiting for your answer")
            color = WARN if item.status == "waiting" else MUTED
            title = f"<code>{esc(item.title)}</code>"
            parts.append(f'<div style="color:{color}">permission for {title}: {esc(answer)}</div>')
        elif item.kind == "notice":
            parts.append(f'<div style="color:{LEVEL_COLORS.get(item.status, INFO)}">{esc(item.text)}</div>')
    return "".join(parts)


def transcript_text(items: Sequence[TranscriptItem]) -> str:
    """`transcript_html` for a terminal: a tool call is a line with its status."""
    lines = []
    for item in items:
        if item.kind == "user":
            lines.append(f"> {item.text}")
        elif item.kind in ("agent", "thought"):
            lines.append(item.text)
        elif item.kind == "tool":
            status = item.status if item.status in TOOL_MARKS else "running"
            lines.append(f"  [{status}] {item.title or 'tool call'}")
        elif item.kind == "permission":
            answer = PERMISSION_ENDINGS.get(item.status, "waiting for an answer")
            lines.append(f"  [permission {item.detail}] {item.title}: {answer}")
        elif item.kind == "notice":
            lines.append(f"  ({item.status}) {item.text}")
    return "\n".join(lines)


# --- what the magics show ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """`%agentos ls`: a directory of a VM."""

    where: str
    path: str
    entries: Sequence[DirEntry] = field(default_factory=tuple)

    @property
    def counted(self) -> str:
        return f"{len(self.entries)} entr{'y' if len(self.entries) == 1 else 'ies'}"

    @property
    def _more(self) -> str:
        """What a display of the first LISTED entries says of the rest."""
        left = len(self.entries) - LISTED
        return f"… {left:,} more (all of them are in .entries)" if left > 0 else ""

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{esc(e.name + ('/' if e.kind == 'directory' else ''))}</code></td>"
            f'<td style="color:{MUTED}">{esc(e.kind)}</td><td style="text-align:right">{e.size:,}</td></tr>'
            for e in self.entries[:LISTED]
        )
        head = f"<b>{esc(self.where)}</b> <code>{esc(self.path)}</code> {muted(self.counted)}"
        table = f'<table style="font-size:12px;margin:2px 0">{rows}</table>' if rows else muted(" (empty)")
        more = f"<div>{muted(self._more)}</div>" if self._more else ""
        return box(f"<div>{head}</div>{table}{more}", INFO)

    def __repr__(self) -> str:
        lines = [f"{self.where}:{self.path} ({self.counted})"]
        lines += [
            f"  {e.size:>10,}  {e.name}{'/' if e.kind == 'directory' else ''}" for e in self.entries[:LISTED]
        ]
        return "\n".join([*lines, self._more] if self._more else lines)


@dataclass(frozen=True)
class FileView:
    """`%agentos cat`: a file of a VM, as text when it is UTF-8."""

    where: str
    path: str
    content: bytes

    @property
    def text(self) -> str | None:
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _shown(self) -> str:
        text = self.text
        return f"({len(self.content):,} bytes of binary data)" if text is None else clip(text, FILE_CHARS)

    def _repr_html_(self) -> str:
        head = (
            f"<b>{esc(self.where)}</b> <code>{esc(self.path)}</code> {muted(f'{len(self.content):,} bytes')}"
        )
        return box(f"<div>{head}</div>{pre(self._shown())}", INFO)

    def __repr__(self) -> str:
        return self._shown()


# --- registration with IPython -----------------------------------------------------------------

Render = Callable[[Any], str]
DISPLAYS: dict[type, tuple[Render, Render]] = {
    PromptResult: (prompt_result_html, prompt_result_text),
    ExecResult: (exec_result_html, exec_result_text),
    SendResult: (send_result_html, send_result_text),
    SessionInfo: (session_info_html, session_info_text),
    ActorHandle: (actor_handle_html, actor_handle_text),
}
"""The runtime's types with an HTML and a text display."""
TEXT_ONLY: dict[type, Render] = {
    kind: update_text
    for kind in (
        UserMessageChunk,
        AgentMessageChunk,
        AgentThoughtChunk,
        ToolCall,
        ToolCallUpdate,
        Notice,
        TurnEnded,
    )
}
"""Session updates print as one line each, so `await vm.get_session_events(...)` reads well."""


def _pretty(render: Render) -> Callable[[Any, Any, bool], None]:
    def printer(obj: Any, p: Any, cycle: bool) -> None:
        p.text(render(obj))

    return printer


@dataclass
class _Registration:
    shell: Any
    previous: dict[tuple[str, type], Any]
    """What each formatter held for each type before (None: nothing)."""


_registration: _Registration | None = None


def register(shell: Any) -> bool:
    """Register the displays with `shell`'s formatters; False if they already are."""
    global _registration
    if _registration is not None and _registration.shell is shell:
        return False
    if _registration is not None:
        unregister(_registration.shell)
    formatters = shell.display_formatter.formatters
    printers: dict[tuple[str, type], Any] = {}
    for kind, (as_html, as_text) in DISPLAYS.items():
        printers["text/html", kind] = as_html
        printers["text/plain", kind] = _pretty(as_text)
    for kind, as_text in TEXT_ONLY.items():
        printers["text/plain", kind] = _pretty(as_text)
    previous = {}
    for (mime, kind), printer in printers.items():
        previous[mime, kind] = formatters[mime].type_printers.get(kind)
        formatters[mime].for_type(kind, printer)
    _registration = _Registration(shell, previous)
    return True


def unregister(shell: Any) -> None:
    """Put back what `shell`'s formatters held before `register`."""
    global _registration
    if _registration is None or _registration.shell is not shell:
        return
    formatters = shell.display_formatter.formatters
    for (mime, kind), before in _registration.previous.items():
        if before is None:
            formatters[mime].type_printers.pop(kind, None)
        else:
            formatters[mime].type_printers[kind] = before
    _registration = None


def register_in_running_shell() -> None:
    """At import: register only if an IPython shell is running (never import IPython for it)."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        register(shell)
