"""Explaining a file in plain words, from its text alone: what kind of file it is, what it
defines, imports and prints, and how it begins."""

from __future__ import annotations

import json
import re

from agentos_nb.agents.offline.text import (
    JS_EXTENSIONS,
    PY_EXTENSIONS,
    SH_EXTENSIONS,
    TS_EXTENSIONS,
    extension,
)

_KINDS = {
    **dict.fromkeys(PY_EXTENSIONS, "a Python program"),
    **dict.fromkeys(SH_EXTENSIONS, "a shell script"),
    **dict.fromkeys(JS_EXTENSIONS, "a JavaScript program"),
    **dict.fromkeys(TS_EXTENSIONS, "a TypeScript program"),
    ".md": "a Markdown document",
    ".txt": "a text file",
    ".json": "a JSON file",
    ".csv": "a CSV table",
    ".toml": "a TOML settings file",
    ".yaml": "a YAML settings file",
    ".yml": "a YAML settings file",
    ".html": "an HTML page",
}


def explain(path: str, text: str) -> str:
    """A few sentences about the file at `path` whose text is `text`."""
    suffix = extension(path)
    lines = text.splitlines()
    kind = _KINDS.get(suffix, "a file")
    if text.startswith("#!"):
        kind = "a shell script" if "sh" in lines[0] else "a script"
    size = f"{len(lines)} {'line' if len(lines) == 1 else 'lines'}"
    if not text.strip():
        return f"`{path}` is empty."
    parts = [f"`{path}` is {kind} of {size}."]
    if suffix in PY_EXTENSIONS:
        parts += _python(text)
    elif suffix in JS_EXTENSIONS | TS_EXTENSIONS:
        parts += _script(text, r"^\s*(?:export\s+)?(?:async\s+)?function\s+(\w+)", r"console\.log\((.+)\)")
    elif suffix in SH_EXTENSIONS or kind == "a shell script":
        parts += _script(text, r"^\s*(?:function\s+)?(\w+)\s*\(\)\s*\{", r"^\s*echo\s+(.+)$")
    elif suffix == ".md":
        headings = re.findall(r"^#+\s+(.+)$", text, re.M)
        if headings:
            parts.append(f"Its headings: {_listed(headings)}.")
    elif suffix == ".json":
        parts.append(_json(text))
    first = next((line.strip() for line in lines if line.strip()), "")
    if len(parts) == 1:
        parts.append(f"It begins: “{first[:100]}”.")
    return " ".join(part for part in parts if part)


def _python(text: str) -> list[str]:
    said: list[str] = []
    docstring = re.match(r'\s*(?:"""|\'\'\')(.+?)(?:"""|\'\'\'|$)', text, re.S)
    if docstring:
        said.append(f"Its docstring says: “{docstring.group(1).strip().splitlines()[0]}”.")
    imports = re.findall(r"^(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", text, re.M)
    modules = sorted({a or b for a, b in imports})
    if modules:
        said.append(f"It imports {_listed(modules)}.")
    functions = re.findall(r"^(?:async\s+)?def\s+(\w+)\s*\(", text, re.M)
    classes = re.findall(r"^class\s+(\w+)", text, re.M)
    if classes:
        said.append(f"It defines the {_plural(len(classes), 'class', 'classes')} {_listed(classes)}.")
    if functions:
        said.append(
            f"It defines the {_plural(len(functions), 'function', 'functions')} {_listed(functions)}."
        )
    loops = re.findall(r"^\s*(for|while)\b", text, re.M)
    if loops:
        said.append(f"It has {_plural(len(loops), 'a loop', f'{len(loops)} loops')}.")
    prints = re.findall(r"\bprint\((.+)\)\s*$", text, re.M)
    if prints:
        said.append(
            f"It prints {_listed([p.strip() for p in prints[:4]])}{' and more' if len(prints) > 4 else ''}."
        )
    if 'if __name__ == "__main__"' in text or "if __name__ == '__main__'" in text:
        said.append('When run as a program, it calls its main code under `if __name__ == "__main__"`.')
    return said


def _script(text: str, function: str, output: str) -> list[str]:
    said: list[str] = []
    functions = re.findall(function, text, re.M)
    if functions:
        said.append(
            f"It defines the {_plural(len(functions), 'function', 'functions')} {_listed(functions)}."
        )
    printed = re.findall(output, text, re.M)
    if printed:
        said.append(
            f"It prints {_listed([p.strip() for p in printed[:4]])}{' and more' if len(printed) > 4 else ''}."
        )
    return said


def _json(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"It is not valid JSON: {error}."
    if isinstance(value, dict):
        return f"It holds an object with the keys {_listed(list(value)[:8])}."
    if isinstance(value, list):
        return f"It holds a list of {len(value)} items."
    return f"It holds the single value {json.dumps(value)[:60]}."


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _listed(items: list[str]) -> str:
    quoted = [f"`{item[:60]}`" for item in items[:8]]
    more = f" and {len(items) - 8} more" if len(items) > 8 else ""
    if len(quoted) == 1:
        return quoted[0] + more
    return ", ".join(quoted[:-1]) + (" and " if not more else ", ") + quoted[-1] + more
