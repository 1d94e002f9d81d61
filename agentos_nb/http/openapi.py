"""The OpenAPI document, generated from the route table, the API's pydantic models and the
registry's own definitions, never written by hand: it cannot drift from what the server does.

A route marked `per` is listed once per actor type and queue (with that queue's body schema),
per action (with a schema of the action's parameters, from its type hints), or per agent VM
type, so a reader, or schemathesis, sees exactly what this registry accepts.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, TypeAdapter

from agentos_nb.http.action_args import action_signature
from agentos_nb.http.api_models import ErrorBody
from agentos_nb.http.routing import Route
from agentos_nb.vm.agent_os import is_vm

if TYPE_CHECKING:
    from agentos_nb.actors.registry import Registry

REF = "#/components/schemas/{model}"
_ANY: TypeAdapter[Any] = TypeAdapter(Any)

PATH_PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "key": (
        {"type": "string"},
        'The actor key\'s parts, each percent-encoded, joined by "," (my-project; a%2Cb,c); '
        "empty for the empty key; or @ and the actor's id.",
    ),
    "message_id": ({"type": "integer", "minimum": 0}, "A message id, as a send replied it."),
    "session_id": ({"type": "string"}, "A session id, as creating the session replied it."),
    "path": ({"type": "string"}, "A VM path without its leading /, or ~/... relative to home."),
}


def build_document(registry: Registry, routes: list[Route], *, url: str) -> dict[str, Any]:
    schemas = _Schemas()
    planned = [
        (route, template, bound) for route in routes for template, bound in _expansions(route, registry)
    ]
    for route, _template, bound in planned:
        schemas.want_route(route, registry, bound)
    schemas.resolve()
    paths: dict[str, dict[str, Any]] = {}
    for route, template, bound in planned:
        paths.setdefault(template, {})[route.method.lower()] = _operation(
            route, template, bound, registry, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"agentos_nb registry {registry.name}",
            "version": _version(),
            "description": "Actors, queues, actions, agent VMs and events of one registry. Every "
            "route but /health needs `Authorization: Bearer <token>`: the server's token opens every "
            "route; a scoped token opens the operations whose `x-scope` it lists, on the actors and "
            "queues it names (403 http.forbidden otherwise). Every error is "
            '{"error": CODE, "message": ...}, CODE being a runtime error\'s code or http.*.',
        },
        "servers": [{"url": url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.definitions,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _expansions(route: Route, registry: Registry) -> list[tuple[str, dict[str, str]]]:
    """The concrete paths a route is listed under, each with the parameters it fixes."""
    if route.per is None:
        return [(route.template, {})]
    found = []
    for name, definition in registry.definitions.items():
        if route.per == "queue":
            found += [({"name": name, "queue": queue}) for queue in definition.queues]
        elif route.per in ("action", "streaming_action"):
            for action, fn in definition.actions.items():
                streaming = action_signature(action, fn).streaming
                if route.per == "action" or streaming:
                    found.append({"name": name, "action": action})
        elif is_vm(definition):
            found.append({"name": name})
    return [(_fill(route.template, bound), bound) for bound in found]


def _fill(template: str, bound: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: bound.get(m[1], m[0]), template)


class _Schemas:
    """Every schema the document uses, generated in one pass so that shared models become
    one component each and two models of one name do not collide."""

    def __init__(self) -> None:
        self._wanted: dict[Any, tuple[str, TypeAdapter[Any]]] = {}
        self.found: dict[Any, dict[str, Any]] = {}
        self.definitions: dict[str, Any] = {}

    def want(self, key: Any, adapter: TypeAdapter[Any], mode: str = "validation") -> None:
        try:
            adapter.json_schema(mode=mode)  # type: ignore[arg-type]
        except (pydantic.PydanticUserError, pydantic.PydanticInvalidForJsonSchema):
            adapter = _ANY  # a type JSON Schema cannot say, such as a callable: anything goes
        self._wanted[key] = (mode, adapter)

    def want_model(self, model: type[BaseModel], mode: str) -> None:
        self.want((model, mode), TypeAdapter(model), mode)

    def want_route(self, route: Route, registry: Registry, bound: dict[str, str]) -> None:
        self.want_model(ErrorBody, "serialization")
        if isinstance(route.body, type):
            self.want_model(route.body, "validation")
        if isinstance(route.reply, type):
            self.want_model(route.reply, "serialization")
        if "queue" in bound:
            self.want(
                ("queue", bound["name"], bound["queue"]),
                registry.definitions[bound["name"]].queues[bound["queue"]].body,
            )
        if "action" in bound:
            fn = registry.definitions[bound["name"]].actions[bound["action"]]
            for parameter in action_signature(bound["action"], fn).parameters:
                self.want(
                    ("parameter", bound["name"], bound["action"], parameter.name), parameter.adapter or _ANY
                )

    def resolve(self) -> None:
        inputs = [(key, mode, adapter) for key, (mode, adapter) in self._wanted.items()]
        found, definitions = TypeAdapter.json_schemas(inputs, by_alias=False, ref_template=REF)  # type: ignore[arg-type]
        self.found = {key: schema for (key, _mode), schema in found.items()}
        self.definitions = definitions.get("$defs", {})

    def model(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        return self.found[(model, mode)]


def _operation(
    route: Route, template: str, bound: dict[str, str], registry: Registry, schemas: _Schemas
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": re.sub(r"\W+", "_", f"{route.method} {template}".lower()).strip("_"),
        "summary": route.summary,
        "x-scope": route.scope,
        "parameters": _path_parameters(template, registry) + _query_parameters(route),
        "responses": {
            str(route.status): _reply(route, schemas),
            "default": {
                "description": "An error: 400 malformed JSON or a key or path that is not UTF-8, 401 "
                "no or wrong token (or webhook signature), 403 a scoped token without this scope, 404 "
                "unknown actor, queue, action or route, 405, 409, 413 body too large, 414 key past "
                "32 parts or 1024 bytes, 422 invalid input, 429 queue full, 431 "
                "headers too large, 503 stopping.",
                "content": {"application/json": {"schema": schemas.model(ErrorBody, "serialization")}},
            },
        },
    }
    needs = f"Needs a token with scope `{route.scope}`."
    if route.public:
        needs = "Needs no token."
    operation["description"] = f"{route.description}\n\n{needs}" if route.description else needs
    if route.public:
        operation["security"] = []
    body = _request_body(route, bound, registry, schemas)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _path_parameters(template: str, registry: Registry) -> list[dict[str, Any]]:
    parameters = []
    for name in re.findall(r"\{(\w+)\}", template):
        if name == "name":
            schema, description = {"type": "string", "enum": sorted(registry.definitions)}, "An actor type."
        else:
            schema, description = PATH_PARAMETERS.get(name, ({"type": "string"}, ""))
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": schema, "description": description}
        )
    return parameters


def _query_parameters(route: Route) -> list[dict[str, Any]]:
    if route.query is None:
        return []
    schema = route.query.model_json_schema(by_alias=False, ref_template=REF)  # plain fields: no references
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field, "explode": True}
        for name, field in schema["properties"].items()
    ]


def _request_body(
    route: Route, bound: dict[str, str], registry: Registry, schemas: _Schemas
) -> dict[str, Any] | None:
    if route.body is None:
        return None
    if route.body == "bytes":
        content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    elif route.body == "json":
        content = {"application/json": {"schema": schemas.found[("queue", bound["name"], bound["queue"])]}}
    elif "action" in bound:
        content = {"application/json": {"schema": _action_call_schema(bound, registry, schemas)}}
    else:
        content = {"application/json": {"schema": schemas.model(route.body, "validation")}}
    return {"required": route.body_required, "content": content}


def _action_call_schema(bound: dict[str, str], registry: Registry, schemas: _Schemas) -> dict[str, Any]:
    """`{args, kwargs, binary}` for one action: kwargs described by the action's parameters."""
    fn = registry.definitions[bound["name"]].actions[bound["action"]]
    signature = action_signature(bound["action"], fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    open_ended = signature.signature is None
    for parameter in signature.parameters:
        if parameter.variadic is not None:
            open_ended = open_ended or parameter.variadic == "kwargs"
            continue
        properties[parameter.name] = schemas.found[
            ("parameter", bound["name"], bound["action"], parameter.name)
        ]
        if parameter.required:
            required.append(parameter.name)
    kwargs: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": open_ended}
    if required:
        kwargs["required"] = required
    return {
        "type": "object",
        "properties": {
            "args": {"type": "array", "description": "Positional arguments, after the context."},
            "kwargs": kwargs,
            "binary": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
        "description": "Arguments by name in `kwargs` (or by position in `args`).",
    }


def _reply(route: Route, schemas: _Schemas) -> dict[str, Any]:
    if route.reply is None:
        return {"description": "Done; no content."}
    if route.reply == "bytes":
        return {
            "description": "The bytes.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    if route.reply == "events":
        return {
            "description": "Server-sent events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    if route.reply == "openapi":
        return {
            "description": "This document.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return {
        "description": route.reply.__name__,
        "content": {"application/json": {"schema": schemas.model(route.reply, "serialization")}},
    }


def _version() -> str:
    try:
        return version("agentos_nb")
    except PackageNotFoundError:
        return "0.0.0"
