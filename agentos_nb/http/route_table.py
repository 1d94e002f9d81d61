"""The API's routes: one table, which the server dispatches from and the OpenAPI document
describes. `api.py` says how a URL addresses an actor; the handlers live beside this module,
by what they serve (the registry, any actor, agent VMs)."""

from __future__ import annotations

from agentos_nb.actors.handles import SendResult
from agentos_nb.http import actor_handlers, preview_handlers, registry_handlers, terminal_socket, vm_handlers
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
    ModelChoice,
    ModeRequest,
    PermissionAnswer,
    ProcessOutputQuery,
    PromptRequest,
    SendQuery,
    SessionRequest,
    WaitQuery,
)
from agentos_nb.http.routing import Route
from agentos_nb.vm.models import ExecResult
from agentos_nb.vm.session_models import PromptResult, SessionInfo
from agentos_nb.vm.terminal_models import TerminalScreen

_ACTOR = "/actors/{name}/{key}"
_SESSION = _ACTOR + "/sessions/{session_id}"

ROUTES = [
    Route(
        "GET",
        "/health",
        "Whether the server is up (no token needed; it tells nothing else)",
        registry_handlers.health,
        scope="health",
        reply=Health,
    ),
    Route("GET", "/openapi.json", "This document", registry_handlers.openapi, scope="read", reply="openapi"),
    Route(
        "GET",
        "/actors",
        "Every actor, awake or asleep, with its queues' depths",
        registry_handlers.list_actors,
        scope="read",
        reply=ActorList,
    ),
    Route(
        "GET",
        _ACTOR,
        "An actor that exists (never creates it)",
        actor_handlers.get_actor,
        scope="read",
        reply=ActorInfo,
    ),
    Route(
        "PUT",
        _ACTOR,
        "Get or create an actor",
        actor_handlers.get_or_create_actor,
        scope="create",
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
        scope="create",
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
        scope="send",
        body="json",
        query=SendQuery,
        reply=SendResult,
        per="queue",
        description="The body is the message body. Replies once it is stored (status enqueued), or "
        "with wait=true once a consumer completes it (completed, dead_lettered, or timed_out after "
        "`timeout` s: the message stays queued; GET .../messages/{message_id} picks it up later). A "
        "queue the server takes webhooks on also takes a post with no token, signed: "
        "X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>, or of <timestamp>.<body> with "
        "X-Webhook-Timestamp (Unix seconds, within 5 min; each such post is taken once).",
    ),
    Route(
        "GET",
        _ACTOR + "/messages/{message_id}",
        "Wait for the outcome of a message sent earlier",
        actor_handlers.wait_for_message,
        scope="wait",
        query=WaitQuery,
        reply=SendResult,
    ),
    Route(
        "GET",
        _ACTOR + "/dead-letters",
        "Messages that failed max_attempts deliveries",
        actor_handlers.dead_letters,
        scope="dead_letters",
        query=DeadLettersQuery,
        reply=DeadLetterList,
    ),
    Route(
        "POST",
        _ACTOR + "/dead-letters/{message_id}/replay",
        "Put a dead letter back in its queue",
        actor_handlers.replay,
        scope="dead_letters",
        status=204,
    ),
    Route(
        "POST",
        _ACTOR + "/actions/{action}",
        "Call an action",
        actor_handlers.call_action,
        scope="actions",
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
        scope="actions",
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
        scope="files_read",
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
        scope="files_write",
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
        scope="exec",
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
        scope="sessions",
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
        scope="sessions",
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
        scope="sessions",
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
        scope="sessions",
        reply=CancelReply,
        per="vm",
    ),
    Route(
        "POST",
        _SESSION + "/permissions/{request_id}",
        "Answer a permission request the session's turn waits on",
        vm_handlers.respond_permission,
        scope="sessions",
        body=PermissionAnswer,
        status=204,
        per="vm",
        description="The request comes as a `permission_request` update (in the prompt's stream and "
        "as a session.updated event). An `always` answer holds for the rest of the session. A "
        "request no longer waiting (answered, or cancelled with its turn) is a 404.",
    ),
    Route(
        "POST",
        _SESSION + "/mode",
        "Switch a session's mode: default, plan (read-only) or accept_edits",
        vm_handlers.set_mode,
        scope="sessions",
        body=ModeRequest,
        reply=SessionInfo,
        per="vm",
    ),
    Route(
        "POST",
        _SESSION + "/model",
        "Change a session's model from its next turn",
        vm_handlers.set_model,
        scope="sessions",
        body=ModelChoice,
        reply=SessionInfo,
        per="vm",
        description="A model that cannot be used (an unknown name, no key) is refused now (422).",
    ),
    Route(
        "DELETE",
        _SESSION,
        "Close a session",
        vm_handlers.close_session,
        scope="sessions",
        status=204,
        per="vm",
    ),
    Route(
        "GET",
        _ACTOR + "/processes/{pid}/output",
        "A VM process's output as server-sent events",
        vm_handlers.process_output,
        scope="exec",
        streams=True,
        query=ProcessOutputQuery,
        reply="events",
        stream_events=("output", "exit", "end", "error"),
        per="vm",
        description="Events: `output` (data: {pid, stream, data, offset, end, dropped}) for each "
        "chunk, what is kept of it first (a chunk's `dropped` counts the bytes lost before it), "
        "then the rest as it comes; `exit` (data: the process's info) once it ends; then `end`. "
        "Resume with since=<the last chunk's end>. Processes are started, fed and killed with "
        "the VM's actions: POST .../actions/spawn, write_stdin, close_stdin, kill, wait.",
    ),
    Route(
        "GET",
        "/events",
        "The registry's events as server-sent events",
        registry_handlers.events,
        scope="events",
        streams=True,
        drains=False,
        query=EventsQuery,
        reply="events",
        description="Each event is named by its type (message.enqueued, session.updated, ...) and "
        "its data is the event as JSON. A reader that falls `buffer` events behind gets "
        "events.dropped with the count lost. The stream ends (`end`) when the registry stops.",
    ),
    Route(
        "GET",
        terminal_socket.TERMINAL_ROUTE,
        "A VM's open terminal: its screen, or with `Upgrade: websocket`, the terminal itself",
        terminal_socket.terminal_screen,
        scope="actions",
        upgrades=True,
        reply=TerminalScreen,
        per="vm",
        description="Open one with the `open_shell` action. As a WebSocket, the server sends "
        '`{"output": ...}` frames (what the terminal writes, escape sequences and all) and the '
        'client `{"keys": "ls\\r"}` or `{"resize": {"cols": 100, "rows": 30}}`; the socket closes '
        "when the terminal ends. Cross-origin upgrades are refused.",
    ),
    Route(
        "GET",
        "/previews/{grant}/{path}",
        "A VM's file under a preview link's directory (no token: the signed link opens it)",
        preview_handlers.serve_preview,
        scope="previews",
        reply="bytes",
        description="Links come from `vm.preview_url(path, expires_in=)`. A directory serves its "
        "index.html, never a listing. An altered or expired link, `..`, an encoded slash, a "
        "symlink on the way or a missing file is a 403 http.preview_refused.",
    ),
]
