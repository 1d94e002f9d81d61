"""agentos_nb: Rivet's agentOS orchestration model for Python and Jupyter.

The public API lives here and only here; everything else is an implementation detail. Each
name is imported on first use (PEP 562), so that importing one light module of the package, as
the jupyter-server extension does at Jupyter's start (`agentos_nb.http.runtime_files`), does not
load the runtime and pydantic-ai with it.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors read; `_EXPORTS` says the same to Python
    from agentos_nb import errors
    from agentos_nb.actors.context import ActorContext
    from agentos_nb.actors.definition import ActorDefinition, ActorOptions, QueueSpec, actor, queue
    from agentos_nb.actors.handles import ActorHandle, Client, DeadLetter, SendResult
    from agentos_nb.actors.message import Message
    from agentos_nb.agents.models import ModelConfig
    from agentos_nb.app import Registry, setup
    from agentos_nb.events import Event, EventBus, Subscription
    from agentos_nb.http.client import create_client
    from agentos_nb.jupyter.extension import load_ipython_extension, unload_ipython_extension
    from agentos_nb.store import MemoryStore, Store
    from agentos_nb.vm.agent_os import agent_os
    from agentos_nb.vm.cron import CronExec, CronPrompt, CronRun, CronSchedule
    from agentos_nb.vm.handle import VmHandle
    from agentos_nb.vm.mcp_servers import McpHttpServer, McpStdioServer
    from agentos_nb.vm.models import DirEntry, ExecResult, FileRead, FileStat, FileWrite
    from agentos_nb.vm.mounts import Mount, mount
    from agentos_nb.vm.network import Network, network
    from agentos_nb.vm.process_models import ProcessInfo, ProcessOutput
    from agentos_nb.vm.session_models import (
        AgentTypeInfo,
        PermissionPolicy,
        PermissionRequest,
        PromptResult,
        SessionInfo,
        SessionUpdate,
        Usage,
    )
    from agentos_nb.vm.shell import ShellLimits
    from agentos_nb.vm.terminal_models import Terminal, TerminalOutput, TerminalScreen
    from agentos_nb.vm.toolkits import HostTool, ToolContext, Toolkit, host_tool, toolkit

_EXPORTS: dict[str, tuple[str, ...]] = {
    "agentos_nb.actors.context": ("ActorContext",),
    "agentos_nb.actors.definition": ("ActorDefinition", "ActorOptions", "QueueSpec", "actor", "queue"),
    "agentos_nb.actors.handles": ("ActorHandle", "Client", "DeadLetter", "SendResult"),
    "agentos_nb.actors.message": ("Message",),
    "agentos_nb.agents.models": ("ModelConfig",),
    "agentos_nb.app": ("Registry", "setup"),
    "agentos_nb.events": ("Event", "EventBus", "Subscription"),
    "agentos_nb.http.client": ("create_client",),
    "agentos_nb.jupyter.extension": ("load_ipython_extension", "unload_ipython_extension"),
    "agentos_nb.store": ("MemoryStore", "Store"),
    "agentos_nb.vm.agent_os": ("agent_os",),
    "agentos_nb.vm.cron": ("CronExec", "CronPrompt", "CronRun", "CronSchedule"),
    "agentos_nb.vm.handle": ("VmHandle",),
    "agentos_nb.vm.mcp_servers": ("McpHttpServer", "McpStdioServer"),
    "agentos_nb.vm.models": ("DirEntry", "ExecResult", "FileRead", "FileStat", "FileWrite"),
    "agentos_nb.vm.process_models": ("ProcessInfo", "ProcessOutput"),
    "agentos_nb.vm.mounts": ("Mount", "mount"),
    "agentos_nb.vm.network": ("Network", "network"),
    "agentos_nb.vm.session_models": (
        "AgentTypeInfo",
        "PermissionPolicy",
        "PermissionRequest",
        "PromptResult",
        "SessionInfo",
        "SessionUpdate",
        "Usage",
    ),
    "agentos_nb.vm.shell": ("ShellLimits",),
    "agentos_nb.vm.terminal_models": ("Terminal", "TerminalOutput", "TerminalScreen"),
    "agentos_nb.vm.toolkits": ("HostTool", "ToolContext", "Toolkit", "host_tool", "toolkit"),
}
"""Each module of the public API and the names imported from it, on first use."""
_SOURCES = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ActorContext",
    "ActorDefinition",
    "ActorHandle",
    "ActorOptions",
    "AgentTypeInfo",
    "Client",
    "CronExec",
    "CronPrompt",
    "CronRun",
    "CronSchedule",
    "DeadLetter",
    "DirEntry",
    "Event",
    "EventBus",
    "ExecResult",
    "FileRead",
    "FileStat",
    "FileWrite",
    "HostTool",
    "McpHttpServer",
    "McpStdioServer",
    "MemoryStore",
    "Message",
    "ModelConfig",
    "Mount",
    "Network",
    "PermissionPolicy",
    "PermissionRequest",
    "ProcessInfo",
    "ProcessOutput",
    "PromptResult",
    "QueueSpec",
    "Registry",
    "SendResult",
    "SessionInfo",
    "SessionUpdate",
    "ShellLimits",
    "Store",
    "Subscription",
    "Terminal",
    "TerminalOutput",
    "TerminalScreen",
    "ToolContext",
    "Toolkit",
    "Usage",
    "VmHandle",
    "actor",
    "agent_os",
    "create_client",
    "errors",
    "host_tool",
    "load_ipython_extension",
    "mount",
    "network",
    "queue",
    "setup",
    "toolkit",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name == "errors":  # a submodule, public as a whole
        return importlib.import_module("agentos_nb.errors")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'agentos_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _register_displays_in_a_running_shell() -> None:
    """In a running IPython shell (a kernel), importing the package registers its rich displays,
    which importing `agentos_nb.jupyter.extension` does; elsewhere (a script, the Jupyter server,
    which has IPython loaded but no shell) nothing more loads until it is used."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        importlib.import_module("agentos_nb.jupyter.extension")


_register_displays_in_a_running_shell()
