"""Which actors are agent VMs, and handles to them that never create one.

The Files and Sessions tabs call VM actions (readdir, read_file, list_sessions, ...). A
handle by id raises `ActorNotFound` for a VM that is gone instead of making a new one.
"""

from __future__ import annotations

from agentos_nb.actors.handles import ActorHandle
from agentos_nb.actors.registry import Registry
from agentos_nb.events import ActorRef
from agentos_nb.jupyter.dashboard.actors_state import ActorsState
from agentos_nb.vm import agent_os


def is_vm(registry: Registry, name: str) -> bool:
    """Made by `agent_os(...)`: its actions are the VM's own."""
    definition = registry.definitions.get(name)
    return definition is not None and definition.actions.get("readdir") is agent_os.readdir


def known_vms(registry: Registry, actors: ActorsState) -> list[ActorRef]:
    """The VMs the dashboard knows of (from overviews and events), gone ones left out."""
    return [
        ref
        for actor_id, ref in actors.refs.items()
        if is_vm(registry, ref.name) and actors.status_of(actor_id) != "gone"
    ]


def vm_handle(registry: Registry, ref: ActorRef) -> ActorHandle:
    return registry.client()[ref.name].get_for_id(ref.actor_id)
