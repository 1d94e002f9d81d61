"""Handlers for agent VMs: their files, commands and sessions. A URL naming an actor type that
is no VM is a 404, before any actor is touched."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from agentos_nb.actors.handles import ActorHandle
from agentos_nb.errors import ValidationError
from agentos_nb.http.api import actor_handle
from agentos_nb.http.api_models import (
    CancelReply,
    ExecRequest,
    ModelChoice,
    ModeRequest,
    PermissionAnswer,
    ProcessOutputQuery,
    PromptRequest,
    SessionRequest,
)
from agentos_nb.http.errors import RouteNotFound
from agentos_nb.http.host_commands import refuse_host_commands
from agentos_nb.http.paths import parse_file_path
from agentos_nb.http.routing import Reply, Request, StreamEvent, json_bytes
from agentos_nb.vm.agent_os import is_vm
from agentos_nb.vm.models import ExecResult
from agentos_nb.vm.session_models import PromptResult, SessionInfo


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
    body = request.body_as(ExecRequest)
    options = body.model_dump(exclude={"command"}, exclude_none=True)
    result: ExecResult = await handle.exec(body.command, **options)
    return Reply(body=json_bytes(result))


async def create_session(request: Request) -> Reply:
    handle = _vm_handle(request, create=True)
    body = request.body_as(SessionRequest, required=False)
    await refuse_host_commands([body.mcp_servers or []])
    options = body.model_dump(exclude={"agent_type"}, exclude_none=True)
    info: SessionInfo = await handle.create_session(body.agent_type, **options)
    return Reply(201, json_bytes(info))


async def send_prompt(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    body = request.body_as(PromptRequest)
    result: PromptResult = await handle.send_prompt(request.param("session_id"), body.text)
    return Reply(body=json_bytes(result))


async def stream_prompt(request: Request) -> AsyncIterator[StreamEvent]:
    handle = _vm_handle(request, create=False)
    body = request.body_as(PromptRequest)
    session_id = request.param("session_id")
    await handle.get_session(session_id)  # an unknown session is a 404, before the stream opens
    yield None
    async with contextlib.aclosing(handle.stream("stream_prompt", session_id, body.text)) as updates:
        async for update in updates:
            yield "update", json_bytes(update)


async def cancel_prompt(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    cancelled = await handle.cancel_prompt(request.param("session_id"))
    return Reply(body=json_bytes(CancelReply(cancelled=cancelled)))


async def respond_permission(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    body = request.body_as(PermissionAnswer)
    await handle.respond_permission(request.param("session_id"), request.param("request_id"), body.option)
    return Reply(204, content_type=None)


async def set_mode(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    info: SessionInfo = await handle.set_mode(request.param("session_id"), request.body_as(ModeRequest).mode)
    return Reply(body=json_bytes(info))


async def set_model(request: Request) -> Reply:
    handle = _vm_handle(request, create=False)
    info: SessionInfo = await handle.set_model(
        request.param("session_id"), request.body_as(ModelChoice).model
    )
    return Reply(body=json_bytes(info))


async def close_session(request: Request) -> Reply:
    await _vm_handle(request, create=False).close_session(request.param("session_id"))
    return Reply(204, content_type=None)


async def process_output(request: Request) -> AsyncIterator[StreamEvent]:
    handle = _vm_handle(request, create=False)
    query = request.query_as(ProcessOutputQuery)
    raw = request.param("pid")
    if not (raw.isascii() and raw.isdigit()):
        problem = {"field": "pid", "message": "must be a whole number"}
        raise ValidationError(f"pid must be a whole number, not {raw!r}", errors=[problem])
    pid = int(raw)
    await handle.call("get_process", pid)  # an unknown process is a 404, before the stream opens
    yield None
    async with contextlib.aclosing(handle.stream("process_output", pid, since=query.since)) as chunks:
        async for chunk in chunks:
            yield "output", json_bytes(chunk)
    yield "exit", json_bytes(await handle.call("get_process", pid))


def _vm_handle(request: Request, *, create: bool) -> ActorHandle:
    name = request.param("name")
    if not is_vm(request.api.definition(name)):
        raise RouteNotFound(f"actor type {name!r} is not an agent VM: it has no files, exec or sessions")
    return actor_handle(request, create=create)
