"""The small programs the offline model can write from a description ("prints hi", "adds two
numbers", "reads a file and counts its lines", "fizzbuzz"), in Python or as a bash script.

Each is a template filled from the description, with a sensible file name for when the prompt
names none. The programs are plain Python 3 (the VM's `python3` is CPython) or POSIX-style bash,
and each is run once after it is written, to show what it prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Language = Literal["python", "bash"]


@dataclass(frozen=True, slots=True)
class Program:
    """A program made from a description: its text, a default file stem, and what it does, in
    words for the reply."""

    code: str
    stem: str
    does: str


_NUMBER = r"(-?\d+(?:\.\d+)?)"
_PRINT_VERB = r"(?:prints?|says?|outputs?|displays?|echo(?:es)?|shows?|writes?|greets? with)"
_TAIL = re.compile(
    r"\s*(?:to|on|in)\s+(?:the\s+)?(?:screen|console|terminal|stdout|output)\b.*$"
    r"|\s+when (?:it is )?run\b.*$",
    re.I,
)
_GREETINGS = frozenset({"hi", "hello", "hey", "hello world", "hello, world", "hello, world!", "greetings"})


def program_for(description: str, language: Language, quoted: tuple[str, ...] = ()) -> Program | None:
    """The program `description` asks for, or None when it matches no template."""
    text = " ".join(description.split()).strip(" .!")
    lower = text.lower()
    for make in (_fizzbuzz, _fibonacci, _factorial, _count_lines, _count_words, _adds, _counts_to, _prints):
        program = make(text, lower, language, quoted)
        if program is not None:
            return program
    if re.fullmatch(r"(?:a |the )?(?:hello[ ,-]*world|hello|greeting)(?: program| script| app)?", lower):
        return _print_program("Hello, world!", language)
    return None


def program_for_stem(stem: str, language: Language) -> Program | None:
    """A program for a file named after what it does, when the prompt says nothing more:
    `hello.py`, `fizzbuzz.sh`, `add.py`."""
    name = stem.lower().replace("-", "_")
    if name in ("hello", "hello_world", "helloworld", "hi", "greet", "greeting"):
        return _print_program("Hello, world!", language)
    named = {
        "fizzbuzz": "fizzbuzz",
        "fizz_buzz": "fizzbuzz",
        "fib": "fibonacci",
        "fibonacci": "fibonacci",
        "factorial": "factorial",
        "add": "adds two numbers",
        "adder": "adds two numbers",
        "sum": "adds two numbers",
        "count_lines": "counts the lines of a file",
        "line_count": "counts the lines of a file",
        "countlines": "counts the lines of a file",
        "wordcount": "counts the words of a file",
        "word_count": "counts the words of a file",
        "count_words": "counts the words of a file",
    }
    return program_for(named[name], language) if name in named else None


def _prints(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    match = re.match(rf"(?:that |which |to )?{_PRINT_VERB}\s+(.+)$", text, re.I)
    if match is None:
        return None
    said = quoted[0] if quoted else _TAIL.sub("", match.group(1)).strip()
    if not quoted:
        said = re.sub(r"^(?:the (?:text|words?|message|string)|out)\s+", "", said, flags=re.I)
        said = said.strip(" .!") if said.lower().strip(" .!") not in _GREETINGS else said.strip(" .")
    if not said:
        return None
    if said.lower() in ("hello world", "hello, world"):
        said = "Hello, world!"
    return _print_program(said, language)


def _print_program(said: str, language: Language) -> Program:
    stem = _slug(said)
    if stem in ("hi", "hey", "greetings") or stem.startswith("hello"):
        stem = "hello"
    if language == "bash":
        return Program(f"#!/bin/bash\necho {_shell_quote(said)}\n", stem, f"prints {said}")
    return Program(f"print({_py_string(said)})\n", stem, f"prints {said}")


def _adds(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    if not re.search(r"\b(?:adds?|sums?|summ?ing|adding|addition|plus)\b", lower):
        return None
    numbers = re.findall(_NUMBER, text)
    a, b = (numbers[0], numbers[1]) if len(numbers) >= 2 else ("2", "3")
    if language == "bash":
        code = (
            f'#!/bin/bash\n# Add two numbers and print the sum.\na={a}\nb={b}\necho "$a + $b = $((a + b))"\n'
        )
        return Program(code, "add", f"adds {a} and {b} and prints the sum")
    code = (
        f'"""Add two numbers and print the sum."""\n\n\ndef add(a, b):\n    return a + b\n\n\n'
        f'a = {a}\nb = {b}\nprint(f"{{a}} + {{b}} = {{add(a, b)}}")\n'
    )
    return Program(code, "add", f"adds {a} and {b} and prints the sum")


def _counts_to(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    match = re.search(
        r"\b(?:counts?|prints?|outputs?|lists?) (?:the )?(?:numbers |integers )?(?:from )?"
        r"(?:(-?\d+) (?:to|through|until|up to)|to|up to) (-?\d+)\b",
        lower,
    )
    if match is None:
        return None
    first, last = int(match.group(1) or 1), int(match.group(2))
    does = f"prints the numbers from {first} to {last}"
    if language == "bash":
        return Program(f'#!/bin/bash\nfor i in $(seq {first} {last}); do\n  echo "$i"\ndone\n', "count", does)
    return Program(f"for number in range({first}, {last + 1}):\n    print(number)\n", "count", does)


def _fizzbuzz(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    if not re.search(r"\bfizz ?buzz\b", lower):
        return None
    numbers = re.findall(r"\b(\d+)\b", lower)
    last = int(numbers[-1]) if numbers else 100
    does = f"plays FizzBuzz from 1 to {last}"
    if language == "bash":
        code = (
            f"#!/bin/bash\nfor i in $(seq 1 {last}); do\n"
            "  if (( i % 15 == 0 )); then echo FizzBuzz\n"
            "  elif (( i % 3 == 0 )); then echo Fizz\n"
            "  elif (( i % 5 == 0 )); then echo Buzz\n"
            '  else echo "$i"\n  fi\ndone\n'
        )
        return Program(code, "fizzbuzz", does)
    code = (
        f"for number in range(1, {last + 1}):\n"
        '    if number % 15 == 0:\n        print("FizzBuzz")\n'
        '    elif number % 3 == 0:\n        print("Fizz")\n'
        '    elif number % 5 == 0:\n        print("Buzz")\n'
        "    else:\n        print(number)\n"
    )
    return Program(code, "fizzbuzz", does)


def _fibonacci(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    if "fibonacci" not in lower:
        return None
    numbers = re.findall(r"\b(\d+)\b", lower)
    count = int(numbers[0]) if numbers else 10
    does = f"prints the first {count} Fibonacci numbers"
    if language == "bash":
        code = (
            f"#!/bin/bash\na=0\nb=1\nfor i in $(seq 1 {count}); do\n"
            '  echo "$a"\n  next=$((a + b))\n  a=$b\n  b=$next\ndone\n'
        )
        return Program(code, "fibonacci", does)
    code = f"a, b = 0, 1\nfor _ in range({count}):\n    print(a)\n    a, b = b, a + b\n"
    return Program(code, "fibonacci", does)


def _factorial(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    if "factorial" not in lower:
        return None
    numbers = re.findall(r"\b(\d+)\b", lower)
    n = int(numbers[0]) if numbers else 5
    does = f"prints the factorial of {n}"
    if language == "bash":
        code = (
            f'#!/bin/bash\nn={n}\nresult=1\nfor i in $(seq 1 "$n"); do\n  result=$((result * i))\ndone\n'
            'echo "$n! = $result"\n'
        )
        return Program(code, "factorial", does)
    code = (
        "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n"
        f'    return result\n\n\nprint(f"{n}! = {{factorial({n})}}")\n'
    )
    return Program(code, "factorial", does)


_FILE_IN_TEXT = re.compile(r"[\w./-]*\w\.[A-Za-z]\w{0,7}\b")


def _count_lines(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    if not re.search(r"\bcount(?:s|ing)?\b.*\blines?\b|\bline count\b|\bnumber of lines\b", lower):
        return None
    return _file_counter(text, language, "lines", "count_lines")


def _count_words(text: str, lower: str, language: Language, quoted: tuple[str, ...]) -> Program | None:
    if not re.search(r"\bcount(?:s|ing)?\b.*\bwords?\b|\bword count\b|\bnumber of words\b", lower):
        return None
    return _file_counter(text, language, "words", "count_words")


def _file_counter(text: str, language: Language, unit: Literal["lines", "words"], stem: str) -> Program:
    named = _FILE_IN_TEXT.findall(text)
    path = named[0] if named else "input.txt"
    does = f"prints how many {unit} {path} has"
    if language == "bash":
        flag = "-l" if unit == "lines" else "-w"
        code = (
            f"#!/bin/bash\n# Print how many {unit} a file has (default: {path}).\n"
            f'file="${{1:-{path}}}"\nwc {flag} < "$file"\n'
        )
        return Program(code, stem, does)
    split = "splitlines()" if unit == "lines" else "split()"
    code = (
        f'"""Print how many {unit} a file has."""\n\nPATH = {_py_string(path)}\n\n'
        f'with open(PATH, encoding="utf-8") as file:\n    text = file.read()\n'
        f"print(len(text.{split}))\n"
    )
    return Program(code, stem, does)


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:3]
    return "_".join(words) or "script"


def _py_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
