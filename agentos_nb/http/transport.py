"""A lean HTTP/1.1 transport for httpx: asyncio streams and a keep-alive pool, nothing else.

httpx's default stack (httpcore, h11 and anyio) spends about a millisecond of CPU per request on
a small machine, more than the registry's server spends answering it, so a client sending in a
loop is what limits throughput. This transport does what a client of a registry needs, which is
plain HTTP/1.1 to a host and port: requests with a known body, replies framed by
Content-Length, chunked (event streams) or the connection's end. httpx keeps its API, its
models and its exceptions; anything else (https, proxies) goes to httpx's own transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

MAX_HEAD_BYTES = 64 * 1024
READ_SIZE = 64 * 1024


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        """Still open, and the server has said nothing since (it closes idle connections)."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, keeping up to `max_idle` idle connections per host."""

    def __init__(self, *, max_idle: int = 32) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._max_idle = max_idle
        self._fallback: httpx.AsyncHTTPTransport | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            if self._fallback is None:
                self._fallback = httpx.AsyncHTTPTransport()
            return await self._fallback.handle_async_request(request)
        if self._closed:
            raise httpx.ConnectError("the client is closed", request=request)
        timeouts = request.extensions.get("timeout", {})
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        message = _request_head(request, len(body)) + body
        where = (request.url.host, request.url.port or 80)
        connection = self._reuse(where)
        if connection is not None:
            try:
                return await self._exchange(connection, where, message, request, timeouts)
            except _NothingReceived:
                connection.close()  # closed by the server while idle: the request never arrived
        connection = await self._connect(where, request, timeouts.get("connect"))
        try:
            return await self._exchange(connection, where, message, request, timeouts)
        except _NothingReceived:
            raise httpx.RemoteProtocolError(
                "the server closed the connection without replying", request=request
            ) from None

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()

    def _reuse(self, where: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(where)
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    def release(self, where: tuple[str, int], connection: _Connection) -> None:
        """Keep a connection whose reply was read to its end, for the next request."""
        idle = self._idle.setdefault(where, [])
        if self._closed or len(idle) >= self._max_idle or not connection.usable:
            connection.close()
        else:
            idle.append(connection)

    async def _connect(
        self, where: tuple[str, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(*where, limit=MAX_HEAD_BYTES)
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {where[0]}:{where[1]} in {timeout} s", request=request
            ) from None
        except OSError as error:
            raise httpx.ConnectError(str(error), request=request) from None
        return _Connection(reader, writer)

    async def _exchange(
        self,
        connection: _Connection,
        where: tuple[str, int],
        message: bytes,
        request: httpx.Request,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        reader = connection.reader
        try:
            async with asyncio.timeout(timeouts.get("read")):
                head = await self._send_and_read_head(connection, message, timeouts.get("write"))
                status, headers = _parse_head(head)
                length = _header(headers, b"content-length")
                chunked = b"chunked" in (_header(headers, b"transfer-encoding") or b"").lower()
                keep = (
                    _header(headers, b"connection") != b"close"
                    and request.headers.get("connection") != "close"
                )
                if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    content, stream = b"", None
                elif chunked:
                    content, stream = None, _Chunks(self, connection, where, keep, timeouts.get("read"))
                elif length is not None:
                    content, stream = await reader.readexactly(int(length)), None
                else:
                    content, stream, keep = await reader.read(), None, False
        except _NothingReceived:
            raise
        except TimeoutError:
            connection.close()
            raise httpx.ReadTimeout("the server did not reply in time", request=request) from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            connection.close()
            raise httpx.ReadError(f"the reply could not be read: {error!r}", request=request) from None
        except BaseException:  # cancelled midway: the connection's state is unknown
            connection.close()
            raise
        if stream is None:
            if keep:
                self.release(where, connection)
            else:
                connection.close()
            return httpx.Response(status, headers=headers, content=content, request=request)
        return httpx.Response(status, headers=headers, stream=stream, request=request)

    @staticmethod
    async def _send_and_read_head(
        connection: _Connection, message: bytes, write_timeout: float | None
    ) -> bytes:
        """Send the request and read the reply's head; a connection that fails before a byte
        of the reply came back raises `_NothingReceived` (the server closed it while idle)."""
        try:
            connection.writer.write(message)
            async with asyncio.timeout(write_timeout):
                await connection.writer.drain()
            return await connection.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise
            raise _NothingReceived from None
        except ConnectionError:
            raise _NothingReceived from None


class _NothingReceived(Exception):
    """A reused connection ended before any reply: safe to send the request again."""


class _Chunks(httpx.AsyncByteStream):
    """A chunked reply body, read as it comes (an event stream never ends on its own)."""

    def __init__(
        self,
        transport: LeanTransport,
        connection: _Connection,
        where: tuple[str, int],
        keep: bool,
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._where = where
        self._keep = keep
        self._timeout = timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        try:
            while True:
                async with asyncio.timeout(self._timeout):
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                            pass
                        self._done = True
                        return
                    data = await reader.readexactly(size + 2)
                yield data[:-2]
        except TimeoutError:
            raise httpx.ReadTimeout("the server sent nothing in time") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            raise httpx.ReadError(f"the reply could not be read: {error!r}") from None

    async def aclose(self) -> None:
        if self._done and self._keep:
            self._transport.release(self._where, self._connection)
        else:
            self._connection.close()


def _request_head(request: httpx.Request, length: int) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1"]
    has_host = False
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            continue
        has_host = has_host or lowered == b"host"
        lines.append(name + b": " + value)
    if not has_host:
        lines.append(b"Host: " + request.url.netloc)
    if length or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
