"""Understanding the prompt: the paths it names and what it asks for (write, review or look around),
worked out once per prompt as a plan."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agentos_nb.agents.offline.intents import Intent, WriteFile
from agentos_nb.agents.offline.requests import parse_request

_QUOTED_OR_WORD = re.compile(
    r"`([^`\n]+)`|\"([^\"\n]+)\"|(?<![\w'])'([^'\n]+)'(?!\w)|((?:~|\.{1,2})?/?[\w@+][\w.@+/-]*)"
)
_BARE_WORD = re.compile(r"(?:~|\.{1,2})?/?[\w@+][\w.@+/-]*")
_FILE_NAME = re.compile(r"[\w@+-][\w.@+-]*\.[A-Za-z][A-Za-z0-9]{0,7}")
_NOT_FILES = frozenset({"e.g", "i.e"})
WORDS = re.compile(r"[a-z0-9]+")
_WRITE_VERB = re.compile(r"\b(?:write|create|implement|build|generate|scaffold|draft)\b")
_REVIEW_VERB = re.compile(r"\b(?:review|audit|critique)\b")
_OUTPUT_VERB = re.compile(r"\b(?:write|save|put|store|record)\b")
_SUBMIT = re.compile(r"\bsubmit\b|\bfor (?:a )?(?:code )?review\b|\b(?:get|have) it reviewed\b")
_WORD_BEFORE = re.compile(r"(\w+)[\s`'\"(]*\Z")
_TARGET_WORDS = frozenset(
    {"at", "to", "in", "into", "as", "called", "named", "file", "under"}
    | {"write", "create", "implement", "build", "generate", "scaffold", "draft"}
)
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)


@dataclass(frozen=True, slots=True)
class Plan:
    """What the prompt asks for, worked out once per prompt."""

    kind: Literal["write", "review", "everyday", "explore"]
    prompt: str
    words: frozenset[str]
    paths: tuple[str, ...]
    target: str = ""  # the file to write, or to review
    submit: bool = False  # write, then submit it for review
    inline: str = ""  # code to review, given in the prompt
    output: str = ""  # where to write the review
    intents: tuple[Intent, ...] = ()  # an everyday request, in order


def paths(text: str) -> list[str]:
    """Path-like words, in order: absolute or containing a slash, or file names with an extension;
    quoted ones may hold spaces; a trailing period or comma is not part of a path."""
    found: list[str] = []
    for match in _QUOTED_OR_WORD.finditer(text):
        quoted = match.group(1) or match.group(2) or match.group(3)
        if quoted is None:
            candidates = [match.group(4)]
        elif _is_path(quoted.strip()):
            candidates = [quoted.strip()]
        else:
            candidates = _BARE_WORD.findall(quoted)
        for candidate in candidates:
            candidate = candidate.rstrip(".,:;!?)")
            if _is_path(candidate) and candidate not in found:
                found.append(candidate)
    return found


def _is_path(word: str) -> bool:
    if not word or "://" in word or word.endswith("/") or any(c in word for c in "\n\t"):
        return False
    name = word.rsplit("/", 1)[-1]
    has_extension = _FILE_NAME.fullmatch(name) is not None and name not in _NOT_FILES
    if "/" not in word:
        return has_extension
    if word.startswith("/"):
        return has_extension or word.count("/") >= 2
    return has_extension or word.startswith(("./", "../", "~/"))


def _is_target(header: str, path: str) -> bool:
    """Whether `path` is where to write: it follows "at", "to", "in", ... or the verb itself
    ("Write a REST API at api.ts", "Create notes.md"), unlike "a summary of api.ts"."""
    before = _WORD_BEFORE.search(header, 0, header.find(path))
    return before is not None and before.group(1).lower() in _TARGET_WORDS


def _ranked(paths: Sequence[str]) -> tuple[str, ...]:
    """Files in a folder first (`/home/user/api.ts`), then bare file names (`api.ts`), then the rest
    (folders): "an API in Node.js at /home/user/api.ts" is about api.ts."""

    def rank(path: str) -> int:
        is_file = _FILE_NAME.fullmatch(path.rsplit("/", 1)[-1]) is not None
        return 0 if is_file and "/" in path else 1 if is_file else 2

    return tuple(sorted(paths, key=rank))


@functools.lru_cache(maxsize=128)
def plan(prompt: str) -> Plan:
    header, _, body = prompt.strip().partition("\n\n")
    lower = header.lower()
    words = frozenset(WORDS.findall(prompt.lower()))
    every_path = _ranked(paths(prompt))
    explore = Plan("explore", prompt, words, every_path)
    review = _REVIEW_VERB.search(lower)
    write = _WRITE_VERB.search(lower)
    if review and (write is None or review.start() < write.start()):
        output_verb = _OUTPUT_VERB.search(lower, review.end())
        output_paths = paths(header[output_verb.end() :]) if output_verb else []
        output = output_paths[0] if output_paths else ""
        sources = [p for p in _ranked(paths(header)) if p != output]
        if sources:
            return Plan("review", prompt, words, every_path, target=sources[0], output=output)
        fenced = _FENCE.search(body)
        code = fenced.group(1) if fenced else body
        if code.strip():
            return Plan("review", prompt, words, every_path, inline=code, output=output)
        return explore
    intents = parse_request(prompt)
    if intents is not None and not _for_the_writer(intents, lower):
        return Plan("everyday", prompt, words, every_path, intents=intents)
    if write:
        targets = [path for path in _ranked(paths(header)) if _is_target(header, path)]
        if targets:
            submit = _SUBMIT.search(lower, write.end()) is not None
            return Plan("write", prompt, words, every_path, target=targets[0], submit=submit)
    return explore


def _for_the_writer(intents: Sequence[Intent], lower: str) -> bool:
    """A request to draft code (a REST API, a service) alone, or to draft it and submit it for
    review, is the seed writer's: its flow writes the draft and calls the review tool."""
    drafted = [intent for intent in intents if isinstance(intent, WriteFile) and intent.drafted]
    return bool(drafted) and (len(intents) == 1 or _SUBMIT.search(lower) is not None)
