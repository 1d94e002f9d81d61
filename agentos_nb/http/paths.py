"""How an actor and a VM path are written in a URL, the same for the server, the client and the
Jupyter extension that forwards to them.

An actor key is ONE path segment: its parts percent-encoded (commas and slashes included) and
joined by ",", so `["my-project"]` is `my-project` and `["a,b", "c"]` is `a%2Cb,c`; the empty
key is the empty segment (so the one-part key `[""]` has no URL). A segment starting with a
literal "@" names an actor by id instead (`@3f2a...`), which a percent-encoded key part never
does ("@" is always encoded as %40).
A VM path follows `/files/` as it is, or `~/...` for a path relative to the VM's home.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote, unquote

from agentos_nb.errors import ValidationError

ID_PREFIX = "@"


class ActorAddress(NamedTuple):
    """Which actor a URL names: by key, or by id (exactly one of the two)."""

    key: tuple[str, ...] | None
    actor_id: str | None


def key_segment(key: tuple[str, ...]) -> str:
    if key == ("",):
        raise ValidationError(
            "the key [''] cannot be told apart from the empty key in a URL; use () or a name"
        )
    return ",".join(quote(part, safe="") for part in key)


def id_segment(actor_id: str) -> str:
    return ID_PREFIX + quote(actor_id, safe="")


def parse_actor_segment(raw: str) -> ActorAddress:
    """The actor named by a raw (still percent-encoded) path segment."""
    if raw.startswith(ID_PREFIX):
        return ActorAddress(None, unquote(raw[len(ID_PREFIX) :]))
    if not raw:
        return ActorAddress((), None)
    return ActorAddress(tuple(unquote(part) for part in raw.split(",")), None)


def file_path_segments(path: str) -> str:
    """A VM path as the tail of a URL. Dot segments are percent-encoded, since HTTP clients
    resolve `..` in URLs themselves: the VM must see it and refuse a path that leaves its root."""
    relative = not path.startswith("/")
    parts = [_dots(quote(part, safe="~")) for part in path.lstrip("/").split("/")]
    tail = "/".join(parts)
    if relative and not (path == "~" or path.startswith("~/")):
        return "~/" + tail
    return tail


def parse_file_path(raw_tail: str) -> str:
    """The VM path a URL tail names (the inverse of `file_path_segments`)."""
    path = unquote(raw_tail)
    if path == "~" or path.startswith("~/"):
        return path
    return "/" + path


def _dots(part: str) -> str:
    return part.replace(".", "%2E") if part in (".", "..") else part
