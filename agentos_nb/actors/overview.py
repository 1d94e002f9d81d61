"""A read-only picture of a registry at one moment: its actors, awake or asleep, and their queues.

Dashboards and the HTTP face read this instead of reaching into instances and mailboxes.
It is computed on demand from what the registry already holds, so an unobserved runtime pays
nothing for it; an awake actor's queues are counted from its mailbox, a sleeping actor's from
nothing at all (an actor with pending messages is woken to take them, so asleep means empty).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from agentos_nb.actors.instance import ActorInstance
    from agentos_nb.actors.registry import Registry

STATE_PREVIEW_CHARS = 200
"""How much of an actor's state, as JSON, a preview shows."""


class QueueView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    depth: int
    """Messages waiting to be delivered."""
    in_flight: int
    """Messages delivered and not yet acknowledged."""
    max_size: int


class ActorView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    key: tuple[str, ...]
    actor_id: str
    status: Literal["awake", "asleep", "waking", "stopping"]
    state_preview: str
    queues: tuple[QueueView, ...]


async def overview(registry: Registry) -> list[ActorView]:
    """Every actor the store knows, in creation order."""
    views = []
    for record in await registry.store.list_actors():
        instance = registry.instance(record.actor_id)
        definition = registry.definitions.get(record.name)
        if instance is not None and instance.phase != "stopped":
            views.append(_awake_view(instance))
            continue
        queues = () if definition is None else _empty_queues(registry, record.name)
        views.append(
            ActorView(
                name=record.name,
                key=record.key,
                actor_id=record.actor_id,
                status="asleep",
                state_preview=_preview(record.state),
                queues=queues,
            )
        )
    return views


def _awake_view(instance: ActorInstance) -> ActorView:
    mailbox = instance.mailbox.state
    in_flight: dict[str, int] = {}
    for message in mailbox.in_flight.values():
        in_flight[message.name] = in_flight.get(message.name, 0) + 1
    plan = instance.registry.queue_plan(instance.ref.name)
    queues = tuple(
        QueueView(
            name=name,
            depth=mailbox.depth(name),
            in_flight=in_flight.get(name, 0),
            max_size=max_size,
        )
        for name, (max_size, _) in plan.limits.items()
    )
    status = {"awake": "awake", "waking": "waking"}.get(instance.phase, "stopping")
    return ActorView(
        name=instance.ref.name,
        key=instance.ref.key,
        actor_id=instance.ref.actor_id,
        status=status,
        state_preview=_preview(instance.state_json()),
        queues=queues,
    )


def _empty_queues(registry: Registry, name: str) -> tuple[QueueView, ...]:
    limits = registry.queue_plan(name).limits
    return tuple(
        QueueView(name=queue, depth=0, in_flight=0, max_size=max_size)
        for queue, (max_size, _) in limits.items()
    )


def _preview(state: bytes | None) -> str:
    if state is None:
        return ""
    text = state.decode("utf-8", errors="replace")
    if len(text) <= STATE_PREVIEW_CHARS:
        return text
    return text[: STATE_PREVIEW_CHARS - 1] + "…"
