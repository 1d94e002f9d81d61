"""Arguments of an action called over HTTP, checked against the action's own signature.

In-process, Python passes an action what its caller wrote. Over HTTP the arguments are JSON, so
they are bound to the action's parameters and validated against their type hints first, as
JSON is read (strictly: "2" is no int): a missing or surplus argument, or one of the wrong
type, is a 422 naming it, and the action never runs; a parameter typed with a pydantic model
receives the model, as in-process.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import pydantic_core
from pydantic import TypeAdapter

from agentos_nb.errors import ValidationError

_VARIADIC: dict[Any, Literal["args", "kwargs"]] = {
    inspect.Parameter.VAR_POSITIONAL: "args",
    inspect.Parameter.VAR_KEYWORD: "kwargs",
}


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    variadic: Literal["args", "kwargs"] | None
    """`*args` or `**kwargs`: the hint applies to each item."""
    adapter: TypeAdapter[Any] | None
    """None where the parameter has no usable type hint: anything goes."""
    required: bool


@dataclass(frozen=True, slots=True)
class ActionSignature:
    """What an action takes after its context `c`."""

    action: str
    signature: inspect.Signature | None
    """None for a callable whose signature Python cannot tell: its arguments are passed as given."""
    parameters: tuple[Parameter, ...]
    streaming: bool

    def bind(self, args: list[Any], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The validated arguments, ready to call the action with."""
        if self.signature is None:
            return tuple(args), kwargs
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise ValidationError(
                f"the arguments of action {self.action!r} do not fit it: {error}",
                errors=[{"field": "args", "message": str(error)}],
            ) from None
        problems: list[dict[str, str]] = []
        for parameter in self.parameters:
            if parameter.adapter is None or parameter.name not in bound.arguments:
                continue
            value = bound.arguments[parameter.name]
            if parameter.variadic == "args":
                bound.arguments[parameter.name] = tuple(
                    _validate(parameter.adapter, f"{parameter.name}.{n}", item, problems)
                    for n, item in enumerate(value)
                )
            elif parameter.variadic == "kwargs":
                bound.arguments[parameter.name] = {
                    key: _validate(parameter.adapter, key, item, problems) for key, item in value.items()
                }
            else:
                bound.arguments[parameter.name] = _validate(
                    parameter.adapter, parameter.name, value, problems
                )
        if problems:
            listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise ValidationError(
                f"the arguments of action {self.action!r} are invalid: {listed}", errors=problems
            )
        return bound.args, bound.kwargs


def action_signature(action: str, fn: Callable[..., Any]) -> ActionSignature:
    streaming = inspect.isasyncgenfunction(fn)
    try:
        full = inspect.signature(fn)
    except (TypeError, ValueError):
        return ActionSignature(action, None, (), streaming)
    params = list(full.parameters.values())
    if params and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        params = params[1:]  # the context `c`
    hints = _hints(fn)
    parameters = tuple(
        Parameter(
            name=p.name,
            variadic=_VARIADIC.get(p.kind),
            adapter=_adapter(hints.get(p.name)),
            required=p.default is inspect.Parameter.empty and p.kind not in _VARIADIC,
        )
        for p in params
    )
    return ActionSignature(action, full.replace(parameters=params), parameters, streaming)


def _validate(adapter: TypeAdapter[Any], field: str, value: Any, problems: list[dict[str, str]]) -> Any:
    """`value` read as JSON reads it, strictly (bytes came as base64 and are bytes already)."""
    try:
        if isinstance(value, bytes):
            return adapter.validate_python(value, strict=True)
        return adapter.validate_json(pydantic_core.to_json(value), strict=True)
    except pydantic.ValidationError as error:
        for item in error.errors(include_url=False):
            where = ".".join([field, *(str(part) for part in item["loc"])])
            problems.append({"field": where, "message": item["msg"]})
        return value


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # hints naming what only a type checker imports: judge each one alone
        annotations = getattr(fn, "__annotations__", {})
        return {name: hint for name, hint in annotations.items() if not isinstance(hint, str)}


def _adapter(hint: Any) -> TypeAdapter[Any] | None:
    if hint is None or hint is Any:
        return None
    try:
        return TypeAdapter(hint)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return None
