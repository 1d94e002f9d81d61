"""Processes on the host: each spawned script is one long request (`run_process`) whose reply
is its exit, and whose output reaches the kernel in `output` frames as it comes, before that
reply. Its stdin is a pipe (`pipes.InputPipe`) that `process_stdin` requests write into.

Output is gathered for up to `FLUSH_DELAY` (or `FRAME_BYTES`), so a script printing one line
at a time costs the kernel a frame per batch, not per line; a batch that fills up waits for
the channel to drain, so a flood runs at the pace the kernel reads, never piling up here.
"""

from __future__ import annotations

import asyncio
import errno
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from agentos_nb.vm.host.frames import Header
from agentos_nb.vm.pipes import InputPipe
from agentos_nb.vm.shell import Shell

Stream = Literal["stdout", "stderr"]
FRAME_BYTES = 16 * 1024
"""Output bytes that go to the kernel in one frame, at most (one chunk may be larger)."""
FLUSH_DELAY = 0.01
"""Seconds output waits for more to go with it."""


class OutputFrames:
    """One process's output, on its way to the kernel in frames of the request's id."""

    def __init__(
        self,
        request_id: int,
        send: Callable[[Header, tuple[bytes, ...]], None],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        self._id = request_id
        self._send = send
        self._drain = drain
        self._parts: list[tuple[Stream, bytearray]] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    async def write(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        if self._parts and self._parts[-1][0] == stream:
            self._parts[-1][1].extend(data)
        else:
            self._parts.append((stream, bytearray(data)))
        self._size += len(data)
        if self._size >= FRAME_BYTES:
            self.flush()
            await self._drain()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Send what is gathered now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._parts:
            return
        header = Header(kind="output", id=self._id, args={"streams": [stream for stream, _ in self._parts]})
        self._send(header, tuple(bytes(data) for _, data in self._parts))
        self._parts, self._size = [], 0


async def run_process(
    shell: Shell, pipes: dict[str, InputPipe], args: dict[str, Any], output: OutputFrames
) -> dict[str, Any]:
    """Run the script of process `args["process"]` to its end; its exit, once all its output
    has been sent. Its stdin is `args["stdin"]` (text or None), then its end, unless
    `args["keep_open"]`: then `write_stdin` adds to it until it is closed."""
    process = str(args["process"])
    if process in pipes:
        raise ValueError(f"process {process} is running already")
    pipe = pipes[process] = InputPipe()
    given = (args["stdin"] or "").encode()
    feeding = asyncio.ensure_future(_feed(pipe, given, close=not args["keep_open"]))
    try:
        run = await shell.stream(
            args["script"],
            cwd=args["cwd"],
            env=args["env"],
            stdin=pipe,
            stdout=functools.partial(output.write, "stdout"),
            stderr=functools.partial(output.write, "stderr"),
            timeout=args["timeout"],
        )
        await output.write("stdout", run.stdout.encode())  # what the shell said itself: a parse
        await output.write("stderr", run.stderr.encode())  # error, or that its time was up
        return {"exit_code": run.exit_code, "timed_out": run.timed_out}
    finally:
        feeding.cancel()
        pipes.pop(process, None)
        output.flush()


async def write_stdin(pipes: dict[str, InputPipe], args: dict[str, Any], data: bytes) -> None:
    """Write to (or with `args["close"]`, close) a running process's stdin."""
    pipe = pipes.get(str(args["process"]))
    if pipe is None:
        raise BrokenPipeError(errno.EPIPE, "the process has ended: its stdin has no reader")
    if data:
        await pipe.write(data)
    if args["close"]:
        await pipe.close()


async def _feed(pipe: InputPipe, data: bytes, *, close: bool) -> None:
    try:
        await pipe.write(data)
    except BrokenPipeError:  # the script ended without reading it all
        return
    if close:
        await pipe.close()
