"""Plain-text formatting shared by the tabs: actor labels, times, durations, clipped JSON.

Pure functions of plain values, so every tab names things the same way; HTML escaping is
`markup`'s job, applied to what these return.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from typing import Any


def actor_label(name: str, key: Sequence[str]) -> str:
    """`writer/my-project`; an actor with the empty key is just its name."""
    return "/".join((name, *key)) if key else name


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compact_json(value: Any, limit: int) -> str:
    """A value as one line of JSON (anything JSON cannot hold is shown as its str), clipped."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except ValueError:  # a circular structure
        text = repr(value)
    return clip(text, limit)


def pretty_json(value: Any, limit: int) -> str:
    """A value as indented JSON, or the text itself if it is a string, clipped."""
    if isinstance(value, str):
        return clip(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except ValueError:
        text = repr(value)
    return clip(text, limit)


def clock_time(at: float) -> str:
    """Local wall-clock time with milliseconds: `14:03:07.215`."""
    return _hours_minutes_seconds(int(at)) + f".{int(at * 1000) % 1000:03d}"


@functools.lru_cache(maxsize=64)
def _hours_minutes_seconds(second: int) -> str:
    """Formatted once per second: an event log shows many events of the same second."""
    return time.strftime("%H:%M:%S", time.localtime(second))


def duration(seconds: float) -> str:
    """`850 µs`, `12.4 ms`, `3.21 s`, `2 min 5 s`."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


def size(n: int) -> str:
    """A byte count: `512 B`, `3.4 KB`, `1.2 MB`."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"
