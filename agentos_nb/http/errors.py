"""Errors over HTTP, both ways: the status and body the server answers for an exception, and the
exception the client raises for a status and body, so a caller handles `QueueFull` (or a VM's
`FileNotFoundError`) the same in-process or not.

Every error body is `{"error": CODE, "message": ..., **details}`. The code is the runtime
error's own (`agentos_nb.errors`), one of the HTTP layer's (`http.*`, classes below), or, for
the plain Python exceptions a VM's actions raise on bad input, `os.*`, `value_error`,
`type_error`, `lookup_error` (an unknown encoding) and `timeout`. Anything else an action
raises is `action.failed` (500), its type named and its traceback kept in the server's log.
"""

from __future__ import annotations

import errno as errno_codes
from typing import Any, ClassVar

import pydantic

import agentos_nb.errors as errors
from agentos_nb.errors import AgentOSError


class HttpError(AgentOSError):
    """A failure of the HTTP layer, or an error code this client does not know."""

    code: ClassVar[str] = "http.error"
    status: ClassVar[int] = 400


class Unauthorized(HttpError):
    """The bearer token is missing or wrong."""

    code = "http.unauthorized"
    status = 401


class BadSignature(Unauthorized):
    """A webhook post whose signature is missing, wrong, stale or already seen."""

    code = "http.bad_signature"


class Forbidden(HttpError):
    """The token is right but its scope does not open this route, actor or queue; the message
    and `allowed` say what it does open."""

    code = "http.forbidden"
    status = 403


class PreviewRefused(HttpError):
    """A preview link that is altered, expired or for another server, or a path it does not open."""

    code = "http.preview_refused"
    status = 403


class RouteNotFound(HttpError):
    code = "http.not_found"
    status = 404


class MethodNotAllowed(HttpError):
    code = "http.method_not_allowed"
    status = 405


class MalformedJson(HttpError):
    code = "http.malformed_json"
    status = 400


class MalformedUrl(HttpError):
    """A key or VM path in the URL whose percent-encoding is not UTF-8: two such keys would
    otherwise decode to the same replacement characters and reach one actor."""

    code = "http.malformed_url"
    status = 400


class KeyTooLong(HttpError):
    """A key past `MAX_KEY_PARTS` parts or `MAX_KEY_BYTES` bytes: keys name actors, they are not
    a place to store data, and every one is kept in the store."""

    code = "http.key_too_long"
    status = 414


class HeadersTooLarge(HttpError):
    """Request headers past the server's limit, answered rather than dropped."""

    code = "http.headers_too_large"
    status = 431


class BodyTooLarge(HttpError):
    """The request body is over the server's limit; nothing of it was acted on."""

    code = "http.body_too_large"
    status = 413


class ServerStopping(HttpError):
    """The server is draining before it stops and takes no new requests."""

    code = "http.stopping"
    status = 503


class InternalError(HttpError):
    """The server failed in a way it did not expect; the details are in its log only."""

    code = "http.internal_error"
    status = 500


class ActionFailed(AgentOSError):
    """An action raised an exception that is not one of agentos_nb's (its type is named)."""

    code = "action.failed"


STATUS_BY_CODE: dict[str, int] = {
    errors.ValidationError.code: 422,
    errors.UnknownQueue.code: 404,
    errors.QueueFull.code: 429,
    errors.MessageTooLarge.code: 413,
    errors.PreviousMessageNotCompleted.code: 409,
    errors.AlreadyCompleted.code: 409,
    errors.MessageReleased.code: 409,
    errors.MessageNotFound.code: 404,
    errors.UnknownActorType.code: 404,
    errors.ActorNotFound.code: 404,
    errors.ActorDestroyed.code: 410,
    errors.ActorAlreadyExists.code: 409,
    errors.UnknownAction.code: 404,
    errors.ActionTimeout.code: 504,
    errors.ActorStopped.code: 503,
    errors.RegistryNotRunning.code: 503,
    errors.UnknownAgentType.code: 422,
    errors.SessionNotFound.code: 404,
    errors.SessionClosed.code: 409,
    errors.ProcessNotFound.code: 404,
    errors.TooManyProcesses.code: 429,
    errors.ProcessLost.code: 410,
    errors.VmCrashed.code: 503,  # the VM is back from its last snapshot: the call may be made again
    errors.McpServerFailed.code: 502,
    errors.ScheduleNotFound.code: 404,
    errors.PermissionRequestNotFound.code: 404,
    errors.ModelNotAvailable.code: 422,
    errors.StoreUnusable.code: 503,
}
"""Runtime error codes whose status is not 500 (a definition, tool or action failure)."""

# The plain exceptions a VM's actions raise for bad input, most specific first.
_BUILTINS: tuple[tuple[type[Exception], str, int], ...] = (
    (FileNotFoundError, "os.file_not_found", 404),
    (FileExistsError, "os.file_exists", 409),
    (IsADirectoryError, "os.is_a_directory", 409),
    (NotADirectoryError, "os.not_a_directory", 409),
    (PermissionError, "os.permission_denied", 403),
    (OSError, "os.error", 409),
    (ValueError, "value_error", 422),
    (TypeError, "type_error", 422),
    (TimeoutError, "timeout", 504),
    (LookupError, "lookup_error", 422),  # only itself (an unknown encoding), not KeyError or IndexError
)
_BUILTIN_BY_CODE = {code: kind for kind, code, _ in _BUILTINS}


def error_reply(error: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body that answer `error`, raised while serving a request."""
    if isinstance(error, HttpError):
        return error.status, error.to_dict()
    if isinstance(error, AgentOSError):
        return STATUS_BY_CODE.get(error.code, 500), error.to_dict()
    if isinstance(error, pydantic.ValidationError):
        return error_reply(errors.ValidationError.from_pydantic("the input", error))
    for kind, code, status in _BUILTINS:
        if isinstance(error, kind) and (kind is not LookupError or type(error) is LookupError):
            body: dict[str, Any] = {"error": code, "message": str(error)}
            if isinstance(error, OSError) and error.errno is not None:
                body.update(errno=error.errno, strerror=error.strerror, filename=error.filename)
            return status, body
    message = f"{type(error).__name__}: {error}"
    return 500, {"error": ActionFailed.code, "message": message, "exception_type": type(error).__name__}


def error_from_reply(status: int, body: Any) -> Exception:
    """The exception a client raises for an error reply: the class whose code the body names."""
    if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
        text = body if isinstance(body, str) else repr(body)
        return HttpError(f"HTTP {status}: {text[:500]}", status=status)
    details = dict(body)
    code = details.pop("error")
    message = str(details.pop("message", code))
    builtin = _BUILTIN_BY_CODE.get(code)
    if builtin is not None:
        number = details.get("errno")
        if issubclass(builtin, OSError) and isinstance(number, int):
            return builtin(
                number,
                details.get("strerror") or errno_codes.errorcode.get(number, ""),
                details.get("filename"),
            )
        return builtin(message)
    kind = _classes_by_code().get(code)
    if kind is None:
        return HttpError(message, status=status, code=code, **details)
    return kind(message, **details)


def _classes_by_code() -> dict[str, type[AgentOSError]]:
    found: dict[str, type[AgentOSError]] = {}
    pending: list[type[AgentOSError]] = [AgentOSError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found
