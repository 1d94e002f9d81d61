"""One error hierarchy, each class with a stable code.

The codes are the contract: the HTTP face sends them over the wire and the remote client turns
them back into these classes, so a caller handles `QueueFull` the same way in-process or not.
Errors come in families that match their code's prefix (`QueueError` for `queue.*`, `ActorError`
for `actor.*` and `action.*`, `SessionError`, `VmError`, `StoreError`), so a caller can catch a
whole family at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pydantic


class AgentOSError(Exception):
    """Base of every error agentos_nb raises on purpose."""

    code: ClassVar[str] = "agentos.error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The error as the HTTP face sends it: `{"error": code, "message": ..., **details}`,
        from which the remote client raises the same class again."""
        return {"error": self.code, "message": self.message, **self.details}


class ValidationError(AgentOSError):
    """A queue body, response, action argument or option that does not fit its schema.

    It shares pydantic's name on purpose: it is the error Rivet's users know, and it is what
    pydantic's becomes at our boundary, every failing field named in one readable message.
    It is not a subclass of pydantic's: catch `agentos_nb.errors.ValidationError`."""

    code = "validation_error"

    @classmethod
    def from_pydantic(cls, subject: str, error: pydantic.ValidationError) -> ValidationError:
        """Name every failing field, so the sender sees what to fix without a traceback."""
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]) or "(root)", "message": item["msg"]}
            for item in error.errors(include_url=False)
        ]
        listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return cls(f"{subject} is invalid: {listed}", errors=problems)


class QueueError(AgentOSError):
    """A send, receive or completion that the queue refused."""

    code = "queue.error"


class UnknownQueue(QueueError):
    """A send to a queue the actor does not declare (Rivet drops these silently)."""

    code = "queue.unknown"


class QueueFull(QueueError):
    """The queue holds `max_queue_size` messages; nothing was stored, the sender may retry."""

    code = "queue.full"


class MessageTooLarge(QueueError):
    """The body serialises to more than `max_message_bytes`; nothing was stored."""

    code = "queue.message_too_large"


class PreviousMessageNotCompleted(QueueError):
    """A consumer asked for a message while a completable one it holds is still open."""

    code = "queue.previous_message_not_completed"


class AlreadyCompleted(QueueError):
    """`complete()` was called twice on one message."""

    code = "queue.already_completed"


class MessageReleased(QueueError):
    """`complete()` on a message this consumer no longer holds: it went back to its queue."""

    code = "queue.message_released"


class MessageNotFound(QueueError):
    """No message with that id is known (never sent, or its record has been pruned)."""

    code = "queue.message_not_found"


class ActorError(AgentOSError):
    """An actor that cannot be found, made or reached, or an action of it that failed to run."""

    code = "actor.error"


class UnknownActorType(ActorError, AttributeError):
    """A client was asked for an actor name the registry does not define."""

    code = "actor.unknown_type"


class ActorNotFound(ActorError):
    """No actor exists with that key or id."""

    code = "actor.not_found"


class ActorDestroyed(ActorNotFound):
    """The actor was destroyed while a request to it was under way (its message stored, its
    outcome awaited). A `get_or_create` handle never repeats such a request on a new actor."""

    code = "actor.destroyed"


class ActorAlreadyExists(ActorError):
    """`create` was called for a key that already has an actor."""

    code = "actor.already_exists"


class ActionError(ActorError):
    """An action call that cannot be made or did not finish."""

    code = "action.error"


class UnknownAction(ActionError, AttributeError):
    """The actor defines no action of that name."""

    code = "action.unknown"


class ActionTimeout(ActionError):
    """An action ran past the actor's `action_timeout`."""

    code = "action.timed_out"


class ActorStopped(ActorError):
    """The actor slept, was destroyed, or its registry stopped before the call finished."""

    code = "actor.stopped"


class RegistryNotRunning(AgentOSError):
    """The registry was never started, or has been stopped."""

    code = "registry.not_running"


class InvalidDefinition(AgentOSError):
    """An actor, queue or registry definition that cannot work, caught when it is made."""

    code = "definition.invalid"


class VmError(AgentOSError):
    """An agent VM that failed as a machine (its engine, not the command it ran). A command's own
    failure is its exit code; a bad path or file is the matching `OSError`, as Python's own."""

    code = "vm.error"


class VmCrashed(VmError):
    """The host process running the VM's engine died (or was killed, for a command that would
    not stop) while this call was under way. The VM comes back from its last snapshot.
    `details` holds `exit_code` and `signal` (the signal's number, or None)."""

    code = "vm.crashed"


class ProcessNotFound(VmError):
    """No process of that id in this VM: never spawned, long ended, or spawned before the VM
    last slept (processes end with their VM's sleep)."""

    code = "vm.process_not_found"


class TooManyProcesses(VmError):
    """`spawn` past the VM's `ShellLimits.max_processes` running processes: nothing started."""

    code = "vm.too_many_processes"


class ProcessLost(VmError):
    """The process ended with its VM, not on its own: the VM's host died (`details` holds its
    `exit_code` and `signal`), or the VM went to sleep or was destroyed."""

    code = "vm.process_lost"


class ToolError(AgentOSError):
    """Raised by a host tool's `execute` to fail with a plain message: the calling agent sees
    `{"ok": false, "error": "EXECUTION_ERROR", "message": ...}` without a Python type name."""

    code = "tool.error"


class SessionError(AgentOSError):
    """A coding-agent session that cannot be created, found or prompted."""

    code = "session.error"


class UnknownAgentType(SessionError):
    """`create_session` named an agent type that no installed software package provides."""

    code = "session.unknown_agent_type"


class SessionNotFound(SessionError):
    """No session of that id in this VM (never created, or closed and forgotten)."""

    code = "session.not_found"


class SessionClosed(SessionError):
    """The session was closed; it keeps its events but takes no more prompts."""

    code = "session.closed"


class PermissionRequestNotFound(SessionError):
    """`respond_permission` named a request the session is not waiting on: never made, already
    answered, or refused when its turn was cancelled."""

    code = "session.permission_request_not_found"


class McpServerFailed(SessionError):
    """An MCP server given to `create_session` could not be started or reached, or did not list
    its tools in time; the message says which, and quotes the end of a stdio server's stderr."""

    code = "session.mcp_server_failed"


class ScheduleNotFound(VmError):
    """`cancel_schedule` named a cron schedule this VM does not have (never made, or cancelled)."""

    code = "vm.schedule_not_found"


class ModelNotAvailable(SessionError):
    """The model asked for cannot be used: an unknown provider, or its API key is not set."""

    code = "session.model_not_available"


class StoreError(AgentOSError):
    """A store that cannot be used as asked."""

    code = "store.error"


class StoreUnusable(StoreError):
    """A store file that cannot be trusted, named with what is wrong with it. On open: not SQLite,
    damaged, another program's, written by a newer version, its message counter behind its
    messages, or read-only; it is then left exactly as it was. While running: its files were
    removed or replaced (it then takes no more writes), or SQLite failed for a reason that is
    not the caller's (damage, a full disk, a lock held by another process)."""

    code = "store.unusable"
