"""How an actor and a VM path are written in a URL, the same for the server, the client and the
Jupyter extension that forwards to them.

An actor key is ONE path segment: its parts percent-encoded (commas and slashes included) and
joined by ",", so `["my-project"]` is `my-project` and `["a,b", "c"]` is `a%2Cb,c`; the empty
key is the empty segment (so the one-part key `[""]` has no URL). A segment starting with a
literal "@" names an actor by id instead (`@3f2a...`), which a percent-encoded key part never
does ("@" is always encoded as %40).
A VM path follows `/files/` as it is, or `~/...` for a path relative to the VM's home.
Both must decode to UTF-8; a key has at most `MAX_KEY_PARTS` parts and `MAX_KEY_BYTES` bytes.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote, unquote

from agentos_nb.errors import ValidationError
from agentos_nb.http.errors import KeyTooLong, MalformedUrl

ID_PREFIX = "@"
MAX_KEY_PARTS = 32
MAX_KEY_BYTES = 1024
"""A key's limits over HTTP: its parts, and its bytes as UTF-8 (decoded, separators included)."""


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
        return ActorAddress(None, _decode(raw[len(ID_PREFIX) :], "actor id"))
    if not raw:
        return ActorAddress((), None)
    parts = raw.split(",")
    if len(parts) > MAX_KEY_PARTS:
        raise KeyTooLong(f"the key has {len(parts)} parts; at most {MAX_KEY_PARTS}", limit=MAX_KEY_PARTS)
    key = tuple(_decode(part, "key") for part in parts)
    size = sum(len(part.encode()) for part in key) + len(key) - 1
    if size > MAX_KEY_BYTES:
        raise KeyTooLong(f"the key is {size} bytes; at most {MAX_KEY_BYTES}", limit=MAX_KEY_BYTES)
    return ActorAddress(key, None)


def _decode(raw: str, what: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise MalformedUrl(f"the {what} in the URL is not UTF-8 once percent-decoded: {raw[:80]!r}") from None


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
    path = _decode(raw_tail, "VM path")
    if path == "~" or path.startswith("~/"):
        return path
    return "/" + path


def _dots(part: str) -> str:
    return part.replace(".", "%2E") if part in (".", "..") else part
