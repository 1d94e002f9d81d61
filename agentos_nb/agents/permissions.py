"""`PermissionGate`: the one place that decides whether a session's tool call may run.

Every tool of a session goes through `PermissionGate.check` before it runs, whatever model
called it (the offline model too): the four built-in tools, and any other tool an agent
offers (MCP tools: give the call's `uses` as `mcp:SERVER.TOOL` and `read_only` from the tool's
annotations). It applies, in order:
1. the mode: `plan` refuses a call that is not read-only; `accept_edits` lets write and edit
   through without asking;
2. the user's remembered answers: a tool refused "always" is refused without asking;
3. the policy: a tool it names, not allowed "always" yet, makes the turn wait for the user's
   answer (a `permission_request` update).
A refusal is a result for the model (text starting with `Error: `), so the turn goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentos_nb.vm.permissions import SessionPermissions
from agentos_nb.vm.session_models import PermissionToolCall, ToolCallLocation, ToolKind

EDIT_TOOLS = frozenset({"write", "edit"})


@dataclass(frozen=True, slots=True)
class GatedCall:
    """A tool call about to run, as the gate judges it."""

    tool_call_id: str
    title: str
    kind: ToolKind
    uses: tuple[str, ...]
    """The tools of the policy the call uses: `("write",)`, `("bash", "host:review.submit")`,
    `("mcp:files.delete",)`."""
    read_only: bool
    """The call cannot change anything: plan mode lets only these run."""
    plan_problem: str = ""
    """Why the call is not read-only, for plan mode's refusal."""
    raw_input: dict[str, Any] = field(default_factory=dict)
    locations: list[ToolCallLocation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    """May the call run; if not, what the model is told."""

    allowed: bool
    refusal: str = ""
    read_only: bool = False
    """Run it read-only (plan mode): bash in a fresh shell."""


class PermissionGate:
    """A session's gate: its mode, its policy and the user's answers (`SessionPermissions`)."""

    def __init__(self, permissions: SessionPermissions | None) -> None:
        self.permissions = permissions

    @property
    def mode(self) -> str:
        return self.permissions.mode if self.permissions is not None else "default"

    def wants_facts(self) -> bool:
        """Whether judging a bash command needs its parse: in plan mode, or when the policy
        names a host tool."""
        permissions = self.permissions
        if permissions is None:
            return False
        return permissions.mode == "plan" or any(name.startswith("host:") for name in permissions.policy.ask)

    async def check(self, call: GatedCall) -> Verdict:
        """Whether `call` may run, asking the user (and waiting) when the policy says so."""
        permissions = self.permissions
        if permissions is None:
            return Verdict(True)
        mode = permissions.mode
        if mode == "plan" and not call.read_only:
            return _refused_in_plan_mode(call)
        refused, unanswered = permissions.to_ask(call.uses)
        if refused:
            return Verdict(
                False, f"permission denied: the user refused {', '.join(refused)} for this session."
            )
        if mode == "accept_edits":
            unanswered = [name for name in unanswered if name not in EDIT_TOOLS]
        if unanswered:
            option = await permissions.ask(
                PermissionToolCall(
                    tool_call_id=call.tool_call_id,
                    title=call.title,
                    kind=call.kind,
                    raw_input=call.raw_input,
                    locations=call.locations,
                ),
                unanswered,
            )
            if option.startswith("reject"):
                again = " for the rest of the session" if option == "reject_always" else ""
                return Verdict(
                    False,
                    f"permission denied: the user refused this call{again}. Don't retry it as it "
                    "is; ask the user, or try another way.",
                )
            # The user may have switched to plan mode while the request waited.
            mode = permissions.mode
            if mode == "plan" and not call.read_only:
                return _refused_in_plan_mode(call)
        return Verdict(True, read_only=mode == "plan")


def _refused_in_plan_mode(call: GatedCall) -> Verdict:
    return Verdict(
        False,
        f"permission denied: the session is in plan mode, where tools only read "
        f"({call.plan_problem or 'this call may change things'}). Describe the change "
        "you would make instead, or ask the user to leave plan mode.",
    )
