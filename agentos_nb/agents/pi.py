"""`pi`: the software package that brings the coding agent of that name into a VM.

Like the pi agent Rivet runs, it is small on purpose: four tools (read, write, edit, bash)
and a short system prompt, on top of what the VM's instructions say about the machine and
its host tools.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_ai.models import Model

from agentos_nb.agents.harness import PiSession, RetryPolicy
from agentos_nb.agents.models import ModelConfig, resolve_model
from agentos_nb.agents.offline import offline_model
from agentos_nb.vm.sessions import AgentSession, SessionRequest
from agentos_nb.vm.software import VmSetup

_PROMPT = """\
You are pi, a coding agent. You work inside the VM described below, through four tools:
- read: read a file (page through long ones with offset and limit);
- write: create or replace a file;
- edit: replace one exact, unique piece of a file;
- bash: run a command in your shell, which keeps its working directory and variables.
Host tools are commands too: call them with bash. Read before you edit. Check your work by
running it where you can. When you are done, reply with a short summary of what you did and
what you found."""

_INSTRUCTIONS = """\
## Coding agents (package `pi`)

Sessions of the `pi` agent work here with four tools: read, write, edit and bash."""


class Pi:
    """The `pi` package. `Pi(model=...)` makes every session of the VM type default to that
    model; `retry=` sets how provider failures are retried."""

    name = "pi"
    description = "pi: a minimal coding agent with read, write, edit and bash tools"

    def __init__(self, *, model: Any = None, retry: RetryPolicy | None = None) -> None:
        self._model = model
        self._retry = retry or RetryPolicy()

    def install(self, setup: VmSetup) -> None:
        setup.add_agent_type("pi", self)
        setup.add_instructions(_INSTRUCTIONS)

    async def open_session(self, request: SessionRequest) -> AgentSession:
        model = request.model if request.model is not None else self._model
        if isinstance(model, dict):  # settings saved before the VM slept, without their key
            model = ModelConfig.model_validate(model)
        # In a thread: a provider's client loads its TLS context (tens of ms), and the first
        # import of its SDK takes seconds.
        resolved = await asyncio.to_thread(
            resolve_model,
            model,
            env=request.env,
            offline=offline_model,
            configured_by_host=request.model is None,
        )
        # A client built here from keys is the session's to close; a model object given is the caller's.
        owns_client = not isinstance(model, Model) and not resolved.offline
        return PiSession(request, resolved, system_prompt(request), self._retry, owns_client=owns_client)


def system_prompt(request: SessionRequest) -> str:
    sections = [_PROMPT, request.vm.instructions.strip()]
    if request.additional_instructions:
        sections.append(f"## Instructions for this session\n\n{request.additional_instructions.strip()}")
    return "\n\n".join(sections)


pi = Pi()
