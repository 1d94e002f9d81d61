"""Reading an everyday request ("list the files and write a hello.py") as typed intents.

The prompt is cut into clauses at "and", "then", commas before a verb and sentence ends; each
clause is matched against the imperative shapes a newcomer types. A clause that matches nothing
is joined back to the one before it ("a script that adds two numbers | and prints the sum"), and
what still matches nothing becomes `NotUnderstood`. Quoted text (`...`, "...", '...') is kept
whole: it is a path, a text to write or a command. Rules and templates only, no model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from agentos_nb.agents.offline.intents import (
    AppendText,
    CountIn,
    DeletePath,
    ExplainFile,
    FindFiles,
    Intent,
    ListFolder,
    MakeFolder,
    MovePath,
    NotUnderstood,
    Refuse,
    ReplaceText,
    RunCommand,
    RunFile,
    SearchText,
    ShowFile,
    WriteFile,
)
from agentos_nb.agents.offline.programs import Language, program_for, program_for_stem
from agentos_nb.agents.offline.text import extension
from agentos_nb.vm.shell import HOME

MAX_REQUEST_CHARACTERS = 20_000
"""Longer prompts are refused: they are no everyday request."""
MAX_WORDS_CHARACTERS = 2_000
"""The request's own words, quoted texts and a text after "...:" and a blank line left out: the
rules read them in time that grows faster than their length, on the event loop."""
MAX_CLAUSES = 12

_CONTENT_FOLLOWS = re.compile(
    r"(?:\s+(?:with|containing|that says|saying))?(?:\s+(?:this|the following|these|the))?"
    r"(?:\s+(?:text|content|contents|lines?|code|words))?\s*$",
    re.I,
)
_QUOTED = re.compile(r"`([^`\n]+)`|\"([^\"\n]+)\"|“([^”\n]+)”|(?<![\w'])'([^'\n]+)'(?![\w'])")
_MARK = re.compile(r"\x00(\d+)\x00")
_VERBS = (
    r"list|ls|show|display|write|create|make|run|execute|delete|remove|rename|move|copy|search|"
    r"find|count|explain|describe|replace|change|edit|append|add|print|open|read|cat|tell|"
    r"mkdir|touch|grep|then|save|put"
)
_SPLIT = re.compile(
    r"\s*(?:[.!?;]+(?:\s+|$)|\n+|,?\s+and then\s+|,?\s+then\s+|,?\s+after that\s+|,?\s+and\s+|\s+&\s+|"
    rf",\s*(?=(?:{_VERBS})\b))\s*",
    re.I,
)
_POLITE_START = re.compile(
    r"^(?:please|pls|kindly|can you|could you|would you|will you|can u|i want you to|i'?d like you to|"
    r"i would like you to|i need you to|i want to|i'?d like to|let'?s|go ahead and|now|also|then|and|"
    r"first|firstly|second|next|finally|after that|afterwards|ok|okay|so|hey|just|quickly|help me|"
    r"try to|you should|for me)[,:]?\s+",
    re.I,
)
_POLITE_END = re.compile(
    r"\s*(?:,?\s*(?:please|for me|thanks|thank you|thx|now|too|as well|again|quickly))+\s*$", re.I
)
_HOME_WORDS = re.compile(
    r"\b(?:(?:my|the|your) home (?:directory|folder|dir)|my home)\b|(?<![\w/.])home\b(?![/.\w])", re.I
)
_HERE_WORDS = re.compile(
    r"\b(?:(?:the )?(?:current|working) (?:directory|folder|dir)|this (?:directory|folder|dir)|here|cwd)"
    r"\b(?![/.\w])",
    re.I,
)
_TOKEN = r"(\x00\d+\x00|[~\w./@+*?-]+)"
_ARTICLE = r"(?:(?:a|an|the|some|my|this|that|new)\s+)*"
_FOLDER_NOUN = r"(?:folder|folders|directory|directories|dir|subfolder|subdirectory)"
_PROGRAM_EXTENSIONS = {".py": "python3", ".sh": "bash", ".bash": "bash"}
_LANGUAGE_EXTENSIONS = {"python": ".py", "bash": ".sh"}
_FIND_KINDS = {
    "python": "*.py",
    "py": "*.py",
    "text": "*.txt",
    "txt": "*.txt",
    "markdown": "*.md",
    "md": "*.md",
    "shell": "*.sh",
    "bash": "*.sh",
    "javascript": "*.js",
    "js": "*.js",
    "typescript": "*.ts",
    "ts": "*.ts",
    "json": "*.json",
    "csv": "*.csv",
}
_SAFE_COMMANDS = frozenset(
    {"ls", "pwd", "echo", "cat", "head", "tail", "wc", "grep", "find", "date", "whoami", "tree", "du", "df"}
    | {"python3", "python", "bash", "sh", "uname", "which", "seq", "sort", "uniq", "diff", "printf", "stat"}
)
"""Commands "run X" runs as they are: they only read or print. Others are not guessed at."""


@dataclass(frozen=True, slots=True)
class _Clause:
    """One clause: its text with quoted parts replaced by marks, the quoted parts, and the path the
    clauses before it named last (what "it" means)."""

    text: str
    quotes: tuple[str, ...]
    last_path: str

    def value(self, token: str) -> str:
        """A token or phrase with its quoted parts put back, without their quotes."""
        return _MARK.sub(lambda mark: self.quotes[int(mark.group(1))], token).strip()

    def is_quoted(self, token: str) -> bool:
        return _MARK.fullmatch(token.strip()) is not None

    def path(self, token: str, *, strict: bool = True) -> str | None:
        """The path a token names: quoted, or with a slash, a dot or a tilde (or, when not
        `strict`, any word); "it" is the path named last."""
        token = token.strip()
        if token.lower() in ("it", "that", "this", "that file", "this file", "the file"):
            return self.last_path or None
        value = self.value(token)
        if not value or "\n" in value:
            return None
        if not (self.is_quoted(token) or not strict or any(c in value for c in "/.~")):
            return None
        if value == "~" or value.startswith("~/"):
            value = HOME + value[1:]
        return value


@functools.lru_cache(maxsize=256)
def parse_request(prompt: str) -> tuple[Intent, ...] | None:
    """The intents of an everyday request, in order; None when no part of the prompt is one,
    so the other behaviours answer it. A prompt too long to be a request is refused."""
    if len(prompt) > MAX_REQUEST_CHARACTERS:
        return (_too_long(prompt, f"Your request is {len(prompt):,} characters long"),)
    if not prompt.strip():
        return None
    header, _, body = prompt.strip().partition("\n\n")
    content = _body_content(body) if header.rstrip().endswith(":") and body.strip() else None
    text = header if content is not None else prompt
    quotes: list[str] = []

    def mark(match: re.Match[str]) -> str:
        quotes.append(next(group for group in match.groups() if group is not None))
        return f"\x00{len(quotes) - 1}\x00"

    marked = _QUOTED.sub(mark, text.strip().rstrip(":"))
    if len(marked) > MAX_WORDS_CHARACTERS:
        return (_too_long(prompt, f"Your request has {len(marked):,} characters outside quotes"),)
    marked = re.sub(r"[^\S\n]+", " ", marked)
    marked = re.sub(r" ?\n[\s]*", "\n", marked)
    if content is not None:  # "create a.txt with this text:", then the text
        quotes.append(content)
        marked = _CONTENT_FOLLOWS.sub("", marked) + f" with \x00{len(quotes) - 1}\x00"
    quotes += [HOME, "."]
    home, here = f"\x00{len(quotes) - 2}\x00", f"\x00{len(quotes) - 1}\x00"
    marked = _HERE_WORDS.sub(here, _HOME_WORDS.sub(home, marked))
    marked = re.sub(r"^(in\s+\S+),\s+", r"\1 ", marked, flags=re.I)  # "In a.py, replace ..."
    pieces = [piece for piece in _SPLIT.split(marked) if piece and piece.strip(" ,")]
    if len(pieces) > MAX_CLAUSES:
        return None
    parsed: list[tuple[str, Intent | None]] = []
    last_path = ""
    for piece in pieces:
        clause = _Clause(_tidy(piece), tuple(quotes), last_path)
        intent = _parse_clause(clause)
        if intent is None and parsed:
            intent = _same_for(parsed[-1][1], clause)
        if intent is None and parsed:
            joined = f"{parsed[-1][0]} and {clause.text}"
            before = parsed[-2][1] if len(parsed) > 1 else None
            again = _parse_clause(_Clause(joined, tuple(quotes), _path_of(before) if before else ""))
            same_kind = again is not None and type(again) is type(parsed[-1][1]) and not _is_draft(again)
            if same_kind or parsed[-1][1] is None:
                parsed[-1] = (joined, again)
                last_path = _path_of(again) or last_path
                continue
        parsed.append((clause.text, intent))
        last_path = _path_of(intent) or last_path
    if all(intent is None for _, intent in parsed):
        return None
    clauses = tuple(
        intent if intent is not None else NotUnderstood(_Clause(text, tuple(quotes), "").value(text))
        for text, intent in parsed
    )
    return _run_once(clauses)


def _same_for(previous: Intent | None, clause: _Clause) -> Intent | None:
    """ "show a.txt and b.txt": a clause that is only a path does what the one before did."""
    path = clause.path(clause.text)
    if path is None or " " in clause.text.strip():
        return None
    if isinstance(previous, ShowFile | ExplainFile | CountIn | DeletePath):
        return replace(previous, path=path)
    return None


def _too_long(prompt: str, length: str) -> Refuse:
    return Refuse(
        prompt[:80],
        f"{length}; I follow requests of up to {MAX_WORDS_CHARACTERS:,} characters, with up to "
        f"{MAX_REQUEST_CHARACTERS:,} in all when a text to write follows a colon and a blank line. "
        "Put long texts in a file and name the file.",
    )


def _is_draft(intent: Intent) -> bool:
    """A draft takes any words, so joining a clause to one proves nothing."""
    return isinstance(intent, WriteFile) and intent.drafted


def _tidy(clause: str) -> str:
    clause = " ".join(clause.split()).strip(" ,.!?")
    previous = None
    while previous != clause:
        previous = clause
        clause = _POLITE_END.sub("", _POLITE_START.sub("", clause)).strip(" ,.!?")
    return clause


def _body_content(body: str) -> str:
    fenced = re.search(r"```[^\n]*\n(.*?)```", body, re.S)
    text = fenced.group(1) if fenced else body.strip("\n")
    return text if text.endswith("\n") else text + "\n"


def _path_of(intent: Intent | None) -> str:
    match intent:
        case WriteFile(path=path) | AppendText(path=path) | ShowFile(path=path) | RunFile(path=path):
            return path
        case ReplaceText(path=path) | ExplainFile(path=path) | MakeFolder(path=path):
            return path
        case MovePath(target=target, source=source, into=into):
            return f"{target}/{source.rsplit('/', 1)[-1]}" if into else target
        case _:
            return ""


def _run_once(intents: tuple[Intent, ...]) -> tuple[Intent, ...]:
    """A program written and then run in the same request is run once, when asked."""
    result = list(intents)
    for index, intent in enumerate(result):
        if isinstance(intent, WriteFile) and intent.interpreter:
            later = result[index + 1 :]
            if any(isinstance(other, RunFile) and other.path == intent.path for other in later):
                result[index] = replace(intent, interpreter="")
    return tuple(result)


def _parse_clause(clause: _Clause) -> Intent | None:
    if not clause.text:
        return None
    for parse in _PARSERS:
        intent = parse(clause)
        if intent is not None:
            return intent
    return None


def _match(pattern: str, clause: _Clause) -> re.Match[str] | None:
    return re.fullmatch(pattern, clause.text, re.I)


# --- the shapes ------------------------------------------------------------------------------


def _make_folder(clause: _Clause) -> Intent | None:
    match = _match(
        rf"(?:mkdir(?:\s+-p)?|(?:make|create|add)\s+{_ARTICLE}(?:empty\s+)?{_FOLDER_NOUN}"
        rf"(?:\s+(?:called|named|at))?)\s+{_TOKEN}(?:\s+{_FOLDER_NOUN})?"
        rf"(?:\s+(?:in|inside|under)\s+{_TOKEN})?",
        clause,
    )
    if match is None:
        return None
    path = clause.path(match.group(1), strict=False)
    parent = clause.path(match.group(2), strict=False) if match.group(2) else ""
    if path is None or parent is None:
        return None
    return MakeFolder(f"{parent.rstrip('/')}/{path}" if parent and not path.startswith("/") else path)


def _find_files(clause: _Clause) -> Intent | None:
    match = _match(
        rf"(?:find|list|show(?: me)?|locate|search for|look for|get)\s+(?:all\s+)?(?:of\s+)?(?:the\s+)?"
        rf"(?:(\*?\.\w+|\w+)\s+)?files?"
        rf"(?:\s+(?:named|called|matching|ending (?:in|with)|with (?:the )?extension)\s+{_TOKEN})?"
        rf"(?:\s+(?:in|under|inside|below)\s+{_TOKEN})?",
        clause,
    )
    if match is None:
        return None
    kind, named, where = match.group(1), match.group(2), match.group(3)
    folder = clause.path(where, strict=False) if where else "."
    if folder is None:
        return None
    if named:
        pattern = clause.value(named)
        if pattern.startswith(".") and "*" not in pattern:
            pattern = "*" + pattern
    elif kind:
        lowered = kind.lower()
        if lowered.startswith((".", "*.")):
            pattern = "*." + lowered.lstrip("*.")
        elif lowered in _FIND_KINDS:
            pattern = _FIND_KINDS[lowered]
        else:
            return None
    else:
        return None
    return FindFiles(pattern, folder)


def _list(clause: _Clause) -> Intent | None:
    bare = _match(r"(?:ls(?:\s+-\w+)*|list|list files|list (?:all|everything))", clause)
    if bare is not None:
        return ListFolder(".")
    match = _match(
        rf"(?:list|ls(?:\s+-\w+)*|show(?: me)?|display|print|give me|tell me|what are|what)\s+"
        rf"(?:all\s+)?(?:of\s+)?(?:the\s+|my\s+)?"
        rf"(?:files|contents?|entries|stuff|things|folders|files and folders|everything)"
        rf"(?:\s+(?:that are|there are|are there|are|there|you have|i have|we have))?"
        rf"(?:\s+(?:(?:in|inside|of|under|at)\s+)?{_ARTICLE}(?:{_FOLDER_NOUN}\s+)?{_TOKEN}(?:\s+{_FOLDER_NOUN})?)?",
        clause,
    ) or _match(
        rf"(?:list|ls(?:\s+-\w+)*)\s+{_ARTICLE}(?:{_FOLDER_NOUN}\s+)?{_TOKEN}(?:\s+{_FOLDER_NOUN})?", clause
    )
    if match is None:
        return None
    path = clause.path(match.group(1), strict=False) if match.group(1) else "."
    return ListFolder(path) if path is not None else None


def _count(clause: _Clause) -> Intent | None:
    unit_words = r"(lines|words|characters|chars|letters|bytes|files|entries)"
    match = _match(
        rf"(?:count|how many|tell me how many|what(?:'s| is) the number of)\s+(?:all\s+)?(?:the\s+)?"
        rf"(?:number\s+of\s+)?{unit_words}\s+(?:are\s+)?(?:there\s+)?(?:in|does|of|inside|under|has)\s+"
        rf"{_ARTICLE}(?:file\s+|{_FOLDER_NOUN}\s+)?{_TOKEN}(?:\s+{_FOLDER_NOUN})?"
        rf"(?:\s+(?:have|has|contain|contains|hold|holds))?(?:\s+(?:in it|files?))?",
        clause,
    ) or _match(rf"(?:how many)\s+{unit_words}(?:\s+are)?(?:\s+there)?()", clause)
    wc = _match(r"wc\s+-([lwc])\s+" + _TOKEN, clause)
    if wc is not None:
        path = clause.path(wc.group(2), strict=False)
        unit = {"l": "lines", "w": "words", "c": "characters"}[wc.group(1)]
        return CountIn(unit, path) if path else None  # type: ignore[arg-type]
    if match is None:
        return None
    unit = match.group(1).lower()
    where = match.group(2)
    path = clause.path(where, strict=False) if where else "."
    if path is None:
        return None
    if unit in ("files", "entries"):
        return CountIn("files", path)
    if not where:
        return None
    return CountIn("lines" if unit == "lines" else "words" if unit == "words" else "characters", path)


_SEARCH_PLACE = (
    rf"(?:\s+(?:in|inside|within|across|under|through)\s+{_ARTICLE}"
    rf"(?:file\s+|{_FOLDER_NOUN}\s+|files\s+in\s+)?{_TOKEN})?"
)
_SEARCH_WHAT = (
    r"(?:all\s+)?(?:the\s+)?(?:(?:lines?\s+(?:with|containing|that contain|mentioning|that mention)|"
    r"occurrences\s+of|uses\s+of|mentions\s+of|where)\s+)?(?:the\s+(?:word|text|string)\s+)?"
)


def _search(clause: _Clause) -> Intent | None:
    """ "search notes.txt for X", "search for X in notes.txt", "grep X notes.txt", "find the lines
    with X in notes.txt"; a bare "find X" needs a place or a quoted X (else it is about files)."""
    place_first = _match(
        rf"(?:search|look|grep|scan)\s+(?:through\s+)?{_ARTICLE}(?:files\s+in\s+)?"
        rf"(?:file\s+|{_FOLDER_NOUN}\s+)?{_TOKEN}\s+for\s+(?:the\s+(?:word|text|string)\s+)?(.+)",
        clause,
    )
    grep = _match(rf"grep(?:\s+-\w+)*\s+{_TOKEN}\s+{_TOKEN}", clause)
    where_used = _match(
        rf"where\s+(?:is|are)\s+(.+?)\s+(?:used|mentioned|defined|called){_SEARCH_PLACE}", clause
    )
    if where_used is not None:
        text, place = where_used.groups()
    elif place_first is not None:
        place, text = place_first.groups()
    elif grep is not None:
        text, place = grep.groups()
    else:
        match = _match(
            rf"(search(?:\s+for)?|look\s+for|grep(?:\s+-\w+)*|find|show(?: me)?|list)\s+{_SEARCH_WHAT}"
            rf"(.+?)(?:\s+is\s+(?:used|mentioned))?{_SEARCH_PLACE}",
            clause,
        )
        if match is None:
            return None
        verb, text, place = match.groups()
        vague = not re.match(
            r"\S+(?:\s+me)?\s+(?:all\s+)?(?:the\s+)?(?:lines?|occurrences|uses|mentions|where)\b",
            clause.text,
            re.I,
        )
        if (
            verb.lower().startswith(("find", "show", "list"))
            and vague
            and (place is None or (not clause.is_quoted(text) and " " in text.strip()))
        ):
            return None
    path = clause.path(place, strict=False) if place else "."
    if path is not None and path.lower() in ("project", "code", "codebase", "repo", "files", "everything"):
        path = "."
    value = clause.value(text).strip()
    if path is None or not value or value.lower() in ("files", "file", "it"):
        return None
    return SearchText(value, path)


def _explain(clause: _Clause) -> Intent | None:
    match = _match(
        rf"(?:explain|describe|summari[sz]e|walk me through|tell me about|what does|what is|what's)\s+"
        rf"(?:to me\s+)?(?:what\s+)?{_ARTICLE}(?:code\s+(?:in|of)\s+|file\s+|script\s+|program\s+)?{_TOKEN}"
        rf"(?:\s+(?:does|do|is for|file|script))?(?:\s+(?:to me|for me|in simple words|line by line))?",
        clause,
    )
    if match is None:
        return None
    path = clause.path(match.group(1))
    if path is None or not extension(path):
        return None
    return ExplainFile(path)


def _show(clause: _Clause) -> Intent | None:
    match = _match(
        rf"(?:show|display|print|cat|open|read|view|output|dump|what(?:'s| is) in)(?:\s+me)?\s+"
        rf"(?:what(?:'s| is) in\s+)?{_ARTICLE}(?:(?:contents?|content|text)\s+(?:of|in)\s+)?{_ARTICLE}"
        rf"(?:file\s+)?(?:(?:called|named)\s+)?{_TOKEN}(?:\s+file)?(?:\s+(?:to me|for me))?",
        clause,
    )
    if match is None:
        return None
    path = clause.path(match.group(1))
    if path is None:
        return None
    if clause.text.lower().startswith(("what's in", "what is in")) and not extension(path):
        return None
    return ShowFile(path)


def _run(clause: _Clause) -> Intent | None:
    text = re.sub(
        r"\s+(?:and\s+)?(?:tell|show)\s+me\s+(?:what\s+it\s+(?:prints|says|outputs|does)|the\s+(?:output|result))$",
        "",
        clause.text,
        flags=re.I,
    )
    match = re.fullmatch(
        r"(?:run|execute|exec|launch|start|try(?: running)?|test)\s+(?:the\s+command\s+|the\s+)?(.+?)"
        r"(?:\s+(?:with|using|in)\s+(python3?|bash|sh))?",
        text,
        re.I,
    )
    if match is None:
        return None
    target, named_interpreter = match.group(1).strip(), (match.group(2) or "").lower()
    target = re.sub(
        r"^(?:python\s+|bash\s+|shell\s+)?(?:script|program|file|code)\s+", "", target, flags=re.I
    )
    if clause.is_quoted(target) and " " in clause.value(target):
        return _command(clause.value(target))
    words = clause.value(target).split()
    if not words:
        return None
    if len(words) > 1 or words[0] in _SAFE_COMMANDS:
        if words[0] in ("python3", "python", "bash", "sh") and len(words) == 2 and "." in words[1]:
            return RunFile(words[1], "python3" if words[0].startswith("python") else "bash")
        return _command(" ".join(words)) if not clause.is_quoted(target) or len(words) == 1 else None
    path = clause.path(target)
    if path is None:
        return None
    interpreter = _PROGRAM_EXTENSIONS.get(extension(path))
    if named_interpreter:
        interpreter = "python3" if named_interpreter.startswith("python") else "bash"
    if interpreter is None:
        return None
    return RunFile(path, interpreter)


def _command(command: str) -> Intent | None:
    first = command.split()[0] if command.split() else ""
    return RunCommand(command) if first in _SAFE_COMMANDS else None


def _replace(clause: _Clause) -> Intent | None:
    old_new_in = (
        r"(.+?)\s+(?:with|by|for|to|into)\s+(.+?)\s+(?:in|inside|within)\s+"
        + _ARTICLE
        + r"(?:file\s+)?"
        + _TOKEN
    )
    match = _match(
        r"(?:replace|substitute|swap|change|rename|switch|turn|update)\s+(?:all\s+|every\s+|each\s+)?"
        r"(?:(?:occurrences?|instances?|mentions?)\s+of\s+)?(?:the\s+(?:word|text|string|line)\s+)?"
        + old_new_in,
        clause,
    )
    if match is not None:
        old, new, where = match.groups()
    else:
        match = _match(
            rf"(?:in|update|edit|modify|change)\s+{_ARTICLE}(?:file\s+)?{_TOKEN}[,:]?\s+"
            r"(?:replace|change|substitute|swap)\s+"
            r"(?:all\s+|every\s+)?(?:the\s+(?:word|text|string)\s+)?(.+?)\s+(?:with|by|to|into)\s+(.+)",
            clause,
        )
        if match is not None:
            where, old, new = match.groups()
        else:
            match = _match(
                rf"(?:edit|update|modify|fix|change|make)\s+{_TOKEN}\s+(?:so\s+(?:that\s+)?it\s+|to\s+)?"
                r"(?:says?|prints?|reads?|outputs?|shows?)\s+(.+?)\s+instead\s+of\s+(.+)",
                clause,
            )
            if match is None:
                return None
            where, new, old = match.groups()
    path = clause.path(where)
    old_text, new_text = _quoted_or_words(clause, old), _quoted_or_words(clause, new)
    if path is None or not old_text:
        return None
    return ReplaceText(path, old_text, new_text)


def _quoted_or_words(clause: _Clause, text: str) -> str:
    text = re.sub(r"^(?:the\s+(?:word|text|string)\s+)", "", text.strip(), flags=re.I)
    return clause.value(text)


def _move(clause: _Clause) -> Intent | None:
    match = _match(
        rf"(rename|mv|move|copy|cp|duplicate)\s+{_ARTICLE}(?:file\s+|{_FOLDER_NOUN}\s+)?{_TOKEN}"
        rf"\s+(to|as|into|in|under)\s+{_ARTICLE}(?:(?:new\s+)?(?:name\s+)?|{_FOLDER_NOUN}\s+)?{_TOKEN}"
        rf"(\s+{_FOLDER_NOUN})?",
        clause,
    ) or _match(rf"(mv|cp)(?:\s+-\w+)*\s+{_TOKEN}()\s+{_TOKEN}()", clause)
    if match is None:
        return None
    verb, source_token, joiner, target_token, folder_after = match.groups()
    source = clause.path(source_token, strict=False)
    target = clause.path(target_token, strict=False)
    if source is None or target is None:
        return None
    verb = verb.lower()
    copy = verb in ("copy", "cp", "duplicate")
    folder_named = bool(folder_after) or re.search(
        rf"\b{_FOLDER_NOUN}\s+{re.escape(target_token)}", clause.text, re.I
    )
    if verb == "rename":
        if "/" not in target and "/" in source:
            target = f"{source.rsplit('/', 1)[0]}/{target}"
        return MovePath(source, target)
    into = bool(
        folder_named
        or joiner.lower() in ("into", "in", "under")
        or target.endswith("/")
        or target in (".", "..", HOME, "/tmp")
        or (not extension(target) and extension(source))
    )
    return MovePath(source, target.rstrip("/") or "/", into=into, copy=copy)


def _delete(clause: _Clause) -> Intent | None:
    verb = r"(?:delete|remove|rm(?:\s+-\w+)*|erase|trash|get rid of|del|wipe(?: out)?)\s+"
    everything = _match(rf"{verb}(?:all|every|everything)\b.*", clause)
    match = _match(
        rf"{verb}{_ARTICLE}(?:file\s+|{_FOLDER_NOUN}\s+)?{_TOKEN}(?:\s+(?:file|{_FOLDER_NOUN}))?", clause
    )
    if match is None and everything is None:
        return None
    path = clause.path(match.group(1), strict=False) if match else "everything"
    if path is not None and (path.lower() in ("everything", "all") or "*" in path or "?" in path):
        return Refuse(
            clause.value(clause.text),
            "I delete one named file or folder at a time, never everything: name it.",
        )
    return DeletePath(path) if path else None


def _append(clause: _Clause) -> Intent | None:
    match = _match(
        rf"(?:append|add)\s+(?:the\s+|a\s+)?(?:(?:new\s+)?line\s+|text\s+)?(.+?)\s+(?:to|at\s+the\s+end\s+of|"
        rf"to\s+the\s+end\s+of)\s+{_ARTICLE}(?:file\s+)?{_TOKEN}",
        clause,
    )
    if match is None:
        return None
    text, where = match.groups()
    if re.match(rf"(?:a|an|the)\s+(?:file|{_FOLDER_NOUN}|script|program)\b", text, re.I):
        return None
    path = clause.path(where)
    value = clause.value(text)
    return AppendText(path, value) if path and value else None


_DESCRIPTION = re.compile(
    r"\s+(?:that|which|to(?=\s+(?:print|say|output|add|count|compute|calculate|read|show|display|greet|"
    r"list|play|sum|echo)\b)|with\s+(?:the\s+)?(?:text|content|contents|words?|line|message)|containing|"
    r"that\s+contains|saying|with)\s+",
    re.I,
)
_CONTENT_DESCRIPTION = re.compile(
    r"^(?:(?:the\s+)?(?:text|content|contents|words?|line|message)\s+|contains\s+|says\s+|reads\s+)?(.+)$",
    re.I,
)
_KIND_WORDS = re.compile(
    r"\b(?:python|bash|shell|sh)\b|\b(?:script|program|file|app|function|code|one)\b", re.I
)
_NOT_TARGET = frozenset({"of", "from", "about", "for", "on", "like", "than", "with", "using", "explaining"})


def _create(clause: _Clause) -> Intent | None:
    verb = re.match(
        r"(?:write|create|make|generate|build|code|implement|produce|draft|scaffold|set up|add|new|"
        r"save|put|touch|give me|i need|i want)\s+(?:me\s+)?",
        clause.text,
        re.I,
    )
    if verb is None:
        return None
    rest = clause.text[verb.end() :]
    if verb.group(0).lower().startswith("touch"):
        path = clause.path(rest, strict=False)
        return WriteFile(path, "", "an empty file") if path and " " not in rest.strip() else None
    split = _DESCRIPTION.search(rest)
    head, description = (rest[: split.start()], rest[split.end() :]) if split else (rest, "")
    # "write hello world to greeting.txt", "save 'hi' in a.txt": the text, then where.
    text_to = re.fullmatch(
        rf"(?:the\s+(?:text|words?|line|string)\s+)?(.+?)\s+(?:to|into|in)\s+{_ARTICLE}(?:file\s+)?{_TOKEN}",
        head,
        re.I,
    )
    if (
        not description
        and text_to is not None
        and (
            clause.is_quoted(text_to.group(1))
            or not re.match(r"(?:a|an|the|some|\d+)\b", text_to.group(1), re.I)
        )
        and not _KIND_WORDS.search(text_to.group(1))
    ):
        path = clause.path(text_to.group(2))
        if path is not None:
            content = clause.value(text_to.group(1))
            return WriteFile(path, _as_line(content), f"the text {_short(content)}")
    tokens = head.split()
    target = _target(clause, head)
    lowered = clause.value(clause.text).lower()
    language = _language(target, lowered)
    description_text = clause.value(description)
    # A content description: "with the text hi", "containing hello", "that says hi" for text files.
    if split is not None and _is_content_marker(split.group(0)):
        body = _CONTENT_DESCRIPTION.match(description.strip())
        if target is None or body is None:
            return None
        content = clause.value(re.sub(r"\s+(?:inside|in it)$", "", body.group(1), flags=re.I))
        return WriteFile(target, _as_line(content), f"the text {_short(content)}")
    if re.search(r"\bempty\b", head, re.I) and target is not None and not description:
        return WriteFile(target, "", "an empty file")
    if target is not None and not _is_code(target) and description:
        said = re.match(r"(?:says?|prints?|reads?|contains?|shows?)\s+(.+)", description, re.I)
        if said:
            content = clause.value(said.group(1))
            return WriteFile(target, _as_line(content), f"the text {_short(content)}")
    # A small program, from the description or from words around the name.
    quoted = tuple(clause.value(token) for token in tokens + description.split() if clause.is_quoted(token))
    words_only = " ".join(t for t in tokens if clause.path(t) is None and not clause.is_quoted(t))
    program = None
    if target is None or _is_code(target):
        program = program_for(description_text, language, quoted) if description else None
        if program is None:
            program = program_for(_strip_kind_words(words_only), language, quoted)
        if program is None and target is not None:
            program = program_for_stem(target.rsplit("/", 1)[-1].rsplit(".", 1)[0], language)
    if program is not None and target is None and program.stem not in ("count_lines", "count_words"):
        named = re.search(rf"\b(?:in|at|into|as|called|named)\s+{_TOKEN}$", description, re.I)
        target = clause.path(named.group(1)) if named else None
    if program is not None:
        path = target or program.stem + _LANGUAGE_EXTENSIONS[language]
        kind = "bash script" if language == "bash" else "Python script"
        interpreter = "bash" if language == "bash" else "python3"
        if extension(path) not in _PROGRAM_EXTENSIONS:
            interpreter = ""
        return WriteFile(path, program.code, f"a {kind} that {program.does}", interpreter)
    if target is None:
        return None
    if not description and not _strip_kind_words(words_only) and re.search(r"\bfile\b", head, re.I):
        return WriteFile(target, "", "an empty file")
    return WriteFile(target, "", clause.value(clause.text), drafted=True)


def _is_content_marker(marker: str) -> bool:
    marker = marker.strip().lower()
    return marker.startswith(("with the", "containing", "that contains", "saying")) or marker in (
        "with text",
        "with content",
        "with contents",
        "with",
    )


def _target(clause: _Clause, head: str) -> str | None:
    """The file to write: a path after "at", "called", ... or any path in the head."""
    tokens = head.split()
    for index, token in enumerate(tokens):
        path = clause.path(token)
        after = tokens[index - 1].lower() if index else ""
        looks_like_a_file = path is not None and ("." in path or "/" in path)
        if looks_like_a_file and token.lower() not in ("it", "that", "this") and after not in _NOT_TARGET:
            return path
        if token.lower() in ("called", "named") and index + 1 < len(tokens):
            return clause.path(tokens[index + 1], strict=False)
    if re.search(r"\b(?:in|to|into)\s+it$", head, re.I):
        return clause.last_path or None
    return None


def _language(target: str | None, lowered: str) -> Language:
    if target is not None and extension(target) in (".sh", ".bash"):
        return "bash"
    named_bash = re.search(r"\b(?:bash|shell|sh)\b", lowered) is not None
    if named_bash and (target is None or extension(target) != ".py"):
        return "bash"
    return "python"


def _is_code(path: str) -> bool:
    return extension(path) in (".py", ".sh", ".bash") or not extension(path)


def _strip_kind_words(words: str) -> str:
    words = re.sub(r"\b(?:a|an|the|new|small|simple|little|quick|tiny|basic)\b", " ", words, flags=re.I)
    words = _KIND_WORDS.sub(" ", words)
    return " ".join(
        re.sub(r"\b(?:at|in|to|into|as|called|named)\b\s*$", " ", words.strip(), flags=re.I).split()
    )


def _as_line(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return f"“{line[:60]}{'…' if len(line) > 60 or text.strip().count(chr(10)) else ''}”"


_PARSERS: Sequence[Callable[[_Clause], Intent | None]] = (
    _make_folder,
    _find_files,
    _count,
    _replace,
    _move,
    _append,
    _run,
    _explain,
    _show,
    _list,
    _delete,
    _create,
    _search,
)
