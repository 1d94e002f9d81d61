"""Calling a tool beyond the four (an MCP server's, `notes__add`) when the prompt names it, with
the first JSON object in the prompt as its arguments: `Call notes__add with {"a": 2, "b": 3}`.
Then the reply quotes what it answered. So a notebook shows an MCP tool at work with no key."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic_ai.tools import ToolDefinition

from agentos_nb.agents.offline.actions import Action, reply
from agentos_nb.agents.offline.history import Result
from agentos_nb.agents.tool_inputs import TOOL_INPUTS

_QUOTED_LIMIT = 4000  # characters of the tool's answer the reply quotes


def named_tool_call(prompt: str, done: list[Result], tools: Sequence[ToolDefinition]) -> Action | None:
    """The next step when the prompt names one of `tools` other than the four; else None."""
    name = _named(prompt, [tool.name for tool in tools if tool.name not in TOOL_INPUTS])
    if name is None:
        return None
    if not done:
        return Action(name, json.dumps(_arguments(prompt), ensure_ascii=False))
    result = done[0]
    output = result.output if len(result.output) <= _QUOTED_LIMIT else result.output[:_QUOTED_LIMIT] + "…"
    if not result.ok:
        return reply(f"I called `{name}`, and it failed:\n\n{output}")
    return reply(f"I called `{name}`. It answered:\n\n{output}")


def _named(prompt: str, names: Sequence[str]) -> str | None:
    """The name that occurs first in the prompt as a whole word (the longest, at one place)."""
    found: list[tuple[int, int, str]] = []
    for name in names:
        match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", prompt)
        if match:
            found.append((match.start(), -len(name), name))
    return min(found)[2] if found else None


def _arguments(prompt: str) -> dict[str, Any]:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", prompt):
        try:
            value, _ = decoder.raw_decode(prompt, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
