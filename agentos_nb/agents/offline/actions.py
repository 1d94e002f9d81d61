"""One response of the offline model, a tool call or a reply: what the script steps and the default
behaviours both come down to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Action:
    """One response: a call of `tool` with `text` as its JSON arguments, or (tool None) a reply."""

    tool: str | None
    text: str


def call(tool: str, **args: Any) -> Action:
    return Action(tool, json.dumps({k: v for k, v in args.items() if v is not None}, ensure_ascii=False))


def reply(text: str) -> Action:
    return Action(None, text)
