"""agentos_nb: Rivet's agentOS orchestration model for Python and Jupyter.

The public API lives here and only here; everything else is an implementation detail.
"""

from agentos_nb import errors
from agentos_nb.actors.context import ActorContext
from agentos_nb.actors.definition import ActorDefinition, ActorOptions, QueueSpec, actor, queue
from agentos_nb.actors.handles import ActorHandle, Client, DeadLetter, SendResult
from agentos_nb.actors.queues import Message
from agentos_nb.actors.registry import Registry, setup
from agentos_nb.agents.models import ModelConfig
from agentos_nb.events import Event, EventBus, Subscription
from agentos_nb.http.client import create_client
from agentos_nb.jupyter.extension import load_ipython_extension, unload_ipython_extension
from agentos_nb.store import MemoryStore, Store
from agentos_nb.vm.agent_os import agent_os
from agentos_nb.vm.models import DirEntry, ExecResult, FileRead, FileStat, FileWrite
from agentos_nb.vm.session_models import AgentTypeInfo, PromptResult, SessionInfo, SessionUpdate, Usage
from agentos_nb.vm.shell import ShellLimits
from agentos_nb.vm.toolkits import HostTool, ToolContext, Toolkit, host_tool, toolkit

__all__ = [
    "ActorContext",
    "ActorDefinition",
    "ActorHandle",
    "ActorOptions",
    "AgentTypeInfo",
    "Client",
    "DeadLetter",
    "DirEntry",
    "Event",
    "EventBus",
    "ExecResult",
    "FileRead",
    "FileStat",
    "FileWrite",
    "HostTool",
    "MemoryStore",
    "Message",
    "ModelConfig",
    "PromptResult",
    "QueueSpec",
    "Registry",
    "SendResult",
    "SessionInfo",
    "SessionUpdate",
    "ShellLimits",
    "Store",
    "Subscription",
    "ToolContext",
    "Toolkit",
    "Usage",
    "actor",
    "agent_os",
    "create_client",
    "errors",
    "host_tool",
    "load_ipython_extension",
    "queue",
    "setup",
    "toolkit",
    "unload_ipython_extension",
]
