"""Serving until told to stop, as the seed's server does: the first Ctrl-C or SIGTERM drains and
stops the registry, a second one cuts the drain short."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentos_nb.actors.registry import Registry
    from agentos_nb.http.server import HttpServer

logger = logging.getLogger("agentos_nb.http")


class ServeInterrupted(KeyboardInterrupt):
    """A second Ctrl-C (or SIGTERM) cut the drain short: the work under way was cancelled."""


async def stop_when_signalled(registry: Registry, server: HttpServer) -> None:
    """Wait for Ctrl-C or SIGTERM (or for the registry to be stopped some other way), then stop
    the registry, which drains `server` first. A second signal while draining cuts the drain
    short (`registry.stop(grace=0)`: the requests and work under way are cancelled), then
    `ServeInterrupted` (a `KeyboardInterrupt`) is raised. Our handlers stay installed until the
    end, so no signal ever raises `KeyboardInterrupt` inside tornado or a task, and every way
    out removes the runtime file."""
    if server.info is not None:
        logger.info("registry %r: token in %s", registry.name, server.info.runtime_file)
    signals = _Signals(asyncio.get_running_loop())
    try:
        closed = asyncio.ensure_future(server.closed.wait())
        first = asyncio.ensure_future(signals.first.wait())
        await asyncio.wait([closed, first], return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        first.cancel()
        started = time.monotonic()
        stopping = asyncio.ensure_future(registry.stop())
        second = asyncio.ensure_future(signals.second.wait())
        await asyncio.wait([stopping, second], return_when=asyncio.FIRST_COMPLETED)
        second.cancel()
        if not stopping.done():
            await registry.stop(grace=0)  # cuts the server short too, as a face of the registry
            raise ServeInterrupted
        await stopping
        logger.info("registry %r stopped in %.1f s", registry.name, time.monotonic() - started)
    finally:
        signals.close()


class _Signals:
    """SIGINT and SIGTERM counted on the loop: the first asks for a drain, the second cuts it short."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.first = asyncio.Event()
        self.second = asyncio.Event()
        self._loop = loop
        self._handled: list[int] = []
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(number, self._received)
                self._handled.append(number)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals
                pass

    def _received(self) -> None:
        (self.second if self.first.is_set() else self.first).set()

    def close(self) -> None:
        for number in self._handled:
            self._loop.remove_signal_handler(number)
