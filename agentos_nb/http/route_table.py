"""The API's routes: one table, which the server dispatches from and the OpenAPI document
describes. `api.py` says how a URL addresses an actor; the handlers live beside this module,
by what they serve (the registry, any actor, agent VMs)."""

from __future__ import annotations

from agentos_nb.actors.handles import SendResult
from agentos_nb.http import actor_handlers, registry_handlers, vm_handlers
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
from agentos_nb.http.routing import Route
from agentos_nb.vm.models import ExecResult
from agentos_nb.vm.session_models import PromptResult, SessionInfo

_ACTOR = "/actors/{name}/{key}"
_SESSION = _ACTOR + "/sessions/{session_id}"

ROUTES = [
    Route(
        "GET",
        "/health",
        "Whether the server is up (no token needed; it tells nothing else)",
        registry_handlers.health,
        public=True,
        reply=Health,
    ),
    Route("GET", "/openapi.json", "This document", registry_handlers.openapi, reply="openapi"),
    Route(
        "GET",
        "/actors",
        "Every actor, awake or asleep, with its queues' depths",
        registry_handlers.list_actors,
        reply=ActorList,
    ),
    Route(
        "GET", _ACTOR, "An actor that exists (never creates it)", actor_handlers.get_actor, reply=ActorInfo
    ),
    Route(
        "PUT",
        _ACTOR,
        "Get or create an actor",
        actor_handlers.get_or_create_actor,
        body=ActorInput,
        body_required=False,
        reply=ActorInfo,
        description="`input` reaches `on_create` if the actor is new.",
    ),
    Route(
        "POST",
        _ACTOR,
        "Create an actor (409 actor.already_exists if its key is taken)",
        actor_handlers.create_actor,
        body=ActorInput,
        body_required=False,
        reply=ActorInfo,
        status=201,
    ),
    Route(
        "POST",
        _ACTOR + "/queues/{queue}",
        "Send a message to one of the actor's queues",
        actor_handlers.send_message,
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
        actor_handlers.wait_for_message,
        query=WaitQuery,
        reply=SendResult,
    ),
    Route(
        "GET",
        _ACTOR + "/dead-letters",
        "Messages that failed max_attempts deliveries",
        actor_handlers.dead_letters,
        query=DeadLettersQuery,
        reply=DeadLetterList,
    ),
    Route(
        "POST",
        _ACTOR + "/dead-letters/{message_id}/replay",
        "Put a dead letter back in its queue",
        actor_handlers.replay,
        status=204,
    ),
    Route(
        "POST",
        _ACTOR + "/actions/{action}",
        "Call an action",
        actor_handlers.call_action,
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
        actor_handlers.stream_action,
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
        vm_handlers.read_file,
        reply="bytes",
        per="vm",
        description="`path` is the VM path without its leading / (home/user/api.ts), or "
        "~/... for one relative to the VM's home. A path leading out of the VM is a 403.",
    ),
    Route(
        "PUT",
        _ACTOR + "/files/{path}",
        "Write a file of an agent VM (the body is its bytes)",
        vm_handlers.write_file,
        body="bytes",
        status=204,
        per="vm",
        description="Missing parent directories are made.",
    ),
    Route(
        "POST",
        _ACTOR + "/exec",
        "Run a command in an agent VM",
        vm_handlers.exec_command,
        body=ExecRequest,
        reply=ExecResult,
        per="vm",
        description="A non-zero exit code is a result, not an error.",
    ),
    Route(
        "POST",
        _ACTOR + "/sessions",
        "Start an agent session in a VM",
        vm_handlers.create_session,
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
        vm_handlers.send_prompt,
        body=PromptRequest,
        reply=PromptResult,
        per="vm",
        description="While another turn of the session runs, this one waits for it.",
    ),
    Route(
        "POST",
        _SESSION + "/prompt/stream",
        "Run one turn; its updates as server-sent events",
        vm_handlers.stream_prompt,
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
        vm_handlers.cancel_prompt,
        reply=CancelReply,
        per="vm",
    ),
    Route("DELETE", _SESSION, "Close a session", vm_handlers.close_session, status=204, per="vm"),
    Route(
        "GET",
        "/events",
        "The registry's events as server-sent events",
        registry_handlers.events,
        streams=True,
        drains=False,
        query=EventsQuery,
        reply="events",
        description="Each event is named by its type (message.enqueued, session.updated, ...) and "
        "its data is the event as JSON. A reader that falls `buffer` events behind gets "
        "events.dropped with the count lost. The stream ends (`end`) when the registry stops.",
    ),
]
