"""One transcript item as HTML: messages as text blocks, each tool call folded into a
`<details>` that unfolds to its input and output, notices, and a line at the end of a turn."""

from __future__ import annotations

from agentos_nb.jupyter.dashboard.markup import badge, esc, muted, pre, warn
from agentos_nb.jupyter.dashboard.text import clip, duration, pretty_json
from agentos_nb.jupyter.markdown_html import markdown_html
from agentos_nb.jupyter.transcript import PERMISSION_ENDINGS, TranscriptItem

MESSAGE_CHARS = 20_000
TOOL_CHARS = 6_000
TOOL_TONES = {"pending": "grey", "in_progress": "blue", "completed": "green", "failed": "red"}
NOTICE_TONES = {"info": "blue", "warning": "amber", "error": "red"}
WHO = {"user": "prompt", "agent": "agent", "thought": "thinking"}


def render_item(item: TranscriptItem) -> str:
    if item.kind in WHO:
        text = clip(item.text, MESSAGE_CHARS)
        shown = markdown_html(text) if item.kind == "agent" else esc(text)
        who = f'<span class="ao-who">{WHO[item.kind]}</span>'
        return f'<div class="ao-msg ao-msg-{item.kind}">{who}{shown}</div>'
    if item.kind == "tool":
        took = muted(duration(item.duration)) if item.duration is not None else ""
        summary = (
            f"{badge(item.tool_kind or 'tool', 'purple')}"
            f'<span class="ao-tool-title" title="{esc(item.title)}">{esc(item.title or "tool call")}</span>'
            f"{badge(item.status.replace('_', ' ') or 'pending', TOOL_TONES.get(item.status, 'grey'))}{took}"
        )
        body = f"<div>{muted('input')}</div>{pre(pretty_json(item.input, TOOL_CHARS))}"
        if item.output:
            body += f"<div>{muted('output')}</div>{pre(clip(item.output, TOOL_CHARS))}"
        return f'<details class="ao-tool"><summary>{summary}</summary>{body}</details>'
    if item.kind == "permission":
        answer = PERMISSION_ENDINGS.get(item.status, "waiting for an answer")
        tone = "amber" if item.status == "waiting" else "grey"
        return f"<div>{badge('permission', tone)} {esc(item.title)} {muted(answer)}</div>"
    if item.kind == "notice":
        return f"<div>{badge(item.status, NOTICE_TONES.get(item.status, 'grey'))} {esc(item.text)}</div>"
    tone = "green" if item.status == "end_turn" else "amber" if item.status == "cancelled" else "red"
    error = " " + warn(item.text) if item.text else ""
    ended = badge(f"turn ended: {item.status}", tone)
    return f'<div class="ao-turn">{ended}<span>{esc(item.detail)}</span>{error}</div>'
