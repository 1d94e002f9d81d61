"""Running a host tool that an agent called as a command inside its VM.

The command line is parsed and validated on the host, `execute` runs on the host under the
tool's timeout, and whatever happens the agent gets one JSON line and a meaningful exit code:
a broken tool never crashes the VM, its shell or the runtime.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic_core import to_jsonable_python

from agentos_nb.actors.context import ActorContext
from agentos_nb.errors import ToolError
from agentos_nb.events import ToolCallFinished, ToolCallRef, ToolCallStarted, current_tool_call
from agentos_nb.vm import tool_cli
from agentos_nb.vm.shell import CommandCall, CommandReply
from agentos_nb.vm.toolkits import HostTool, ToolContext, Toolkit

_call_ids = itertools.count(1)

ReadText = Callable[[str, str], str]
"""Reads a VM file as text: (path, cwd) -> content, for `--json-file`."""


class HostCalls:
    """The `agentos-<toolkit>` and `agentos` commands of one awake VM."""

    def __init__(self, c: ActorContext | None, toolkits: Sequence[Toolkit], read_text: ReadText) -> None:
        """`c` is the VM's context; None serves only calls that never reach `execute` (tests)."""
        self._c = c
        self._toolkits = tuple(toolkits)
        self._read_text = read_text

    def commands(self) -> dict[str, Callable[[CommandCall], Any]]:
        handlers: dict[str, Callable[[CommandCall], Any]] = {"agentos": self._agentos}
        for kit in self._toolkits:
            handlers[kit.command] = lambda call, kit=kit: self._toolkit(kit, call)
        return handlers

    async def _agentos(self, call: CommandCall) -> CommandReply:
        if call.argv == ["list-tools"]:
            return CommandReply(stdout=tool_cli.list_tools_text(self._toolkits))
        if call.argv and call.argv[0] in tool_cli.HELP_TOKENS:
            return CommandReply(stdout=_AGENTOS_HELP)
        wrong = " ".join(call.argv) or "(nothing)"
        return _failure("VALIDATION_ERROR", f"unknown agentos command {wrong!r}; try `agentos list-tools`")

    async def _toolkit(self, kit: Toolkit, call: CommandCall) -> CommandReply:
        argv = call.argv
        if argv and argv[0] in tool_cli.HELP_TOKENS:
            return CommandReply(stdout=tool_cli.toolkit_help(kit))
        name = argv[0] if argv else ""
        tool = kit.tools.get(name)
        if tool is None:
            tools = ", ".join(kit.tools)
            if not argv:
                return self._rejected(kit, name, argv, "VALIDATION_ERROR", f"no tool given; tools: {tools}")
            return self._rejected(
                kit, name, argv, "TOOL_NOT_FOUND", f"{kit.command} has no tool {name!r}; tools: {tools}"
            )
        try:
            model = tool_cli.parse_tool_input(
                tool.input_schema,
                argv[1:],
                stdin=call.stdin,
                read_file=lambda path: self._read_text(path, call.cwd),
            )
        except tool_cli.HelpRequested:
            return CommandReply(stdout=tool_cli.tool_help(kit, name))
        except tool_cli.ToolUsageError as error:
            return self._rejected(kit, name, argv, error.code, error.message)
        return await self._execute(kit, name, tool, model, call.cwd)

    def _rejected(self, kit: Toolkit, name: str, argv: list[str], code: str, message: str) -> CommandReply:
        """A call that never reached `execute` is still a call: the events say what was tried."""
        c = self._c
        if c is not None and c.events.active:
            call_id = next(_call_ids)
            shown = {"argv": argv[1:]}
            c.events.publish(
                ToolCallStarted(actor=c.ref, call_id=call_id, toolkit=kit.name, tool=name, input=shown)
            )
            _publish_finished(c, call_id, kit, name, shown, code, message, None, 0.0)
        return _failure(code, message)

    async def _execute(self, kit: Toolkit, name: str, tool: HostTool, model: Any, cwd: str) -> CommandReply:
        c = self._c
        context = ToolContext(
            vm=c.actors[c.name].get_for_id(c.actor_id),
            key=c.key,
            client=c.actors,
            cwd=cwd,
            toolkit=kit.name,
            tool=name,
        )
        call_id = next(_call_ids)
        shown_input = model.model_dump(mode="json")
        if c.events.active:
            c.events.publish(
                ToolCallStarted(actor=c.ref, call_id=call_id, toolkit=kit.name, tool=name, input=shown_input)
            )
        started = time.monotonic()
        this_call = current_tool_call.set(
            ToolCallRef(caller=c.ref, call_id=call_id, toolkit=kit.name, tool=name)
        )
        result: Any = None
        code: str | None = "CANCELLED"
        message: str | None = "the command calling the tool was stopped"
        try:
            try:
                async with asyncio.timeout(tool.timeout) as deadline:
                    if inspect.iscoroutinefunction(tool.execute):
                        outcome = await tool.execute(model, context)
                    else:  # a plain function may block: a thread keeps the loop (and the timeout) going
                        outcome = await asyncio.to_thread(tool.execute, model, context)
                        if inspect.isawaitable(outcome):
                            outcome = await outcome
                result = to_jsonable_python(outcome)
                reply = CommandReply(stdout=tool_cli.ok_result(result))
            except TimeoutError as error:
                if not deadline.expired():
                    raise _Failed("EXECUTION_ERROR", _describe(error)) from None
                raise _Failed(
                    "TIMEOUT", f"{kit.command} {name} ran past its {tool.timeout:g} s timeout"
                ) from None
            except ToolError as error:
                raise _Failed("EXECUTION_ERROR", error.message) from None
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
                # the tool's own code raised it; nobody is stopping this call
                raise _Failed("EXECUTION_ERROR", "CancelledError raised by the tool") from None
            except (Exception, SystemExit) as error:  # SystemExit: tools built on argparse or click
                raise _Failed("EXECUTION_ERROR", _describe(error)) from None
            code = message = None
        except _Failed as failure:
            code, message = failure.code, failure.message
            reply = _failure(code, message)
        finally:
            current_tool_call.reset(this_call)
            if c.events.active:
                elapsed = time.monotonic() - started
                _publish_finished(c, call_id, kit, name, shown_input, code, message, result, elapsed)
        return reply


def _publish_finished(
    c: ActorContext,
    call_id: int,
    kit: Toolkit,
    name: str,
    shown_input: dict[str, Any],
    code: str | None,
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


class _Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _failure(code: str, message: str) -> CommandReply:
    return CommandReply(stdout=tool_cli.error_result(code, message), exit_code=tool_cli.EXIT_CODES[code])


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_AGENTOS_HELP = """\
agentos: the VM's own commands.

  agentos list-tools     list the host tools this VM can call, with their flags
  agentos-<toolkit> --help          help for a toolkit
  agentos-<toolkit> <tool> --help   help for one tool
"""
