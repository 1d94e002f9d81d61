"""`actor(...)` and `queue(...)`: what an actor is, checked when it is defined, not when it runs."""

from __future__ import annotations

import copy
import keyword
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentos_nb.actors.handles import ActorHandle
from agentos_nb.errors import InvalidDefinition

Hook = Callable[..., Any]

# Attributes of a handle; an action of the same name could not be reached through it.
RESERVED_ACTION_NAMES = frozenset(
    {"name", "key", "actor_id", "send", "wait_for", "resolve", "call", "stream", "dead_letters", "replay"}
)


class ActorOptions(BaseModel):
    """Tunables of one actor type. Defaults follow RivetKit's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sleep_timeout: float = Field(30.0, gt=0, description="Idle seconds before the actor sleeps.")
    sleep_grace_period: float = Field(
        15.0, ge=0, description="Seconds that running work gets to finish when the actor sleeps."
    )
    action_timeout: float = Field(60.0, gt=0)
    state_save_interval: float = Field(1.0, ge=0)
    max_queue_size: int = Field(1000, ge=1, description="Messages a queue holds, in flight included.")
    max_message_bytes: int = Field(64 * 1024, ge=1, description="Largest body, as JSON.")
    max_attempts: int = Field(5, ge=1, description="Deliveries before a message is dead-lettered.")
    restart_backoff: float = Field(0.5, ge=0, description="First wait before a crashed run restarts.")
    restart_backoff_max: float = Field(30.0, ge=0)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A declared queue: its body type and, for request/response, its response type."""

    body_type: Any
    response_type: Any | None
    max_size: int | None
    max_message_bytes: int | None
    body: TypeAdapter[Any] = field(repr=False)
    response: TypeAdapter[Any] | None = field(repr=False)


def queue(
    body: Any = Any,
    response: Any | None = None,
    *,
    max_size: int | None = None,
    max_message_bytes: int | None = None,
) -> QueueSpec:
    """Declare a queue carrying `body`; give `response` to make its messages completable."""
    try:
        body_adapter = TypeAdapter(body)
        response_adapter = None if response is None else TypeAdapter(response)
    except pydantic.PydanticSchemaGenerationError as error:
        raise InvalidDefinition(f"queue types must be types pydantic can validate: {error}") from None
    for option, value in (("max_size", max_size), ("max_message_bytes", max_message_bytes)):
        if value is not None and value < 1:
            raise InvalidDefinition(f"queue {option} must be at least 1, not {value}")
    return QueueSpec(body, response, max_size, max_message_bytes, body_adapter, response_adapter)


@dataclass(frozen=True, slots=True)
class ActorDefinition:
    """An actor type, as `actor(...)` (or `agent_os(...)`) made and checked it: hand it to
    `setup(use={"name": definition})`. Frozen: change one with `dataclasses.replace`."""

    state: Any
    vars: Any
    actions: Mapping[str, Hook]
    queues: Mapping[str, QueueSpec]
    run: Hook | None
    on_create: Hook | None
    on_wake: Hook | None
    on_sleep: Hook | None
    on_destroy: Hook | None
    options: ActorOptions
    state_adapter: TypeAdapter[Any] = field(repr=False)
    handle_class: type[ActorHandle] = field(default=ActorHandle, repr=False)
    """What `client.NAME.get_or_create(...)` makes: a subclass adds typed methods (a VM's, made
    by `agent_os(...)`), without `actors/` knowing of VMs."""

    def initial_state(self) -> Any:
        """A new actor's state: a new instance of a model class, else a deep copy of the model
        or dict given, so that no two actors share one."""
        kind = _state_kind(self.state)
        if kind == "model_class":
            return self.state()
        if kind == "model":
            return self.state.model_copy(deep=True)
        return copy.deepcopy(self.state)

    def initial_vars(self, context: Any) -> Any:
        """`vars` for a waking actor: the factory's result given its context, or a fresh copy."""
        if callable(self.vars):
            return self.vars(context)
        return copy.deepcopy(self.vars)

    def queue_limits(self, name: str) -> tuple[int, int]:
        """(max size, max message bytes) of a declared queue: its own, else the actor's options."""
        spec = self.queues[name]
        return (
            spec.max_size or self.options.max_queue_size,
            spec.max_message_bytes or self.options.max_message_bytes,
        )


def actor(
    *,
    state: type[BaseModel] | BaseModel | dict[str, Any] | None = None,
    vars: Any = None,
    actions: Mapping[str, Hook] | None = None,
    queues: Mapping[str, QueueSpec] | None = None,
    run: Hook | None = None,
    on_create: Hook | None = None,
    on_wake: Hook | None = None,
    on_sleep: Hook | None = None,
    on_destroy: Hook | None = None,
    options: ActorOptions | Mapping[str, Any] | None = None,
) -> ActorDefinition:
    """Define an actor type.

    `state` is saved to the store; `vars` (a value copied on each wake, or a callable taking
    the context) is not. Hooks and actions take the context `c` first.
    """
    _state_kind(state)  # refuses anything else at definition time
    actions = dict(actions or {})
    for name, fn in actions.items():
        if not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidDefinition(f"action name {name!r} is not a Python identifier")
        if name.startswith("_") or name in RESERVED_ACTION_NAMES:
            raise InvalidDefinition(f"action name {name!r} is reserved by actor handles; choose another")
        if not callable(fn):
            raise InvalidDefinition(f"action {name!r} is not callable")
    queues = dict(queues or {})
    for name, spec in queues.items():
        if not isinstance(spec, QueueSpec):
            raise InvalidDefinition(f"queue {name!r} must be made with queue(...), not {spec!r}")
    hooks = {
        "run": run,
        "on_create": on_create,
        "on_wake": on_wake,
        "on_sleep": on_sleep,
        "on_destroy": on_destroy,
    }
    for hook_name, hook in hooks.items():
        if hook is not None and not callable(hook):
            raise InvalidDefinition(f"{hook_name} must be callable, not {hook!r}")
    return ActorDefinition(
        state=state,
        vars=vars,
        actions=actions,
        queues=queues,
        run=run,
        on_create=on_create,
        on_wake=on_wake,
        on_sleep=on_sleep,
        on_destroy=on_destroy,
        options=_options(options),
        state_adapter=_state_adapter(state),
    )


def _state_kind(state: Any) -> Literal["model_class", "model", "plain"]:
    """What `state` was given as; anything but a model class, a model or a dict (or None) is refused."""
    if isinstance(state, type) and issubclass(state, BaseModel):
        return "model_class"
    if isinstance(state, BaseModel):
        return "model"
    if state is None or isinstance(state, dict):
        return "plain"
    raise InvalidDefinition(
        f"state must be a pydantic model class or instance, or a dict, not {type(state).__name__}"
    )


def _state_adapter(state: Any) -> TypeAdapter[Any]:
    """How state is saved and loaded; built once per actor type, not on every wake."""
    kind = _state_kind(state)
    if kind == "model_class":
        return TypeAdapter(state)
    if kind == "model":
        return TypeAdapter(type(state))
    return TypeAdapter(Any)


def _options(options: ActorOptions | Mapping[str, Any] | None) -> ActorOptions:
    if options is None:
        return ActorOptions()
    if isinstance(options, ActorOptions):
        return options
    try:
        return ActorOptions.model_validate(dict(options))
    except pydantic.ValidationError as error:
        raise InvalidDefinition(f"invalid actor options: {error}") from None
