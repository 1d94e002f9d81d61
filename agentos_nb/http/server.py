"""The registry's HTTP server: tornado, on the event loop the runtime runs on.

It binds 127.0.0.1 unless told otherwise and wants a bearer token on every route but /health
(generated unless given, kept in a runtime file readable only by its user, never logged), and
takes scoped tokens and signed webhooks besides (`scopes.py`). A request is checked in this
order, and the first failure answers it: headers' size (431), route (404, 405), token (401) and
its scope (403), body size (413: the body is dropped as it arrives, never kept), a webhook's
signature (401), then, in the handler, the URL's key or path (400 not UTF-8, 414 too long),
JSON (400) and fields (422).
Headers get `HEADER_SECONDS` to arrive and a body `BODY_SECONDS`. The server is attached to its
registry as a face (`actors/faces.py`), so stopping the registry drains it (no new requests,
those under way get time to finish), then stops the actors (ending event streams), then closes
the connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from http.client import responses
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, SecretStr
from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer as TornadoServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application

from agentos_nb.errors import AgentOSError
from agentos_nb.http import sse
from agentos_nb.http.api import Api
from agentos_nb.http.auth import identify, new_token
from agentos_nb.http.errors import (
    BodyTooLarge,
    HeadersTooLarge,
    HttpError,
    InternalError,
    MethodNotAllowed,
    ServerStopping,
    Unauthorized,
    error_reply,
)
from agentos_nb.http.openapi import build_document
from agentos_nb.http.paths import parse_actor_segment
from agentos_nb.http.route_table import ROUTES
from agentos_nb.http.routing import Reply, Request, Route, Router, StreamEvent, json_bytes
from agentos_nb.http.runtime_files import remove_runtime_file, write_runtime_file
from agentos_nb.http.scopes import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ScopedToken,
    SignatureCheck,
    Webhook,
    scoped_tokens,
    signed_webhooks,
)
from agentos_nb.http.terminal_socket import socket_application

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine

    from agentos_nb.actors.registry import Registry

logger = logging.getLogger("agentos_nb.http")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DRAIN_SECONDS = 10.0
"""How long requests under way get to finish when the server stops, unless a grace is given."""
HEADER_SECONDS = 10.0
"""A request's headers must arrive within this long (tornado's idle timeout, which is the same
clock: a kept-alive connection idle this long is closed too, and clients reconnect)."""
BODY_SECONDS = 10.0
"""A request's body must arrive within this long once its headers have: no half-sent request is
held open."""
MAX_HEADER_BYTES = 64 * 1024
"""Headers past this are answered 431. Tornado reads up to `READ_HEADER_BYTES` before we can
answer; past that it drops the connection."""
READ_HEADER_BYTES = 1024 * 1024
CLOSE_SECONDS = 1.0
"""How long replies still being written (an event stream's end) get once the registry stopped."""
DISCARDED_BODY_FACTOR = 16
"""A body over the limit is read and dropped, up to this many times the limit, so that its
sender can finish sending and read the 413; past that, the connection is closed on it."""

_CALLS_ACTIONS = ("action", "streaming_action", "vm")
"""Routes whose handlers run actions: what those raise is the action's failure, not the server's."""


class ServerInfo(BaseModel):
    """Where a registry serves. The token prints masked (`info.token.get_secret_value()` shows
    it): clients on this machine read it from `runtime_file`, so it need not be shown at all."""

    model_config = ConfigDict(frozen=True)

    url: str
    host: str
    port: int
    token: SecretStr
    runtime_file: str


class HttpServer:
    """One registry's HTTP API, served on the running event loop."""

    def __init__(
        self,
        registry: Registry,
        *,
        host: str,
        port: int,
        token: str | None = None,
        tokens: Iterable[ScopedToken | dict[str, Any]] = (),
        webhooks: Iterable[Webhook | dict[str, Any]] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, not {max_body_bytes}")
        self.registry = registry
        self.token = token or new_token()
        self.tokens = scoped_tokens(tokens, self.token)
        """Extra tokens, each opening only its scope; never written to the runtime file."""
        self.webhooks = signed_webhooks(webhooks)
        self.signatures = SignatureCheck()
        self.max_body_bytes = max_body_bytes
        self.router = Router(ROUTES)
        self.accepting = False
        self._host = host
        self._port = port
        self._runtime_file: Path | None = None
        self._tornado: TornadoServer | None = None
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = asyncio.Event()
        """Set once the server has closed (the registry stopped)."""
        self.api: Api | None = None
        self.sockets: Application | None = None
        """Where authorised WebSocket upgrades go (`terminal_socket.py`)."""
        self.info: ServerInfo | None = None

    def start(self) -> ServerInfo:
        """Bind and start serving; port 0 picks a free port."""
        if self.info is not None:
            return self.info
        sockets = bind_sockets(self._port, address=self._host)
        port = sockets[0].getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        url = f"http://{host}:{port}"
        try:
            self._runtime_file, _ = write_runtime_file(name=self.registry.name, url=url, token=self.token)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        self.api = Api(self.registry, lambda: json_bytes(build_document(self.registry, ROUTES, url=url)))
        self.sockets = socket_application(self.api, self.router)
        self._tornado = TornadoServer(
            _Connections(self),
            idle_connection_timeout=HEADER_SECONDS,
            body_timeout=BODY_SECONDS,
            max_header_size=READ_HEADER_BYTES,
            max_body_size=self.max_body_bytes * DISCARDED_BODY_FACTOR,
        )
        self._tornado.add_sockets(sockets)
        self.accepting = True
        self.info = ServerInfo(
            url=url,
            host=self._host,
            port=port,
            token=SecretStr(self.token),
            runtime_file=str(self._runtime_file),
        )
        logger.info("registry %r serves at %s", self.registry.name, url)
        return self.info

    async def drain(self, timeout: float | None = None) -> None:
        """Stop listening, refuse new requests (503), and give those under way `timeout` s
        (default `DRAIN_SECONDS`)."""
        if not self.accepting or self._tornado is None:
            return
        self.accepting = False
        self._tornado.stop()
        if self._in_flight == 0:
            return
        timeout = DRAIN_SECONDS if timeout is None else timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            logger.warning(
                "%d HTTP requests still running after %g s; stopping anyway", self._in_flight, timeout
            )

    def cut_short(self) -> None:
        """A second Ctrl-C while draining: stop listening and cancel the requests under way,
        unanswered; the runtime file goes at once, so no client finds a server that is ending."""
        self.accepting = False
        if self._tornado is not None:
            self._tornado.stop()
        if self._runtime_file is not None:
            remove_runtime_file(self._runtime_file)
            self._runtime_file = None
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Let event streams send their end, then close every connection and remove the
        runtime file."""
        self.accepting = False
        if self._runtime_file is not None:
            remove_runtime_file(self._runtime_file)
            self._runtime_file = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_SECONDS)
        if self._tornado is not None:
            self._tornado.stop()
            await self._tornado.close_all_connections()
        for task in list(self._tasks):  # requests still waiting on a registry that is gone
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.closed.set()

    def run(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Answer a request in its own task, kept referenced until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def request_started(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()


class _Connections(httputil.HTTPServerConnectionDelegate):
    """Tornado's HTTP/1.1 connections (parsing, keep-alive, chunking) without its web framework:
    each request goes straight to an `_Exchange`, which is half the work per request."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> _Exchange:
        return _Exchange(self._server, request_conn, server_conn)  # type: ignore[arg-type]


class _Exchange(httputil.HTTPMessageDelegate):
    """One request and its reply: matched against the route table, checked, handed to its handler."""

    def __init__(self, server: HttpServer, connection: HTTP1Connection, server_conn: object) -> None:
        self._server = server
        self._connection = connection
        self._server_conn = server_conn
        self._socket: httputil.HTTPMessageDelegate | None = None
        """Tornado's WebSocket code, once an authorised upgrade has handed the request to it."""
        self._method = ""
        self._path = ""
        self._query = ""
        self._route: Route | None = None
        self._params: dict[str, str] = {}
        self._scope: ScopedToken | None = None
        self._webhook: Webhook | None = None
        self._signature: tuple[str | None, str | None] = (None, None)
        self._seen_signature: str | None = None
        self._refusal: HttpError | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._answered = False
        self._stream_task: asyncio.Task[None] | None = None
        # Tornado tells a delegate of a close only while it reads the request; after that, only
        # through this callback, which `on_connection_close` serves for both.
        connection.set_close_callback(self.on_connection_close)

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self._method = start_line.method
        self._path, _, self._query = start_line.path.partition("?")
        server = self._server
        size = _header_bytes(start_line, headers)
        if size > MAX_HEADER_BYTES:
            headers_too_large = HeadersTooLarge(
                f"the request's headers are {size} bytes; at most {MAX_HEADER_BYTES}"
            )
            self._answer_error(headers_too_large)  # now, reading no body; the connection closes
            return
        try:
            if not server.accepting:
                raise ServerStopping("the server is stopping")
            route, params = server.router.match(self._method, self._path)
            if not route.public:
                self._authorize(route, params, headers)
        except HttpError as refusal:
            self._refusal = refusal  # answered once the request is read, so the connection stays usable
            return
        if (
            route.upgrades
            and headers.get("Upgrade", "").lower() == "websocket"
            and server.sockets is not None
        ):
            self._socket = server.sockets.start_request(self._server_conn, self._connection)
            self._socket.headers_received(start_line, headers)
            return
        declared = headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > server.max_body_bytes:
            too_large = BodyTooLarge(f"the body is {declared} bytes; the limit is {server.max_body_bytes}")
            if int(declared) > server.max_body_bytes * DISCARDED_BODY_FACTOR:
                self._answer_error(too_large)  # now, reading none of it; the connection closes
            else:
                self._refusal = too_large
            return
        self._route, self._params = route, params

    def _authorize(self, route: Route, params: dict[str, str], headers: httputil.HTTPHeaders) -> None:
        """A full token opens everything, a scoped one its scope; a post to a webhook's queue
        without a token waits for its body, whose signature `finish` checks. A preview link's
        signature is its capability, whatever token comes with it: its handler checks it."""
        if route.scope == "previews":
            return
        server = self._server
        authorization = headers.get("Authorization")
        who = identify(authorization, server.token, server.tokens)
        if isinstance(who, ScopedToken):
            who.check(route.scope, params, parse_actor_segment(params["key"]) if "key" in params else None)
            self._scope = who
        elif who is None:
            if authorization is None and route.scope == "send" and server.webhooks:
                self._webhook = _webhook_for(server.webhooks, params)
            if self._webhook is None:
                raise Unauthorized(
                    "this route needs the header `Authorization: Bearer <token>` with the server's token"
                )
            self._signature = (headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER))

    def data_received(self, chunk: bytes) -> None:
        if self._socket is not None:
            self._socket.data_received(chunk)
            return
        if self._refusal is not None or self._answered:
            return  # dropped: the request is refused once its body has arrived
        self._size += len(chunk)
        if self._size > self._server.max_body_bytes:
            self._chunks.clear()
            self._refusal = BodyTooLarge(f"the body is over the limit of {self._server.max_body_bytes} bytes")
        else:
            self._chunks.append(chunk)

    def finish(self) -> None:
        if self._socket is not None:
            self._socket.finish()
            return
        if self._answered:
            return
        if self._refusal is not None:
            self._answer_error(self._refusal)
            return
        if self._webhook is not None:
            try:
                self._seen_signature = self._server.signatures.verify(
                    self._webhook, *self._signature, b"".join(self._chunks)
                )
            except HttpError as refusal:
                self._answer_error(refusal)
                return
        task = self._server.run(self._serve())
        if self._route is not None and self._route.streams:
            self._stream_task = task

    def on_connection_close(self) -> None:
        """The reader has gone: a stream's request is cancelled, and with it what feeds the
        stream (an action, a turn, a subscription), even before its first event. Other requests
        run to their end: what they do is not undone by the caller leaving."""
        if self._stream_task is not None:
            self._stream_task.cancel()
        if self._socket is not None:
            self._socket.on_connection_close()

    async def _serve(self) -> None:
        route = self._route
        assert route is not None
        assert self._server.api is not None
        query = parse_qs(self._query, keep_blank_values=True) if self._query else {}
        request = Request(self._server.api, self._params, query, b"".join(self._chunks), self._scope)
        self._chunks.clear()
        if route.drains:
            self._server.request_started()
        accepted = False
        try:
            if route.streams:
                await self._stream(route, request)
            else:
                reply: Reply = await route.handler(request)  # type: ignore[misc]
                accepted = reply.status < 400
                self._answer(reply)
        except Exception as error:
            if not self._answered:
                self._answer_error(error, route)
        finally:
            if route.drains:
                self._server.request_finished()
            if not accepted and self._seen_signature is not None:
                self._server.signatures.forget(self._seen_signature)  # not taken: it may come again

    async def _stream(self, route: Route, request: Request) -> None:
        events: AsyncIterator[StreamEvent] = route.handler(request)  # type: ignore[assignment]
        try:
            first = await anext(events)  # what fails before this answers as JSON, not as a stream
        except StopAsyncIteration:
            first = None
        self._answered = True
        await self._relay(route, first, events)

    async def _relay(self, route: Route, first: StreamEvent, events: AsyncIterator[StreamEvent]) -> None:
        connection = self._connection
        try:
            opening = None if first is None else sse.frame(*first)
            await connection.write_headers(_start_line(200), _EVENT_STREAM_HEADERS.copy(), opening)
            try:
                while True:
                    await connection.write(_sse(await anext(events)))
            except StopAsyncIteration:
                ending = sse.frame(sse.END, b"{}")
            except StreamClosedError:
                raise
            except Exception as error:
                _, body = self._error_body(error, route)
                ending = sse.frame(sse.ERROR, json_bytes(body))
            await connection.write(ending)
            connection.finish()
        except StreamClosedError:
            pass
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    def _answer(self, reply: Reply, headers: dict[str, str] | None = None) -> None:
        self._answered = True
        fields = httputil.HTTPHeaders({**reply.headers, **(headers or {})})
        if reply.content_type is not None:
            fields["Content-Type"] = reply.content_type
        if reply.status != 204:
            fields["Content-Length"] = str(len(reply.body))
        body = None if self._method == "HEAD" or reply.status == 204 else reply.body
        self._connection.write_headers(_start_line(reply.status), fields, body or None)
        self._connection.finish()
        if logger.isEnabledFor(logging.DEBUG):  # method, path and status: never headers, which hold the token
            logger.debug("%d %s %s", reply.status, self._method, self._path)

    def _answer_error(self, error: BaseException, route: Route | None = None) -> None:
        status, body = self._error_body(error, route)
        headers = {}
        if isinstance(error, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        elif isinstance(error, MethodNotAllowed):
            headers["Allow"] = str(error.details.get("allow", ""))
        self._answer(Reply(status, json_bytes(body)), headers)

    def _error_body(self, error: BaseException, route: Route | None) -> tuple[int, dict[str, Any]]:
        """What answers `error`; an unexpected one is logged with its traceback, never sent."""
        if not isinstance(error, AgentOSError) and (route is None or route.per not in _CALLS_ACTIONS):
            logger.error("%s %s failed", self._method, self._path, exc_info=error)
            error = InternalError("the server failed to answer this request; its log says why")
        status, body = error_reply(error)
        if status >= 500 and not isinstance(error, HttpError):
            logger.error("%s %s: %s", self._method, self._path, body["message"], exc_info=error)
        return status, body


def _webhook_for(webhooks: list[Webhook], params: dict[str, str]) -> Webhook | None:
    """The webhook that serves the queue `params` name, if any (none for a malformed key)."""
    try:
        address = parse_actor_segment(params["key"])
    except HttpError:
        return None
    return next((webhook for webhook in webhooks if webhook.serves(params, address)), None)


_EVENT_STREAM_HEADERS = httputil.HTTPHeaders(
    {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
)


def _header_bytes(start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> int:
    request_line = len(start_line.method) + len(start_line.path) + len(start_line.version) + 4
    return request_line + sum(len(name) + len(value) + 4 for name, value in headers.get_all())


def _start_line(status: int) -> httputil.ResponseStartLine:
    return httputil.ResponseStartLine("HTTP/1.1", status, responses.get(status, "Unknown"))


def _sse(event: StreamEvent) -> bytes:
    return sse.KEEPALIVE if event is None else sse.frame(*event)
