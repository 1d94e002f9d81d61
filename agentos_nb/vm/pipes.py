"""A spawned process's stdin: a pipe that the kernel writes into while the script reads it.

It behaves as an OS pipe does: a write waits while `capacity` bytes are unread, a read waits
for data, the reader sees the end once the writer closed it, and a write after the reader has
gone fails with `BrokenPipeError`. It lives on the host, beside the script that reads it.
"""

from __future__ import annotations

import asyncio
import errno
from collections import deque

PIPE_CAPACITY = 64 * 1024
"""Unread bytes a pipe holds before a write waits (Linux's default pipe size)."""


class InputPipe:
    """One process's stdin."""

    def __init__(self, capacity: int = PIPE_CAPACITY) -> None:
        self._capacity = capacity
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._closed = False  # the writer is done: the reader sees the end after what is left
        self._gone = False  # the reader is done: writes fail
        self._changed = asyncio.Condition()

    async def write(self, data: bytes) -> None:
        """Add `data`, waiting while the pipe is full."""
        async with self._changed:
            if self._closed:
                raise ValueError("stdin is closed: nothing more can be written to it")
            view = memoryview(data)
            while view:
                await self._changed.wait_for(lambda: self._gone or self._size < self._capacity)
                if self._gone:
                    raise BrokenPipeError(errno.EPIPE, "the process has ended: its stdin has no reader")
                part = bytes(view[: self._capacity - self._size])
                view = view[len(part) :]
                self._chunks.append(part)
                self._size += len(part)
                self._changed.notify_all()

    async def close(self) -> None:
        """No more input: the reader gets the end once it has read what is left."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def read(self) -> bytes | None:
        """The next bytes written, or None at the end."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._chunks) or self._closed or self._gone)
            if not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._size -= len(chunk)
            self._changed.notify_all()
            return chunk

    async def end(self) -> None:
        """The reader has gone (the script ended): pending and later writes fail, and a read
        still waiting returns the end."""
        async with self._changed:
            self._gone = True
            self._chunks.clear()
            self._size = 0
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        """Whether the writer closed it."""
        return self._closed
