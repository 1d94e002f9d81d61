"""Reviewing code without a model: per-language rules whose findings cite real lines, and the review
text they make."""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass

from agentos_nb.agents.offline.text import (
    JS_EXTENSIONS,
    PY_EXTENSIONS,
    QUOTE_WIDTH,
    SH_EXTENSIONS,
    TS_EXTENSIONS,
    code_span,
    shorten,
)

_LANGUAGES = {"ts": "TypeScript", "js": "JavaScript", "py": "Python", "sh": "shell", "text": "text"}
_GUESS_PYTHON = re.compile(
    r"^(?:(?:async )?def \w+\(|class \w+.*:$|from [\w.]+ import \w|import [\w.]+$)", re.M
)
_GUESS_TYPESCRIPT = re.compile(r"^\s*interface \w|:\s*(?:string|number|boolean|any)\b")
_GUESS_JAVASCRIPT = re.compile(r"\b(?:const|let|function|require)\b|=>")
_COMMENT = re.compile(r"^\s*(?:#|//|/\*|\*|--|<!--)", re.M)
_DEFINITION = re.compile(r"^\s*(?:export\s+)?(?:async\s+)?(?:def|function|class)\s+(\w+)", re.M)
_ERROR_HANDLING = re.compile(r"\btry\b|\bcatch\b|\bexcept\b")


@dataclass(frozen=True, slots=True)
class _Rule:
    """A line-level smell: `pattern` on a line, unless `unless` matches within `lookback` lines
    above. Only lines holding one of `needles` (in the lowercased text when `fold`) are searched:
    finding a literal is far cheaper than running a regex over the whole file."""

    languages: frozenset[str]
    severity: int  # 0 is the most serious
    title: str
    message: str
    needles: tuple[str, ...]
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None
    lookback: int = 0
    fold: bool = False


_CODE = frozenset({"ts", "js", "py", "sh"})
_JS = frozenset({"ts", "js"})
_PY = frozenset({"py"})
_ALL = frozenset(_LANGUAGES)

_RULES = (
    _Rule(
        _JS,
        0,
        "an unguarded `JSON.parse`",
        "`JSON.parse` throws on malformed input and nothing catches it here, so one bad request "
        "becomes an unhandled rejection instead of a 400",
        ("JSON.parse(",),
        re.compile(r"JSON\.parse\("),
        re.compile(r"\btry\b"),
        8,
    ),
    _Rule(
        _PY,
        0,
        "an unguarded `json.loads`",
        "`json.loads` raises on malformed input and nothing catches it here, so a bad request gets "
        "a 500 instead of a 400",
        ("json.load",),
        re.compile(r"json\.loads?\("),
        re.compile(r"\btry\b"),
        8,
    ),
    _Rule(
        _JS,
        0,
        "the request body copied as-is",
        "spreads the whole request body into the record, so unknown or malicious fields are stored "
        "unchecked (and could even overwrite `id`); copy only the validated fields",
        ("...",),
        re.compile(r"\.\.\.(?:data|body|payload|input|req\.body)\b"),
    ),
    _Rule(
        _PY,
        0,
        "a bare `except:`",
        "a bare `except:` also catches KeyboardInterrupt and SystemExit and hides real bugs; catch "
        "the specific errors (KeyError, ValueError)",
        ("except",),
        re.compile(r"^\s*except\s*:"),
    ),
    _Rule(
        _ALL,
        0,
        "a hard-coded secret",
        "a secret is hard-coded in the source, so it ends up in version control; read it from the "
        "environment",
        ("password", "passwd", "secret", "key", "token"),
        re.compile(r"(?i)\b\w*(?:password|passwd|secret|api_?key|token)\w*\s*[:=]\s*[\"'][^\"']{3,}[\"']"),
        fold=True,
    ),
    _Rule(
        _CODE,
        0,
        "`eval`",
        "`eval` runs arbitrary code; parse the input instead",
        ("eval(",),
        re.compile(r"\beval\("),
    ),
    _Rule(
        _PY,
        1,
        "unvalidated input",
        "indexes the parsed body directly: a missing field raises KeyError (a 500) and its type is "
        "never checked; validate the input first",
        ("data[", "body[", "payload["),
        re.compile(r"\b(?:data|body|payload)\[[\"']"),
    ),
    _Rule(
        _JS,
        1,
        "a response without a status code",
        "answers without setting a status code, so this error goes out as 200 OK; send 404",
        ("res.end(",),
        re.compile(r"\bres\.end\("),
        re.compile(r"writeHead|statusCode|\.status\("),
        3,
    ),
    _Rule(
        frozenset({"ts"}),
        1,
        "`any`",
        "`any` turns off type checking for everything that touches this value; use the interface "
        "the file declares (or a new one)",
        ("any",),
        re.compile(r":\s*any\b|\bas any\b|<any>"),
    ),
    _Rule(
        _JS,
        1,
        "loose equality",
        "`==`/`!=` coerce types (a string id equals a number); use `===`/`!==` and convert explicitly",
        ("==", "!="),
        re.compile(r"[^=!<>]==[^=]|!=[^=]"),
    ),
    _Rule(
        _PY,
        1,
        "a mutable default argument",
        "a mutable default is shared between calls; default to None and create it inside",
        ("def ",),
        re.compile(r"^\s*def \w+\(.*=\s*(?:\[\]|\{\}|set\(\))"),
    ),
    _Rule(
        _ALL,
        1,
        "an open TODO",
        "an open TODO: the work it describes is not done yet",
        ("TODO", "FIXME", "XXX", "HACK"),
        re.compile(r"\b(?:TODO|FIXME|XXX|HACK)\b"),
    ),
    _Rule(
        _JS,
        2,
        "debug logging",
        "`console.log` left in: use a logger with levels, or remove it",
        ("console.",),
        re.compile(r"\bconsole\.(?:log|debug)\("),
    ),
    _Rule(
        _PY,
        2,
        "debug printing",
        "`print` left in: use `logging`, or remove it",
        ("print(",),
        re.compile(r"^\s*print\("),
    ),
    _Rule(
        _CODE,
        2,
        "a hard-coded port",
        "the port (and address) are hard-coded; read them from the environment or a setting",
        (".listen(", "((", "port"),
        re.compile(
            r"\.listen\(\s*\d{2,5}|\(\s*[\"'][\w.]*[\"']\s*,\s*\d{2,5}\s*\)|\bport\s*=\s*\d{2,5}\b", re.I
        ),
        fold=True,
    ),
    _Rule(
        _JS,
        2,
        "`var`",
        "`var` is function-scoped and hoisted; use `const` or `let`",
        ("var ",),
        re.compile(r"^\s*var\s"),
    ),
)
_LONG_LINE = 120


@dataclass(frozen=True, slots=True)
class _Finding:
    severity: int
    line: int  # index into the reviewed lines
    title: str
    message: str
    also: tuple[int, ...] = ()


@functools.lru_cache(maxsize=64)
def review(code: str, label: str, extension: str, first_line: int, note: str) -> tuple[str, str]:
    """A markdown review of `code` (its first line numbered `first_line`) and its one-line summary:
    findings from simple per-language heuristics, each citing a real line by number and text, the
    most serious first; always two or more when the code has two or more non-blank lines."""
    lines = code.split("\n")
    if code.endswith("\n"):
        lines.pop()
    non_blank = [index for index, line in enumerate(lines) if line.strip()]
    language = _language(extension, code)
    size = f"{note or f'{len(lines)} lines'} of {_LANGUAGES[language]}"
    if not non_blank:
        summary = f"Summary: {label} is empty, so there is nothing to review."
        return summary, summary
    findings = _findings(code, lines, language)
    if len(non_blank) >= 2 and len(findings) < 2:
        findings += _fallbacks(code, lines, non_blank, language, {f.line for f in findings})[
            : 2 - len(findings)
        ]
    findings.sort(key=lambda f: (f.severity, f.line))
    if not findings:
        summary = f"Summary: nothing to flag in {label} ({size})."
        return summary, summary
    worst = findings[0]
    count = f"{len(findings)} issue{'s' if len(findings) != 1 else ''}"
    summary = (
        f"Summary: {count} in {label} ({size}); the most serious is {worst.title} "
        f"on line {worst.line + first_line}."
    )
    bullets = []
    for finding in findings:
        text = code_span(shorten(lines[finding.line].strip(), QUOTE_WIDTH))
        also = ""
        if finding.also:
            numbers = ", ".join(str(index + first_line) for index in finding.also)
            also = f" (also line{'s' if len(finding.also) > 1 else ''} {numbers})"
        bullets.append(f"- Line {finding.line + first_line}: {text} — {finding.message}{also}.")
    return summary + "\n\n" + "\n".join(bullets), summary


def _findings(code: str, lines: list[str], language: str) -> list[_Finding]:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    folded = code.lower()
    findings = []
    for rule in _RULES:
        if language not in rule.languages:
            continue
        hits = [
            index
            for index in _lines_holding(folded if rule.fold else code, rule.needles, starts)
            if rule.pattern.search(lines[index])
            and not (
                rule.unless
                and any(rule.unless.search(line) for line in lines[max(0, index - rule.lookback) : index + 1])
            )
        ]
        if hits:
            findings.append(_Finding(rule.severity, hits[0], rule.title, rule.message, tuple(hits[1:4])))
    long_lines = [index for index, line in enumerate(lines) if len(line) > _LONG_LINE]
    if long_lines:
        length = len(lines[long_lines[0]])
        message = f"a very long line ({length} characters) is hard to read and to review; split it"
        findings.append(_Finding(2, long_lines[0], "a very long line", message, tuple(long_lines[1:4])))
    return findings


def _lines_holding(text: str, needles: tuple[str, ...], starts: list[int]) -> list[int]:
    """The indexes, in order, of the lines of `text` (which begin at `starts`) holding a needle."""
    found: set[int] = set()
    last = len(starts) - 2
    for needle in needles:
        position = text.find(needle)
        while position != -1:
            index = min(bisect.bisect_right(starts, position) - 1, last)
            found.add(index)
            position = text.find(needle, starts[index + 1])
    return sorted(found)


def _fallbacks(
    code: str, lines: list[str], non_blank: list[int], language: str, used: set[int]
) -> list[_Finding]:
    """Observations that hold for most code, for files the rules find little in."""
    candidates: list[_Finding] = []
    if language in _CODE and not _COMMENT.search(code):
        message = "nothing in the file says what it is for; start it with a short comment"
        candidates.append(_Finding(2, non_blank[0], "no header comment", message))
    if language in _CODE and not _ERROR_HANDLING.search(code):
        message = "nothing in the file handles errors; decide what should happen when this step fails"
        candidates.append(_Finding(1, non_blank[0], "no error handling", message))
    definition = _DEFINITION.search(code)
    if definition:
        index = code.count("\n", 0, definition.start())
        message = f"no test pins down what `{definition.group(1)}` should do; add one before changing it"
        candidates.append(_Finding(2, index, "no test", message))
    longest = max(non_blank, key=lambda index: len(lines[index]))
    message = "the densest line here; name its parts or add a comment so a reader can follow it"
    candidates.append(_Finding(2, longest, "a dense line", message))
    for index in non_blank:
        message = "no comment or test says what this line is for"
        candidates.append(_Finding(2, index, "an unexplained line", message))
    chosen: list[_Finding] = []
    for finding in candidates:
        if finding.line not in used:
            used.add(finding.line)
            chosen.append(finding)
    return chosen


def _language(extension: str, code: str) -> str:
    if extension in TS_EXTENSIONS:
        return "ts"
    if extension in JS_EXTENSIONS:
        return "js"
    if extension in PY_EXTENSIONS:
        return "py"
    if extension in SH_EXTENSIONS or (code.startswith("#!") and "sh" in code.split("\n", 1)[0]):
        return "sh"
    if extension or not code.strip():
        return "text"
    if _GUESS_PYTHON.search(code):
        return "py"
    if _GUESS_TYPESCRIPT.search(code):
        return "ts"
    return "js" if _GUESS_JAVASCRIPT.search(code) else "text"
