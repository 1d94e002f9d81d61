"""The one hook the runtime has for what serves it from outside (the HTTP server is one): a
registry stops its faces in the right order without knowing what they are, so the runtime never
imports the layers above it."""

from __future__ import annotations

from typing import Protocol


class Face(Protocol):
    """Something that serves a registry, attached with `registry.attach(face)`. Stopping the
    registry drains it before the actors stop, so that requests under way are answered by a live
    runtime, and closes it once they have stopped, so that event streams see their end."""

    async def drain(self, grace: float | None, /) -> None:
        """Take no new work, and give the work under way `grace` seconds (None: the face's own)."""

    def cut_short(self) -> None:
        """`stop(grace=0)` during a stop: cancel the work under way, unfinished."""

    async def close(self) -> None:
        """The runtime has stopped: end what is left and release what the face holds."""
