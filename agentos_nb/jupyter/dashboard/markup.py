"""Small HTML builders for the tabs. Every string a user or an agent could have written goes
through `esc` before it is put in a page; the builders take already-safe HTML for cells."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence


def esc(text: object) -> str:
    """HTML-escaped text, quotes included, so it is safe in element bodies and attributes."""
    return html.escape(str(text), quote=True)


def badge(text: str, tone: str) -> str:
    """A small coloured label; `tone` is one of the `ao-tone-*` classes of the style sheet."""
    return f'<span class="ao-badge ao-tone-{tone}">{esc(text)}</span>'


def mono(text: str, *, title: str | None = None) -> str:
    attribute = f' title="{esc(title)}"' if title else ""
    return f'<span class="ao-mono"{attribute}>{esc(text)}</span>'


def pre(text: str) -> str:
    """A block of text kept as written (code, a file, a tool's output)."""
    return f'<pre class="ao-pre">{esc(text)}</pre>'


def warn(text: str, *, title: str | None = None) -> str:
    attribute = f' title="{esc(title)}"' if title else ""
    return f'<span class="ao-warn"{attribute}>{esc(text)}</span>'


def muted(text: str) -> str:
    return f'<span class="ao-muted">{esc(text)}</span>'


def empty(message: str) -> str:
    """What a tab shows before it has anything to show."""
    return f'<div class="ao-empty">{esc(message)}</div>'


def details(summary_html: str, body_html: str, *, open_: bool = False) -> str:
    state = " open" if open_ else ""
    return f"<details{state}><summary>{summary_html}</summary>{body_html}</details>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, css_class: str = "") -> str:
    """A table; `headers` are plain text, each row's cells are HTML already made safe."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    extra = f" {css_class}" if css_class else ""
    return f'<table class="ao-table{extra}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
