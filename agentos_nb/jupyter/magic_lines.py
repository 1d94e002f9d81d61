"""The argument lines of `%%agent` and `%agentos`, parsed into models before anything runs.

Lines are split with shlex and read with argparse; every way a line can be wrong (an unknown
option, a missing ACTOR, a bad timeout, unbalanced quotes, bad JSON) becomes IPython's
`UsageError`, which IPython shows as one line, without a traceback. Nothing here formats or
expands the line: a prompt or a JSON body reaches the runtime exactly as typed.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shlex
from typing import Any, Literal, NoReturn

from IPython.core.error import UsageError
from pydantic import BaseModel, ConfigDict, Field

AGENT_USAGE = (
    "%%agent ACTOR [KEY] [--session ID | --new] [--agent TYPE] [--model M] [--timeout S] [--registry NAME]"
)
SUBCOMMAND_USAGE = {
    "dashboard": "%agentos dashboard [--registry NAME]",
    "events": "%agentos events [--registry NAME]",
    "tools": "%agentos tools [--registry NAME]",
    "ls": "%agentos ls ACTOR[/KEY] [PATH] [--registry NAME]",
    "cat": "%agentos cat ACTOR[/KEY] PATH [--registry NAME]",
    "send": "%agentos send ACTOR[/KEY] QUEUE [--wait] [--timeout S] [--registry NAME] JSON",
    "shell": "%agentos shell ACTOR [KEY] [--cols N] [--rows N] [--registry NAME]",
}
AGENTOS_USAGE = "\n".join(SUBCOMMAND_USAGE.values())

DEFAULT_AGENT = "pi"
HOME = "/home/user"


class Target(BaseModel):
    """An actor as `ACTOR/KEY`: `writer/my-project` is key ["my-project"], `writer` the empty key,
    `repo/org/name` key ["org", "name"] (as the dashboard labels actors)."""

    model_config = ConfigDict(frozen=True)

    actor: str
    key: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "/".join((self.actor, *self.key))


class AgentLine(BaseModel):
    """`%%agent`: which VM to prompt, in which session, with what limits."""

    model_config = ConfigDict(frozen=True)

    target: Target
    session: str | None = None
    new: bool = False
    agent: str = DEFAULT_AGENT
    model: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    registry: str | None = None


class DashboardLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    command: Literal["dashboard", "events", "tools"]
    registry: str | None = None

    @property
    def tabs(self) -> list[str] | None:
        """The dashboard's tabs: all of them, or the one the command names."""
        return {"dashboard": None, "events": ["Events"], "tools": ["Tool calls"]}[self.command]


class ListLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    command: Literal["ls"] = "ls"
    target: Target
    path: str = HOME
    registry: str | None = None


class CatLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    command: Literal["cat"] = "cat"
    target: Target
    path: str
    registry: str | None = None


class SendLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    command: Literal["send"] = "send"
    target: Target
    queue: str
    body: Any
    wait: bool = False
    timeout: float | None = Field(default=None, gt=0)
    registry: str | None = None


class ShellLine(BaseModel):
    """`%agentos shell`: a terminal widget on a VM (the size is checked when it opens)."""

    model_config = ConfigDict(frozen=True)

    command: Literal["shell"] = "shell"
    target: Target
    cols: int = 80
    rows: int = 24
    registry: str | None = None


AgentosLine = DashboardLine | ListLine | CatLine | SendLine | ShellLine


class _Parser(argparse.ArgumentParser):
    """argparse whose every complaint is a UsageError naming the magic's syntax."""

    def __init__(self, usage: str) -> None:
        super().__init__(add_help=False, allow_abbrev=False)
        self.usage_line = usage

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nUsage: {self.usage_line}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _split(line: str, usage: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as error:  # "No closing quotation", "No escaped character"
        raise UsageError(f"cannot split the line: {error}\nUsage: {usage}") from None


def parse_target(text: str, usage: str) -> Target:
    actor, *key = text.split("/")
    if not actor or not all(key):
        raise UsageError(f"{text!r} is not ACTOR or ACTOR/KEY (no empty parts)\nUsage: {usage}")
    return Target(actor=actor, key=tuple(key))


def parse_agent_line(line: str) -> AgentLine:
    """`writer my-project --new` -> AgentLine. KEY may also be written `writer/my-project`."""
    parser = _Parser(AGENT_USAGE)
    parser.add_argument("actor", metavar="ACTOR")
    parser.add_argument("key", metavar="KEY", nargs="?")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--session", metavar="ID")
    which.add_argument("--new", action="store_true")
    parser.add_argument("--agent", metavar="TYPE")
    parser.add_argument("--model", metavar="M")
    parser.add_argument("--timeout", metavar="S", type=_seconds)
    parser.add_argument("--registry", metavar="NAME")
    args = parser.parse_args(_split(line, AGENT_USAGE))
    target = parse_target(args.actor, AGENT_USAGE)
    if args.key is not None:
        if target.key:
            parser.error(f"the key is given twice: {args.actor!r} and {args.key!r}")
        target = parse_target(f"{target.actor}/{args.key}", AGENT_USAGE)
    if args.session is not None and (args.agent is not None or args.model is not None):
        parser.error("--agent and --model choose a new session's agent; --session ID reuses one as it is")
    return AgentLine(
        target=target,
        session=args.session,
        new=args.new,
        agent=args.agent or DEFAULT_AGENT,
        model=args.model,
        timeout=args.timeout,
        registry=args.registry,
    )


def parse_agentos_line(line: str) -> AgentosLine:
    """`ls writer/my-project /home/user` -> ListLine, and so on for each subcommand."""
    command, rest = (*line.split(maxsplit=1), "", "")[:2]
    if command in ("dashboard", "events", "tools"):
        parser = _Parser(SUBCOMMAND_USAGE[command])
        parser.add_argument("--registry", metavar="NAME")
        args = parser.parse_args(_split(rest, parser.usage_line))
        return DashboardLine.model_validate({"command": command, "registry": args.registry})
    if command in ("ls", "cat"):
        usage = SUBCOMMAND_USAGE[command]
        parser = _Parser(usage)
        parser.add_argument("target", metavar="ACTOR[/KEY]")
        parser.add_argument("path", metavar="PATH", nargs="?" if command == "ls" else None)
        parser.add_argument("--registry", metavar="NAME")
        args = parser.parse_args(_split(rest, usage))
        target = parse_target(args.target, usage)
        if args.path == "":
            parser.error("PATH is empty")
        if command == "ls":
            return ListLine(target=target, path=args.path or HOME, registry=args.registry)
        return CatLine(target=target, path=args.path, registry=args.registry)
    if command == "send":
        return _parse_send(rest)
    if command == "shell":
        return _parse_shell(rest)
    known = ", ".join(SUBCOMMAND_USAGE)
    what = f"unknown subcommand {command!r}" if command else "a subcommand is needed"
    raise UsageError(f"{what} (one of: {known})\nUsage:\n{AGENTOS_USAGE}")


def _parse_send(rest: str) -> SendLine:
    """Options, ACTOR[/KEY] and QUEUE are shell words; JSON is the rest of the line, as typed
    (shell quotes around it are allowed), so `{"prompt": "Review PR #123"}` needs no escaping."""
    usage = SUBCOMMAND_USAGE["send"]
    parser = _Parser(usage)
    parser.add_argument("target", metavar="ACTOR[/KEY]")
    parser.add_argument("queue", metavar="QUEUE")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--timeout", metavar="S", type=_seconds)
    parser.add_argument("--registry", metavar="NAME")
    words, body = _words_then_rest(rest, positionals=2, valued={"--registry", "--timeout"}, usage=usage)
    args = parser.parse_args(words)
    if not body:
        parser.error("the JSON body is missing (it comes last and runs to the end of the line)")
    return SendLine(
        target=parse_target(args.target, usage),
        queue=args.queue,
        body=_json(body, usage),
        wait=args.wait,
        timeout=args.timeout,
        registry=args.registry,
    )


def _parse_shell(rest: str) -> ShellLine:
    usage = SUBCOMMAND_USAGE["shell"]
    parser = _Parser(usage)
    parser.add_argument("actor", metavar="ACTOR")
    parser.add_argument("key", metavar="KEY", nargs="?")
    parser.add_argument("--cols", metavar="N", type=int, default=80)
    parser.add_argument("--rows", metavar="N", type=int, default=24)
    parser.add_argument("--registry", metavar="NAME")
    args = parser.parse_args(_split(rest, usage))
    target = parse_target(args.actor, usage)
    if args.key is not None:
        if target.key:
            parser.error(f"the key is given twice: {args.actor!r} and {args.key!r}")
        target = parse_target(f"{target.actor}/{args.key}", usage)
    return ShellLine(target=target, cols=args.cols, rows=args.rows, registry=args.registry)


def _words_then_rest(text: str, *, positionals: int, valued: set[str], usage: str) -> tuple[list[str], str]:
    """The shell words up to the `positionals`-th positional one and the options around them,
    and the raw text after them (an option in `valued` takes the next word as its value). JSON
    never starts with `--`, so options may come before or after QUEUE, as the usage line says."""
    stream = io.StringIO(text)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    seen = 0
    takes_value = False
    while True:
        start = stream.tell()
        body_next = seen == positionals and not takes_value
        try:
            word = lexer.get_token()
        except ValueError as error:  # "No closing quotation"
            if body_next:  # JSON is not split into words: only read as a whole, below
                return words, text[start:].strip()
            raise UsageError(f"cannot split the line: {error}\nUsage: {usage}") from None
        if word is None:
            return words, ""
        if body_next and not text[start:].lstrip().startswith("--"):  # as typed: '"--x"' is JSON
            return words, text[start:].strip()
        if takes_value:
            takes_value = False
        elif word.startswith("--"):
            takes_value = word in valued
        else:
            seen += 1
        words.append(word)


def _json(text: str, usage: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        try:
            words = shlex.split(text)
        except ValueError:
            words = []
        if len(words) == 1 and words[0] != text:  # the JSON was shell-quoted: '{"a": 1}'
            return _json(words[0], usage)
        raise UsageError(
            f"the body is not JSON: {error.msg} at column {error.colno} of {text!r} "
            f"(JSON comes last and runs to the end of the line)\nUsage: {usage}"
        ) from None
