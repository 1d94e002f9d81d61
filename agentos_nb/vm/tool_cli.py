"""Host tools as command lines: a tool's pydantic input model becomes flags, argv becomes input.

Pure text in, text out, so the command shim inside the VM, `--help`, `agentos list-tools` and the
agent's system prompt all describe and parse a tool the same way. Inside a VM the toolkit `review`
is the command `agentos-review`, and its tool `submit` takes `agentos-review submit --path FILE`.

Flags are the input model's field names in kebab-case. Scalars (strings, numbers, booleans,
choices) and lists of scalars have flags of their own; anything nested travels as JSON, either
for one field (`--config '{...}'`) or for the whole input (`--json`, `--json-file`, stdin).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import enum
import functools
import json
import reprlib
import shlex
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pydantic
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from agentos_nb.vm.tool_results import ToolErrorCode, ToolFailure
from agentos_nb.vm.toolkits import HostTool, Toolkit

# Options of the command itself; a field whose flag would collide is settable through JSON only.
RESERVED_FLAGS = frozenset({"json", "json-file", "help"})
_JSON_OPTIONS = ("json", "json-file")

Kind = Literal["boolean", "integer", "number", "string", "choice", "json"]
_LIST_ORIGINS = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_STRUCTURED = (BaseModel, Mapping, list, tuple, set, frozenset)


class ToolUsageError(ToolFailure):
    """A command line that does not make a valid call; `flag` names the one to fix."""

    def __init__(self, code: ToolErrorCode, message: str, flag: str | None = None) -> None:
        super().__init__(code, message)
        self.flag = flag


class HelpRequested(ToolUsageError):
    """`--help` or `-h` where a flag may stand (not as a flag's value): show help instead."""

    def __init__(self, token: str) -> None:
        super().__init__(ToolErrorCode.VALIDATION_ERROR, f"{token} asks for help", token)


HELP_TOKENS = frozenset({"--help", "-h"})


@dataclasses.dataclass(frozen=True, slots=True)
class _Flag:
    """How one input field is spelled on the command line."""

    name: str
    field: str
    info: FieldInfo
    kind: Kind
    repeated: bool = False
    choices: tuple[Any, ...] = ()
    text_fallback: bool = False  # a JSON flag whose type also takes plain text, like `int | str`

    @property
    def option(self) -> str:
        return f"--{self.name}"


def flag_for(field_name: str) -> str:
    """The flag (without dashes) of a field: `max_depth` is `max-depth`; the trailing underscore
    of names like `class_` is dropped."""
    return field_name.rstrip("_").replace("_", "-")


def parse_tool_input(
    model: type[BaseModel],
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    read_file: Callable[[str], str] | None = None,
) -> BaseModel:
    """The validated input that `argv` (the words after the tool name) describes.

    JSON is the base (stdin if not blank, then `--json` or `--json-file`) and flags override the
    fields they set. `read_file` reads `--json-file PATH` as the calling shell sees it and raises
    OSError (or UnicodeDecodeError) when it cannot. Every problem is a ToolUsageError naming the flag to fix.
    """
    flags = _flags(model)
    given: dict[str, Any] = {}
    json_source: str | None = None
    json_input: dict[str, Any] = {}
    position = 0
    while position < len(argv):
        token = argv[position]
        position += 1
        if token in HELP_TOKENS:
            raise HelpRequested(token)
        if not token.startswith("--"):
            raise _usage(f"unexpected argument {token!r}: every value follows its --flag", None)
        name, has_value, inline = token[2:].partition("=")
        flag, negated = _lookup(flags, name)
        if flag is None and name not in _JSON_OPTIONS:
            raise _unknown_flag(token.partition("=")[0], flags)
        if flag is not None and flag.kind == "boolean":
            if flag.field in given:
                raise _usage(f"{flag.option} is given more than once", flag.option)
            if has_value and negated:
                raise _usage(f"--{name} takes no value", flag.option)
            given[flag.field] = _boolean(flag, inline) if has_value else not negated
            continue
        if has_value:
            value = inline
        elif position < len(argv) and not argv[position].startswith("--"):
            value = argv[position]
            position += 1
        else:
            raise _usage(f"--{name} needs a value", f"--{name}")
        if flag is None:
            if json_source is not None:
                raise _usage(f"--{name}: the JSON input is already given by {json_source}", f"--{name}")
            json_source = f"--{name}"
            text = _read_json_file(value, read_file) if name == "json-file" else value
            json_input = _json_object(text, json_source)
        elif flag.repeated:
            given.setdefault(flag.field, []).append(_convert(flag, value))
        elif flag.field in given:
            raise _usage(f"{flag.option} is given more than once", flag.option)
        else:
            given[flag.field] = _convert(flag, value)

    data = _json_object(stdin, "stdin") if stdin is not None and stdin.strip() else {}
    _check_json_keys(model, data, "stdin")
    _check_json_keys(model, json_input, json_source)
    data.update(json_input)
    for field, value in given.items():
        for key in _keys(field, model.model_fields[field]):
            data.pop(key, None)
        data[field] = value
    try:
        return model.model_validate(data, by_name=True)
    except pydantic.ValidationError as error:
        raise _explain(model, error) from None


def render_argv(model: type[BaseModel], values: Mapping[str, Any]) -> list[str]:
    """Flags that `parse_tool_input` turns back into `model.model_validate(values)`: for help
    examples and round-trip tests. `values` must be valid; only the fields it sets are rendered.
    What no flag can say (None, an empty list, a field without a flag, extra fields) goes into
    one `--json` object."""
    instance = model.model_validate(values, by_name=True)
    flags = {flag.field: flag for flag in _flags(model).values()}
    as_json: dict[str, Any] = dict(instance.model_extra or {})
    argv: list[str] = []
    for field in model.model_fields:
        if field not in instance.model_fields_set:
            continue
        value = getattr(instance, field)
        flag = flags.get(field)
        if flag is None or value is None or (flag.repeated and not value):
            as_json[field] = value
        elif flag.kind == "boolean":
            argv.append(flag.option if value else f"--no-{flag.name}")
        else:
            for item in value if flag.repeated else [value]:
                token = _token(flag, item)
                argv.extend([f"{flag.option}={token}"] if token.startswith("--") else [flag.option, token])
    if as_json:
        argv[:0] = ["--json", json.dumps(to_jsonable_python(as_json, by_alias=False), ensure_ascii=False)]
    return argv


def toolkit_help(toolkit: Toolkit) -> str:
    """`agentos-<name> --help`: what the toolkit is for and which tools it has."""
    width = max(len(name) for name in toolkit.tools)
    lines = [
        f"{toolkit.command}: {toolkit.description}",
        "",
        f"usage: {toolkit.command} <tool> [flags]",
        "",
        "tools:",
        *(f"  {name.ljust(width)}  {_one_line(tool.description)}" for name, tool in toolkit.tools.items()),
        "",
        f"Run `{toolkit.command} <tool> --help` for a tool's flags, examples and exit codes.",
    ]
    return "\n".join(lines) + "\n"


def tool_help(toolkit: Toolkit, tool_name: str) -> str:
    """`agentos-<name> <tool> --help`: every flag with its type, whether it is required and what
    it means, the JSON ways in, worked examples and the exit codes."""
    tool = _tool(toolkit, tool_name)
    flags = _flags(tool.input_schema)
    lines = [f"usage: {_synopsis(toolkit, tool_name, tool)}", "", tool.description.strip(), ""]
    if flags:
        lines.append("flags:")
        for flag in flags.values():
            spelled = f"{flag.option}, --no-{flag.name}" if flag.kind == "boolean" else _spelling(flag)
            lines.append(f"  {spelled}  ({_type_label(flag)}; {_requirement(flag.info)})")
            if flag.info.description:
                lines.extend(f"      {line}" for line in flag.info.description.strip().splitlines())
        lines.append("")
    command = f"{toolkit.command} {tool_name}"
    lines += [
        "input as JSON (flags override the fields they set):",
        "  --json '{...}'    the whole input as one JSON object",
        "  --json-file PATH  the same, read from a file",
        f"  stdin             the same, piped in: cat input.json | {command}",
    ]
    with_flags = {flag.field for flag in flags.values()}
    flagless = [name for name in tool.input_schema.model_fields if name not in with_flags]
    if flagless:
        lines.append(f"  fields set through JSON only: {', '.join(flagless)}")
    lines.append("")
    if tool.examples:
        lines.append("examples:")
        lines.extend(
            f"  {shlex.join([toolkit.command, tool_name, *render_argv(tool.input_schema, example)])}"
            for example in tool.examples
        )
        lines.append("")
    lines += [
        "exit codes (stdout is always one JSON line):",
        '  0  success: {"ok": true, "result": ...}',
        f"  1  execution error (EXECUTION_ERROR), or timeout after {tool.timeout:g}s (TIMEOUT): "
        '{"ok": false, "error": CODE, "message": ...}',
        "  2  usage or validation error (VALIDATION_ERROR, TOOL_NOT_FOUND), or a caller the tool",
        "     does not serve (FORBIDDEN), same shape",
    ]
    return "\n".join(lines) + "\n"


def tool_reference(toolkits: Sequence[Toolkit]) -> str:
    """For an agent's system prompt: per toolkit a line, then one line per tool with its flags."""
    groups = [
        "\n".join(
            [
                f"{toolkit.command}: {_one_line(toolkit.description)}",
                *(
                    f"  {_synopsis(toolkit, name, tool)} — {_one_line(tool.description)}"
                    for name, tool in toolkit.tools.items()
                ),
            ]
        )
        for toolkit in toolkits
    ]
    return "\n\n".join(groups)


def list_tools_text(toolkits: Sequence[Toolkit]) -> str:
    """What `agentos list-tools` prints."""
    if not toolkits:
        return "No host tools are available.\n"
    header = (
        "Host tools, run as commands; each prints one JSON line. "
        "Add --help after a toolkit or a tool for its flags and examples."
    )
    return f"{header}\n\n{tool_reference(toolkits)}\n"


# --- describing a model's fields as flags -------------------------------------------------------


@functools.cache
def _flags(model: type[BaseModel]) -> Mapping[str, _Flag]:
    """Built once per input model: every call of a tool and every help text reads it."""
    described = (_describe(field, info) for field, info in model.model_fields.items())
    return types.MappingProxyType({flag.name: flag for flag in described if flag.name not in RESERVED_FLAGS})


def _describe(field: str, info: FieldInfo) -> _Flag:
    name = flag_for(field)
    annotation = _strip_optional(info.annotation)
    kind, choices = _scalar(annotation)
    if kind is not None:
        return _Flag(name, field, info, kind, choices=choices)
    item = _list_item(annotation)
    if item is not None:
        kind, choices = _scalar(item)
        if kind is not None and kind != "boolean":
            return _Flag(name, field, info, kind, repeated=True, choices=choices)
    return _Flag(name, field, info, "json", text_fallback=_accepts_text(annotation))


def _scalar(annotation: Any) -> tuple[Kind | None, tuple[Any, ...]]:
    """The kind of a type that one command-line word can hold, or None."""
    annotation = _unannotated(annotation)
    if typing.get_origin(annotation) is Literal:
        return "choice", typing.get_args(annotation)
    if typing.get_origin(annotation) is not None or not isinstance(annotation, type):
        return None, ()
    if issubclass(annotation, enum.Enum):
        return "choice", tuple(annotation)
    if annotation is bool:
        return "boolean", ()
    if issubclass(annotation, int):
        return "integer", ()
    if issubclass(annotation, float):
        return "number", ()
    if issubclass(annotation, str):
        return "string", ()
    if issubclass(annotation, _STRUCTURED) or dataclasses.is_dataclass(annotation):
        return None, ()
    return "string", ()  # dates, paths, UUIDs...: pydantic parses them from their text


def _list_item(annotation: Any) -> Any | None:
    """The item type of a homogeneous list, tuple or set type, or None."""
    annotation = _unannotated(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        return args[0] if len(args) == 2 and args[1] is Ellipsis else None
    return args[0] if origin in _LIST_ORIGINS and len(args) == 1 else None


def _accepts_text(annotation: Any) -> bool:
    annotation = _unannotated(annotation)
    if annotation is Any:
        return True
    return _is_union(annotation) and any(_scalar(arg)[0] == "string" for arg in typing.get_args(annotation))


def _strip_optional(annotation: Any) -> Any:
    """`X | None` is spelled like `X`: None can only come through JSON."""
    annotation = _unannotated(annotation)
    if _is_union(annotation):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return _unannotated(rest[0])
    return annotation


def _unannotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _keys(field: str, info: FieldInfo) -> set[str]:
    """The keys under which JSON input may carry `field`."""
    aliases = (info.alias, info.validation_alias)
    return {field, *(alias for alias in aliases if isinstance(alias, str))}


# --- parsing ------------------------------------------------------------------------------------


def _usage(message: str, flag: str | None) -> ToolUsageError:
    return ToolUsageError(ToolErrorCode.VALIDATION_ERROR, message, flag)


def _lookup(flags: Mapping[str, _Flag], name: str) -> tuple[_Flag | None, bool]:
    """The flag `name` spells, and whether it is a boolean's `no-` form; exact names win."""
    if name in flags:
        return flags[name], False
    negated = flags.get(name.removeprefix("no-")) if name.startswith("no-") else None
    if negated is not None and negated.kind == "boolean":
        return negated, True
    return None, False


def _unknown_flag(option: str, flags: Mapping[str, _Flag]) -> ToolUsageError:
    names = [
        *flags,
        *(f"no-{flag.name}" for flag in flags.values() if flag.kind == "boolean"),
        *_JSON_OPTIONS,
    ]
    close = difflib.get_close_matches(option.removeprefix("--"), names, n=1)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    known = ", ".join(f"--{name}" for name in names)
    return _usage(f"unknown flag {option}{hint}; known flags: {known}", option)


def _boolean(flag: _Flag, text: str) -> bool:
    words = {"true": True, "false": False}
    if text.lower() not in words:
        raise _usage(
            f"{flag.option} is a boolean: use {flag.option} or --no-{flag.name}, not {text!r}", flag.option
        )
    return words[text.lower()]


def _convert(flag: _Flag, text: str) -> Any:
    """One word of argv as the Python value its flag holds."""
    if flag.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise _usage(f"{flag.option} takes an integer, not {_cut(text)}", flag.option) from None
    if flag.kind == "number":
        try:
            return float(text)
        except ValueError:
            raise _usage(f"{flag.option} takes a number, not {_cut(text)}", flag.option) from None
    if flag.kind == "choice":
        by_word = {_choice_word(choice): choice for choice in flag.choices}
        if text not in by_word:
            raise _usage(f"{flag.option} must be one of {'|'.join(by_word)}, not {text!r}", flag.option)
        return by_word[text]
    if flag.kind == "json":
        try:
            return _load_json(text)
        except ValueError as error:
            if flag.text_fallback:
                return text
            raise _usage(f"{flag.option} takes JSON, and {_cut(text)} is not: {error}", flag.option) from None
    return text


def _choice_word(choice: Any) -> str:
    return str(choice.value if isinstance(choice, enum.Enum) else choice)


def _read_json_file(path: str, read_file: Callable[[str], str] | None) -> str:
    if read_file is None:
        raise _usage(
            "--json-file is not available here; give the JSON with --json or on stdin", "--json-file"
        )
    try:
        return read_file(path)
    except (OSError, ValueError) as error:  # ValueError: a path the VM refuses, or text that is not UTF-8
        raise _usage(f"--json-file cannot read {path!r}: {error}", "--json-file") from None


def _load_json(text: str) -> Any:
    """JSON as a tool accepts it: whatever is wrong with `text`, a `ValueError` saying what.

    `json.loads` raises more than `JSONDecodeError` on hostile input: `RecursionError` for deep
    nesting and `ValueError` for an integer past Python's digit limit; both are bad input here."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError is one, as is "Exceeds the limit (4300 digits)"
        raise ValueError(str(error)) from None


def _cut(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _json_object(text: str, source: str) -> dict[str, Any]:
    """The JSON object `source` (stdin, --json or --json-file) carries."""
    flag = source if source.startswith("--") else None
    try:
        value = _load_json(text)
    except ValueError as error:
        raise _usage(f"{source} is not valid JSON: {error}", flag) from None
    if not isinstance(value, dict):
        raise _usage(f"{source} must be a JSON object {{...}}, not {type(value).__name__}", flag)
    return value


def _check_json_keys(model: type[BaseModel], data: Mapping[str, Any], source: str | None) -> None:
    """Unknown JSON keys are errors, like unknown flags, unless the model itself says what to do
    with extra fields."""
    if model.model_config.get("extra") is not None:
        return
    known = set().union(*(_keys(field, info) for field, info in model.model_fields.items()))
    unknown = sorted(key for key in data if key not in known)
    if unknown:
        fields = ", ".join(model.model_fields)
        flag = source if source and source.startswith("--") else None
        raise _usage(f"unknown field {unknown[0]!r} in {source}; fields: {fields}", flag)


def _explain(model: type[BaseModel], error: pydantic.ValidationError) -> ToolUsageError:
    """Pydantic's complaints, each pinned to the flag the caller typed."""
    options = {
        key: f"--{flag.name}"
        for flag in _flags(model).values()
        for key in _keys(flag.field, model.model_fields[flag.field])
    }
    problems: list[str] = []
    flags: list[str] = []
    for item in error.errors(include_url=False):
        head, *rest = item["loc"] or ("",)
        option = options.get(str(head))
        if option:
            flags.append(option)
        where = option or (f"field {head!r}" if head else "the input")
        if rest:
            where += f" ({'.'.join(str(part) for part in rest)})"
        if item["type"] == "missing":
            problems.append(f"{where} is required")
            continue
        given = item.get("input")
        got = f" (got {reprlib.repr(given)})" if isinstance(given, str | int | float) else ""
        problems.append(f"{where}: {item['msg']}{got}")
    return _usage("; ".join(problems), flags[0] if flags else None)


# --- rendering ----------------------------------------------------------------------------------


def _token(flag: _Flag, value: Any) -> str:
    """One value as the argv word that `_convert` reads back."""
    if flag.kind == "integer":
        return str(int(value))
    if flag.kind == "number":
        return repr(float(value))
    if flag.kind == "choice":
        return _choice_word(value)
    jsonable = to_jsonable_python(value, by_alias=False)
    if flag.kind == "string" and isinstance(jsonable, str):
        return jsonable
    return json.dumps(jsonable, ensure_ascii=False)


def _tool(toolkit: Toolkit, tool_name: str) -> HostTool:
    if tool_name not in toolkit.tools:
        close = difflib.get_close_matches(tool_name, list(toolkit.tools), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ToolUsageError(
            ToolErrorCode.TOOL_NOT_FOUND,
            f"{toolkit.command} has no tool {tool_name!r}{hint}; its tools: {', '.join(toolkit.tools)}",
        )
    return toolkit.tools[tool_name]


def _synopsis(toolkit: Toolkit, tool_name: str, tool: HostTool) -> str:
    """`agentos-review submit --path <string> [--verbose]`: optional flags in brackets."""
    parts = [toolkit.command, tool_name]
    for flag in _flags(tool.input_schema).values():
        required = flag.info.is_required()
        if flag.kind == "boolean":
            parts.append(f"({flag.option} | --no-{flag.name})" if required else f"[{flag.option}]")
        else:
            parts.append(_spelling(flag) if required else f"[{_spelling(flag)}]")
    return " ".join(parts)


def _spelling(flag: _Flag) -> str:
    return f"{flag.option} <{_placeholder(flag)}>" + ("..." if flag.repeated else "")


def _placeholder(flag: _Flag) -> str:
    if flag.kind == "choice":
        return "|".join(map(_choice_word, flag.choices))
    return "JSON" if flag.kind == "json" else flag.kind


def _type_label(flag: _Flag) -> str:
    if flag.repeated:
        return f"list of {_placeholder(flag)}; repeat the flag for each item"
    return f"one of {_placeholder(flag)}" if flag.kind == "choice" else _placeholder(flag)


def _requirement(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default is PydanticUndefined or info.default is None:
        return "optional"
    shown = json.dumps(to_jsonable_python(info.default, fallback=repr), ensure_ascii=False)
    return f"optional, default {shown}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
