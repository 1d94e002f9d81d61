"""Agents answer in Markdown (backticks, bullets, fences): the notebook shows it rendered. What
a model wrote is untrusted, so raw HTML in it is shown as text and links to `javascript:`,
`data:` or `file:` are dropped (markdown-it's own link check), never passed through."""

from __future__ import annotations

from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def markdown_html(text: str) -> str:
    """`text` as sanitised HTML, in a block the styles know (`ao-md`)."""
    return f'<div class="ao-md">{_MARKDOWN.render(text)}</div>'
