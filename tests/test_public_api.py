"""The public API: every name of `agentos_nb.__all__` imports from the package, and is the object
its module defines; the names load on first use, so that a light module of the package (the
runtime files the jupyter-server extension reads at Jupyter's start) comes without the runtime."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

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
