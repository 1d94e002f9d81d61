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


def known_vms(registry: Registry, actors: ActorsState) -> list[ActorRef]:
    """The VMs the dashboard knows of (from overviews and events), gone ones left out."""
    vm_types = {name for name, definition in registry.definitions.items() if agent_os.is_vm(definition)}
    return [
        ref
        for actor_id, ref in actors.refs.items()
        if ref.name in vm_types and actors.status_of(actor_id) != "gone"
    ]


def vm_handle(registry: Registry, ref: ActorRef) -> ActorHandle:
    return registry.client()[ref.name].get_for_id(ref.actor_id)
