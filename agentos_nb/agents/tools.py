"""The coding agent's four tools, `read`, `write`, `edit` and `bash`, acting on one VM.

Each call gives the model a text to read, and the session's transcript an ACP tool call and
its update. Failures are results too (text starting with `Error: `): the model reads them and
tries again, as it would read a failed command.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_ai.tools import ToolDefinition

from agentos_nb.agents.bash_effects import ScriptFacts, host_tools_used, plan_mode_problem
from agentos_nb.agents.permissions import GatedCall
from agentos_nb.agents.tool_inputs import TOOL_INPUTS, BashInput, EditInput, ReadInput, WriteInput
from agentos_nb.errors import VmError
from agentos_nb.vm.files import resolve_path
from agentos_nb.vm.session_models import (
    DiffContent,
    TextContent,
    ToolCallContent,
    ToolCallLocation,
    ToolCallStatus,
    ToolKind,
)

if TYPE_CHECKING:
    from agentos_nb.agents.mcp import McpTools
    from agentos_nb.vm.machine import AgentVm

READ_LINE_LIMIT = 2000
READ_BYTE_LIMIT = 50_000
OUTPUT_BYTE_LIMIT = 50_000
"""What one tool result may hand the model; longer output is cut and the cut is said."""
DIFF_CHARACTER_LIMIT = 200_000
"""Past this, an edit's diff is neither computed nor kept in the transcript."""

TOOL_DEFINITIONS = [
    ToolDefinition(
        name=name,
        description=(schema.__doc__ or "").strip(),
        parameters_json_schema=schema.model_json_schema(),
    )
    for name, schema in TOOL_INPUTS.items()
]

_KINDS: dict[str, ToolKind] = {"read": "read", "write": "edit", "edit": "edit", "bash": "execute"}


@dataclass(frozen=True, slots=True)
class ToolCallPlan:
    """What the transcript shows when a call starts."""

    title: str
    kind: ToolKind
    locations: list[ToolCallLocation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    """What the model reads."""
    status: ToolCallStatus
    content: list[ToolCallContent | DiffContent]
    """What the transcript shows."""


class ToolFailed(Exception):
    """A tool call that could not do its work; the message is for the model."""


class AgentTools:
    """The tools of one session: its VM, its working directory and its persistent shell."""

    def __init__(self, vm: AgentVm, cwd: str, mcp: McpTools | None = None) -> None:
        self._vm = vm
        self._cwd = cwd
        self._shell = vm.shell.persistent(cwd)
        self.mcp = mcp
        """The session's MCP servers' tools, offered beside the four."""

    @property
    def definitions(self) -> list[ToolDefinition]:
        """Every tool the model may call: the four, then the MCP servers'."""
        return [*TOOL_DEFINITIONS, *(self.mcp.definitions if self.mcp else ())]

    async def close(self) -> None:
        """Free the persistent shell on the VM's host (a host gone or a VM asleep has freed it),
        and stop the MCP servers."""
        try:
            with contextlib.suppress(VmError):
                await self._shell.close()
        finally:
            if self.mcp is not None:
                await self.mcp.close()

    def plan(self, name: str, args: dict[str, Any]) -> ToolCallPlan:
        if self.mcp is not None and name in self.mcp:
            return self.mcp.plan(name, args)
        kind = _KINDS.get(name, "other")
        if name == "bash":
            return ToolCallPlan(f"bash: {_first_line(str(args.get('command', '')))}", kind)
        path = args.get("path")
        if not isinstance(path, str) or name not in _KINDS:
            return ToolCallPlan(name, kind)
        try:
            where = self._absolute(path)
        except (OSError, ValueError):  # the call will fail, and say why
            where = path
        return ToolCallPlan(f"{name} {path}", kind, [ToolCallLocation(path=where)])

    async def gated_call(
        self, tool_call_id: str, name: str, args: dict[str, Any], plan: ToolCallPlan, *, judge_bash: bool
    ) -> GatedCall:
        """The call as the permission gate sees it; a bash command is parsed on the VM's host
        (`judge_bash`) to tell which host tools it uses and whether it is read-only."""
        uses: tuple[str, ...] = (name,)
        problem = "" if name not in ("write", "edit", "bash") else f"{name} may change files"
        if self.mcp is not None and name in self.mcp:
            uses = (self.mcp.policy_name(name),)
            if not self.mcp.read_only(name):
                problem = f"{plan.title} is not marked read-only by its server"
        elif name == "bash" and judge_bash:
            facts = await self._facts(str(args.get("command", "")))
            toolkits = self._vm.spec.toolkits
            uses = ("bash", *host_tools_used(facts, toolkits))
            problem = plan_mode_problem(facts, toolkits) or ""
        return GatedCall(
            tool_call_id=tool_call_id,
            title=plan.title,
            kind=plan.kind,
            uses=uses,
            read_only=not problem,
            plan_problem=problem,
            raw_input=args,
            locations=plan.locations,
        )

    def refused(self, refusal: str) -> ToolOutcome:
        """The result of a call the permission gate stopped."""
        return failed_outcome(refusal)

    async def run(self, name: str, args: dict[str, Any], *, read_only: bool = False) -> ToolOutcome:
        """Run the tool; `read_only` (plan mode) runs bash in a fresh shell, where the
        session's functions and aliases cannot stand in for a read-only command."""
        if self.mcp is not None and name in self.mcp:
            return await self.mcp.run(name, args)
        schema = TOOL_INPUTS.get(name)
        try:
            if schema is None:
                raise ToolFailed(f"there is no tool {name!r}; the tools are {', '.join(TOOL_INPUTS)}")
            try:
                parsed = schema.model_validate(args)
            except pydantic.ValidationError as error:
                raise ToolFailed(_invalid_arguments(name, error)) from None
            if isinstance(parsed, ReadInput):
                return text_outcome(await self._read(parsed))
            if isinstance(parsed, WriteInput):
                return await self._write(parsed)
            if isinstance(parsed, EditInput):
                return await self._edit(parsed)
            assert isinstance(parsed, BashInput)
            return await self._bash(parsed, fresh=read_only)
        except ToolFailed as failure:
            return failed_outcome(str(failure))
        except OSError as error:
            return failed_outcome(_os_error(error))
        except (ValueError, TypeError) as error:  # the VM refused the arguments: a path, a name
            return failed_outcome(str(error))
        except Exception as error:  # the model chose the input; it must never crash the turn
            return failed_outcome(f"{name} failed: {type(error).__name__}: {error}")

    def invalid_json(self, name: str) -> ToolOutcome:
        return failed_outcome(f"the arguments of {name} are not valid JSON; send one JSON object")

    # --- the tools -------------------------------------------------------------------------

    async def _read(self, request: ReadInput) -> str:
        text = await self._read_text(request.path)
        lines = text.splitlines(keepends=True)
        first = (request.offset or 1) - 1
        if lines and first >= len(lines):
            raise ToolFailed(
                f"{request.path} has {len(lines)} lines; offset {request.offset} is past the end"
            )
        last = min(len(lines), first + (request.limit or READ_LINE_LIMIT))
        chosen: list[str] = []
        size = 0
        for line in lines[first:last]:
            size += len(line)
            if size > READ_BYTE_LIMIT and chosen:
                break
            chosen.append(line)
        if chosen and len(chosen[0]) > READ_BYTE_LIMIT:  # one line longer than a whole read
            return (
                chosen[0][:READ_BYTE_LIMIT]
                + f"\n[line {first + 1} is {len(chosen[0])} characters long and was "
                "cut; use bash (cut -c, head -c) to see the rest]"
            )
        shown_last = first + len(chosen)
        body = "".join(chosen)
        if shown_last < len(lines):
            ending = "" if body.endswith("\n") else "\n"
            where = f"lines {first + 1}-{shown_last} of {len(lines)}"
            body += f"{ending}[{where}; continue with offset={shown_last + 1}]"
        return body

    async def _write(self, request: WriteInput) -> ToolOutcome:
        path = self._absolute(request.path)
        files = self._vm.files
        previous = None
        if await files.exists(path) and (await files.stat(path)).kind == "file":
            with contextlib.suppress(ToolFailed):  # a binary file is replaced; its diff is not shown
                previous = await self._read_text(path)
        await files.write_file(path, request.content)
        size = len(request.content.encode())
        return ToolOutcome(
            f"Wrote {size} bytes to {path}", "completed", _diff_content(path, previous, request.content)
        )

    async def _edit(self, request: EditInput) -> ToolOutcome:
        path = self._absolute(request.path)
        if not request.old_text:
            raise ToolFailed("old_text is empty; give the exact text to replace")
        old = await self._read_text(path)
        found = old.count(request.old_text)
        if found == 0:
            raise ToolFailed(
                f"old_text was not found in {path}; it must match the file exactly, whitespace and "
                "indentation included (read the file first)"
            )
        if found > 1:
            raise ToolFailed(
                f"old_text occurs {found} times in {path}; include more of the surrounding lines so "
                "that it matches exactly one place"
            )
        new = old.replace(request.old_text, request.new_text, 1)
        await self._vm.files.write_file(path, new)
        return ToolOutcome(
            f"Edited {path}\n{_unified_diff(path, old, new)}", "completed", _diff_content(path, old, new)
        )

    async def _bash(self, request: BashInput, *, fresh: bool = False) -> ToolOutcome:
        started = time.monotonic()
        limit = self._vm.spec.limits.timeout  # the model may ask for less time, never more
        timeout = limit if request.timeout is None else min(request.timeout, limit)
        if fresh:
            run = await self._vm.shell.run(request.command, cwd=self._cwd, timeout=timeout)
        else:
            run = await self._shell.run(request.command, timeout=timeout)
        self._vm.note_command(request.command, self._cwd, run, time.monotonic() - started)
        text, cut = cut_output(run.stdout + run.stderr)
        notes = []
        if cut or run.truncated:
            notes.append("[output cut: it was too long; write it to a file and read parts of it]")
        if run.timed_out:
            notes.append("[the shell was restarted: its variables and working directory are reset]")
        if run.exit_code != 0:
            notes.append(f"[exit code {run.exit_code}]")
        for note in notes:
            text += ("" if not text or text.endswith("\n") else "\n") + note + "\n"
        outcome = text_outcome(text or "(no output)")
        return outcome if run.exit_code == 0 else ToolOutcome(outcome.text, "failed", outcome.content)

    # --- helpers ---------------------------------------------------------------------------

    async def _facts(self, command: str) -> ScriptFacts | None:
        """The host's parse of `command`; None when it could not be had (judged as unknown)."""
        try:
            return ScriptFacts.model_validate(await self._vm.shell.analyze(command))
        except (VmError, pydantic.ValidationError, OSError, ValueError, TypeError):
            return None

    def _absolute(self, path: str) -> str:
        return resolve_path(path, self._cwd)

    async def _read_text(self, path: str) -> str:
        content = await self._vm.files.read_file(self._absolute(path))
        assert isinstance(content, bytes)
        try:
            return content.decode()
        except UnicodeDecodeError:
            raise ToolFailed(f"{path} is not a text file (not UTF-8); use bash to inspect it") from None


def _unified_diff(path: str, old: str, new: str) -> str:
    if len(old) + len(new) > DIFF_CHARACTER_LIMIT:  # difflib is quadratic at worst, on the loop
        return f"(the file is {len(new.splitlines())} lines long; the diff is too large to show)"
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a{path}", f"b{path}"
        )
    )


def _diff_content(path: str, old: str | None, new: str) -> list[ToolCallContent | DiffContent]:
    """The transcript's view of a change: both texts, unless they are too big to keep in every
    update (and every saved session) for good."""
    if len(old or "") + len(new) > DIFF_CHARACTER_LIMIT:
        note = f"{path}: {len(new.splitlines())} lines written (too large to keep a diff of)"
        return [ToolCallContent(content=TextContent(text=note))]
    return [DiffContent(path=path, old_text=old, new_text=new)]


def text_outcome(text: str) -> ToolOutcome:
    return ToolOutcome(text, "completed", [ToolCallContent(content=TextContent(text=text))])


def failed_outcome(message: str) -> ToolOutcome:
    text = f"Error: {message}"
    return ToolOutcome(text, "failed", [ToolCallContent(content=TextContent(text=text))])


def _os_error(error: OSError) -> str:
    where = error.filename if error.filename is not None else ""
    reason = error.strerror or str(error)
    return f"{where}: {reason}" if where else reason


def _invalid_arguments(name: str, error: pydantic.ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'arguments'}: {item['msg']}"
        for item in error.errors()
    )
    return f"invalid arguments for {name}: {problems}"


def _first_line(command: str) -> str:
    line = command.strip().splitlines()[0] if command.strip() else ""
    return line if len(line) <= 80 else line[:77] + "..."


def cut_output(text: str) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= OUTPUT_BYTE_LIMIT:
        return text, False
    return data[:OUTPUT_BYTE_LIMIT].decode(errors="ignore"), True
