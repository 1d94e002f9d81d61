"""Small text helpers the flows, drafts and reviews share: a path's extension and the languages it
means, and quoting a line."""

from __future__ import annotations

import re

QUOTE_WIDTH = 80  # longest line text quoted in a reply

TS_EXTENSIONS = frozenset({".ts", ".tsx", ".mts", ".cts"})
JS_EXTENSIONS = frozenset({".js", ".jsx", ".mjs", ".cjs"})
PY_EXTENSIONS = frozenset({".py", ".pyi"})
SH_EXTENSIONS = frozenset({".sh", ".bash"})

_BACKTICKS = re.compile(r"`+")


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name.lstrip(".") else ""


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def code_span(text: str) -> str:
    """`text` as inline markdown code, with a fence longer than any run of backticks inside."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"
