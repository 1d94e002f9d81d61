"""Running a host tool that an agent called as a command inside its VM.

The command line is parsed and validated on the host, `execute` runs on the host under the
tool's timeout, and whatever happens the agent gets one JSON line and a meaningful exit code:
a broken tool never crashes the VM, its shell or the runtime.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from agentos_nb.actors.context import ActorContext
from agentos_nb.actors.deadlines import TimeLimit, TimeLimitReached, being_cancelled
from agentos_nb.errors import ToolError
from agentos_nb.events import (
    ToolCallFinished,
    ToolCallRef,
    ToolCallRejected,
    ToolCallStarted,
    current_tool_call,
)
from agentos_nb.vm import tool_cli
from agentos_nb.vm.shell import CommandCall, CommandHandler, CommandReply
from agentos_nb.vm.tool_results import ToolErrorCode, ToolFailure, describe, ok_result
from agentos_nb.vm.toolkits import HostTool, ToolContext, Toolkit

_call_ids = itertools.count(1)

ReadText = Callable[[str, str], str]
"""Reads a VM file as text: (path, cwd) -> content, for `--json-file`."""
ReadTextAsync = Callable[[str, str], Awaitable[str]]
"""The same, from the VM's host."""


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """A command line naming a tool of the toolkit, with a valid input for it."""

    name: str
    tool: HostTool
    input: BaseModel


def read_request(kit: Toolkit, call: CommandCall, read_text: ReadText) -> ToolRequest | str:
    """What `agentos-<toolkit> ...` asks for: a tool call, or help (its text). A call that cannot
    be made (no tool, an unknown one, bad flags or input) raises `ToolFailure`."""
    argv = call.argv
    if argv and argv[0] in tool_cli.HELP_TOKENS:
        return tool_cli.toolkit_help(kit)
    name = argv[0] if argv else ""
    tool = kit.tools.get(name)
    if tool is None:
        tools = ", ".join(kit.tools)
        if not argv:
            raise ToolFailure(ToolErrorCode.VALIDATION_ERROR, f"no tool given; tools: {tools}")
        raise ToolFailure(ToolErrorCode.TOOL_NOT_FOUND, f"{kit.command} has no tool {name!r}; tools: {tools}")
    try:
        model = tool_cli.parse_tool_input(
            tool.input_schema, argv[1:], stdin=call.stdin, read_file=lambda path: read_text(path, call.cwd)
        )
    except tool_cli.HelpRequested:
        return tool_cli.tool_help(kit, name)
    return ToolRequest(name, tool, model)


class HostCalls:
    """The `agentos-<toolkit>` and `agentos` commands of one awake VM, whose context is `c`."""

    def __init__(self, c: ActorContext, toolkits: Sequence[Toolkit], read_text: ReadTextAsync) -> None:
        self._c = c
        self._toolkits = tuple(toolkits)
        self._read_text = read_text
        self._commands = self.commands()

    def commands(self) -> dict[str, CommandHandler]:
        handlers: dict[str, CommandHandler] = {"agentos": self._agentos}
        for kit in self._toolkits:
            handlers[kit.command] = functools.partial(self._toolkit, kit)
        return handlers

    async def handle(self, call: CommandCall) -> CommandReply:
        """Answer a host command that a script on the VM's host ran."""
        handler = self._commands.get(call.name)
        if handler is None:
            return CommandReply(stderr=f"{call.name}: command not found\n", exit_code=127)
        return await handler(call)

    async def _agentos(self, call: CommandCall) -> CommandReply:
        if call.argv == ["list-tools"]:
            return CommandReply(stdout=tool_cli.list_tools_text(self._toolkits))
        if call.argv and call.argv[0] in tool_cli.HELP_TOKENS:
            return CommandReply(stdout=_AGENTOS_HELP)
        wrong = " ".join(call.argv) or "(nothing)"
        return _failed(
            ToolFailure(
                ToolErrorCode.VALIDATION_ERROR, f"unknown agentos command {wrong!r}; try `agentos list-tools`"
            )
        )

    async def _toolkit(self, kit: Toolkit, call: CommandCall) -> CommandReply:
        forbidden = self._forbidden(kit, call.argv[0] if call.argv else "")
        if forbidden is not None:
            return _failed(forbidden)
        try:
            request = await self._read_request(kit, call)
        except ToolFailure as failure:
            self._rejected(kit, call.argv, failure)
            return _failed(failure)
        if isinstance(request, str):
            return CommandReply(stdout=request)
        return await self._execute(kit, request, call.cwd)

    async def _read_request(self, kit: Toolkit, call: CommandCall) -> ToolRequest | str:
        """`read_request`, whose `--json-file` reads come from the VM's host: the parse stops at
        a file it has not read yet, which is fetched, and starts again."""
        read: dict[str, str | Exception] = {}

        def read_text(path: str, cwd: str) -> str:
            if path not in read:
                raise _NotReadYet(path)
            found = read[path]
            if isinstance(found, Exception):
                raise found
            return found

        while True:
            try:
                return read_request(kit, call, read_text)
            except _NotReadYet as missing:
                try:
                    read[missing.path] = await self._read_text(missing.path, call.cwd)
                except (OSError, ValueError) as error:
                    read[missing.path] = error

    def _forbidden(self, kit: Toolkit, name: str) -> ToolFailure | None:
        """A tool that names its callers refuses the others before reading their input."""
        tool = kit.tools.get(name)
        c = self._c
        if tool is None or tool.may_call is None or tool.may_call(c.name, tuple(c.key)):
            return None
        reason = f"{kit.command} {name} may not be called from {c.name}/{','.join(c.key)}"
        if c.events.active:
            c.events.publish(ToolCallRejected(actor=c.ref, toolkit=kit.name, tool=name, reason=reason))
        return ToolFailure(ToolErrorCode.FORBIDDEN, reason)

    def _rejected(self, kit: Toolkit, argv: list[str], failure: ToolFailure) -> None:
        """A call that never reached `execute` is still a call: the events say what was tried."""
        c = self._c
        if c.events.active:
            call_id = next(_call_ids)
            name = argv[0] if argv else ""
            shown = {"argv": argv[1:]}
            c.events.publish(
                ToolCallStarted(actor=c.ref, call_id=call_id, toolkit=kit.name, tool=name, input=shown)
            )
            _publish_finished(c, call_id, kit, name, shown, failure.code, failure.message, None, 0.0)

    async def _execute(self, kit: Toolkit, request: ToolRequest, cwd: str) -> CommandReply:
        c = self._c
        name, tool = request.name, request.tool
        context = ToolContext(
            vm=c.actors[c.name].get_for_id(c.actor_id),
            key=c.key,
            client=c.actors,
            cwd=cwd,
            toolkit=kit.name,
            tool=name,
        )
        call_id = next(_call_ids)
        shown_input = request.input.model_dump(mode="json")
        if c.events.active:
            c.events.publish(
                ToolCallStarted(actor=c.ref, call_id=call_id, toolkit=kit.name, tool=name, input=shown_input)
            )
        started = time.monotonic()
        this_call = current_tool_call.set(
            ToolCallRef(caller=c.ref, call_id=call_id, toolkit=kit.name, tool=name)
        )
        result: Any = None
        code: ToolErrorCode | None = ToolErrorCode.CANCELLED
        message: str | None = "the command calling the tool was stopped"
        try:
            try:
                async with TimeLimit(tool.timeout):
                    if inspect.iscoroutinefunction(tool.execute):
                        outcome = await tool.execute(request.input, context)
                    else:  # a plain function may block: a thread keeps the loop (and the timeout) going
                        outcome = await asyncio.to_thread(tool.execute, request.input, context)
                        if inspect.isawaitable(outcome):
                            outcome = await outcome
                result = to_jsonable_python(outcome)
                reply = CommandReply(stdout=ok_result(result))
            except TimeLimitReached:
                raise ToolFailure(
                    ToolErrorCode.TIMEOUT, f"{kit.command} {name} ran past its {tool.timeout:g} s timeout"
                ) from None
            except ToolError as error:
                raise ToolFailure(ToolErrorCode.EXECUTION_ERROR, error.message) from None
            except asyncio.CancelledError:
                if being_cancelled():
                    raise
                # the tool's own code raised it; nobody is stopping this call
                raise ToolFailure(
                    ToolErrorCode.EXECUTION_ERROR, "CancelledError raised by the tool"
                ) from None
            except (Exception, SystemExit) as error:  # SystemExit: tools built on argparse or click
                raise ToolFailure(ToolErrorCode.EXECUTION_ERROR, describe(error)) from None
            code = message = None
        except ToolFailure as failure:
            code, message = failure.code, failure.message
            reply = _failed(failure)
        finally:
            current_tool_call.reset(this_call)
            if c.events.active:
                elapsed = time.monotonic() - started
                _publish_finished(c, call_id, kit, name, shown_input, code, message, result, elapsed)
        return reply


class _NotReadYet(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _publish_finished(
    c: ActorContext,
    call_id: int,
    kit: Toolkit,
    name: str,
    shown_input: dict[str, Any],
    code: ToolErrorCode | None,
    message: str | None,
    result: Any,
    duration: float,
) -> None:
    """`code` None is a success, whose `result` the event carries."""
    c.events.publish(
        ToolCallFinished(
            actor=c.ref,
            call_id=call_id,
            toolkit=kit.name,
            tool=name,
            input=shown_input,
            ok=code is None,
            result=result if code is None else None,
            error=code,
            message=message,
            duration=duration,
        )
    )


def _failed(failure: ToolFailure) -> CommandReply:
    return CommandReply(stdout=failure.stdout, exit_code=failure.exit_code)


_AGENTOS_HELP = """\
agentos: the VM's own commands.

  agentos list-tools     list the host tools this VM can call, with their flags
  agentos-<toolkit> --help          help for a toolkit
  agentos-<toolkit> <tool> --help   help for one tool
"""
