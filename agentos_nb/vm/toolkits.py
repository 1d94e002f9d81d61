"""`toolkit(...)` and `host_tool(...)`: host functions an agent calls as commands in its VM.

Everything is checked when the toolkit is defined (names, description lengths, schemas,
examples), so a mistake shows up in the notebook cell that made it, not in an agent's turn.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel

from agentos_nb.errors import InvalidDefinition
from agentos_nb.vm.files import resolve_path

if TYPE_CHECKING:
    from agentos_nb.actors.handles import Client
    from agentos_nb.vm.handle import VmHandle

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_DESCRIPTION = 200


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool's `execute` learns about its call: who called, from where, and how to
    reach the other actors of the registry."""

    vm: VmHandle
    key: tuple[str, ...]
    client: Client
    cwd: str
    toolkit: str
    tool: str

    def resolve_path(self, path: str) -> str:
        """`path` as the calling shell meant it: relative paths resolve against its cwd.
        Raises `PermissionError` for a path that climbs out of the VM."""
        return resolve_path(path, self.cwd)


Execute = Callable[[Any, ToolContext], Awaitable[Any] | Any]
CallerCheck = Callable[[str, tuple[str, ...]], bool]
"""Whether the VM of this actor type name and key may call a tool."""
"""`execute(input, ctx)`: an async function, or a plain one, which runs in a worker thread (a
timeout then answers the caller at once, but cannot stop the thread)."""


@dataclass(frozen=True, slots=True)
class HostTool:
    """A host function made by `host_tool(...)`: `execute(input, ctx)` runs on the host with
    the input validated by `input_schema`, for at most `timeout` seconds, for the callers
    `may_call(actor name, key)` lets in (everyone when it is None)."""

    description: str
    input_schema: type[BaseModel]
    execute: Execute
    examples: tuple[dict[str, Any], ...] = ()
    timeout: float = 30.0
    may_call: CallerCheck | None = None


@dataclass(frozen=True, slots=True)
class Toolkit:
    """Host tools under one command, made by `toolkit(...)`: `agentos-<name> <tool>` in a VM."""

    name: str
    description: str
    tools: Mapping[str, HostTool] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The command that reaches this toolkit inside a VM."""
        return f"agentos-{self.name}"


def host_tool(
    description: str,
    input_schema: type[BaseModel],
    execute: Execute,
    examples: Sequence[Mapping[str, Any]] = (),
    timeout: float = 30.0,
    callers: Collection[str] | CallerCheck | None = None,
) -> HostTool:
    """A host function callable from inside a VM. `execute(input, ctx)` runs on the host,
    never in the VM; `examples` are inputs, shown in `--help` as command lines. `callers` says
    who may call it: actor type names (`["writer"]`), or a function of the calling VM's name and
    key; anyone else is refused with `FORBIDDEN`. By default every VM given the toolkit may."""
    _check_description("host tool", description)
    may_call = _caller_check(callers)
    if not (isinstance(input_schema, type) and issubclass(input_schema, BaseModel)):
        raise InvalidDefinition(f"input_schema must be a pydantic model class, not {input_schema!r}")
    if not callable(execute):
        raise InvalidDefinition(f"execute must be an async function (input, ctx), not {execute!r}")
    if not timeout > 0:
        raise InvalidDefinition(f"a host tool's timeout must be positive, not {timeout!r}")
    checked: list[dict[str, Any]] = []
    for number, example in enumerate(examples, start=1):
        try:
            input_schema.model_validate(example)
        except pydantic.ValidationError as error:
            raise InvalidDefinition(
                f"example {number} does not fit {input_schema.__name__}: {error}"
            ) from None
        checked.append(dict(example))
    return HostTool(description, input_schema, execute, tuple(checked), float(timeout), may_call)


def _caller_check(callers: Collection[str] | CallerCheck | None) -> CallerCheck | None:
    if callers is None or callable(callers):
        return callers
    if isinstance(callers, str) or not all(isinstance(name, str) for name in callers):
        raise InvalidDefinition(
            f"callers must be actor type names or a function (name, key) -> bool, not {callers!r}"
        )
    allowed = frozenset(callers)
    return lambda name, key: name in allowed


def toolkit(name: str, description: str, tools: Mapping[str, HostTool]) -> Toolkit:
    """A named group of host tools; inside a VM it is the command `agentos-<name>`."""
    _check_name("toolkit", name)
    _check_description("toolkit", description)
    if not tools:
        raise InvalidDefinition(f"toolkit {name!r} has no tools")
    for tool_name, tool in tools.items():
        _check_name("tool", tool_name)
        if not isinstance(tool, HostTool):
            raise InvalidDefinition(f"tool {tool_name!r} must be made with host_tool(...), not {tool!r}")
    return Toolkit(name, description, dict(tools))


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidDefinition(
            f"{what} name {name!r} must be lowercase letters and digits in words joined by hyphens, "
            "like 'review' or 'run-tests'"
        )


def _check_description(what: str, description: str) -> None:
    if not isinstance(description, str) or not description.strip():
        raise InvalidDefinition(f"a {what} needs a description")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidDefinition(
            f"a {what} description is at most {MAX_DESCRIPTION} characters; this one has {len(description)}"
        )
