"""The default behaviours: what the offline model does with a prompt once the script has run out.

Asked to write code at a path (and submit it for review) it writes a small, plausible, slightly
imperfect file and calls the review tool it finds in its tool reference; asked to review code it
reads it and lists findings that cite real lines; asked an everyday task ("list the files and
write a hello.py") it does it (`everyday`); asked anything else it looks around the working
directory and says that it is the offline model, and what it can do.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Mapping, Sequence

from agentos_nb.agents.offline.actions import Action, call, reply
from agentos_nb.agents.offline.drafts import draft
from agentos_nb.agents.offline.everyday import CAN_DO, everyday
from agentos_nb.agents.offline.history import Result
from agentos_nb.agents.offline.prompts import Plan
from agentos_nb.agents.offline.review import review
from agentos_nb.agents.offline.text import QUOTE_WIDTH, code_span, extension, shorten

_CWD = "/home/user"
_READ_LIMIT = 200  # lines the look-around reads of a file: enough to describe it


def default(plan: Plan, done: list[Result], instructions: str) -> Action:
    if plan.kind == "write":
        return _write_flow(plan, done, instructions)
    if plan.kind == "review":
        return _review_flow(plan, done)
    if plan.kind == "everyday":
        return everyday(plan.intents, done)
    return _explore_flow(plan, done)


def _write_flow(plan: Plan, done: list[Result], instructions: str) -> Action:
    """write → (bash: the review tool) → reply."""
    content, description = draft(plan.target, plan.prompt)
    if not done:
        return call("write", path=plan.target, content=content)
    if not done[0].ok:
        return reply(f"I could not write `{plan.target}`: {_error_text(done[0].output)}")
    wrote = f"I wrote `{plan.target}` ({_line_count(content)} lines): {description}."
    if not plan.submit:
        return reply(wrote)
    tool = _review_tool(instructions)
    if tool is None:
        return reply(
            f"{wrote}\n\nYou asked me to submit it for review, but no review tool is installed in this VM "
            "(my tool reference lists no `agentos-*` review command), so I stopped there."
        )
    command = f"{tool} {shlex.quote(plan.target)}"
    if len(done) == 1:
        return call("bash", command=command)
    return reply(f"{wrote}\n\nI submitted it with `{command}`. {_review_outcome(done[1])}")


def _review_outcome(result: Result) -> str:
    """What the review tool's JSON line says: the review, or why there is none."""
    line = next((line for line in result.output.splitlines() if line.startswith("{")), "")
    try:
        answer = json.loads(line) if line else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return f"The review command failed:\n\n{_fenced(result.output.strip() or '(no output)')}"
    if answer.get("ok") is not True:
        return f"The review failed ({answer.get('error', 'unknown error')}): {answer.get('message', '')}"
    review = answer.get("result")
    if isinstance(review, dict) and isinstance(review.get("review"), str):
        return f"The review:\n\n{review['review']}"
    text = review if isinstance(review, str) else json.dumps(review, indent=2, ensure_ascii=False)
    return f"The review tool answered:\n\n{text}"


def _review_flow(plan: Plan, done: list[Result]) -> Action:
    """(read) → review → (write the review) → reply."""
    if plan.inline:
        text, summary = review(plan.inline, "the code you sent", "", 1, "")
        after = done
    else:
        if not done:
            return call("read", path=plan.target)
        if not done[0].ok:
            return reply(
                f"I could not read `{plan.target}`, so I cannot review it: {_error_text(done[0].output)}"
            )
        code, first, note = _strip_paging(done[0].output)
        text, summary = review(code, f"`{plan.target}`", extension(plan.target), first, note)
        after = done[1:]
    if not plan.output:
        return reply(text)
    if not after:
        return call("write", path=plan.output, content=text + "\n")
    if not after[0].ok:
        return reply(
            f"I could not write the review to `{plan.output}`: {_error_text(after[0].output)}\n\n{text}"
        )
    return reply(f"I wrote the review to `{plan.output}`.\n\n{summary}")


def _explore_flow(plan: Plan, done: list[Result]) -> Action:
    """bash `ls -la` → (read the file the prompt names, or list the folder) → reply."""
    if not done:
        return call("bash", command="ls -la")
    entries = _ls_entries(done[0].output) if done[0].ok else {}
    target = _named_target(plan, entries)
    if len(done) == 1 and target is not None:
        path, is_folder = target
        if is_folder:
            return call("bash", command=f"ls -la {shlex.quote(path)}")
        return call("read", path=path, limit=_READ_LIMIT)
    seen = [_describe_listing(done[0], entries)]
    if target is not None and len(done) > 1:
        seen.append(_describe_target(target, done[1]))
    missing = [p for p in plan.paths if not p.startswith("/") and _first_part(p) not in entries]
    if missing and done[0].ok:
        seen.append(f"I don't see {_joined(missing)} in {_CWD}.")
    task = shorten(" ".join(plan.prompt.split()), 100) or "(no prompt)"
    return reply(
        "I'm agentos_nb's offline model (no ANTHROPIC_API_KEY or OPENAI_API_KEY is set), so I only "
        f"looked around instead of doing the task (“{task}”):\n\n"
        + "\n".join(f"- {line}" for line in seen)
        + f"\n\nA real model would next {_next_step(plan)}. To use one, set ANTHROPIC_API_KEY or "
        "OPENAI_API_KEY, or pass `model=` to `create_session`.\n\n"
        f"Asked in simple words, I can do some everyday tasks myself. {CAN_DO}"
    )


_LS_NAME = re.compile(
    r"^([-dlbcps])[-rwxsStT]{9}\S*\s.*?"
    r"(?:\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}|[A-Z][a-z]{2}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s(.+)$",
    re.M,
)


def _ls_entries(listing: str) -> dict[str, bool]:
    """Name → is a folder, from `ls -la` output (bashkit's or GNU's long format)."""
    entries: dict[str, bool] = {}
    for match in _LS_NAME.finditer(listing):
        name = match.group(2).split(" -> ")[0]
        if name not in (".", ".."):
            entries[name] = match.group(1) == "d"
    return entries


def _named_target(plan: Plan, entries: Mapping[str, bool]) -> tuple[str, bool] | None:
    """The file (or folder) the prompt names that is worth a look: an absolute path, a path whose
    first part `ls` showed, or a listed file whose capitalised stem is a word of the prompt
    ("Update the README")."""
    for path in plan.paths:
        if path.startswith("/"):
            return path, not extension(path)
        first = _first_part(path)
        if first in entries:
            return path, entries[first] and first == path.removeprefix("./")
    for name, is_folder in entries.items():
        stem = name.split(".")[0]
        if len(stem) >= 3 and stem.isupper() and stem.lower() in plan.words:
            return name, is_folder
    return None


def _first_part(relative_path: str) -> str:
    return relative_path.removeprefix("./").split("/")[0]


def _describe_listing(result: Result, entries: Mapping[str, bool]) -> str:
    if not result.ok:
        return f"`ls -la` failed: {_error_text(result.output)}"
    if not entries:
        printed = result.output.strip()
        if printed in ("", "(no output)"):
            return f"{_CWD} is empty."
        return f"`ls -la` printed {_line_count(printed)} lines in a format I do not know."
    names = [f"`{name}/`" if is_folder else f"`{name}`" for name, is_folder in entries.items()]
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    return f"{_CWD} holds {_entries(len(names))}: {shown}."


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _describe_target(target: tuple[str, bool], result: Result) -> str:
    path, is_folder = target
    if not result.ok:
        return f"I could not read `{path}`: {_error_text(result.output)}"
    if is_folder:
        return f"`{path}/` holds {_entries(len(_ls_entries(result.output)))}."
    text, _, note = _strip_paging(result.output)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        return f"`{path}` is empty."
    size = note or f"{_line_count(text)} lines"
    return f"`{path}` has {size}; it starts with {code_span(shorten(first, QUOTE_WIDTH))}."


_NEXT_STEPS = (
    (re.compile(r"\bpr\b|pull request"), "fetch the pull request's diff, read each change and comment on it"),
    (
        re.compile(r"\bflaky\b|\btests?\b"),
        "run the test several times to catch the failure, find the timing or shared state it depends "
        "on, fix that with `edit` and rerun the test",
    ),
    (
        re.compile(r"\bfix\b|\bbug\b|\bissue\b|\bbroken\b|\berror\b"),
        "reproduce the problem, trace it to its cause in the code, fix it with `edit` and check the fix "
        "with `bash`",
    ),
    (
        re.compile(r"\breadme\b|\bdocs?\b|\bdocumentation\b|\bupdate\b"),
        "read the current text, change it with `edit` and show you the diff",
    ),
)


def _next_step(plan: Plan) -> str:
    lower = plan.prompt.lower()
    return next(
        (step for pattern, step in _NEXT_STEPS if pattern.search(lower)),
        "plan the work, then carry it out with the read, write, edit and bash tools",
    )


# --- the review tool in the tool reference ------------------------------------------------------

_TOOL_LINE = re.compile(r"^[ \t]+(agentos-[a-z0-9][a-z0-9-]*) ([a-z0-9][a-z0-9-]*)([^\n]*)$", re.M)
_STRING_FLAG = re.compile(r"(\[?)--([a-z0-9][a-z0-9-]*) <string>")


@functools.lru_cache(maxsize=64)
def _review_tool(instructions: str) -> str | None:
    """`agentos-review submit --path`: the command line, up to the path, of the tool in the
    reference (tool_cli.tool_reference's format) whose toolkit or name speaks of review or
    submitting, and that takes a path (or file) flag, or failing that a required string flag."""
    best: tuple[int, str] | None = None
    for match in _TOOL_LINE.finditer(instructions):
        command, tool, rest = match.groups()
        score = 2 * ("review" in command) + ("submit" in tool or "review" in tool)
        flag = _path_flag(rest.split(" — ")[0])
        if score and flag and (best is None or score > best[0]):
            best = (score, f"{command} {tool} --{flag}")
    return best[1] if best else None


def _path_flag(synopsis: str) -> str | None:
    flags = [(name, optional == "") for optional, name in _STRING_FLAG.findall(synopsis)]
    for wanted in ("path", "file"):
        for name, _ in flags:
            if wanted in name:
                return name
    return next((name for name, required in flags if required), None)


# --- small text helpers -------------------------------------------------------------------------

_PAGING = re.compile(r"\n?\[lines (\d+)-(\d+) of (\d+); continue with offset=\d+\]\n?\Z")


def _strip_paging(output: str) -> tuple[str, int, str]:
    """The file text of a `read` result, its first line number, and "lines A-B of N" when the
    loop says more lines exist."""
    paging = _PAGING.search(output)
    if paging is None:
        return output, 1, ""
    first, last, total = paging.groups()
    return output[: paging.start()], int(first), f"lines {first}-{last} of {total}"


def _line_count(text: str) -> int:
    return text.count("\n") + (not text.endswith("\n") and bool(text))


def _fenced(text: str) -> str:
    return f"```\n{text}\n```"


def _error_text(output: str) -> str:
    return shorten(output.strip().removeprefix("Error: ") or "(no output)", 300)


def _joined(paths: Sequence[str]) -> str:
    quoted = [f"`{path}`" for path in paths]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
