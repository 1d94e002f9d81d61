"""Handlers for any actor: get or create it, send to its queues and wait for outcomes, handle
its dead letters, call its actions. Each is a thin adapter over the in-process handle API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pydantic_core

from agentos_nb.actors.handles import ActorHandle
from agentos_nb.errors import UnknownAction, UnknownQueue, ValidationError
from agentos_nb.http.action_args import ActionSignature
from agentos_nb.http.api import actor_accessor, actor_handle
from agentos_nb.http.api_models import (
    ActionCall,
    ActorInfo,
    ActorInput,
    DeadLetterList,
    DeadLettersQuery,
    SendQuery,
    WaitQuery,
)
from agentos_nb.http.errors import ActionFailed, MalformedJson
from agentos_nb.http.host_commands import refuse_host_commands
from agentos_nb.http.paths import parse_actor_segment
from agentos_nb.http.routing import Reply, Request, StreamEvent, json_bytes, validate_json
from agentos_nb.http.values import decode_arguments, encode_value


async def get_actor(request: Request) -> Reply:
    handle = actor_handle(request, create=False)
    return Reply(body=json_bytes(_actor_info(handle, await handle.resolve())))


async def get_or_create_actor(request: Request) -> Reply:
    body = request.body_as(ActorInput, required=False)
    handle = actor_handle(request, create=True, create_input=body.input)
    return Reply(body=json_bytes(_actor_info(handle, await handle.resolve())))


async def create_actor(request: Request) -> Reply:
    body = request.body_as(ActorInput, required=False)
    accessor = actor_accessor(request)
    address = parse_actor_segment(request.params["key"])
    if address.key is None:
        raise ValidationError(
            "an actor is created by key, not by id", errors=[{"field": "key", "message": "an id"}]
        )
    handle = await accessor.create(address.key, input=body.input)
    return Reply(201, json_bytes(_actor_info(handle, await handle.resolve())))


async def send_message(request: Request) -> Reply:
    name, queue = request.param("name"), request.param("queue")
    definition = request.api.definition(name)
    if queue not in definition.queues:
        declared = ", ".join(sorted(definition.queues)) or "none"
        raise UnknownQueue(f"actor {name!r} has no queue {queue!r} (declared: {declared})")
    query = request.query_as(SendQuery)
    if not request.body.strip():
        raise MalformedJson("the request body must be JSON (the message's body), and it is empty")
    body = validate_json(definition.queues[queue].body, request.body, f"body for queue {queue!r}")
    result = await actor_handle(request, create=True).send(
        queue, body, wait=query.wait, timeout=query.timeout
    )
    return Reply(body=json_bytes(result))


async def wait_for_message(request: Request) -> Reply:
    message_id = _message_id(request)
    query = request.query_as(WaitQuery)
    result = await actor_handle(request, create=False).wait_for(message_id, timeout=query.timeout)
    return Reply(body=json_bytes(result))


async def dead_letters(request: Request) -> Reply:
    query = request.query_as(DeadLettersQuery)
    letters = await actor_handle(request, create=False).dead_letters(query.queue)
    return Reply(body=json_bytes(DeadLetterList(dead_letters=letters)))


async def replay(request: Request) -> Reply:
    message_id = _message_id(request)
    await actor_handle(request, create=False).replay(message_id)
    return Reply(204, content_type=None)


async def call_action(request: Request) -> Reply:
    action = request.param("action")
    signature = request.api.signature(request.param("name"), action)
    args, kwargs = await _action_arguments(request, signature)
    result = await actor_handle(request, create=True).call(action, *args, **kwargs)
    data, model, encoding = _encoded(action, result)
    return Reply(body=json_bytes({"result": data, "model": model, "encoding": encoding}))


async def stream_action(request: Request) -> AsyncIterator[StreamEvent]:
    name, action = request.param("name"), request.param("action")
    signature = request.api.signature(name, action)
    if not signature.streaming:
        raise UnknownAction(f"action {action!r} of actor {name!r} does not stream; POST .../actions/{action}")
    args, kwargs = await _action_arguments(request, signature)
    handle = actor_handle(request, create=True)
    async with contextlib.aclosing(handle.stream(action, *args, **kwargs)) as items:
        # The first item opens the stream: what fails before it is an error reply with its status.
        async for item in items:
            data, model, encoding = _encoded(action, item)
            yield "item", json_bytes({"item": data, "model": model, "encoding": encoding})


def _actor_info(handle: ActorHandle, actor_id: str) -> ActorInfo:
    return ActorInfo(name=handle.name, key=list(handle.key or ()), actor_id=actor_id)


def _message_id(request: Request) -> int:
    raw = request.param("message_id")
    if not raw.isdigit() or not raw.isascii():
        problem = {"field": "message_id", "message": "must be a whole number"}
        raise ValidationError(f"message_id must be a whole number, not {raw!r}", errors=[problem])
    return int(raw)


async def _action_arguments(
    request: Request, signature: ActionSignature
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    call = request.body_as(ActionCall, required=False)
    args, kwargs = decode_arguments(call.args, call.kwargs, call.binary)
    bound_args, bound_kwargs = signature.bind(args, kwargs)
    await refuse_host_commands([*bound_args, *bound_kwargs.values()])
    return bound_args, bound_kwargs


def _encoded(action: str, value: Any) -> tuple[Any, str | None, str]:
    try:
        return encode_value(value)
    except pydantic_core.PydanticSerializationError:
        raise ActionFailed(
            f"action {action!r} gave a {type(value).__name__}, which cannot be sent as JSON"
        ) from None
