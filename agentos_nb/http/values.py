"""How the values of actions cross the wire, so that the remote client returns what the
in-process handle returns.

A result that is one of agentos_nb's own models (a VM's `ExecResult`, `SessionInfo`,
`PromptResult`, a session update, ...) or a list of one is tagged with the model's name, and
the client rebuilds it. Bytes (`read_file`) travel as base64, tagged too, both ways. Any other
JSON object comes back as a `RemoteObject`: a dict whose keys also read as attributes, so
`result.response.summary` reads as it does in-process, where it is a pydantic model.
"""

from __future__ import annotations

import base64
import functools
from typing import Any, Literal, get_args

import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentos_nb.actors.handles import DeadLetter, SendResult
from agentos_nb.errors import ValidationError
from agentos_nb.vm.cron import CronRun, CronSchedule
from agentos_nb.vm.models import DirEntry, ExecResult, FileRead, FileStat, FileWrite
from agentos_nb.vm.session_models import AgentTypeInfo, PromptResult, SessionInfo, SessionUpdate, Usage
from agentos_nb.vm.terminal_models import Terminal, TerminalOutput, TerminalScreen

Encoding = Literal["json", "base64"]

_UPDATES: tuple[type[BaseModel], ...] = get_args(get_args(SessionUpdate)[0])
"""The kinds of session update: the members of the `SessionUpdate` union."""
_OWN_MODELS: tuple[type[BaseModel], ...] = (
    ExecResult,
    FileStat,
    DirEntry,
    FileRead,
    FileWrite,
    SessionInfo,
    PromptResult,
    AgentTypeInfo,
    Usage,
    SendResult,
    DeadLetter,
    CronSchedule,
    CronRun,
    Terminal,
    TerminalScreen,
    TerminalOutput,
    *_UPDATES,
)
KNOWN_MODELS: dict[str, type[BaseModel]] = {model.__name__: model for model in _OWN_MODELS}
"""agentos_nb's own models, which the client rebuilds from their names."""
KNOWN_TYPES: dict[str, Any] = {**KNOWN_MODELS, "SessionUpdate": SessionUpdate}


class RemoteObject(dict[str, Any]):
    """A JSON object from the server whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self]


def encode_value(value: Any) -> tuple[Any, str | None, Encoding]:
    """`value` as JSON, the name of the known model it is (if any), and how it is encoded.
    Bytes nested in other values travel as UTF-8 text, or base64 where they are not UTF-8."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii"), None, "base64"
    try:
        data = pydantic_core.to_jsonable_python(value, by_alias=False)
    except pydantic_core.PydanticSerializationError:
        data = pydantic_core.to_jsonable_python(value, by_alias=False, bytes_mode="base64")
    return data, _model_name(value), "json"


def decode_value(data: Any, model: str | None, encoding: Encoding) -> Any:
    """The value `encode_value` sent: bytes, a known model rebuilt, or plain JSON."""
    if encoding == "base64":
        return base64.b64decode(data)
    if model is not None:
        adapter = _adapter(model)
        if adapter is not None:
            return adapter.validate_python(data)
    return remote_value(data)


def remote_value(data: Any) -> Any:
    """JSON with its objects made `RemoteObject`s."""
    if isinstance(data, dict):
        return RemoteObject({key: remote_value(item) for key, item in data.items()})
    if isinstance(data, list):
        return [remote_value(item) for item in data]
    return data


def encode_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """An action call's arguments as the request body; bytes ones are named in `binary`."""
    binary: list[str] = []

    def encode(where: str, value: Any) -> Any:
        if isinstance(value, bytes | bytearray | memoryview):
            binary.append(where)
            return base64.b64encode(value).decode("ascii")
        return value

    body: dict[str, Any] = {
        "args": [encode(str(n), value) for n, value in enumerate(args)],
        "kwargs": {name: encode(name, value) for name, value in kwargs.items()},
    }
    if binary:
        body["binary"] = binary
    return body


def decode_arguments(
    args: list[Any], kwargs: dict[str, Any], binary: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments `encode_arguments` sent, with the `binary` ones turned back into bytes."""
    args, kwargs = list(args), dict(kwargs)
    for where in binary:
        if where.isdigit() and int(where) < len(args):
            args[int(where)] = _unbase64(f"args.{where}", args[int(where)])
        elif where in kwargs:
            kwargs[where] = _unbase64(f"kwargs.{where}", kwargs[where])
        else:
            raise ValidationError(
                f"binary names {where!r}, which is not an argument", errors=[_field("binary")]
            )
    return args, kwargs


def _unbase64(field: str, value: Any) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError):
        raise ValidationError(f"{field} is not base64", errors=[_field(field)]) from None


def _field(name: str) -> dict[str, str]:
    return {"field": name, "message": "invalid"}


def _model_name(value: Any) -> str | None:
    name = type(value).__name__
    if KNOWN_MODELS.get(name) is type(value):
        return name
    if isinstance(value, list | tuple) and value:
        kinds = {type(item) for item in value}
        if len(kinds) == 1 and _model_name(value[0]) is not None and not isinstance(value[0], list | tuple):
            return f"list[{type(value[0]).__name__}]"
        if kinds <= set(_UPDATES):  # a session's history: updates of several kinds
            return "list[SessionUpdate]"
    return None


@functools.cache
def _adapter(model: str) -> TypeAdapter[Any] | None:
    if model.startswith("list[") and model.endswith("]"):
        item = KNOWN_TYPES.get(model[5:-1])
        return None if item is None else TypeAdapter(list[item])  # type: ignore[valid-type]
    known = KNOWN_TYPES.get(model)
    return None if known is None else TypeAdapter(known)
