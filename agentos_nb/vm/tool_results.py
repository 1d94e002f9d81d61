"""What a host-tool command answers inside the VM: one JSON line on stdout and an exit code.

Success is `{"ok": true, "result": ...}` with exit code 0. A failure is
`{"ok": false, "error": CODE, "message": ...}`, its exit code telling usage (2) from execution
(1) apart, so an agent's script can branch on either without parsing the message.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from pydantic_core import to_jsonable_python


class ToolErrorCode(enum.StrEnum):
    """The `error` of a failed host-tool call, in its JSON line and in `tool.call_finished` events."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    """The command line makes no valid call: a bad flag, value or JSON input."""
    TOOL_NOT_FOUND = "TOOL_NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    """The tool says which callers may use it (`host_tool(callers=...)`), and this VM is not one."""
    EXECUTION_ERROR = "EXECUTION_ERROR"
    """The tool's `execute` failed, or gave a result that is not JSON."""
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    """The command calling the tool was stopped: only events say so, since nobody reads its output."""


EXIT_CODES: Mapping[ToolErrorCode, int] = {
    ToolErrorCode.VALIDATION_ERROR: 2,
    ToolErrorCode.TOOL_NOT_FOUND: 2,
    ToolErrorCode.FORBIDDEN: 2,
    ToolErrorCode.EXECUTION_ERROR: 1,
    ToolErrorCode.TIMEOUT: 1,
}
"""The exit code of each failure a command prints."""


class ToolFailure(Exception):
    """A host-tool call that failed, as the agent sees it: `stdout` and `exit_code`."""

    def __init__(self, code: ToolErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def stdout(self) -> str:
        return error_result(self.code, self.message)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.code]


def ok_result(result: Any) -> str:
    """The stdout line of a successful call; raises PydanticSerializationError for a result that
    pydantic cannot turn into JSON, and ValueError for one that JSON cannot hold (NaN)."""
    body = {"ok": True, "result": to_jsonable_python(result)}
    return json.dumps(body, ensure_ascii=False, allow_nan=False) + "\n"


def error_result(code: ToolErrorCode, message: str) -> str:
    """The stdout line of a failed call; the exit code is `EXIT_CODES[code]`."""
    return json.dumps({"ok": False, "error": code, "message": message}, ensure_ascii=False) + "\n"


def describe(error: BaseException) -> str:
    """An exception as a failed call's message names it: its type, then its text if any."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
