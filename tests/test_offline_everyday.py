"""The offline model doing everyday tasks, on a real VM: a corpus of requests as newcomers type
them, each checked afterwards against the VM's files or what its programs print; refusals of
requests outside where the agent may work; and the parser's limits.

The corpus is one test that prints its pass rate and fails below 90%, listing every failure:
a rule that breaks one phrasing shows up as a named case, not as a flake.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentos_nb import agent_os
from agentos_nb.agents.offline.intents import (
    CountIn,
    DeletePath,
    ListFolder,
    MovePath,
    NotUnderstood,
    Refuse,
    ReplaceText,
    RunFile,
    WriteFile,
)
from agentos_nb.agents.offline.requests import MAX_REQUEST_CHARACTERS, parse_request
from agentos_nb.software import common, pi
from agentos_nb.vm.handle import VmHandle

HOME = "/home/user"
PASS_RATE = 0.9

Check = Callable[["Turn"], Awaitable[None]]


@dataclass
class Turn:
    """A prompt's turn, done: the VM to check and what the agent replied."""

    vm: VmHandle
    reply: str
    given: set[str]
    """The files the case put there before the prompt."""

    async def run(self, command: str) -> str:
        result = await self.vm.exec(command)
        assert result.exit_code == 0, f"`{command}` failed: {result.stdout}{result.stderr}"
        return result.stdout

    async def text(self, path: str) -> str:
        return await self.vm.read_file(path, encoding="utf-8")

    async def exists(self, path: str) -> bool:
        return await self.vm.exists(path)

    async def new_files(self, suffix: str, before: set[str]) -> list[str]:
        listed = (await self.run(f"find {HOME} -type f -name '*{suffix}'")).split()
        return [path for path in listed if path not in before]


@dataclass
class Case:
    prompt: str
    check: Check
    files: dict[str, str] = field(default_factory=dict)
    python: bool = False
    """The check runs `python3` in the VM (CPython, which `agentos-nb prepare` compiles once)."""


# --- checks ---------------------------------------------------------------------------------------


def prints(path: str, expected: str, *, interpreter: str = "python3") -> Check:
    """Running the file in the VM prints exactly `expected`."""

    async def check(turn: Turn) -> None:
        out = await turn.run(f"{interpreter} {path}")
        assert out == expected, f"{interpreter} {path} printed {out!r}, not {expected!r}"

    return check


def new_program_prints(suffix: str, expected: str) -> Check:
    """One new file with this suffix was made, and running it prints `expected` (its name is the
    agent's choice)."""

    async def check(turn: Turn) -> None:
        made = await turn.new_files(suffix, turn.given)
        assert len(made) == 1, f"expected one new *{suffix} file, found {made}"
        interpreter = "bash" if suffix == ".sh" else "python3"
        out = await turn.run(f"{interpreter} {made[0]}")
        assert out == expected, f"{made[0]} printed {out!r}, not {expected!r}"

    return check


def prints_first(path: str, expected: str) -> Check:
    """Running the file in the VM prints `expected` first (and maybe more)."""

    async def check(turn: Turn) -> None:
        out = await turn.run(f"python3 {path}")
        assert out.startswith(expected), f"python3 {path} printed {out[:200]!r}"

    return check


def holds(path: str, expected: str) -> Check:
    async def check(turn: Turn) -> None:
        assert await turn.exists(path), f"{path} was not made"
        assert await turn.text(path) == expected, f"{path} holds {await turn.text(path)!r}"

    return check


def folder(path: str) -> Check:
    async def check(turn: Turn) -> None:
        await turn.run(f"test -d {path}")

    return check


def gone(*paths: str) -> Check:
    async def check(turn: Turn) -> None:
        for path in paths:
            assert not await turn.exists(path), f"{path} is still there"

    return check


def says(*words: str) -> Check:
    async def check(turn: Turn) -> None:
        for word in words:
            assert word in turn.reply, f"the reply lacks {word!r}: {turn.reply!r}"

    return check


def does_not_say(*words: str) -> Check:
    async def check(turn: Turn) -> None:
        for word in words:
            assert word not in turn.reply, f"the reply has {word!r}: {turn.reply!r}"

    return check


def both(*checks: Check) -> Check:
    async def check(turn: Turn) -> None:
        for each in checks:
            await each(turn)

    return check


FIZZBUZZ_15 = "1\n2\nFizz\n4\nBuzz\nFizz\n7\n8\nFizz\nBuzz\n11\nFizz\n13\n14\nFizzBuzz\n"
NOTES = "milk\nTODO: call the bank\neggs and bread\n"
GREETER = '"""Greets."""\n\n\ndef greet(name):\n    return f"hi {name}"\n\n\nprint(greet("Ada"))\n'
HI = 'print("hi")\n'

CORPUS = [
    Case(
        "List the files in /home/user and write a hello.py",
        both(says("notes.txt"), prints("hello.py", "Hello, world!\n")),
        {"notes.txt": NOTES},
        python=True,
    ),
    Case("Write a hello.py that prints hi", prints("hello.py", "hi\n"), python=True),
    Case(
        "Write a Python script at /home/user/hello.py that prints hello",
        both(prints("/home/user/hello.py", "hello\n"), holds("/home/user/hello.py", 'print("hello")\n')),
        python=True,
    ),
    Case("write a script that prints hi", new_program_prints(".py", "hi\n"), python=True),
    Case('create a file called notes.txt with the text "buy milk"', holds("notes.txt", "buy milk\n")),
    Case("make a bash script that prints hello world", new_program_prints(".sh", "Hello, world!\n")),
    Case("write a python program to add two numbers", new_program_prints(".py", "2 + 3 = 5\n"), python=True),
    Case(
        "Write a script that reads a file and counts the lines",
        new_program_prints(".py", "3\n"),
        {"input.txt": "a\nb\nc\n"},
        python=True,
    ),
    Case("write fizzbuzz in python", prints_first("fizzbuzz.py", FIZZBUZZ_15), python=True),
    Case(
        "Write a fizzbuzz program at fizz.py and run it",
        both(prints_first("fizz.py", FIZZBUZZ_15), says("FizzBuzz")),
        python=True,
    ),
    Case("create a folder called src", folder("src")),
    Case("mkdir docs", folder("docs")),
    Case("make a new directory named data/raw", folder("data/raw")),
    Case("delete notes.txt", gone("notes.txt"), {"notes.txt": NOTES}),
    Case("remove the folder build", gone("build"), {"build/out.txt": "x\n"}),
    Case(
        "rename notes.txt to todo.txt",
        both(gone("notes.txt"), holds("todo.txt", NOTES)),
        {"notes.txt": NOTES},
    ),
    Case(
        "move todo.txt into docs", both(gone("todo.txt"), holds("docs/todo.txt", NOTES)), {"todo.txt": NOTES}
    ),
    Case("copy hello.py to hello2.py", both(holds("hello.py", HI), holds("hello2.py", HI)), {"hello.py": HI}),
    Case("replace hi with bye in hello.py", prints("hello.py", "bye\n"), {"hello.py": HI}, python=True),
    Case(
        'In hello.py, change "hi" to "hello there"',
        prints("hello.py", "hello there\n"),
        {"hello.py": HI},
        python=True,
    ),
    Case("search for TODO in notes.txt", says("2:TODO: call the bank"), {"notes.txt": NOTES}),
    Case(
        "find all python files",
        both(says("a.py", "src/b.py"), does_not_say("c.txt")),
        {"a.py": HI, "src/b.py": HI, "c.txt": "x\n"},
    ),
    Case("how many lines are in notes.txt?", says("3 lines"), {"notes.txt": NOTES}),
    Case("count the words in notes.txt", says("8 words"), {"notes.txt": NOTES}),
    Case("count the files in this folder", says("3 files"), {"a.py": HI, "b.txt": "", "c.md": "# c\n"}),
    Case("explain greet.py", says("Python program", "`greet`"), {"greet.py": GREETER}),
    Case("what does greet.py do?", says("defines the function `greet`"), {"greet.py": GREETER}),
    Case("show me hello.py", says('print("hi")'), {"hello.py": HI}),
    Case("cat notes.txt", says("TODO: call the bank"), {"notes.txt": NOTES}),
    Case("run hello.py", says("hi"), {"hello.py": 'print("hi from the VM")\n'}, python=True),
    Case(
        "Run hello.py and tell me what it prints.",
        says("hi from the VM"),
        {"hello.py": 'print("hi from the VM")\n'},
        python=True,
    ),
    Case("run `ls -la`", says("notes.txt"), {"notes.txt": NOTES}),
    Case('append "milk" to shopping.txt', holds("shopping.txt", "eggs\nmilk\n"), {"shopping.txt": "eggs\n"}),
    Case("write hello world to greeting.txt", holds("greeting.txt", "hello world\n")),
    Case(
        "Please write a script that adds two numbers and prints the result",
        new_program_prints(".py", "2 + 3 = 5\n"),
        python=True,
    ),
    Case("Can you list my files?", says("notes.txt", "src/"), {"notes.txt": NOTES, "src/a.py": HI}),
    Case("show the contents of notes.txt", says("eggs and bread"), {"notes.txt": NOTES}),
    Case("touch empty.txt", holds("empty.txt", "")),
    Case("create an empty file called blank.txt", holds("blank.txt", "")),
    Case("grep TODO notes.txt", says("TODO: call the bank"), {"notes.txt": NOTES}),
    Case(
        "Create hello.sh that prints hi and run it",
        both(prints("hello.sh", "hi\n", interpreter="bash"), says("hi")),
    ),
    Case(
        "write a script called count.py that counts the lines in notes.txt, then run it",
        both(prints("count.py", "3\n"), says("3")),
        {"notes.txt": NOTES},
        python=True,
    ),
    Case(
        "make a directory called projects and create a file projects/readme.md with the text '# Projects'",
        holds("projects/readme.md", "# Projects\n"),
    ),
    Case(
        "delete the file old.txt and list the files",
        both(gone("old.txt"), says("keep.txt")),
        {"old.txt": "x\n", "keep.txt": "y\n"},
    ),
    Case(
        "write a python script that prints the numbers from 1 to 5",
        new_program_prints(".py", "1\n2\n3\n4\n5\n"),
        python=True,
    ),
    Case(
        "write a fibonacci script",
        new_program_prints(".py", "0\n1\n1\n2\n3\n5\n8\n13\n21\n34\n"),
        python=True,
    ),
    Case(
        "Rename hello.py to main.py and run it",
        both(gone("hello.py"), says("hi")),
        {"hello.py": HI},
        python=True,
    ),
    Case("make a file named todo.txt containing buy eggs", holds("todo.txt", "buy eggs\n")),
    Case("save 'remember the milk' in reminder.txt", holds("reminder.txt", "remember the milk\n")),
    Case(
        "could you create a python file called greet.py which prints Hello Ada?",
        prints("greet.py", "Hello Ada\n"),
        python=True,
    ),
    Case("look for 'error' in log.txt", says("2:error: disk full"), {"log.txt": "ok\nerror: disk full\n"}),
    Case("What's in notes.txt?", says("TODO: call the bank"), {"notes.txt": NOTES}),
    Case("How many files are in src?", says("2 files"), {"src/a.py": HI, "src/b.py": HI}),
    Case("print the contents of notes.txt", says("eggs and bread"), {"notes.txt": NOTES}),
    Case(
        "Write a script that counts to 10",
        new_program_prints(".py", "".join(f"{n}\n" for n in range(1, 11))),
        python=True,
    ),
    Case("write a factorial program", new_program_prints(".py", "5! = 120\n"), python=True),
    Case("write a script at /tmp/hi.py that prints hi", prints("/tmp/hi.py", "hi\n"), python=True),
    Case("create src/util.py that prints ok", prints("src/util.py", "ok\n"), python=True),
    Case("Write fizzbuzz.py", prints_first("fizzbuzz.py", FIZZBUZZ_15), python=True),
    Case("list everything in /tmp", says("scratch.txt"), {"/tmp/scratch.txt": "x\n"}),
    Case("what files are in my home folder?", says("notes.txt"), {"notes.txt": NOTES}),
    Case(
        "find files named *.txt",
        both(says("a.txt", "docs/b.txt"), does_not_say("c.md")),
        {"a.txt": "", "docs/b.txt": "", "c.md": ""},
    ),
    Case("where is TODO used?", says("notes.txt:2:TODO: call the bank"), {"notes.txt": NOTES}),
    Case("write me a hello world in bash", new_program_prints(".sh", "Hello, world!\n")),
    Case("Put the text 'abc' in letters.txt", holds("letters.txt", "abc\n")),
    Case(
        "change the word cat to dog in story.txt",
        holds("story.txt", "a dog sat\n"),
        {"story.txt": "a cat sat\n"},
    ),
    Case(
        'add a line "import os" to main.py',
        holds("main.py", "print(1)\nimport os\n"),
        {"main.py": "print(1)\n"},
    ),
    Case("make a folder named test inside src", folder("src/test"), {"src/a.py": HI}),
    Case(
        "copy notes.txt into backup",
        both(holds("notes.txt", NOTES), holds("backup/notes.txt", NOTES)),
        {"notes.txt": NOTES},
    ),
    Case(
        "move notes.txt to archive/",
        both(gone("notes.txt"), holds("archive/notes.txt", NOTES)),
        {"notes.txt": NOTES},
    ),
    Case("ls", says("notes.txt"), {"notes.txt": NOTES}),
    Case(
        "Create poem.txt with this text:\n\nroses are red\nviolets are blue",
        holds("poem.txt", "roses are red\nviolets are blue\n"),
    ),
    Case("make hello.py print goodbye", prints("hello.py", "goodbye\n"), {"hello.py": HI}, python=True),
    Case("search the project for TODO", says("notes.txt:2:TODO: call the bank"), {"notes.txt": NOTES}),
    Case(
        "cat notes.txt and hello.py",
        says("TODO: call the bank", 'print("hi")'),
        {"notes.txt": NOTES, "hello.py": HI},
    ),
    Case("mv notes.txt todo.txt", both(gone("notes.txt"), holds("todo.txt", NOTES)), {"notes.txt": NOTES}),
    Case("update notes.txt: replace milk with oat milk", says("oat milk"), {"notes.txt": NOTES}),
    Case(
        "write a function that adds two numbers in math_utils.py",
        prints("math_utils.py", "2 + 3 = 5\n"),
        python=True,
    ),
]


# --- running the corpus ---------------------------------------------------------------------------


async def clear(vm) -> None:
    """Empty the home folder and /tmp between cases: each case starts from its own files."""
    for folder in (HOME, "/tmp"):
        for entry in await vm.readdir(folder):
            await vm.delete_file(f"{folder}/{entry.name}", recursive=True)


async def play(vm, case: Case) -> str:
    """Run one case on a cleared VM; return "" when it passed, or why it failed."""
    await clear(vm)
    for path, content in case.files.items():
        await vm.write_file(path if path.startswith("/") else f"{HOME}/{path}", content)
    session = await vm.create_session("pi")
    try:
        result = await vm.send_prompt(session.session_id, case.prompt)
    finally:
        await vm.close_session(session.session_id)
    given = {path if path.startswith("/") else f"{HOME}/{path}" for path in case.files}
    try:
        assert result.stop_reason == "end_turn", f"the turn ended with {result.stop_reason}: {result.error}"
        await case.check(Turn(vm, result.text, given))
    except AssertionError as failure:
        return f"{failure}\n    reply: {result.text[:400]!r}"
    return ""


pytestmark = pytest.mark.anyio


@pytest.fixture
async def vm(start_registry):
    registry = await start_registry(vm=agent_os(software=[common, pi]))
    return registry.client().vm.get_or_create(["everyday"])


def test_the_corpus_has_at_least_forty_different_prompts() -> None:
    prompts = [case.prompt for case in CORPUS]
    assert len(set(prompts)) == len(prompts) >= 40


@pytest.mark.timeout(600)
async def test_the_corpus_of_newcomer_requests_passes_on_a_real_vm(vm, capsys) -> None:
    """Cases that run `python3` need the VM's CPython, which `agentos-nb prepare` compiles once
    per machine (`.ci/run` does); without it they are left out, and the test says so."""
    python = await vm.exec("python3 -c 'print(6 * 7)'")
    python_ready = python.stdout == "42\n"
    cases = [case for case in CORPUS if python_ready or not case.python]
    failures = {}
    started = time.monotonic()
    for case in cases:
        failure = await play(vm, case)
        if failure:
            failures[case.prompt] = failure
    rate = 1 - len(failures) / len(cases)
    listed = "".join(f"\n- {prompt!r}: {why}" for prompt, why in failures.items())
    left_out = (
        ""
        if python_ready
        else f"; {len(CORPUS) - len(cases)} cases that run python3 left out: {python.stderr.strip()}"
    )
    with capsys.disabled():
        print(
            f"\noffline everyday corpus: {len(cases) - len(failures)}/{len(cases)} passed "
            f"({rate:.0%}) in {time.monotonic() - started:.1f} s{left_out}{listed}"
        )
    assert len(cases) >= 30
    assert rate >= PASS_RATE, f"{len(failures)} of {len(cases)} prompts failed:{listed}"


# --- hostile requests ------------------------------------------------------------------------------

HOSTILE = [
    # (prompt, words the reply must hold)
    ("Delete /", ["`/`", "root of the VM"]),
    ("rm -rf /", ["`/`", "root of the VM"]),
    ("please remove my home directory", ["`/home/user`", "a folder the VM needs"]),
    ("delete /etc/passwd", ["`/etc/passwd`", "only change files under /home/user and /tmp"]),
    ("delete ../../etc/passwd", ["`../../etc/passwd` (/etc/passwd)", "only change files"]),
    ("write hacked to ../../etc/motd", ["`../../etc/motd` (/etc/motd)", "only change files"]),
    ("move notes.txt to /usr/bin/notes.txt", ["`/usr/bin/notes.txt`", "only change files"]),
    ("show ../../../../../etc/shadow", ["`../../../../../etc/shadow`", "outside the VM's root"]),
    ("list ../../../../../", ["`../../../../../`", "outside the VM's root"]),
    ("delete everything", ["one named file or folder at a time"]),
    ("remove all files", ["one named file or folder at a time"]),
    ("delete *.txt", ["one named file or folder at a time"]),
    ("run `rm -rf /home/user`", ["only looked around", "I can:"]),
]


@pytest.mark.timeout(300)
async def test_requests_outside_where_the_agent_works_are_refused_naming_the_path(vm) -> None:
    failures = []
    for prompt, words in HOSTILE:
        await clear(vm)
        await vm.write_file(f"{HOME}/notes.txt", NOTES)
        session = await vm.create_session("pi")
        result = await vm.send_prompt(session.session_id, prompt)
        await vm.close_session(session.session_id)
        missing = [word for word in words if word not in result.text]
        intact = await vm.exists(f"{HOME}/notes.txt") and await vm.exists("/etc/passwd")
        if missing or not intact or result.stop_reason != "end_turn":
            failures.append(f"{prompt!r}: lacks {missing}, files intact: {intact}: {result.text[:300]!r}")
    assert not failures, "\n".join(failures)


async def test_reading_a_system_path_shows_the_vms_own_file_never_the_hosts(vm) -> None:
    session = await vm.create_session("pi")
    result = await vm.send_prompt(session.session_id, "Show me /etc/passwd")
    assert "It is the VM's own, not your computer's" in result.text
    assert "user:x:1000:1000" in result.text
    host = (await anyio.Path("/etc/passwd").read_text()).splitlines()
    vm_own = (await vm.read_file("/etc/passwd", encoding="utf-8")).splitlines()
    for line in host:
        if line not in vm_own:
            assert line not in result.text


@pytest.mark.timeout(60)
async def test_a_huge_prompt_gets_a_short_answer_and_no_file(vm) -> None:
    session = await vm.create_session("pi")
    prompt = "write hello to a.txt and " * (MAX_REQUEST_CHARACTERS // 10)
    result = await vm.send_prompt(session.session_id, prompt)
    assert result.stop_reason == "end_turn"
    assert len(result.text) < 3000
    assert "characters long" in result.text
    assert not await vm.exists(f"{HOME}/a.txt")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "prompt",
    [
        "count" + " " * 19_000 + "lines in x",
        "replace " + "a with " * 2_800 + "b",
        "rename " + "a to " * 3_900,
        "write " + "a " * 9_000 + "x",
        "delete" + "\t" * 19_000 + "x",
    ],
    ids=["spaces", "with", "to", "articles", "tabs"],
)
def test_long_requests_are_refused_at_once_naming_the_limit(prompt: str) -> None:
    """Rules that backtrack would take minutes on these, on the event loop."""
    [refused] = parse_request(prompt) or [None]
    assert isinstance(refused, Refuse)
    assert "I follow requests of up to 2,000 characters" in refused.reason


def test_a_long_text_to_write_may_follow_a_colon_and_a_blank_line() -> None:
    text = "line\n" * 3_000
    [write] = parse_request(f"create notes.txt with this text:\n\n{text}") or [None]
    assert write == WriteFile("notes.txt", text, write.does if isinstance(write, WriteFile) else "")


async def test_a_failed_step_stops_the_request_and_says_so(vm) -> None:
    session = await vm.create_session("pi")
    result = await vm.send_prompt(session.session_id, "delete missing.txt and then write hello to b.txt")
    assert "I could not delete `missing.txt`" in result.text
    assert "No such file" in result.text
    assert "I stopped there, so I did not do the 1 step after it." in result.text
    assert not await vm.exists(f"{HOME}/b.txt")


async def test_what_it_cannot_understand_it_says_and_names_what_it_can_do(vm) -> None:
    await vm.write_file(f"{HOME}/notes.txt", NOTES)
    session = await vm.create_session("pi")
    result = await vm.send_prompt(session.session_id, "list the files and then refactor everything")
    assert "notes.txt" in result.text
    assert "I did not understand “refactor everything”" in result.text
    assert "I can: write a file" in result.text


# --- the parser, without a VM ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "intents"),
    [
        (
            "List the files in /home/user and write a hello.py",
            [ListFolder("/home/user"), WriteFile("hello.py", 'print("Hello, world!")\n', "", "python3")],
        ),
        ("Write a hello.py that prints hi", [WriteFile("hello.py", 'print("hi")\n', "", "python3")]),
        (
            "Write a hello.py that prints hi and run it",
            [WriteFile("hello.py", 'print("hi")\n', ""), RunFile("hello.py", "python3")],
        ),
        ("replace 'a b' with \"c\" in x.txt", [ReplaceText("x.txt", "a b", "c")]),
        ("rename src/a.py to b.py", [MovePath("src/a.py", "src/b.py")]),
        ("move a.txt to the docs folder", [MovePath("a.txt", "docs", into=True)]),
        ("how many lines does notes.txt have?", [CountIn("lines", "notes.txt")]),
        ("delete it", None),
        ("What is in my home directory?", None),
        ("Fix the flaky test in auth.test.ts", None),
        (
            "write notes.txt and then dance",
            [WriteFile("notes.txt", "", "", drafted=True), NotUnderstood("dance")],
        ),
        ("Create a summary of /home/user/README.md for me", None),
        ("delete ~/old", [DeletePath("/home/user/old")]),
    ],
)
def test_requests_become_these_intents(prompt: str, intents: list | None) -> None:
    parsed = parse_request(prompt)
    if intents is None:
        assert parsed is None
        return
    assert parsed is not None
    # `does` is the reply's wording; compare everything else.
    assert [_without_does(intent) for intent in parsed] == [_without_does(intent) for intent in intents]


def _without_does(intent: object) -> object:
    if isinstance(intent, WriteFile):
        return (intent.path, intent.content, intent.interpreter)
    return intent


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "write",
                "a",
                "hello.py",
                "that",
                "prints",
                "and",
                "then",
                "list",
                "the",
                "files",
                "in",
                "'x y'",
                "`ls`",
                "delete",
                "/",
                "..",
                "rename",
                "to",
                "run",
                "it",
                ",",
                ".",
                "replace",
                "with",
                "count",
                "lines",
                "search",
                "for",
                "mkdir",
                "?",
                "\n\n",
                "~",
                "folder",
                '"q"',
                "fizzbuzz",
            ]
        )
        | st.text(max_size=8),
        max_size=25,
    )
)
def test_the_parser_never_fails_and_every_path_it_names_is_a_string(words: list[str]) -> None:
    parsed = parse_request(" ".join(words))
    for intent in parsed or ():
        for value in (getattr(intent, name) for name in intent.__slots__):
            assert isinstance(value, str | bool)
