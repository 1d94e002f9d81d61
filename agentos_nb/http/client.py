"""`create_client(url)`: the handle API of `registry.client()`, over HTTP, from any process.

    client = create_client("http://127.0.0.1:6420")
    writer = client.writer.get_or_create(["my-project"])
    session = await writer.create_session("pi")
    reply = await writer.send_prompt(session.session_id, "Write a REST API ...")
    await client.aclose()                       # or `async with create_client(...) as client:`

What differs from in-process, and why:
- Actor types and actions are not known until the server is asked, so a misspelt one raises
  `UnknownActorType` or `UnknownAction` when awaited, not when the attribute is read. An
  action's result is JSON: agentos_nb's own models (a VM's `SessionInfo`, `ExecResult`,
  session updates, ...) and bytes come back as themselves, any other object as a
  `RemoteObject`, a dict whose keys read as attributes (`result.response.summary`).
- `handle.some_action(...)` may be awaited (its result; for a streaming action, the list of
  its items) or iterated with `async for` (a streaming action's items as they come), as
  in-process (see `ActionCall`). A VM's handle may be annotated `VmHandle` for its typed
  actions; its files travel as raw bytes.
- `send(..., block=True)` is in-process only: over HTTP a full queue is `QueueFull` at once.
- An actor type named like one of the client's own attributes (`url`, `health`, `actors`,
  `events`, `request`, `stream`, `aclose`) is reached as `client["events"]`.
Errors are the same classes as in-process (`QueueFull`, `ActorNotFound`, a VM's
`FileNotFoundError`, ...), rebuilt from the server's error codes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast, overload
from urllib.parse import quote, urlencode

import httpx
import pydantic_core
from typing_extensions import override

from agentos_nb.actors.calls import ActionCall
from agentos_nb.actors.handles import (
    Accessor,
    ActorReference,
    DeadLetter,
    Key,
    Lookup,
    SendResult,
    normalize_key,
)
from agentos_nb.actors.overview import ActorView
from agentos_nb.events import Event
from agentos_nb.http import sse
from agentos_nb.http.errors import Unauthorized, error_from_reply
from agentos_nb.http.paths import file_path_segments, id_segment, key_segment
from agentos_nb.http.runtime_files import find_runtime_file
from agentos_nb.http.transport import LeanTransport
from agentos_nb.http.values import RemoteObject, decode_value, encode_arguments, remote_value
from agentos_nb.vm.terminal_models import Terminal

if TYPE_CHECKING:
    from agentos_nb.vm.handle import VmHandle

DEFAULT_URL = "http://127.0.0.1:6420"
TOKEN_VARIABLE = "AGENTOS_NB_TOKEN"
CONNECT_SECONDS = 10.0
WAIT_MARGIN_SECONDS = 30.0
"""How much longer than a send's own `timeout` the client waits for the server's reply."""
_URLS_CACHED = 4096
_NO_BODY: Any = object()


def create_client(
    url: str = DEFAULT_URL,
    token: str | None = None,
    *,
    timeout: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RemoteClient:
    """A client of the registry serving at `url`.

    The token is `token`, else $AGENTOS_NB_TOKEN, else the one in the runtime file of the
    registry serving at `url` on this machine. `timeout` bounds each request's wait for a reply
    (default: none, since an agent's turn takes minutes; a send with `wait=True` waits its own
    `timeout` and a little more). `transport` replaces the lean HTTP/1.1 transport (see
    `agentos_nb.http.transport`), e.g. with `httpx.AsyncHTTPTransport()`.
    """
    base = url.rstrip("/")
    found = token or os.environ.get(TOKEN_VARIABLE) or _token_in_runtime_files(base)
    http = httpx.AsyncClient(
        transport=transport or LeanTransport(), timeout=httpx.Timeout(timeout, connect=CONNECT_SECONDS)
    )
    return RemoteClient(base, found, http, timeout)


def _token_in_runtime_files(url: str) -> str | None:
    info = find_runtime_file(url)
    return None if info is None else info.token


class RemoteClient:
    """Remote access to a registry's actors: `client.writer`, or `client["writer"]`."""

    def __init__(self, url: str, token: str | None, http: httpx.AsyncClient, timeout: float | None) -> None:
        self._url = url
        self._has_token = token is not None
        self._http = http
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._urls: dict[str, httpx.URL] = {}

    @property
    def url(self) -> str:
        """The registry's base URL, without a trailing slash."""
        return self._url

    def __getattr__(self, name: str) -> RemoteActorAccessor:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> RemoteActorAccessor:
        return RemoteActorAccessor(self, name)

    def __repr__(self) -> str:
        return f"<RemoteClient {self._url}>"

    async def health(self) -> bool:
        """Whether the server answers (no token needed)."""
        try:
            response = await self._send("GET", "/health")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def actors(self) -> list[ActorView]:
        """Every actor of the registry, with its status and queue depths."""
        data = await self.request("GET", "/actors")
        return [ActorView.model_validate(view) for view in data["actors"]]

    async def events(
        self, *, types: list[str] | None = None, actors: list[str] | None = None, buffer: int | None = None
    ) -> AsyncIterator[Event | RemoteObject]:
        """The registry's events as they happen, typed as in-process; `types` as in
        `bus.subscribe` ("message." keeps a family), `actors` by actor type. Ends when the
        registry stops; a reader that falls behind gets `EventsDropped`."""
        query: dict[str, Any] = {"type": types or [], "actor": actors or []}
        if buffer is not None:
            query["buffer"] = buffer
        async for kind, data in self.stream("GET", "/events", query=query):
            yield _event(kind, data)

    async def aclose(self) -> None:
        """Close the connections; `async with create_client(...)` does it on leaving."""
        await self._http.aclose()

    async def __aenter__(self) -> RemoteClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the wire ----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _NO_BODY,
        content: bytes | None = None,
        query: Mapping[str, Any] | None = None,
        wait: float | None = None,
    ) -> Any:
        """One request with a `json` body (any JSON value, null included) or bytes; the reply's
        JSON or bytes (None for 204), or the error it names, raised. `wait`: the server may take
        this long to reply (plus a margin), whatever the client's `timeout` says."""
        if json is not _NO_BODY:
            content = pydantic_core.to_json(json, by_alias=False)
        response = await self._send(method, path, content=content, query=query, wait=wait)
        if response.status_code >= 400:
            raise self._error(response.status_code, response.content)
        if response.status_code == 204:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return pydantic_core.from_json(response.content)
        return response.content

    async def stream(
        self, method: str, path: str, *, json: Any = _NO_BODY, query: Mapping[str, Any] | None = None
    ) -> AsyncIterator[tuple[str, str]]:
        """The (event, data) pairs of a server-sent event stream, up to its `end`."""
        content = None if json is _NO_BODY else pydantic_core.to_json(json, by_alias=False)
        request = self._request(method, path, content=content, query=query, wait=None)
        response = await self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise self._error(response.status_code, await response.aread())
            async for event in sse.read_events(response.aiter_lines()):
                if event.event == sse.END:
                    return
                if event.event == sse.ERROR:
                    raise self._error(500, event.data.encode())
                yield event.event, event.data
            raise httpx.RemoteProtocolError("the stream ended before the server said it was done")
        finally:
            await response.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        query: Mapping[str, Any] | None = None,
        wait: float | None = None,
    ) -> httpx.Response:
        return await self._http.send(self._request(method, path, content=content, query=query, wait=wait))

    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        query: Mapping[str, Any] | None,
        wait: float | None,
    ) -> httpx.Request:
        if query:
            path = f"{path}?{urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)}"
        url = self._urls.get(path)
        if url is None:  # parsing a URL costs more than the rest of a request: each is parsed once
            if len(self._urls) >= _URLS_CACHED:
                self._urls.clear()
            url = self._urls[path] = httpx.URL(self._url + path)
        headers = self._headers if content is None else {**self._headers, "Content-Type": "application/json"}
        read = (
            self._timeout
            if wait is None or self._timeout is None
            else max(self._timeout, wait + WAIT_MARGIN_SECONDS)
        )
        timeout = httpx.Timeout(read, connect=CONNECT_SECONDS)
        return httpx.Request(
            method, url, content=content, headers=headers, extensions={"timeout": timeout.as_dict()}
        )

    def _error(self, status: int, content: bytes) -> Exception:
        try:
            body = pydantic_core.from_json(content)
        except ValueError:
            body = content.decode("utf-8", errors="replace")
        error = error_from_reply(status, body)
        if isinstance(error, Unauthorized) and not self._has_token:
            error = Unauthorized(
                f"{error.message}; none was found: pass create_client(url, token=...), set "
                f"${TOKEN_VARIABLE}, or run this where the registry's runtime file is readable"
            )
        return error


class RemoteActorAccessor(Accessor["RemoteActorHandle"]):
    """`client.NAME`: makes handles for one actor type of the remote registry."""

    def __init__(self, client: RemoteClient, name: str) -> None:
        super().__init__(name)
        self._client = client

    def _handle(
        self, key: tuple[str, ...] | None, actor_id: str | None, lookup: Lookup, create_input: Any = None
    ) -> RemoteActorHandle:
        return RemoteActorHandle(
            self._client, self._name, key=key, actor_id=actor_id, lookup=lookup, create_input=create_input
        )

    @override
    async def create(self, key: Key = (), *, input: Any = None) -> RemoteActorHandle:
        normalized = normalize_key(key)
        info = await self._client.request(
            "POST", f"/actors/{self._name}/{key_segment(normalized)}", json={"input": input}
        )
        return self._handle(normalized, info["actor_id"], "get")

    def __repr__(self) -> str:
        return f"<RemoteActorAccessor {self._name} at {self._client.url}>"


class RemoteActorHandle(ActorReference):
    """A reference to one actor of a remote registry. Its actions are methods; a VM's handle
    matches `VmHandle`, with `read_file` and `write_file` over the server's file routes."""

    def __init__(
        self,
        client: RemoteClient,
        name: str,
        *,
        key: tuple[str, ...] | None,
        actor_id: str | None,
        lookup: Lookup,
        create_input: Any = None,
    ) -> None:
        if key is not None:
            key_segment(key)  # a key no URL can carry fails here, not at the first call
        super().__init__(name, key=key, actor_id=actor_id, lookup=lookup, create_input=create_input)
        self._client = client

    async def resolve(self) -> str:
        """The actor's id, creating the actor first if this is a `get_or_create` handle."""
        if self._actor_id is None:
            assert self._key is not None
            path = f"/actors/{self._name}/{key_segment(self._key)}"
            if self._lookup == "get_or_create":
                info = await self._client.request("PUT", path, json={"input": self._create_input})
            else:
                info = await self._client.request("GET", path)
            self._actor_id = info["actor_id"]
        elif self._key is None:
            info = await self._client.request("GET", f"/actors/{self._name}/{id_segment(self._actor_id)}")
            self._key = tuple(info["key"])
        assert self._actor_id is not None
        return self._actor_id

    async def send(
        self, queue: str, body: Any, *, wait: bool = False, timeout: float | None = None
    ) -> SendResult:
        """Store a message on one of the actor's queues; with `wait=True`, reply when a
        consumer completes it (or `timeout` passes: status "timed_out")."""
        query = {"wait": "true", "timeout": timeout} if wait else None
        data = await self._client.request(
            "POST",
            await self._path(f"/queues/{quote(queue, safe='')}"),
            json=body,
            query=query,
            wait=timeout if wait else None,
        )
        return _send_result(data)

    async def wait_for(self, message_id: int, *, timeout: float | None = None) -> SendResult:
        """Wait for the outcome of a message sent earlier, even by a registry now gone."""
        data = await self._client.request(
            "GET",
            await self._path(f"/messages/{message_id}", writes=False),
            query={"timeout": timeout},
            wait=timeout,
        )
        return _send_result(data)

    async def open_shell(self, *, cols: int = 80, rows: int = 24) -> Terminal:
        """A VM's interactive shell (as `VmHandle.open_shell`), talking through this handle."""
        terminal = await self.call("open_shell", cols=cols, rows=rows)
        return Terminal.model_validate(terminal).bound_to(cast("VmHandle", self))

    async def list_terminals(self) -> list[Terminal]:
        """A VM's open terminals, each talking through this handle."""
        terminals = await self.call("list_terminals")
        return [Terminal.model_validate(t).bound_to(cast("VmHandle", self)) for t in terminals]

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call an action; a streaming one gives the list of what it yielded."""
        reply = await self._client.request(
            "POST", await self._path(f"/actions/{action}"), json=encode_arguments(args, kwargs)
        )
        return decode_value(reply["result"], reply["model"], reply["encoding"])

    async def stream(self, action: str, /, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """Call a streaming action and yield its items as they come; leaving the loop early
        closes the connection, which cancels the action."""
        path = await self._path(f"/actions/{action}/stream")
        async for _kind, data in self._client.stream("POST", path, json=encode_arguments(args, kwargs)):
            item = pydantic_core.from_json(data)
            yield decode_value(item["item"], item["model"], item["encoding"])

    async def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        """The actor's dead letters, of one queue if given; raises `UnknownQueue` for a queue the
        actor does not declare."""
        data = await self._client.request(
            "GET", await self._path("/dead-letters", writes=False), query={"queue": queue}
        )
        return [DeadLetter.model_validate(letter) for letter in data["dead_letters"]]

    async def replay(self, message_id: int) -> None:
        """Put a dead letter back at the tail of its queue, its attempts reset."""
        await self._client.request(
            "POST", await self._path(f"/dead-letters/{message_id}/replay", writes=False)
        )

    @overload
    async def read_file(self, path: str, *, encoding: None = None) -> bytes: ...

    @overload
    async def read_file(self, path: str, *, encoding: str) -> str: ...

    async def read_file(self, path: str, *, encoding: str | None = None) -> bytes | str:
        """An agent VM's file: its bytes, or its text when `encoding` is given."""
        data = await self._client.request(
            "GET", await self._path(f"/files/{file_path_segments(path)}", writes=False)
        )
        return data if encoding is None else data.decode(encoding)

    async def write_file(self, path: str, content: bytes | str, *, encoding: str = "utf-8") -> None:
        """Write an agent VM's file, making missing parent directories."""
        data = content.encode(encoding) if isinstance(content, str) else bytes(content)
        await self._client.request(
            "PUT", await self._path(f"/files/{file_path_segments(path)}"), content=data
        )

    def __getattr__(self, action: str) -> Callable[..., ActionCall[Any, Any]]:
        if action.startswith("_"):
            raise AttributeError(action)
        return functools.partial(ActionCall, self, action)

    def __repr__(self) -> str:
        return f"<RemoteActorHandle {self._name} {self._where()} at {self._client.url}>"

    async def _path(self, tail: str, *, writes: bool = True) -> str:
        """The URL of one of the actor's routes. A `get_or_create` handle names its actor by key,
        and the server creates it on the first write, as in-process; it is created first when
        it has an input for `on_create`, or when the first call only reads. Other handles name
        it by id, once found, so that nothing they do creates it."""
        if self._lookup != "get_or_create":
            return f"/actors/{self._name}/{id_segment(await self.resolve())}{tail}"
        if self._actor_id is None and (self._create_input is not None or not writes):
            await self.resolve()
        assert self._key is not None
        return f"/actors/{self._name}/{key_segment(self._key)}{tail}"


def _send_result(data: Any) -> SendResult:
    result = SendResult.model_validate(data)
    if result.response is not None:
        result.response = remote_value(result.response)
    return result


def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    pending: list[type[Event]] = [Event]
    while pending:
        kind = pending.pop()
        default = kind.model_fields["type"].default
        if isinstance(default, str):
            found[default] = kind
        pending.extend(kind.__subclasses__())
    return found


def _event(kind: str, data: str) -> Event | RemoteObject:
    model = _event_types().get(kind)
    if model is None:
        return remote_value(pydantic_core.from_json(data))
    try:
        return model.model_validate_json(data)
    except ValueError:  # an event whose payload does not round-trip (a value sent as its repr)
        return remote_value(pydantic_core.from_json(data))
