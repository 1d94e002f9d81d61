"""What the handlers share: the registry, what is worked out once per actor type, and the actor
a request's URL names.

An actor is addressed as `/actors/{name}/{key}` (see `paths`). Requests that write (sends,
actions, exec, a new session, a file written) reach it as `get_or_create` does, creating it on
first use, as a webhook expects; reads, and requests naming one of its sessions or messages,
never create it (404 `actor.not_found`). Handlers validate everything before they touch an
actor, so a rejected request leaves nothing behind: no message, no actor call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.actors.handles import ActorAccessor, ActorHandle
from agentos_nb.errors import UnknownAction, UnknownActorType
from agentos_nb.http.action_args import ActionSignature, action_signature
from agentos_nb.http.paths import parse_actor_segment
from agentos_nb.http.previews import PreviewSigner
from agentos_nb.http.routing import Request

if TYPE_CHECKING:
    from agentos_nb.actors.registry import Registry


class Api:
    """What the handlers share for one registry: it, and what is worked out once per actor type."""

    def __init__(self, registry: Registry, document: Callable[[], bytes]) -> None:
        self.registry = registry
        self.previews = PreviewSigner()
        """Makes and checks this server's preview links, under a secret of its own."""
        self._document = document
        self._openapi: bytes | None = None
        self._signatures: dict[tuple[str, str], ActionSignature] = {}

    def definition(self, name: str) -> ActorDefinition:
        definition = self.registry.definitions.get(name)
        if definition is None:
            defined = ", ".join(sorted(self.registry.definitions)) or "none"
            raise UnknownActorType(f"the registry defines no actor {name!r} (defined: {defined})")
        return definition

    def signature(self, name: str, action: str) -> ActionSignature:
        signature = self._signatures.get((name, action))
        if signature is None:
            fn = self.definition(name).actions.get(action)
            if fn is None:
                defined = ", ".join(sorted(self.definition(name).actions)) or "none"
                raise UnknownAction(f"actor {name!r} has no action {action!r} (defined: {defined})")
            signature = self._signatures[(name, action)] = action_signature(action, fn)
        return signature

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = self._document()
        return self._openapi


def actor_accessor(request: Request) -> ActorAccessor:
    """The actor type the URL names (404 `actor.unknown_type` if the registry has none)."""
    return request.api.registry.client()[request.param("name")]


def actor_handle(request: Request, *, create: bool, create_input: Any = None) -> ActorHandle:
    """The handle the URL names; `create`: by key, as `get_or_create` (else as `get`)."""
    accessor = actor_accessor(request)
    address = parse_actor_segment(request.params["key"])
    if address.actor_id is not None:
        return accessor.get_for_id(address.actor_id)
    assert address.key is not None
    if create:
        return accessor.get_or_create(address.key, create_with_input=create_input)
    return accessor.get(address.key)
