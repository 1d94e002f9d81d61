"""Doing an everyday request: each intent becomes its tool calls, in order, and the reply says in
plain words what was done and what it showed.

Like the other behaviours it keeps no state: the intents are parsed again from the prompt, and
the results of this turn's calls so far say which call comes next. A failed call or a refusal
stops the request there (the reply says so); a part not understood is said, not guessed at.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import assert_never

from agentos_nb.agents.offline.actions import Action, call, reply
from agentos_nb.agents.offline.drafts import draft
from agentos_nb.agents.offline.explain import explain
from agentos_nb.agents.offline.history import Result
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
from agentos_nb.agents.offline.text import shorten
from agentos_nb.agents.offline.workspace import outside_home, refusal

CAN_DO = (
    "I can: write a file with the text you give, or a small Python or bash program "
    "(one that prints something, adds two numbers, counts a file's lines or words, counts to a "
    "number, fizzbuzz, Fibonacci, factorial); list a folder; show, run or explain a file; replace "
    "text in a file; append a line; rename, move, copy or delete a file or folder; make a folder; "
    "search for text; find files by name; count lines, words or files. For example: “write a "
    "hello.py that prints hi and run it”, or “list the files in /home/user”."
)
SHOWN_LINES = 40  # lines of a file or of output quoted in a reply
CHECK_LINES = 10  # lines quoted of what a program just written printed: a glimpse that it works
_WROTE = re.compile(r"^Wrote \d+ bytes to (.+)$")
_PAGING = re.compile(r"\n?\[lines \d+-\d+ of (\d+); continue with offset=\d+\]\n?$")
_EXIT = re.compile(r"\n?\[exit code (\d+)\]\n?$")


@dataclass(frozen=True, slots=True)
class _Said:
    """What an intent came to, for the reply; `ok` False stops the request there."""

    text: str
    ok: bool = True


Step = Action | _Said


def everyday(intents: Sequence[Intent], done: Sequence[Result]) -> Action:
    """The next tool call of the request, or the reply once every intent is done."""
    said: list[str] = []
    used = 0
    for index, intent in enumerate(intents):
        got: list[Result] = []
        while True:
            step = _step(intent, got)
            if isinstance(step, _Said):
                break
            if used == len(done):
                return step
            got.append(done[used])
            used += 1
        said.append(step.text)
        if not step.ok:
            left = sum(1 for rest in intents[index + 1 :] if not isinstance(rest, NotUnderstood))
            if left:
                said.append(f"I stopped there, so I did not do the {_count(left, 'step', 'steps')} after it.")
            break
    if any(isinstance(intent, NotUnderstood) for intent in intents):
        said.append(
            "I'm the offline model (no ANTHROPIC_API_KEY or OPENAI_API_KEY is set), so I follow "
            f"simple requests only. {CAN_DO}"
        )
    return reply("\n\n".join(said))


def _step(intent: Intent, got: Sequence[Result]) -> Step:
    if not got:
        reason = intent.reason if isinstance(intent, Refuse) else refusal(intent)
        if reason is not None:
            return _Said(reason, ok=False)
    match intent:
        case WriteFile():
            return _write(intent, got)
        case AppendText(path=path, text=text):
            if not got:
                return call("bash", command=f"printf '%s\\n' {_q(text)} >> {_q(path)}")
            return _done(
                got[0], f"I added the line “{shorten(text, 80)}” to the end of `{path}`.", "add to", path
            )
        case ListFolder(path=path):
            return _list(path, got)
        case ShowFile(path=path):
            return _show(path, got)
        case RunFile(path=path, interpreter=interpreter):
            command = f"{interpreter} {_q(path)}" if interpreter else f"./{_q(path)}"
            return call("bash", command=command) if not got else _ran(command, got[0])
        case RunCommand(command=command):
            return call("bash", command=command) if not got else _ran(command, got[0])
        case ReplaceText():
            return _replace(intent, got)
        case MovePath():
            return _move(intent, got)
        case DeletePath(path=path):
            if not got:
                return call("bash", command=f"rm -r -- {_q(path)}")
            return _done(got[0], f"I deleted `{path}`.", "delete", path)
        case MakeFolder(path=path):
            if not got:
                return call("bash", command=f"mkdir -p -- {_q(path)}")
            return _done(got[0], f"I made the folder `{path}`.", "make the folder", path)
        case SearchText(text=text, path=path):
            if not got:
                return call("bash", command=f"grep -rn -- {_q(text)} {_q(path)}")
            return _searched(text, path, got[0])
        case FindFiles(pattern=pattern, path=path):
            if not got:
                return call("bash", command=f"find {_q(path)} -type f -name {_q(pattern)}")
            return _found(pattern, path, got[0])
        case CountIn(unit=unit, path=path):
            return _counted(unit, path, got)
        case ExplainFile(path=path):
            if not got:
                return call("read", path=path, limit=400)
            if not got[0].ok:
                return _Said(f"I could not read `{path}` to explain it: {_error(got[0].output)}", ok=False)
            return _Said(explain(path, _PAGING.sub("\n", got[0].output).rstrip("\n") + "\n"))
        case NotUnderstood(text=text):
            return _Said(f"I did not understand “{shorten(text, 120)}”, so I did not do it.")
        case Refuse(reason=reason):
            return _Said(reason, ok=False)
        case _:
            assert_never(intent)


# --- each kind of request ------------------------------------------------------------------------


def _write(intent: WriteFile, got: Sequence[Result]) -> Step:
    if intent.drafted:
        content, does = draft(intent.path, intent.does)
        intent = replace(intent, content=content, does=does)
    if not got:
        return call("write", path=intent.path, content=intent.content)
    if not got[0].ok:
        return _Said(f"I could not write `{intent.path}`: {_error(got[0].output)}", ok=False)
    wrote = _WROTE.match(got[0].output.strip())
    where = wrote.group(1) if wrote else intent.path
    lines = intent.content.count("\n") + (not intent.content.endswith("\n") and bool(intent.content))
    does = intent.does if intent.does.endswith((".", "!", "?")) else intent.does + "."
    text = f"I wrote `{where}` ({_count(lines, 'line', 'lines')}): {does}"
    if intent.content and not intent.drafted and lines <= SHOWN_LINES:
        text += "\n\n" + _fenced(intent.content, _language(where))
    if not intent.interpreter:
        return _Said(text)
    command = f"{intent.interpreter} {_q(intent.path)}"
    if len(got) == 1:
        return call("bash", command=command)
    return _Said(f"{text}\n\n{_ran(command, got[1], first='To check it, I ran', lines=CHECK_LINES).text}")


def _list(path: str, got: Sequence[Result]) -> Step:
    if not got:
        return call("bash", command=f"ls -AF -- {_q(path)}")
    if not got[0].ok:
        return _Said(f"I could not list `{path}`: {_error(got[0].output)}", ok=False)
    names = [line for line in got[0].output.splitlines() if line.strip() and line != "(no output)"]
    if not names:
        return _Said(f"{_folder(path)} is empty.")
    shown = names[:SHOWN_LINES]
    more = f"\n- … and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    folders = sum(name.endswith("/") for name in names)
    kinds = f" ({_count(folders, 'folder', 'folders')}, marked /)" if folders else ""
    note = _vm_note(path)
    listing = "\n".join(f"- {name}" for name in shown)
    held = f"{_folder(path)} holds {_count(len(names), 'entry', 'entries')}{kinds}"
    return _Said(f"{held}{':' if not note else '.' + note}\n\n{listing}{more}")


def _show(path: str, got: Sequence[Result]) -> Step:
    if not got:
        return call("read", path=path, limit=SHOWN_LINES)
    first = got[0]
    if not first.ok and "directory" in first.output.lower():
        return _list(path, got[1:])  # a folder: list it instead
    if not first.ok:
        return _Said(f"I could not show `{path}`: {_error(first.output)}", ok=False)
    text = first.output
    paging = _PAGING.search(text)
    body = text[: paging.start()] if paging else text
    if not body.strip():
        return _Said(f"`{path}` is empty.{_vm_note(path)}")
    lines = (
        f"the first {SHOWN_LINES} of its {paging.group(1)} lines"
        if paging
        else _count(body.count("\n") + (not body.endswith("\n")), "line", "lines")
    )
    note = _vm_note(path)
    return _Said(f"`{path}` ({lines}){':' if not note else '.' + note}\n\n{_fenced(body, _language(path))}")


def _replace(intent: ReplaceText, got: Sequence[Result]) -> Step:
    if not got:
        return call("read", path=intent.path)
    if not got[0].ok:
        return _Said(f"I could not read `{intent.path}` to change it: {_error(got[0].output)}", ok=False)
    text = got[0].output
    if _PAGING.search(text):
        return _Said(f"`{intent.path}` is too long for me to change safely in one go.", ok=False)
    found = text.count(intent.old)
    if found == 0:
        return _Said(
            f"“{shorten(intent.old, 80)}” does not occur in `{intent.path}`, so I changed nothing.", ok=False
        )
    if len(got) == 1:
        if found == 1:
            return call("edit", path=intent.path, old_text=intent.old, new_text=intent.new)
        return call("write", path=intent.path, content=text.replace(intent.old, intent.new))
    times = "once" if found == 1 else f"{found} times"
    old, new = shorten(intent.old, 80), shorten(intent.new, 80)
    return _done(
        got[1],
        f"I replaced “{old}” with “{new}” in `{intent.path}` ({times}).",
        "change",
        intent.path,
    )


def _move(intent: MovePath, got: Sequence[Result]) -> Step:
    verb = "cp -r" if intent.copy else "mv"
    if intent.into:
        command = f"mkdir -p -- {_q(intent.target)} && {verb} -- {_q(intent.source)} {_q(intent.target)}/"
    else:
        command = f"{verb} -- {_q(intent.source)} {_q(intent.target)}"
    if not got:
        return call("bash", command=command)
    same_folder = intent.source.rpartition("/")[0] == intent.target.rpartition("/")[0]
    done = "copied" if intent.copy else "renamed" if same_folder and not intent.into else "moved"
    where = f"into the folder `{intent.target}`" if intent.into else f"to `{intent.target}`"
    return _done(
        got[0], f"I {done} `{intent.source}` {where}.", "copy" if intent.copy else "move", intent.source
    )


def _searched(text: str, path: str, result: Result) -> Step:
    output = _EXIT.sub("", result.output).strip()
    if not result.ok and output in ("", "(no output)"):
        return _Said(f"Nothing in `{path}` contains “{shorten(text, 80)}”.")
    if not result.ok:
        return _Said(f"I could not search `{path}`: {_error(result.output)}", ok=False)
    lines = output.splitlines()
    return _Said(
        f"“{shorten(text, 80)}” occurs on {_count(len(lines), 'line', 'lines')} in `{path}`:\n\n"
        + _fenced("\n".join(lines[:SHOWN_LINES]) + ("\n…" if len(lines) > SHOWN_LINES else ""), "")
    )


def _found(pattern: str, path: str, result: Result) -> Step:
    if not result.ok:
        return _Said(f"I could not look in `{path}`: {_error(result.output)}", ok=False)
    names = [line for line in result.output.splitlines() if line.strip() and line != "(no output)"]
    if not names:
        return _Said(f"No file under `{path}` is named like `{pattern}`.")
    listing = "\n".join(f"- {name}" for name in names[:SHOWN_LINES])
    more = f"\n- … and {len(names) - SHOWN_LINES} more" if len(names) > SHOWN_LINES else ""
    return _Said(
        f"{_count(len(names), 'file', 'files')} under `{path}` named like `{pattern}`:\n\n{listing}{more}"
    )


def _counted(unit: str, path: str, got: Sequence[Result]) -> Step:
    if not got:
        if unit == "files":
            return call("bash", command=f"test -d {_q(path)} && find {_q(path)} -maxdepth 1 -type f | wc -l")
        flag = {"lines": "-l", "words": "-w", "characters": "-m"}[unit]
        return call("bash", command=f"wc {flag} < {_q(path)}")
    result = got[0]
    number = result.output.strip().split()[0] if result.ok and result.output.strip() else ""
    if not number.isdigit():
        what = "folder" if unit == "files" else "file"
        reason = _error(result.output) if _EXIT.sub("", result.output).strip() else "it is not there"
        return _Said(f"I could not count the {unit} of the {what} `{path}`: {reason}", ok=False)
    if unit == "files":
        return _Said(
            f"{_folder(path)} holds {_count(int(number), 'file', 'files')} (not counting its folders)."
        )
    return _Said(f"`{path}` has {_count(int(number), unit[:-1], unit)}.")


def _ran(command: str, result: Result, first: str = "I ran", lines: int = SHOWN_LINES) -> _Said:
    exited = _EXIT.search(result.output)
    output = _EXIT.sub("", result.output).rstrip("\n")
    output = "" if output == "(no output)" else output
    if exited:
        shown = _fenced(_head(output, lines), "") if output else "It printed nothing."
        return _Said(f"{first} `{command}`; it failed with exit code {exited.group(1)}:\n\n{shown}", ok=False)
    if not result.ok:
        return _Said(f"{first} `{command}`; it failed: {_error(result.output)}", ok=False)
    if not output:
        return _Said(f"{first} `{command}`; it printed nothing.")
    return _Said(f"{first} `{command}`; it printed:\n\n{_fenced(_head(output, lines), '')}")


def _done(result: Result, text: str, verb: str, path: str) -> _Said:
    if result.ok:
        return _Said(text)
    return _Said(f"I could not {verb} `{path}`: {_error(result.output)}", ok=False)


# --- small helpers ---------------------------------------------------------------------------------


def _q(path: str) -> str:
    return shlex.quote(path)


def _error(output: str) -> str:
    text = _EXIT.sub("", output).strip().removeprefix("Error: ")
    return shorten(" ".join(text.split()) or "(no output)", 300)


def _head(text: str, shown: int) -> str:
    lines = text.splitlines()
    if len(lines) <= shown:
        return text
    return "\n".join(lines[:shown]) + f"\n… ({len(lines) - shown} more lines)"


def _fenced(text: str, language: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def _language(path: str) -> str:
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return {"py": "python", "sh": "bash", "js": "javascript", "ts": "typescript", "md": "markdown"}.get(
        suffix, ""
    )


def _vm_note(path: str) -> str:
    """Said of a system path: what a newcomer sees is the VM's, not their computer's."""
    return " It is the VM's own, not your computer's: the VM cannot see those." if outside_home(path) else ""


def _folder(path: str) -> str:
    return "The working folder" if path in (".", "./") else f"`{path}`"


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"
