"""A session's permissions: its policy and mode, the tools the user answered "always" for,
and the requests its turn waits on.

The table of sessions (`sessions.py`) owns one per session and saves it with the session, so
what was said "always" outlives sleep, wake and a restart. Deciding what a tool call needs is
the agent's business (`agentos_nb.agents.permissions`); this module keeps the answers.

A request waits for as long as its turn does: no timeout of its own. Cancelling the turn (or
closing the session, or the VM going to sleep) refuses it, and its `permission_response`
update says `cancelled`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentos_nb.errors import PermissionRequestNotFound
from agentos_nb.vm.session_models import (
    PERMISSION_OPTIONS,
    SESSION_MODES,
    PermissionOption,
    PermissionOptionKind,
    PermissionPolicy,
    PermissionRequest,
    PermissionResponse,
    PermissionToolCall,
    SessionMode,
    SessionUpdate,
)

Remembered = Literal["allow", "reject"]

OPTIONS = [
    PermissionOption(option_id="allow_once", name="Allow once", kind="allow_once"),
    PermissionOption(option_id="allow_always", name="Always allow", kind="allow_always"),
    PermissionOption(option_id="reject_once", name="Reject", kind="reject_once"),
    PermissionOption(option_id="reject_always", name="Always reject", kind="reject_always"),
]
"""What every request offers, in ACP's shape."""

BASE_TOOLS = ("read", "write", "edit", "bash")
_PREFIXES = ("host:", "mcp:")


def checked_policy(given: Any) -> PermissionPolicy:
    """A policy from what `create_session(permissions=...)` or an agent type took: a
    `PermissionPolicy`, a list of tool names, or `{"ask": [...]}`; a name that cannot name a
    tool is refused here, naming it."""
    if given is None:
        return PermissionPolicy()
    if isinstance(given, PermissionPolicy):
        policy = given
    elif isinstance(given, str):
        raise TypeError(f"permissions must be a list of tool names, not the single str {given!r}")
    elif isinstance(given, dict):
        policy = PermissionPolicy.model_validate(given)
    elif isinstance(given, Iterable):
        policy = PermissionPolicy(ask=list(given))
    else:
        raise TypeError(
            f"permissions must be a PermissionPolicy or a list of tool names, not {type(given).__name__}"
        )
    for name in policy.ask:
        if not isinstance(name, str) or not (
            name in BASE_TOOLS or (name.startswith(_PREFIXES) and name.split(":", 1)[1])
        ):
            raise ValueError(
                f"permissions: {name!r} names no tool; use read, write, edit, bash, "
                "host:TOOLKIT.TOOL, host:TOOLKIT, host:*, mcp:SERVER.TOOL, mcp:SERVER or mcp:*"
            )
    return policy


def checked_mode(mode: Any) -> SessionMode:
    if mode not in SESSION_MODES:
        raise ValueError(f"unknown session mode {mode!r}; the modes are {', '.join(SESSION_MODES)}")
    result: SessionMode = mode
    return result


@dataclass
class _Waiting:
    request: PermissionRequest
    names: tuple[str, ...]
    answer: asyncio.Future[PermissionOptionKind]


class SessionPermissions:
    """One session's policy, mode and remembered answers, and its waiting requests."""

    def __init__(
        self,
        policy: PermissionPolicy,
        emit: Callable[[SessionUpdate], None],
        *,
        mode: SessionMode = "default",
        remembered: dict[str, Remembered] | None = None,
    ) -> None:
        self.policy = policy
        self.mode: SessionMode = mode
        self.remembered: dict[str, Remembered] = dict(remembered or {})
        self._emit = emit
        self._waiting: dict[str, _Waiting] = {}

    def to_ask(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        """Of the tools a call uses, those the user refused for good, and those to ask about
        (gated by the policy and not allowed for good)."""
        gated = [name for name in dict.fromkeys(names) if self.policy.gated(name)]
        refused = [name for name in gated if self.remembered.get(name) == "reject"]
        unanswered = [name for name in gated if name not in self.remembered]
        return refused, unanswered

    async def ask(self, tool_call: PermissionToolCall, names: Sequence[str]) -> PermissionOptionKind:
        """Publish a request about `tool_call` and wait for its answer. An "always" answer
        covers each of `names` from now on."""
        request = PermissionRequest(
            request_id=f"perm-{secrets.token_hex(6)}",
            tool_call=tool_call,
            options=OPTIONS,
            reason=f"the session's policy asks before using {', '.join(names)}",
        )
        answer: asyncio.Future[PermissionOptionKind] = asyncio.get_running_loop().create_future()
        self._waiting[request.request_id] = _Waiting(request, tuple(names), answer)
        self._emit(request)
        try:
            return await answer
        finally:
            if self._waiting.pop(request.request_id, None) is not None:  # cancelled, not answered
                self._emit(
                    PermissionResponse(
                        request_id=request.request_id,
                        tool_call_id=tool_call.tool_call_id,
                        outcome="cancelled",
                    )
                )

    def respond(self, request_id: str, option: str) -> None:
        """Answer a waiting request; raises `PermissionRequestNotFound` for one not waiting, and
        `ValueError` for an option that is not one of ACP's four."""
        if option not in PERMISSION_OPTIONS:
            raise ValueError(
                f"unknown permission option {option!r}; the options are {', '.join(PERMISSION_OPTIONS)}"
            )
        if not isinstance(request_id, str) or request_id not in self._waiting:
            pending = ", ".join(self._waiting) or "none"
            raise PermissionRequestNotFound(
                f"this session is not waiting on permission request {request_id!r} (waiting: {pending})"
            )
        waiting = self._waiting.pop(request_id)
        chosen = PERMISSION_OPTIONS[PERMISSION_OPTIONS.index(option)]
        if chosen in ("allow_always", "reject_always"):
            for name in waiting.names:
                self.remembered[name] = "allow" if chosen == "allow_always" else "reject"
        self._emit(
            PermissionResponse(
                request_id=request_id,
                tool_call_id=waiting.request.tool_call.tool_call_id,
                outcome="selected",
                option_id=chosen,
            )
        )
        if not waiting.answer.done():
            waiting.answer.set_result(chosen)

    @property
    def pending(self) -> list[PermissionRequest]:
        """The requests waiting for an answer, oldest first."""
        return [waiting.request for waiting in self._waiting.values()]

    def export(self) -> dict[str, Any]:
        return {
            "policy": self.policy.model_dump(mode="json"),
            "mode": self.mode,
            "remembered": self.remembered,
        }

    @classmethod
    def restore(
        cls, saved: dict[str, Any] | None, emit: Callable[[SessionUpdate], None]
    ) -> SessionPermissions:
        saved = saved or {}
        remembered = {
            str(name): answer
            for name, answer in dict(saved.get("remembered") or {}).items()
            if answer in ("allow", "reject")
        }
        return cls(
            PermissionPolicy.model_validate(saved.get("policy") or {}),
            emit,
            mode=checked_mode(saved.get("mode", "default")),
            remembered=remembered,
        )
