"""One error hierarchy, each class with a stable code.

The codes are the contract: the HTTP face sends them over the wire and the remote client turns
them back into these classes, so a caller handles `QueueFull` the same way in-process or not.
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
        return {"error": self.code, "message": self.message, **self.details}


class ValidationError(AgentOSError):
    """A queue body, response, action argument or option that does not fit its schema."""

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


class UnknownQueue(AgentOSError):
    """A send to a queue the actor does not declare (Rivet drops these silently)."""

    code = "queue.unknown"


class QueueFull(AgentOSError):
    """The queue holds `max_queue_size` messages; nothing was stored, the sender may retry."""

    code = "queue.full"


class MessageTooLarge(AgentOSError):
    """The body serialises to more than `max_message_bytes`; nothing was stored."""

    code = "queue.message_too_large"


class PreviousMessageNotCompleted(AgentOSError):
    """A consumer asked for a message while a completable one it holds is still open."""

    code = "queue.previous_message_not_completed"


class AlreadyCompleted(AgentOSError):
    """`complete()` was called twice on one message."""

    code = "queue.already_completed"


class MessageReleased(AgentOSError):
    """`complete()` on a message this consumer no longer holds: it went back to its queue."""

    code = "queue.message_released"


class MessageNotFound(AgentOSError):
    """No message with that id is known (never sent, or its record has been pruned)."""

    code = "queue.message_not_found"


class UnknownActorType(AgentOSError, AttributeError):
    """A client was asked for an actor name the registry does not define."""

    code = "actor.unknown_type"


class ActorNotFound(AgentOSError):
    """No actor exists with that key or id."""

    code = "actor.not_found"


class ActorDestroyed(ActorNotFound):
    """The actor was destroyed while a request to it was under way (its message stored, its
    outcome awaited). A `get_or_create` handle never repeats such a request on a new actor."""

    code = "actor.destroyed"


class ActorAlreadyExists(AgentOSError):
    """`create` was called for a key that already has an actor."""

    code = "actor.already_exists"


class UnknownAction(AgentOSError, AttributeError):
    """The actor defines no action of that name."""

    code = "action.unknown"


class ActionTimeout(AgentOSError):
    """An action ran past the actor's `action_timeout`."""

    code = "action.timed_out"


class ActorStopped(AgentOSError):
    """The actor slept, was destroyed, or its registry stopped before the call finished."""

    code = "actor.stopped"


class RegistryNotRunning(AgentOSError):
    """The registry was never started, or has been stopped."""

    code = "registry.not_running"


class InvalidDefinition(AgentOSError):
    """An actor, queue or registry definition that cannot work, caught when it is made."""

    code = "definition.invalid"


class ToolError(AgentOSError):
    """Raised by a host tool's `execute` to fail with a plain message: the calling agent sees
    `{"ok": false, "error": "EXECUTION_ERROR", "message": ...}` without a Python type name."""

    code = "tool.error"


class UnknownAgentType(AgentOSError):
    """`create_session` named an agent type that no installed software package provides."""

    code = "session.unknown_agent_type"


class SessionNotFound(AgentOSError):
    """No session of that id in this VM (never created, or closed and forgotten)."""

    code = "session.not_found"


class SessionClosed(AgentOSError):
    """The session was closed; it keeps its events but takes no more prompts."""

    code = "session.closed"


class ModelNotAvailable(AgentOSError):
    """The model asked for cannot be used: an unknown provider, or its API key is not set."""

    code = "session.model_not_available"


class StoreUnusable(AgentOSError):
    """A store file that cannot be opened: not SQLite, damaged, or written by a newer version.
    It is left exactly as it was."""

    code = "store.unusable"
