"""A small web framework, just what the API needs: routes matched by template, requests read
strictly (JSON as JSON reads, the query as its model says), and replies as bytes.

The server (`server.py`) dispatches from a table of `Route`s and the OpenAPI document
(`openapi.py`) describes the same table, so neither can drift from the other.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_origin
from urllib.parse import unquote

import pydantic
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentos_nb.errors import ValidationError
from agentos_nb.http.errors import MalformedJson, MethodNotAllowed, RouteNotFound
from agentos_nb.http.scopes import RouteKind, ScopedToken

if TYPE_CHECKING:
    from agentos_nb.http.api import Api

M = TypeVar("M", bound=BaseModel)

StreamEvent = tuple[str, bytes] | None
"""An event to send (name, JSON data), or None: nothing yet, but the stream is open (the first
None opens it once the request is found valid; later ones keep it alive)."""


@dataclass(slots=True)
class Request:
    api: Api
    params: dict[str, str]
    """Path parameters, still percent-encoded."""
    query: dict[str, list[str]]
    body: bytes
    scope: ScopedToken | None = None
    """The scoped token the request came with; None: the full token (or a signed webhook)."""

    def param(self, name: str) -> str:
        """The path parameter `name`, decoded."""
        return unquote(self.params[name])

    def body_as(self, model: type[M], *, required: bool = True) -> M:
        """The JSON body as `model`; an empty body is a 400, or the model's defaults if not `required`."""
        if not self.body.strip():
            if required:
                raise MalformedJson("the request body must be JSON, and it is empty")
            return model()
        return validate_json(model, self.body, "the request body")

    def query_as(self, model: type[M]) -> M:
        """The query string as `model`: a list field takes every value given, others the last."""
        lists = _LIST_FIELDS.get(model)
        if lists is None:
            lists = _LIST_FIELDS[model] = frozenset(
                name for name, info in model.model_fields.items() if get_origin(info.annotation) is list
            )
        values = {name: (given if name in lists else given[-1]) for name, given in self.query.items()}
        try:
            return model.model_validate(values)
        except pydantic.ValidationError as error:
            failure = ValidationError.from_pydantic("the query", error)
            for problem in failure.details["errors"]:
                problem["field"] = f"query.{problem['field']}"
            raise failure from None


_LIST_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Reply]]
StreamHandler = Callable[[Request], AsyncIterator[StreamEvent]]
Expansion = Literal["queue", "action", "streaming_action", "vm"]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    summary: str
    handler: Handler | StreamHandler
    scope: RouteKind = field(kw_only=True)
    """The kind of access a token needs here (`scopes.py`); every route says it."""
    streams: bool = False
    drains: bool = True
    """Waited for when the server stops (an event stream is not: it ends when the registry stops)."""
    upgrades: bool = False
    """Asked with `Upgrade: websocket`, it is a WebSocket (`terminal_socket.py`), once authorised."""
    body: type[BaseModel] | Literal["json", "bytes"] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    reply: type[BaseModel] | Literal["bytes", "events", "openapi"] | None = None
    stream_events: tuple[str, ...] = ()
    """The names of the events a streaming reply sends (none: any event type)."""
    status: int = 200
    per: Expansion | None = None
    """The OpenAPI document lists this route once per actor type and queue, action or VM type."""
    description: str = ""
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(
            r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{'.*' if m[1] == 'path' else '[^/]*'})", self.template
        )
        object.__setattr__(self, "pattern", re.compile(regex))

    @property
    def public(self) -> bool:
        """Served without a token."""
        return self.scope == "health"


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        by_template: dict[str, dict[str, Route]] = {}
        for route in routes:
            by_template.setdefault(route.template, {})[route.method] = route
        self._templates = [
            (methods[next(iter(methods))].pattern, methods) for methods in by_template.values()
        ]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for `method` on `path`. HEAD is GET without its body, except on a stream."""
        for pattern, methods in self._templates:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            route = methods.get(method)
            if route is None and method == "HEAD" and "GET" in methods and not methods["GET"].streams:
                route = methods["GET"]
            if route is None:
                allowed = ", ".join(methods)
                raise MethodNotAllowed(
                    f"{method} is not allowed on {path}; allowed: {allowed}", allow=allowed
                )
            return route, found.groupdict()
        raise RouteNotFound(f"no route {path}")


def json_bytes(value: Any) -> bytes:
    return pydantic_core.to_json(value, by_alias=False)


def validate_json(adapter: TypeAdapter[Any] | type[BaseModel], data: bytes, subject: str) -> Any:
    """`data` as the type wants it, read as JSON reads: strictly, so "1" is no number and
    the API does what its document says. Malformed JSON is a 400, a misfit a 422."""
    try:
        if isinstance(adapter, TypeAdapter):
            return adapter.validate_json(data, strict=True)
        return adapter.model_validate_json(data, strict=True)
    except pydantic.ValidationError as error:
        if any(problem["type"] == "json_invalid" for problem in error.errors(include_url=False)):
            raise MalformedJson(f"the request body is not JSON: {error.errors()[0]['msg']}") from None
        raise ValidationError.from_pydantic(subject, error) from None
