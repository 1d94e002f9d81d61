"""The API's routes: one table, which the server dispatches from and the OpenAPI document
describes, and the handlers, each a thin adapter over the in-process handle API.

An actor is addressed as `/actors/{name}/{key}` (see `paths`). Requests that write (sends,
actions, exec, a new session, a file written) reach it as `get_or_create` does, creating it on
first use, as a webhook expects; reads, and requests naming one of its sessions or messages,
never create it (404 `actor.not_found`). Handlers validate everything before they touch an
actor, so a rejected request leaves nothing behind: no message, no actor call.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_origin
from urllib.parse import unquote

import pydantic
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.actors.handles import ActorAccessor, ActorHandle, SendResult
from agentos_nb.errors import UnknownAction, UnknownActorType, UnknownQueue, ValidationError
from agentos_nb.http.action_args import ActionSignature, action_signature
from agentos_nb.http.api_models import (
    ActionCall,
    ActionReply,
    ActorInfo,
    ActorInput,
    ActorList,
    CancelReply,
    DeadLetterList,
    DeadLettersQuery,
    EventsQuery,
    ExecRequest,
    Health,
    PromptRequest,
    SendQuery,
    SessionRequest,
    WaitQuery,
)
from agentos_nb.http.errors import ActionFailed, MalformedJson, MethodNotAllowed, RouteNotFound
from agentos_nb.http.paths import parse_actor_segment, parse_file_path
from agentos_nb.http.values import decode_arguments, encode_value
from agentos_nb.vm import agent_os
from agentos_nb.vm.models import ExecResult
from agentos_nb.vm.session_models import PromptResult, SessionInfo

if TYPE_CHECKING:
    from agentos_nb.actors.registry import Registry

M = TypeVar("M", bound=BaseModel)

KEEPALIVE_SECONDS = 15.0
"""An idle event stream sends a comment this often, so proxies keep it and a gone reader shows."""


class Api:
    """What the handlers share for one registry: it, and what is worked out once per actor type."""

    def __init__(self, registry: Registry, document: Callable[[], bytes]) -> None:
        self.registry = registry
        self._document = document
        self._openapi: bytes | None = None
        self._signatures: dict[tuple[str, str], ActionSignature] = {}

    def definition(self, name: str) -> ActorDefinition:
        definition = self.registry.definitions.get(name)
        if definition is None:
            defined = ", ".join(sorted(self.registry.definitions)) or "none"
            raise UnknownActorType(f"the registry defines no actor {name!r} (defined: {defined})")
        return definition

    def signature(self, name: str, action: str) -> ActionSignature:
        signature = self._signatures.get((name, action))
        if signature is None:
            fn = self.definition(name).actions.get(action)
            if fn is None:
                defined = ", ".join(sorted(self.definition(name).actions)) or "none"
                raise UnknownAction(f"actor {name!r} has no action {action!r} (defined: {defined})")
            signature = self._signatures[(name, action)] = action_signature(action, fn)
        return signature

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = self._document()
        return self._openapi


@dataclass(slots=True)
class Request:
    api: Api
    params: dict[str, str]
    """Path parameters, still percent-encoded."""
    query: dict[str, list[str]]
    body: bytes


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"


StreamEvent = tuple[str, bytes] | None
"""An event to send (name, JSON data), or None: nothing yet, but the stream is open (the first
None opens it once the request is found valid; later ones keep it alive)."""
Handler = Callable[[Request], Awaitable[Reply]]
StreamHandler = Callable[[Request], AsyncIterator[StreamEvent]]
Expansion = Literal["queue", "action", "streaming_action", "vm"]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    summary: str
    handler: Handler | StreamHandler
    streams: bool = False
    public: bool = False
    """Served without the token."""
    drains: bool = True
    """Waited for when the server stops (an event stream is not: it ends when the registry stops)."""
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
        for pattern, methods in self._templates:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            route = methods.get(method)
            if route is None:
                allowed = ", ".join(methods)
                raise MethodNotAllowed(
                    f"{method} is not allowed on {path}; allowed: {allowed}", allow=allowed
                )
            return route, found.groupdict()
        raise RouteNotFound(f"no route {path}")


# --- reading requests ---------------------------------------------------------------------------


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


def _model_body(request: Request, model: type[M], *, required: bool = True) -> M:
    if not request.body.strip():
        if required:
            raise MalformedJson("the request body must be JSON, and it is empty")
        return model()
    return validate_json(model, request.body, "the request body")  # type: ignore[no-any-return]


_LIST_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


def _query(request: Request, model: type[M]) -> M:
    lists = _LIST_FIELDS.get(model)
    if lists is None:
        lists = _LIST_FIELDS[model] = frozenset(
            name for name, info in model.model_fields.items() if get_origin(info.annotation) is list
        )
    values = {name: (given if name in lists else given[-1]) for name, given in request.query.items()}
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as error:
        failure = ValidationError.from_pydantic("the query", error)
        for problem in failure.details["errors"]:
            problem["field"] = f"query.{problem['field']}"
        raise failure from None


def _param(request: Request, name: str) -> str:
    return unquote(request.params[name])


def _message_id(request: Request) -> int:
    raw = _param(request, "message_id")
    if not raw.isdigit() or not raw.isascii():
        problem = {"field": "message_id", "message": "must be a whole number"}
        raise ValidationError(f"message_id must be a whole number, not {raw!r}", errors=[problem])
    return int(raw)


def _accessor(request: Request) -> ActorAccessor:
    """The actor type the URL names (404 `actor.unknown_type` if the registry has none)."""
    return request.api.registry.client()[_param(request, "name")]


def _handle(request: Request, *, create: bool, create_input: Any = None) -> ActorHandle:
    """The handle the URL names; `create`: by key, as `get_or_create` (else as `get`)."""
    accessor = _accessor(request)
    address = parse_actor_segment(request.params["key"])
    if address.actor_id is not None:
        return accessor.get_for_id(address.actor_id)
    assert address.key is not None
    if create:
        return accessor.get_or_create(address.key, create_with_input=create_input)
    return accessor.get(address.key)


def is_agent_vm(definition: ActorDefinition) -> bool:
    """Whether actors of this type are agent VMs (made by `agent_os(...)`)."""
    return definition.actions.get("exec") is agent_os.exec_command


def _vm_handle(request: Request, *, create: bool) -> ActorHandle:
    name = _param(request, "name")
    if not is_agent_vm(request.api.definition(name)):
        raise RouteNotFound(f"actor type {name!r} is not an agent VM: it has no files, exec or sessions")
    return _handle(request, create=create)


def _actor_info(handle: ActorHandle, actor_id: str) -> ActorInfo:
    return ActorInfo(name=handle.name, key=list(handle.key or ()), actor_id=actor_id)


# --- handlers -----------------------------------------------------------------------------------


async def health(request: Request) -> Reply:
    return Reply(body=b'{"status":"ok"}')


async def openapi(request: Request) -> Reply:
    return Reply(body=request.api.openapi())


async def list_actors(request: Request) -> Reply:
    return Reply(body=json_bytes(ActorList(actors=await request.api.registry.overview())))


async def get_actor(request: Request) -> Reply:
    handle = _handle(request, create=False)
    return Reply(body=json_bytes(_actor_info(handle, await handle.resolve())))


async def get_or_create_actor(request: Request) -> Reply:
    body = _model_body(request, ActorInput, required=False)
    handle = _handle(request, create=True, create_input=body.input)
    return Reply(body=json_bytes(_actor_info(handle, await handle.resolve())))


async def create_actor(request: Request) -> Reply:
    body = _model_body(request, ActorInput, required=False)
    accessor = _accessor(request)
    address = parse_actor_segment(request.params["key"])
    if address.key is None:
        raise ValidationError(
            "an actor is created by key, not by id", errors=[{"field": "key", "message": "an id"}]
        )
    handle = await accessor.create(address.key, input=body.input)
    return Reply(201, json_bytes(_actor_info(handle, await handle.resolve())))


async def send_message(request: Request) -> Reply:
    name, queue = _param(request, "name"), _param(request, "queue")
    definition = request.api.definition(name)
    if queue not in definition.queues:
        declared = ", ".join(sorted(definition.queues)) or "none"
        raise UnknownQueue(f"actor {name!r} has no queue {queue!r} (declared: {declared})")
    query = _query(request, SendQuery)
    if not request.body.strip():
        raise MalformedJson("the request body must be JSON (the message's body), and it is empty")
    body = validate_json(definition.queues[queue].body, request.body, f"body for queue {queue!r}")
    result = await _handle(request, create=True).send(queue, body, wait=query.wait, timeout=query.timeout)
    return Reply(body=json_bytes(result))


async def wait_for_message(request: Request) -> Reply:
    message_id = _message_id(request)
    query = _query(request, WaitQuery)
    result = await _handle(request, create=False).wait_for(message_id, timeout=query.timeout)
    return Reply(body=json_bytes(result))


async def dead_letters(request: Request) -> Reply:
    query = _query(request, DeadLettersQuery)
    letters = await _handle(request, create=False).dead_letters(query.queue)
    return Reply(body=json_bytes(DeadLetterList(dead_letters=letters)))


async def replay(request: Request) -> Reply:
    message_id = _message_id(request)
    await _handle(request, create=False).replay(message_id)
    return Reply(204, content_type=None)


def _action_arguments(request: Request, signature: ActionSignature) -> tuple[tuple[Any, ...], dict[str, Any]]:
    call = _model_body(request, ActionCall, required=False)
    args, kwargs = decode_arguments(call.args, call.kwargs, call.binary)
    return signature.bind(args, kwargs)


async def call_action(request: Request) -> Reply:
    action = _param(request, "action")
    signature = request.api.signature(_param(request, "name"), action)
    args, kwargs = _action_arguments(request, signature)
    result = await _handle(request, create=True).call(action, *args, **kwargs)
    data, model, encoding = _encoded(action, result)
    return Reply(body=json_bytes({"result": data, "model": model, "encoding": encoding}))


async def stream_action(request: Request) -> AsyncIterator[StreamEvent]:
    name, action = _param(request, "name"), _param(request, "action")
    signature = request.api.signature(name, action)
    if not signature.streaming:
        raise UnknownAction(f"action {action!r} of actor {name!r} does not stream; POST .../actions/{action}")
    args, kwargs = _action_arguments(request, signature)
    async with contextlib.aclosing(_handle(request, create=True).stream(action, *args, **kwargs)) as items:
        # The first item opens the stream: what fails before it is an error reply with its status.
        async for item in items:
            data, model, encoding = _encoded(action, item)
            yield "item", json_bytes({"item": data, "model": model, "encoding": encoding})


def _encoded(action: str, value: Any) -> tuple[Any, str | None, str]:
    try:
        return encode_value(value)
    except pydantic_core.PydanticSerializationError:
        raise ActionFailed(
            f"action {action!r} gave a {type(value).__name__}, which cannot be sent as JSON"
        ) from None


async def read_file(request: Request) -> Reply:
    path = parse_file_path(request.params["path"])
    data = await _vm_handle(request, create=False).read_file(path)
    return Reply(body=data, content_type="application/octet-stream")


async def write_file(request: Request) -> Reply:
    path = parse_file_path(request.params["path"])
    await _vm_handle(request, create=True).write_file(path, request.body)
    return Reply(204, content_type=None)


async def exec_command(request: Request) -> Reply:
    handle = _vm_handle(request, create=True)
    body = _model_body(request, ExecRequest)
    options = body.model_dump(exclude={"command"}, exclude_none=True)
    result: ExecResult = await handle.exec(body.command, **options)
    return Reply(body=json_bytes(result))


async def create_session(request: Request) -> Reply:
    handle = _vm_handle(request, create=True)
    body = _model_body(request, SessionRequest, required=False)
    options = body.model_dump(exclude={"agent_type"}, exclude_none=True)
    info: SessionInfo = await handle.create_session(body.agent_type, **options)
    return Reply(201, json_bytes(info))


async def send_prompt(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    body = _model_body(request, PromptRequest)
    result: PromptResult = await handle.send_prompt(_param(request, "session_id"), body.text)
    return Reply(body=json_bytes(result))


async def stream_prompt(request: Request) -> AsyncIterator[StreamEvent]:
    handle = _vm_handle(request, create=False)
    body = _model_body(request, PromptRequest)
    session_id = _param(request, "session_id")
    await handle.get_session(session_id)  # an unknown session is a 404, before the stream opens
    yield None
    async with contextlib.aclosing(handle.stream("stream_prompt", session_id, body.text)) as updates:
        async for update in updates:
            yield "update", json_bytes(update)


async def cancel_prompt(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    cancelled = await handle.cancel_prompt(_param(request, "session_id"))
    return Reply(body=json_bytes(CancelReply(cancelled=cancelled)))


async def close_session(request: Request) -> Reply:
    await _vm_handle(request, create=False).close_session(_param(request, "session_id"))
    return Reply(204, content_type=None)


async def events(request: Request) -> AsyncIterator[StreamEvent]:
    query = _query(request, EventsQuery)
    names = frozenset(query.actor)

    def of_named_actors(event: Any) -> bool:
        actor = getattr(event, "actor", None)
        return actor is not None and actor.name in names

    subscription = request.api.registry.bus.subscribe(
        buffer=query.buffer, types=query.type or None, accept=of_named_actors if names else None
    )
    with subscription:
        yield None
        while True:
            try:
                event = await asyncio.wait_for(subscription.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield None
                continue
            except StopAsyncIteration:  # the registry stopped
                return
            yield event.type, pydantic_core.to_json(event, by_alias=False, fallback=repr)


_ACTOR = "/actors/{name}/{key}"
_SESSION = _ACTOR + "/sessions/{session_id}"

ROUTES = [
    Route(
        "GET",
        "/health",
        "Whether the server is up (no token needed; it tells nothing else)",
        health,
        public=True,
        reply=Health,
    ),
    Route("GET", "/openapi.json", "This document", openapi, reply="openapi"),
    Route(
        "GET",
        "/actors",
        "Every actor, awake or asleep, with its queues' depths",
        list_actors,
        reply=ActorList,
    ),
    Route("GET", _ACTOR, "An actor that exists (never creates it)", get_actor, reply=ActorInfo),
    Route(
        "PUT",
        _ACTOR,
        "Get or create an actor",
        get_or_create_actor,
        body=ActorInput,
        body_required=False,
        reply=ActorInfo,
        description="`input` reaches `on_create` if the actor is new.",
    ),
    Route(
        "POST",
        _ACTOR,
        "Create an actor (409 actor.already_exists if its key is taken)",
        create_actor,
        body=ActorInput,
        body_required=False,
        reply=ActorInfo,
        status=201,
    ),
    Route(
        "POST",
        _ACTOR + "/queues/{queue}",
        "Send a message to one of the actor's queues",
        send_message,
        body="json",
        query=SendQuery,
        reply=SendResult,
        per="queue",
        description="The body is the message body. Replies once it is stored (status enqueued), or "
        "with wait=true once a consumer completes it (completed, dead_lettered, or timed_out after "
        "`timeout` s: the message stays queued; GET .../messages/{message_id} picks it up later).",
    ),
    Route(
        "GET",
        _ACTOR + "/messages/{message_id}",
        "Wait for the outcome of a message sent earlier",
        wait_for_message,
        query=WaitQuery,
        reply=SendResult,
    ),
    Route(
        "GET",
        _ACTOR + "/dead-letters",
        "Messages that failed max_attempts deliveries",
        dead_letters,
        query=DeadLettersQuery,
        reply=DeadLetterList,
    ),
    Route(
        "POST",
        _ACTOR + "/dead-letters/{message_id}/replay",
        "Put a dead letter back in its queue",
        replay,
        status=204,
    ),
    Route(
        "POST",
        _ACTOR + "/actions/{action}",
        "Call an action",
        call_action,
        body=ActionCall,
        body_required=False,
        reply=ActionReply,
        per="action",
        description="A streaming action answers with the list of what it yielded; "
        "POST .../actions/{action}/stream gives the items as they come.",
    ),
    Route(
        "POST",
        _ACTOR + "/actions/{action}/stream",
        "Call a streaming action; its items as server-sent events",
        stream_action,
        streams=True,
        body=ActionCall,
        body_required=False,
        reply="events",
        stream_events=("item", "end", "error"),
        per="streaming_action",
        description="Events: `item` (data: {item, model, encoding}) for each item, then `end`, or "
        "`error` (data: an error body). The stream opens with the first item: what fails before "
        "it is an error reply. Closing the connection cancels the action.",
    ),
    Route(
        "GET",
        _ACTOR + "/files/{path}",
        "Read a file of an agent VM (its bytes)",
        read_file,
        reply="bytes",
        per="vm",
        description="`path` is the VM path without its leading / (home/user/api.ts), or "
        "~/... for one relative to the VM's home. A path leading out of the VM is a 403.",
    ),
    Route(
        "PUT",
        _ACTOR + "/files/{path}",
        "Write a file of an agent VM (the body is its bytes)",
        write_file,
        body="bytes",
        status=204,
        per="vm",
        description="Missing parent directories are made.",
    ),
    Route(
        "POST",
        _ACTOR + "/exec",
        "Run a command in an agent VM",
        exec_command,
        body=ExecRequest,
        reply=ExecResult,
        per="vm",
        description="A non-zero exit code is a result, not an error.",
    ),
    Route(
        "POST",
        _ACTOR + "/sessions",
        "Start an agent session in a VM",
        create_session,
        body=SessionRequest,
        body_required=False,
        reply=SessionInfo,
        status=201,
        per="vm",
    ),
    Route(
        "POST",
        _SESSION + "/prompt",
        "Run one turn of a session and give its result",
        send_prompt,
        body=PromptRequest,
        reply=PromptResult,
        per="vm",
        description="While another turn of the session runs, this one waits for it.",
    ),
    Route(
        "POST",
        _SESSION + "/prompt/stream",
        "Run one turn; its updates as server-sent events",
        stream_prompt,
        streams=True,
        body=PromptRequest,
        reply="events",
        stream_events=("update", "end", "error"),
        per="vm",
        description="Events: `update` (data: a session update, the last one turn_ended), then `end`, "
        "or `error`. Closing the connection cancels the turn.",
    ),
    Route(
        "POST",
        _SESSION + "/cancel",
        "Stop a session's running turn, once it has stopped",
        cancel_prompt,
        reply=CancelReply,
        per="vm",
    ),
    Route("DELETE", _SESSION, "Close a session", close_session, status=204, per="vm"),
    Route(
        "GET",
        "/events",
        "The registry's events as server-sent events",
        events,
        streams=True,
        drains=False,
        query=EventsQuery,
        reply="events",
        description="Each event is named by its type (message.enqueued, session.updated, ...) and "
        "its data is the event as JSON. A reader that falls `buffer` events behind gets "
        "events.dropped with the count lost. The stream ends (`end`) when the registry stops.",
    ),
]
