"""`pi`: the software package that brings the coding agent of that name into a VM.

Like the pi agent Rivet runs, it is small on purpose: four tools (read, write, edit, bash)
and a short system prompt, on top of what the VM's instructions say about the machine and
its host tools.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentos_nb.agents.retry import RetryPolicy
from agentos_nb.errors import McpServerFailed
from agentos_nb.vm.permissions import checked_policy
from agentos_nb.vm.session_models import PermissionPolicy
from agentos_nb.vm.sessions import AgentSession, SessionRequest
from agentos_nb.vm.software import VmSetup

if TYPE_CHECKING:
    from agentos_nb.agents.mcp import McpTools

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
    model; `retry=` sets how provider failures are retried; `permissions=` names the tools its
    sessions ask the user about before using (`["write", "edit"]`), unless a session says."""

    name = "pi"
    description = "pi: a minimal coding agent with read, write, edit and bash tools"

    def __init__(
        self,
        *,
        model: Any = None,
        retry: RetryPolicy | None = None,
        permissions: PermissionPolicy | Sequence[str] | None = None,
    ) -> None:
        self._model = model
        self._retry = retry or RetryPolicy()
        self.permissions = checked_policy(permissions)
        """The policy of its sessions that give none of their own."""

    def install(self, setup: VmSetup) -> None:
        setup.add_agent_type("pi", self)
        setup.add_instructions(_INSTRUCTIONS)

    async def open_session(self, request: SessionRequest) -> AgentSession:
        await asyncio.wrap_future(_imported_once("agentos_nb.agents.harness", "agentos_nb.agents.offline"))
        from pydantic_ai.models import Model

        from agentos_nb.agents.harness import PiSession
        from agentos_nb.agents.models import ModelConfig, resolve_model
        from agentos_nb.agents.offline import offline_model

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
        mcp = await _mcp_tools(request)
        try:
            return PiSession(
                request, resolved, system_prompt(request), self._retry, owns_client=owns_client, mcp=mcp
            )
        except BaseException:
            if mcp is not None:
                await mcp.close()
            raise


async def _mcp_tools(request: SessionRequest) -> McpTools | None:
    """The session's MCP servers, started (or reached) and their tools listed; the `mcp`
    package is imported only by a session that has some."""
    if not request.mcp_servers:
        return None
    try:  # in a thread: the SDK takes about a second to import, which the event loop never waits out
        await asyncio.wrap_future(_imported_once("agentos_nb.agents.mcp"))
    except ImportError as error:
        if not (error.name or "").startswith("mcp"):
            raise
        from agentos_nb.agents.models import install_hint  # loaded with the agent loop by now

        raise McpServerFailed(f"MCP servers need the `mcp` package: {install_hint('mcp')}") from None
    from agentos_nb.agents.mcp import open_mcp_tools

    return await open_mcp_tools(request.mcp_servers)


_imports: dict[tuple[str, ...], concurrent.futures.Future[None]] = {}


def _imported_once(*modules: str) -> concurrent.futures.Future[None]:
    """Import `modules` (the agent loop and pydantic-ai: most of a second) once per process, in a
    thread of their own, when a session first needs them: importing `agentos_nb.software` or
    declaring a VM type costs none of it, and the event loop never waits it out. Once, because
    two threads importing pydantic-ai at the same time can each see the other's half-made
    modules; and only when a session waits for it, so it never races the program's own imports.
    A waiter that is cancelled cannot cancel the import (it is running), and an import that
    failed (a package missing) is tried again by the next session, after an install."""
    loading = _imports.get(modules)
    if loading is not None:
        return loading
    loaded: concurrent.futures.Future[None] = concurrent.futures.Future()
    loaded.set_running_or_notify_cancel()
    _imports[modules] = loaded

    def load() -> None:
        try:
            for module in modules:
                importlib.import_module(module)
        except BaseException as error:  # handed to every session that waits for it
            _imports.pop(modules, None)
            loaded.set_exception(error)
        else:
            loaded.set_result(None)

    threading.Thread(target=load, name="agentos-nb-import", daemon=True).start()
    return loaded


def system_prompt(request: SessionRequest) -> str:
    sections = [_PROMPT, request.vm.instructions.strip()]
    if request.additional_instructions:
        sections.append(f"## Instructions for this session\n\n{request.additional_instructions.strip()}")
    return "\n\n".join(sections)


pi = Pi()
