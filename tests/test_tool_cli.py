"""Host tools as command lines: flags from pydantic models, argv back to input, help and results."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.vm.tool_cli import (
    ToolUsageError,
    flag_for,
    list_tools_text,
    parse_tool_input,
    render_argv,
    tool_help,
    tool_reference,
    toolkit_help,
)
from agentos_nb.vm.tool_results import EXIT_CODES, ToolErrorCode, error_result, ok_result
from agentos_nb.vm.toolkits import Toolkit, host_tool, toolkit

PROPERTY = settings(max_examples=200, deadline=None)


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Config(BaseModel):
    retries: int = 0
    name: str = "default"


class Submit(BaseModel):
    path: str = Field(description="The file to review.")
    count: int = Field(3, description="How many reviewers look at it.")
    ratio: float | None = None
    offset: int | None = None
    verbose: bool = False
    mode: Mode = Mode.FAST
    level: Literal["low", "high"] = "low"
    priority: Priority = Priority.LOW
    tags: list[str] = Field(default_factory=list, description="Labels for the review.")
    ids: list[int] = Field(default_factory=list)
    config: Config | None = None
    max_depth: int = 1


class Nested(BaseModel):
    config: Config
    configs: list[Config] = Field(default_factory=list)
    meta: dict[str, int] = Field(default_factory=dict)
    either: int | str = 0
    when: datetime.date | None = None
    max_depth: int = Field(1, alias="maxDepth")


async def _echo(value: Any, ctx: Any) -> Any:
    return value


def review_toolkit() -> Toolkit:
    return toolkit(
        "review",
        "Code review tools",
        {
            "submit": host_tool(
                "Submit a file for code review",
                Submit,
                _echo,
                examples=[
                    {"path": "/home/user/api.ts"},
                    {"path": "a b.ts", "tags": ["x", "y"], "verbose": True},
                ],
                timeout=12,
            ),
            "status": host_tool("Show the review queue", Config, _echo),
        },
    )


def usage_error(model: type[BaseModel], argv: list[str], **kwargs: Any) -> ToolUsageError:
    with pytest.raises(ToolUsageError) as caught:
        parse_tool_input(model, argv, **kwargs)
    assert caught.value.code == "VALIDATION_ERROR"
    return caught.value


# --- flags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "flag"), [("path", "path"), ("max_depth", "max-depth"), ("a_b_c", "a-b-c"), ("class_", "class")]
)
def test_flag_for_is_kebab_case(field: str, flag: str) -> None:
    assert flag_for(field) == flag


def test_values_follow_their_flag_or_an_equals_sign() -> None:
    parsed = parse_tool_input(Submit, ["--path", "/home/user/api.ts", "--count=5", "--max-depth", "2"])
    assert parsed == Submit(path="/home/user/api.ts", count=5, max_depth=2)


def test_an_equals_sign_splits_only_once() -> None:
    assert parse_tool_input(Submit, ["--path=a=b"]).path == "a=b"


def test_booleans_take_a_flag_or_its_no_form_and_never_the_next_word() -> None:
    assert parse_tool_input(Submit, ["--verbose", "--path", "p"]).verbose is True
    assert parse_tool_input(Submit, ["--path", "p", "--no-verbose"]).verbose is False
    assert parse_tool_input(Submit, ["--path", "p", "--verbose=false"]).verbose is False
    assert parse_tool_input(Submit, ["--path", "p", "--verbose=TRUE"]).verbose is True
    error = usage_error(Submit, ["--path", "p", "--verbose", "yes"])
    assert "'yes'" in error.message


def test_numbers_parse_including_negative_values() -> None:
    parsed = parse_tool_input(Submit, ["--path", "p", "--offset", "-3", "--ratio", "-0.5", "--count", "7"])
    assert (parsed.offset, parsed.ratio, parsed.count) == (-3, -0.5, 7)


def test_choices_take_enum_values_and_literals() -> None:
    parsed = parse_tool_input(Submit, ["--path", "p", "--mode", "slow", "--level", "high", "--priority", "2"])
    assert (parsed.mode, parsed.level, parsed.priority) == (Mode.SLOW, "high", Priority.HIGH)


def test_a_list_takes_the_flag_repeated_and_converts_items() -> None:
    parsed = parse_tool_input(Submit, ["--path", "p", "--tags", "a", "--ids", "1", "--tags=b", "--ids", "-2"])
    assert (parsed.tags, parsed.ids) == (["a", "b"], [1, -2])


def test_optional_fields_behave_as_their_inner_type() -> None:
    assert parse_tool_input(Submit, ["--path", "p", "--ratio", "2"]).ratio == 2.0
    assert usage_error(Submit, ["--path", "p", "--offset", "x"]).flag == "--offset"


def test_a_nested_field_takes_json_directly() -> None:
    parsed = parse_tool_input(Submit, ["--path", "p", "--config", '{"retries": 2}'])
    assert parsed.config == Config(retries=2)
    parsed = parse_tool_input(
        Nested, ["--config", "{}", "--configs", '[{"name": "n"}]', "--meta", '{"a": 1}']
    )
    assert (parsed.configs, parsed.meta) == ([Config(name="n")], {"a": 1})


def test_a_union_with_text_takes_json_or_plain_text() -> None:
    assert parse_tool_input(Nested, ["--config", "{}", "--either", "4"]).either == 4
    assert parse_tool_input(Nested, ["--config", "{}", "--either", "four"]).either == "four"


def test_whole_input_as_json_with_flags_overriding() -> None:
    base = '{"path": "from-json", "count": 1, "tags": ["j"]}'
    parsed = parse_tool_input(Submit, ["--json", base, "--count", "9"])
    assert (parsed.path, parsed.count, parsed.tags) == ("from-json", 9, ["j"])


def test_stdin_is_the_base_and_json_flags_go_on_top() -> None:
    parsed = parse_tool_input(Submit, ["--json", '{"count": 2}'], stdin='{"path": "in", "count": 1}\n')
    assert (parsed.path, parsed.count) == ("in", 2)
    assert parse_tool_input(Submit, ["--path", "p"], stdin="  \n").path == "p"


def test_json_file_is_read_through_the_callback() -> None:
    files = {"/in.json": '{"path": "/from/file"}'}
    parsed = parse_tool_input(Submit, ["--json-file", "/in.json", "--verbose"], read_file=files.__getitem__)
    assert (parsed.path, parsed.verbose) == ("/from/file", True)


def test_json_keys_may_be_aliases_and_flags_override_them() -> None:
    parsed = parse_tool_input(Nested, ["--json", '{"config": {}, "maxDepth": 4}'])
    assert parsed.max_depth == 4
    parsed = parse_tool_input(Nested, ["--json", '{"config": {}, "maxDepth": 4}', "--max-depth", "6"])
    assert parsed.max_depth == 6


def test_a_field_named_like_a_command_option_is_set_through_json_only() -> None:
    class Odd(BaseModel):
        json_: str = "unset"

    assert parse_tool_input(Odd, ["--json", '{"json_": "x"}']).json_ == "x"
    assert render_argv(Odd, {"json_": "y"}) == ["--json", '{"json_": "y"}']
    kit = toolkit("odd", "Odd names", {"set": host_tool("Set it", Odd, _echo)})
    assert "fields set through JSON only: json_" in tool_help(kit, "set")


def test_an_exact_flag_wins_over_a_boolean_no_form() -> None:
    class Cache(BaseModel):
        cache: bool = True
        no_cache: str = ""

    parsed = parse_tool_input(Cache, ["--no-cache", "x"])
    assert (parsed.cache, parsed.no_cache) == (True, "x")


def test_models_that_allow_extra_fields_take_them_from_json() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        name: str = ""

    parsed = parse_tool_input(Open, ["--json", '{"other": 1}'])
    assert parsed.model_extra == {"other": 1}
    assert parse_tool_input(Open, render_argv(Open, {"other": [1], "name": "n"})) == Open(other=[1], name="n")


# --- usage errors ---------------------------------------------------------------------------------


def test_a_positional_argument_is_an_error_naming_it() -> None:
    assert "'stray'" in usage_error(Submit, ["--path", "p", "stray"]).message
    assert "'-x'" in usage_error(Submit, ["--path", "p", "-x"]).message


def test_double_dash_is_not_special() -> None:
    assert usage_error(Submit, ["--", "--path", "p"]).flag == "--"


def test_an_unknown_flag_is_named_and_the_known_ones_listed() -> None:
    error = usage_error(Submit, ["--pth", "p"])
    assert error.flag == "--pth"
    assert "did you mean --path?" in error.message
    for known in ("--path", "--count", "--no-verbose", "--json", "--json-file"):
        assert known in error.message
    assert usage_error(Submit, ["--bogus=1"]).flag == "--bogus"
    assert usage_error(Submit, ["--no-count"]).flag == "--no-count"


def test_a_flag_given_twice_is_an_error_unless_it_is_a_list() -> None:
    assert usage_error(Submit, ["--path", "a", "--path", "b"]).flag == "--path"
    assert usage_error(Submit, ["--path", "a", "--verbose", "--no-verbose"]).flag == "--verbose"
    assert usage_error(Submit, ["--json", "{}", "--json", "{}"]).flag == "--json"


@pytest.mark.parametrize("argv", [["--path"], ["--path", "--verbose"], ["--path", "p", "--count"]])
def test_a_flag_without_its_value_is_an_error(argv: list[str]) -> None:
    error = usage_error(Submit, argv)
    assert error.flag == ("--count" if "--count" in argv else "--path")
    assert "needs a value" in error.message


def test_a_negated_boolean_takes_no_value() -> None:
    assert usage_error(Submit, ["--path", "p", "--no-verbose=true"]).flag == "--verbose"


@pytest.mark.parametrize(
    ("argv", "flag", "words"),
    [
        (["--count", "three"], "--count", ["integer", "'three'"]),
        (["--count", "1.5"], "--count", ["integer"]),
        (["--ratio", "half"], "--ratio", ["number", "'half'"]),
        (["--mode", "medium"], "--mode", ["fast|slow", "'medium'"]),
        (["--level", "LOW"], "--level", ["low|high"]),
        (["--priority", "3"], "--priority", ["1|2"]),
        (["--ids", "x"], "--ids", ["integer"]),
        (["--config", "{retries: 1}"], "--config", ["JSON"]),
    ],
)
def test_a_bad_value_is_an_error_naming_flag_and_problem(
    argv: list[str], flag: str, words: list[str]
) -> None:
    error = usage_error(Submit, ["--path", "p", *argv])
    assert error.flag == flag
    for word in words:
        assert word in error.message


def test_a_missing_required_field_names_its_flag() -> None:
    error = usage_error(Submit, ["--count", "2"])
    assert error.flag == "--path"
    assert "--path is required" in error.message
    assert "path:" not in error.message


def test_model_validation_errors_name_the_flag_not_the_field() -> None:
    class Bounded(BaseModel):
        max_depth: int = Field(gt=0)

    error = usage_error(Bounded, ["--max-depth", "0"])
    assert error.flag == "--max-depth"
    assert "--max-depth" in error.message
    assert "greater than 0" in error.message


def test_errors_inside_nested_json_name_the_flag_and_the_place() -> None:
    error = usage_error(Submit, ["--path", "p", "--config", '{"retries": "many"}'])
    assert error.flag == "--config"
    assert "--config (retries)" in error.message
    error = usage_error(Nested, ["--json", '{"config": {}, "maxDepth": "deep"}'])
    assert error.flag == "--max-depth"


@pytest.mark.parametrize(
    ("argv", "stdin", "flag", "word"),
    [
        (["--json", "{"], None, "--json", "not valid JSON"),
        (["--json", "[1, 2]"], None, "--json", "JSON object"),
        ([], "not json", None, "stdin"),
        ([], "[]", None, "stdin"),
        (["--json", '{"pathh": "p"}'], None, "--json", "'pathh' in --json"),
        ([], '{"pathh": "p"}', None, "'pathh' in stdin"),
    ],
)
def test_bad_json_input_is_an_error(argv: list[str], stdin: str | None, flag: str | None, word: str) -> None:
    error = usage_error(Submit, argv, stdin=stdin)
    assert error.flag == flag
    assert word in error.message


def test_json_file_needs_a_reader_and_a_readable_file() -> None:
    assert usage_error(Submit, ["--json-file", "/in.json"]).flag == "--json-file"

    def missing(path: str) -> str:
        raise FileNotFoundError(f"no such file: {path}")

    error = usage_error(Submit, ["--json-file", "/in.json"], read_file=missing)
    assert error.flag == "--json-file"
    assert "/in.json" in error.message
    binary = usage_error(Submit, ["--json-file", "/x.bin"], read_file=lambda path: b"\xff".decode())
    assert binary.flag == "--json-file"
    assert usage_error(Submit, ["--json-file", "/in.json", "--json", "{}"]).flag == "--json-file"


# --- rendering argv -------------------------------------------------------------------------------


def test_render_argv_spells_each_kind() -> None:
    values = {
        "path": "/a b",
        "count": 2,
        "verbose": False,
        "mode": "slow",
        "tags": ["x", "y"],
        "config": {"retries": 1},
        "ratio": 0.25,
    }
    assert render_argv(Submit, values) == [
        "--path",
        "/a b",
        "--count",
        "2",
        "--ratio",
        "0.25",
        "--no-verbose",
        "--mode",
        "slow",
        "--tags",
        "x",
        "--tags",
        "y",
        "--config",
        '{"retries": 1, "name": "default"}',
    ]


def test_render_argv_keeps_values_that_look_like_flags_attached() -> None:
    assert render_argv(Submit, {"path": "--verbose"}) == ["--path=--verbose"]
    assert render_argv(Submit, {"path": "-v"}) == ["--path", "-v"]


def test_render_argv_puts_what_no_flag_can_say_into_json() -> None:
    argv = render_argv(Submit, {"path": "p", "ratio": None, "tags": []})
    assert argv[:2] == ["--json", '{"ratio": null, "tags": []}']
    assert parse_tool_input(Submit, argv) == Submit(path="p", ratio=None, tags=[])


# --- round trips ----------------------------------------------------------------------------------

AWKWARD = st.sampled_from(
    ["", "-", "-x", "--x", "--", "-3", "a=b", "--path=x", "two words", "ünïcødé ✓", "null"]
)
TEXT = st.one_of(st.text(), AWKWARD)
FLOATS = st.floats(allow_nan=False)


class Scalars(BaseModel):
    text: str
    number: int
    ratio: float
    flag: bool
    maybe_text: str | None = "set"
    maybe_number: int | None = None
    on: bool = True


class Choices(BaseModel):
    mode: Mode
    level: Literal["low", "high", 3] = 3
    priority: Priority = Priority.HIGH
    words: list[str] = Field(default_factory=lambda: ["default"])
    numbers: list[int] = Field(default_factory=list)
    ratios: list[float] | None = None
    modes: list[Mode] = Field(default_factory=list)


CONFIGS = st.fixed_dictionaries({}, optional={"retries": st.integers(), "name": TEXT})
SCALARS = st.fixed_dictionaries(
    {"text": TEXT, "number": st.integers(), "ratio": FLOATS, "flag": st.booleans()},
    optional={"maybe_text": st.none() | TEXT, "maybe_number": st.none() | st.integers(), "on": st.booleans()},
)
CHOICES = st.fixed_dictionaries(
    {"mode": st.sampled_from(Mode)},
    optional={
        "level": st.sampled_from(["low", "high", 3]),
        "priority": st.sampled_from([1, 2, Priority.HIGH]),
        "words": st.lists(TEXT, max_size=4),
        "numbers": st.lists(st.integers(), max_size=4),
        "ratios": st.none() | st.lists(FLOATS, max_size=3),
        "modes": st.lists(st.sampled_from(["fast", "slow"]), max_size=3),
    },
)
NESTED = st.fixed_dictionaries(
    {"config": CONFIGS},
    optional={
        "configs": st.lists(CONFIGS, max_size=3),
        "meta": st.dictionaries(TEXT, st.integers(), max_size=3),
        "either": st.integers() | TEXT,
        "when": st.none() | st.dates(),
        "maxDepth": st.integers(),
    },
)


@PROPERTY
@given(st.one_of(SCALARS.map(lambda v: (Scalars, v)), CHOICES.map(lambda v: (Choices, v))))
def test_rendered_argv_parses_back_to_the_same_input(case: tuple[type[BaseModel], dict[str, Any]]) -> None:
    model, values = case
    assert parse_tool_input(model, render_argv(model, values)) == model.model_validate(values)


@PROPERTY
@given(NESTED)
def test_rendered_nested_input_parses_back(values: dict[str, Any]) -> None:
    assert parse_tool_input(Nested, render_argv(Nested, values)) == Nested.model_validate(values)


@PROPERTY
@given(SCALARS, TEXT)
def test_rendered_argv_survives_json_on_stdin(values: dict[str, Any], text: str) -> None:
    """Flags override JSON: whatever stdin says about a rendered field, the flag wins."""
    stdin = json.dumps({"text": text, "number": 0, "ratio": 0, "flag": False})
    argv = render_argv(Scalars, values)
    assert parse_tool_input(Scalars, argv, stdin=stdin) == Scalars.model_validate(values)


# --- malformed argv -------------------------------------------------------------------------------

SUBMIT_VALUES = st.fixed_dictionaries(
    {"path": TEXT},
    optional={"count": st.integers(), "verbose": st.booleans(), "tags": st.lists(TEXT, max_size=3)},
)
NOT_AN_INTEGER = st.text().filter(lambda text: not _parses(int, text))


def _parses(convert: Any, text: str) -> bool:
    try:
        convert(text)
    except ValueError:
        return False
    return True


def _junk() -> st.SearchStrategy[tuple[list[str], str]]:
    """A fault to add to a valid command line, and the flag or token the error must name."""
    positional = TEXT.filter(lambda token: not token.startswith("--")).map(lambda token: ([token], token))
    unknown = st.from_regex(r"[a-z][a-z-]{0,12}", fullmatch=True).filter(
        lambda name: (
            name not in {"path", "count", "verbose", "no-verbose", "tags", "json", "json-file"}
            and not name.startswith("config")
        )
    )
    return st.one_of(
        positional,
        unknown.map(lambda name: ([f"--{name}"], f"--{name}")),
        unknown.map(lambda name: ([f"--{name}=1"], f"--{name}")),
        st.sampled_from(["--count", "--path", "--tags", "--json"]).map(lambda flag: ([flag], flag)),
        NOT_AN_INTEGER.map(lambda text: (["--count", text], "--count")),
        st.sampled_from(["1", "{", "[]", '"text"']).map(lambda text: (["--config", text], "--config")),
        st.text()
        .filter(lambda word: word.lower() not in {"true", "false"})
        .map(lambda word: ([f"--verbose={word}"], "--verbose")),
    )


@PROPERTY
@given(SUBMIT_VALUES, _junk(), st.booleans())
def test_malformed_argv_is_a_usage_error_naming_the_culprit(
    values: dict[str, Any], junk: tuple[list[str], str], first: bool
) -> None:
    fault, culprit = junk
    valid = render_argv(Submit, values)
    argv = [*fault, *valid] if first else [*valid, *fault]
    with pytest.raises(ToolUsageError) as caught:
        parse_tool_input(Submit, argv)
    error = caught.value
    assert error.code == "VALIDATION_ERROR"
    assert error.flag == culprit or repr(culprit) in error.message


@PROPERTY
@given(
    st.lists(st.one_of(st.text(), st.sampled_from(["--path", "--count", "--verbose", "--json"])), max_size=6)
)
def test_random_argv_parses_or_is_a_usage_error(argv: list[str]) -> None:
    outcome = _attempt(Submit, argv)
    if isinstance(outcome, ToolUsageError):
        assert outcome.code == "VALIDATION_ERROR"
        assert outcome.flag is not None or any(repr(token) in outcome.message for token in argv)
    else:
        assert isinstance(outcome, Submit)


def _attempt(model: type[BaseModel], argv: list[str]) -> BaseModel | ToolUsageError:
    try:
        return parse_tool_input(model, argv)
    except ToolUsageError as error:
        return error


# --- help -----------------------------------------------------------------------------------------


def test_toolkit_help_lists_tools_and_how_to_get_more() -> None:
    text = toolkit_help(review_toolkit())
    assert "Code review tools" in text
    assert "usage: agentos-review <tool>" in text
    assert "submit  Submit a file for code review" in text
    assert "status  Show the review queue" in text
    assert "agentos-review <tool> --help" in text


def test_tool_help_describes_every_flag() -> None:
    text = tool_help(review_toolkit(), "submit")
    lines = text.splitlines()
    assert lines[0].startswith("usage: agentos-review submit --path <string> [--count <integer>]")
    assert "Submit a file for code review" in text
    expected = [
        "--path <string>  (string; required)",
        "--count <integer>  (integer; optional, default 3)",
        "--ratio <number>  (number; optional)",
        "--verbose, --no-verbose  (boolean; optional, default false)",
        '--mode <fast|slow>  (one of fast|slow; optional, default "fast")',
        "--priority <1|2>  (one of 1|2; optional, default 1)",
        "--tags <string>...  (list of string; repeat the flag for each item; optional)",
        "--config <JSON>  (JSON; optional)",
        "--max-depth <integer>  (integer; optional, default 1)",
    ]
    for line in expected:
        assert f"  {line}" in lines
    path_line = lines.index("  --path <string>  (string; required)")
    assert lines[path_line + 1].strip() == "The file to review."
    assert "How many reviewers look at it." in text


def test_tool_help_shows_json_input_examples_and_exit_codes() -> None:
    text = tool_help(review_toolkit(), "submit")
    for option in ("--json '{...}'", "--json-file PATH", "stdin"):
        assert option in text
    assert "  agentos-review submit --path /home/user/api.ts\n" in text
    assert "  agentos-review submit --path 'a b.ts' --verbose --tags x --tags y\n" in text
    assert "  0  success" in text
    assert "  1  execution error (EXECUTION_ERROR), or timeout after 12s (TIMEOUT)" in text
    assert "  2  usage or validation error (VALIDATION_ERROR, TOOL_NOT_FOUND), or a caller" in text
    assert "(FORBIDDEN)" in text
    assert "examples:" not in tool_help(review_toolkit(), "status")


def test_help_for_an_unknown_tool_is_tool_not_found() -> None:
    with pytest.raises(ToolUsageError) as caught:
        tool_help(review_toolkit(), "sbmit")
    assert caught.value.code == "TOOL_NOT_FOUND"
    assert "did you mean submit?" in caught.value.message


def test_tool_reference_has_one_line_per_tool_under_its_toolkit() -> None:
    class Short(BaseModel):
        path: str
        verbose: bool = False
        tags: list[str] = Field(default_factory=list)
        strict: bool

    kit = toolkit(
        "review", "Code   review\ntools", {"submit": host_tool("Submit a file for code review", Short, _echo)}
    )
    lint = toolkit("lint", "Linters", {"run": host_tool("Run the linters", Config, _echo)})
    assert tool_reference([kit, lint]) == (
        "agentos-review: Code review tools\n"
        "  agentos-review submit --path <string> [--verbose] [--tags <string>...] (--strict | --no-strict)"
        " — Submit a file for code review\n"
        "\n"
        "agentos-lint: Linters\n"
        "  agentos-lint run [--retries <integer>] [--name <string>] — Run the linters"
    )
    assert tool_reference([]) == ""


def test_list_tools_text_has_the_reference_and_how_to_get_help() -> None:
    text = list_tools_text([review_toolkit()])
    assert tool_reference([review_toolkit()]) in text
    assert "--help" in text.splitlines()[0]
    assert list_tools_text([]) == "No host tools are available.\n"


# --- results --------------------------------------------------------------------------------------


def test_ok_result_is_one_json_line_with_pydantic_values_dumped() -> None:
    line = ok_result({"config": Config(retries=1), "when": datetime.date(2024, 1, 2), "mode": Mode.SLOW})
    assert line == (
        '{"ok": true, "result": {"config": {"retries": 1, "name": "default"}, '
        '"when": "2024-01-02", "mode": "slow"}}\n'
    )
    assert ok_result("ünï") == '{"ok": true, "result": "ünï"}\n'


def test_error_result_is_one_json_line() -> None:
    assert (
        error_result(ToolErrorCode.TIMEOUT, "took 30 s ✗")
        == '{"ok": false, "error": "TIMEOUT", "message": "took 30 s ✗"}\n'
    )


def test_exit_codes_split_usage_from_execution() -> None:
    assert EXIT_CODES == {
        "VALIDATION_ERROR": 2,
        "TOOL_NOT_FOUND": 2,
        "FORBIDDEN": 2,
        "EXECUTION_ERROR": 1,
        "TIMEOUT": 1,
    }
