"""Server-sent events: how the server frames them and how the client reads them back.

The streams here carry JSON in `data` (one line: JSON never needs more) and name what it is in
`event`. A comment line keeps an idle stream alive through proxies and tells the server when
the reader has gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

KEEPALIVE = b": keepalive\n\n"
END = "end"
"""The last event of every stream: it ended as it should, not because the connection dropped."""
ERROR = "error"
"""An error after the stream began; its data is an error body (`{"error": CODE, ...}`)."""


def frame(event: str, data: bytes, *, event_id: int | None = None) -> bytes:
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return head + b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


async def read_events(lines: AsyncIterator[str]) -> AsyncIterator[ServerSentEvent]:
    """The events in a stream of lines (without their line endings), as the SSE spec reads them."""
    event = "message"
    event_id: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(event, "\n".join(data), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
