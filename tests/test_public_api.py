"""The public API: every name of `agentos_nb.__all__` imports from the package, and is the object
its module defines, with a docstring on it and on each of its public methods and properties; the
names load on first use, so that a light module of the package (the runtime files the
jupyter-server extension reads at Jupyter's start) comes without the runtime."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import agentos_nb

INIT = Path(agentos_nb.__file__)


def test_every_public_name_imports_from_the_package_as_its_module_defines_it():
    assert set(agentos_nb.__all__) == {"errors", *agentos_nb._SOURCES}
    for name in agentos_nb.__all__:
        namespace: dict[str, object] = {}
        exec(f"from agentos_nb import {name}", namespace)
        if name == "errors":
            expected = importlib.import_module("agentos_nb.errors")
        else:
            expected = getattr(importlib.import_module(agentos_nb._SOURCES[name]), name)
        assert namespace[name] is expected, name
    assert set(dir(agentos_nb)) >= set(agentos_nb.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        agentos_nb.nothing  # noqa: B018
    with pytest.raises(ImportError):
        exec("from agentos_nb import nothing", {})


def test_what_type_checkers_read_is_what_the_package_exports():
    """The imports under TYPE_CHECKING name each public name once, from the module `_EXPORTS` says."""
    tree = ast.parse(INIT.read_text())
    [checking] = [node for node in tree.body if isinstance(node, ast.If)]
    imported = {
        alias.name: node.module
        for node in checking.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"errors": "agentos_nb", **agentos_nb._SOURCES}


def test_the_public_api_is_documented():
    """Each public name, each error class, and each of their non-underscore methods and
    properties defined in agentos_nb (inherited ones included) says what a caller needs to
    know. A method that implements a documented protocol or base method (`@override`) may leave
    its docstring to that one: `inspect.getdoc` finds it there."""
    errors = importlib.import_module("agentos_nb.errors")
    public = [(name, getattr(agentos_nb, name)) for name in agentos_nb.__all__ if name != "errors"]
    public += [
        (f"errors.{name}", value)
        for name, value in vars(errors).items()
        if inspect.isclass(value) and value.__module__ == errors.__name__ and not name.startswith("_")
    ]
    missing: dict[str, str] = {}  # where it is defined -> how the public API reaches it
    for name, value in public:
        for defined_in, reached_as in _undocumented(name, value):
            missing.setdefault(defined_in, reached_as)
    assert not missing, "undocumented public API (add a docstring):\n" + "\n".join(
        f"  {reached_as} (in {defined_in})" for defined_in, reached_as in missing.items()
    )


def test_ruff_asks_for_docstrings_in_every_module_of_the_public_api():
    """pyproject.toml exempts every file but the listed ones from ruff's docstring rules: the
    list must name each module that defines a public name or a class one extends."""
    config = tomllib.loads((INIT.parent.parent / "pyproject.toml").read_text())
    [pattern] = [p for p in config["tool"]["ruff"]["lint"]["per-file-ignores"] if p.startswith("!")]
    paths = re.fullmatch(r"!agentos_nb/\{(.+)\}\.py", pattern)
    assert paths is not None, pattern
    listed = {f"agentos_nb.{path.replace('/', '.')}" for path in paths[1].split(",")}
    needed = {"agentos_nb.errors"}
    for name in agentos_nb.__all__:
        value = getattr(agentos_nb, name)
        if inspect.isclass(value):
            needed |= {cls.__module__ for cls in value.__mro__ if cls.__module__.startswith("agentos_nb")}
        elif inspect.isroutine(value):
            needed.add(value.__module__)
    assert needed <= listed, sorted(needed - listed)


def _undocumented(name: str, value: Any) -> list[tuple[str, str]]:
    if inspect.isroutine(value):
        return [] if _has_doc(inspect.getdoc(value)) else [(f"{value.__module__}.{value.__qualname__}", name)]
    if not inspect.isclass(value):
        return []  # a type alias (`SessionUpdate`): its docstring is in the source only
    missing = []
    # The class's own docstring: `inspect.getdoc` would lend it a base's (pydantic's
    # `BaseModel`), and a dataclass without one gets its signature as `__doc__`.
    own = vars(value).get("__doc__")
    if not _has_doc(own) or own.startswith(f"{value.__name__}("):
        missing.append((f"{value.__module__}.{value.__qualname__}", name))
    for attribute in dir(value):
        if attribute.startswith("_"):
            continue
        owner = next((cls for cls in value.__mro__ if attribute in vars(cls)), None)
        if owner is None or not owner.__module__.startswith("agentos_nb"):
            continue  # pydantic's, the standard library's
        member = inspect.getattr_static(value, attribute)
        if isinstance(member, staticmethod | classmethod):
            member = member.__func__
        if isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member) and not _has_doc(inspect.getdoc(getattr(value, attribute))):
            missing.append((f"{owner.__module__}.{owner.__qualname__}.{attribute}", f"{name}.{attribute}"))
    return missing


def _has_doc(doc: str | None) -> bool:
    return bool(doc and doc.strip())


def test_a_light_module_of_the_package_loads_without_the_runtime():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, agentos_nb.http.runtime_files; "
            "print(sorted(m for m in sys.modules if m.startswith(('pydantic_ai', 'agentos_nb.actors'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
