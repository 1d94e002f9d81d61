"""What an everyday request asks for, as typed intents: the request parser makes them, the
executor turns each into tool calls. Paths are as the prompt wrote them (relative ones are
relative to the session's working directory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class WriteFile:
    """Create or replace a file with `content`; `does` says what it is, for the reply. A
    program is run once written (with `interpreter`) to show what it prints. A `drafted` file's
    content is the seed writer's draft, made when it is written from the words of the request,
    which `does` then holds."""

    path: str
    content: str
    does: str
    interpreter: str = ""
    drafted: bool = False


@dataclass(frozen=True, slots=True)
class AppendText:
    """Add `text` as a line at the end of a file (made if missing)."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class ListFolder:
    path: str


@dataclass(frozen=True, slots=True)
class ShowFile:
    path: str


@dataclass(frozen=True, slots=True)
class RunFile:
    """Run a program file with its interpreter (`python3`, `bash`)."""

    path: str
    interpreter: str


@dataclass(frozen=True, slots=True)
class RunCommand:
    command: str


@dataclass(frozen=True, slots=True)
class ReplaceText:
    """Replace every occurrence of `old` with `new` in a file."""

    path: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class MovePath:
    """Move or rename (`copy` False), or copy, `source` to `target`; `into` means `target` is a
    folder to put it in (made if missing)."""

    source: str
    target: str
    into: bool = False
    copy: bool = False


@dataclass(frozen=True, slots=True)
class DeletePath:
    path: str


@dataclass(frozen=True, slots=True)
class MakeFolder:
    path: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """Lines holding `text`, in a file or under a folder."""

    text: str
    path: str


@dataclass(frozen=True, slots=True)
class FindFiles:
    """Files whose name matches the glob `pattern`, under a folder."""

    pattern: str
    path: str


@dataclass(frozen=True, slots=True)
class CountIn:
    """How many lines, words or characters a file has, or how many files a folder holds."""

    unit: Literal["lines", "words", "characters", "files"]
    path: str


@dataclass(frozen=True, slots=True)
class ExplainFile:
    path: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """A request understood but not done, and why (a path outside where the agent may work)."""

    request: str
    reason: str


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    """A part of the prompt the parser could not read as a request."""

    text: str


Intent = (
    WriteFile
    | AppendText
    | ListFolder
    | ShowFile
    | RunFile
    | RunCommand
    | ReplaceText
    | MovePath
    | DeletePath
    | MakeFolder
    | SearchText
    | FindFiles
    | CountIn
    | ExplainFile
    | Refuse
    | NotUnderstood
)
