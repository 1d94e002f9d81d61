"""What a mailbox needs from its actor type's queue declarations, worked out once per type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pydantic
import pydantic_core

from agentos_nb.actors.definition import ActorDefinition, QueueSpec
from agentos_nb.errors import ValidationError


class QueuePlan:
    """A type's codecs, limits and checked name sets, shared by every instance: 10,000 awake
    actors need not hold 10,000 copies."""

    def __init__(self, definition: ActorDefinition) -> None:
        self.codecs = {name: Codec.of(spec) for name, spec in definition.queues.items()}
        self.limits = {name: definition.queue_limits(name) for name in definition.queues}
        self.name_sets: dict[str | None, frozenset[str]] = {None: frozenset(definition.queues)}


class Codec(NamedTuple):
    """A queue's validators and serialisers, bound once: pydantic-core's own methods skip the
    TypeAdapter wrappers, which cost more than the work on small bodies."""

    validate_body: Callable[[Any], Any]
    dump_body: Callable[[Any], bytes]
    validate_response: Callable[[Any], Any] | None
    dump_response: Callable[[Any], bytes] | None

    @classmethod
    def of(cls, spec: QueueSpec) -> Codec:
        """Bind the codec of one declared queue."""
        response = spec.response
        return cls(
            spec.body.validator.validate_python,
            spec.body.serializer.to_json,
            None if response is None else response.validator.validate_python,
            None if response is None else response.serializer.to_json,
        )


def encode(
    validate: Callable[[Any], Any], dump: Callable[[Any], bytes], raw: Any, subject: str
) -> tuple[Any, bytes]:
    """Validate a body or response and serialise it for the store, as one ValidationError."""
    try:
        value = validate(raw)
        return value, dump(value)
    except pydantic.ValidationError as error:
        raise ValidationError.from_pydantic(subject, error) from None
    except pydantic_core.PydanticSerializationError as error:
        raise ValidationError(f"{subject} cannot be stored as JSON: {error}") from None
