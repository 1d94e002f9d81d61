"""What a bash command may do, judged before it runs from the VM host's parse of it
(`HostedShell.analyze`): which host tools it may call, and whether it may change anything.

Plan mode lets a command run only when it is plainly read-only:
- every command is named literally and is on `READ_ONLY_COMMANDS` (or is a function the same
  command defines, whose body is judged too), with the arguments that would write refused
  (`sed -i`, `sort -o`, `find -delete`/`-exec`, `uniq IN OUT`, a sed `w` command); an option
  it does not know, or a sed script it cannot see (`sed -f`), is refused too;
- host commands only ask for help (`agentos list-tools`, `agentos-X ... --help`);
- output is redirected nowhere but /dev/null, /dev/stdout and /dev/stderr;
- nothing is hidden: no eval or source, no computed command, no nested shell.
Anything else is refused with a result that says which part. The judgement is static, so it
leans to refusing, and plan mode runs the command in a fresh shell (the session's functions
and aliases cannot stand in for a read-only command's name).

Which host tools a command uses: `agentos-KIT TOOL` named literally; a computed tool name
means every tool of that toolkit; and a command that hides work, or names a program that could
start others (a function, a path, `xargs`, `env`, `find`), may reach any host tool of the VM.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.vm.toolkits import Toolkit

READ_ONLY_COMMANDS = frozenset(
    {
        "base64",
        "basename",
        "cat",
        "cd",
        "cksum",
        "cmp",
        "column",
        "comm",
        "cut",
        "date",
        "df",
        "diff",
        "dirname",
        "du",
        "echo",
        "expand",
        "expr",
        "false",
        "file",
        "find",
        "fmt",
        "fold",
        "grep",
        "egrep",
        "fgrep",
        "head",
        "hexdump",
        "hostname",
        "id",
        "join",
        "jq",
        "less",
        "ls",
        "md5sum",
        "more",
        "nl",
        "od",
        "paste",
        "printenv",
        "printf",
        "pwd",
        "readlink",
        "realpath",
        "rev",
        "rg",
        "sed",
        "seq",
        "sha1sum",
        "sha256sum",
        "sha512sum",
        "sort",
        "stat",
        "strings",
        "tac",
        "tail",
        "test",
        "[",
        "[[",
        "tr",
        "tree",
        "true",
        "type",
        "uname",
        "uniq",
        "unexpand",
        "wc",
        "which",
        "whoami",
        "xxd",
    }
)
"""Commands that read and print, and change nothing, given the argument checks below."""

_HARMLESS_REDIRECTS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
_FIND_ACTIONS = frozenset(
    {"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"}
)
_SED_WRITES = re.compile(
    # the w, W and e commands, after anything that may end an address or a command (`$!w f`,
    # `/a/Iw f`, `w/tmp/f`); a w or e merely in a regex or a word after a space is refused too
    r"(?:^|[^A-Za-z]|[IM])[wWe]"
    r"|s(.)(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1[gpiImMe0-9]*[we]"  # the w and e flags of s///
)
_SED_SHORT_FLAGS = frozenset("nErz")
_SED_LONG_FLAGS = frozenset({"--quiet", "--silent", "--regexp-extended", "--null-data"})
_HELP = frozenset({"--help", "-h", "help"})


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None
    args: list[str | None] = Field(default_factory=list)
    context: str = "direct"
    is_assignment_only: bool = False


class _Redirect(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str | None
    is_write: bool


class ScriptFacts(BaseModel):
    """The host's parse of one command (`agentos_nb.vm.shell.analyze`)."""

    model_config = ConfigDict(extra="ignore")

    parsed: bool
    error: str = ""
    commands: list[_Command] = Field(default_factory=list)
    redirects: list[_Redirect] = Field(default_factory=list)
    functions: list[str] = Field(default_factory=list)
    opaque: bool = False
    foreign: list[str] = Field(default_factory=list)


def host_tools_used(facts: ScriptFacts | None, toolkits: Sequence[Toolkit]) -> list[str]:
    """The host tools (`host:KIT.TOOL`) the command may call; every one when it can't be told
    (`facts` is None when the host could not parse it)."""
    every = [f"host:{kit.name}.{tool}" for kit in toolkits for tool in kit.tools]
    if facts is None or not facts.parsed:
        return every if facts is None else []
    kits = {kit.command: kit for kit in toolkits}
    known = set(kits) | {"agentos"}
    if facts.opaque or any(posixpath.basename(name) not in known for name in facts.foreign):
        return every
    used: list[str] = []
    for command in facts.commands:
        kit = kits.get(posixpath.basename(command.name or ""))
        if kit is None:
            continue
        tool = command.args[0] if command.args else None
        if tool is None or tool not in kit.tools:
            used += [f"host:{kit.name}.{name}" for name in kit.tools]  # computed, or help, or wrong
        else:
            used.append(f"host:{kit.name}.{tool}")
    return list(dict.fromkeys(used))


def plan_mode_problem(facts: ScriptFacts | None, toolkits: Sequence[Toolkit]) -> str | None:
    """Why plan mode refuses the command, or None when it is plainly read-only."""
    if facts is None:
        return "the command could not be checked"
    if not facts.parsed:
        return f"the command does not parse ({facts.error})"
    if facts.opaque:
        return "the command hides what it runs (eval, source, a computed command or a nested shell)"
    kit_commands = {kit.command for kit in toolkits}
    for command in facts.commands:
        if command.is_assignment_only:
            continue
        problem = _command_problem(command, set(facts.functions), kit_commands)
        if problem is not None:
            return problem
    for redirect in facts.redirects:
        if redirect.is_write and redirect.path not in _HARMLESS_REDIRECTS:
            return f"it writes to {redirect.path or 'a computed path'}"
    return None


def _command_problem(command: _Command, functions: set[str], kit_commands: set[str]) -> str | None:
    name = command.name
    if name is None:
        return "a command's name is computed"
    args = command.args
    if name in functions:
        return None  # its body is among the commands, judged on its own
    if (name == "agentos" and args == ["list-tools"]) or (
        posixpath.basename(name) in kit_commands | {"agentos"} and any(arg in _HELP for arg in args)
    ):
        return None
    if name not in READ_ONLY_COMMANDS:
        if posixpath.basename(name) in kit_commands:
            return f"{name} is a host tool"
        return f"{name} is a command that may change things"
    if any(arg is None for arg in args) and name in {"sed", "find", "sort", "uniq"}:
        return f"{name} has a computed argument"
    given = [arg for arg in args if arg is not None]
    if name == "sed":
        return _sed_problem(given)
    if name == "find" and _FIND_ACTIONS & set(given):
        return f"find {sorted(_FIND_ACTIONS & set(given))[0]} changes things or runs commands"
    if name == "sort" and any(_sort_writes(arg) for arg in given):
        return "sort -o writes a file (or an option of sort's runs a program)"
    if name == "uniq" and len([arg for arg in given if not arg.startswith("-")]) > 1:
        return "uniq with two files writes the second"
    return None


def _sed_problem(args: list[str]) -> str | None:
    """Sed is judged by the options it is known to take; every script it is given is scanned."""
    scripts: list[str] = []
    positional: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            positional += rest
        elif arg.startswith("--"):
            option, has_value, value = arg.partition("=")
            if option == "--expression":
                scripts.append(value if has_value else next(rest, ""))
            elif option == "--in-place":
                return "sed -i edits files"
            elif option == "--file":
                return "sed -f runs a script from a file, which can't be checked"
            elif arg not in _SED_LONG_FLAGS:
                return f"sed {option} is not known to be read-only"
        elif arg.startswith("-") and arg != "-":
            for at, flag in enumerate(arg[1:], start=2):
                if flag == "e":
                    scripts.append(arg[at:] or next(rest, ""))
                    break
                if flag == "i":
                    return "sed -i edits files"
                if flag == "f":
                    return "sed -f runs a script from a file, which can't be checked"
                if flag not in _SED_SHORT_FLAGS:
                    return f"sed -{flag} is not known to be read-only"
        else:
            positional.append(arg)
    if not scripts:
        scripts = positional[:1]  # with no -e, the first operand is the script; the rest are files
    if any(_SED_WRITES.search(script) for script in scripts):
        return "the sed script writes a file or runs a command"
    return None


def _sort_writes(arg: str) -> bool:
    """`-o` alone or in a bundle (`-uo`), and `--output` however abbreviated (`--out=`)."""
    if arg.startswith("--"):
        return arg.startswith("--o") or arg.startswith("--com")  # --compress-program runs one
    return arg.startswith("-") and "o" in arg
