"""Layers point one way: no module of agentos_nb imports a layer above its own, not even lazily
inside a function or under `if TYPE_CHECKING:` (either would bring back the import cycle that
`registry.serve()` and `registry.dashboard()` once made from inside the runtime).

Lowest first: the base (`errors`, `events`) < `store` < `actors` < `vm` < `agents` < the faces
(`http`, `jupyter`) < the top-level modules (`__init__`, `app`, `cli`, `demo`, ...), which
compose the faces onto the runtime. One face may use another only where `ACROSS_FACES` says.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import agentos_nb

PACKAGE = Path(agentos_nb.__file__).parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "events"),
    ("store",),
    ("actors",),
    ("vm",),
    ("agents",),
    ("http", "jupyter"),
)
"""The subpackages and base modules of agentos_nb by layer, lowest first; every other name
(the package itself and its top-level modules) is the top layer."""
TOP = len(LAYERS)
FACES = {"http", "jupyter"}
ACROSS_FACES = {("jupyter", "agentos_nb.http.runtime_files")}
"""Face-to-face imports allowed: the jupyter-server extension finds kernels' registries through
the HTTP face's runtime files, which load nothing of the runtime."""
_LAYER_OF = {part: number for number, parts in enumerate(LAYERS) for part in parts}


@dataclass(frozen=True)
class Upward:
    """An import of a layer above the importer's own (or of another face)."""

    path: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.importer} (layer {_name(self.importer)}) imports "
            f"{self.imported} (layer {_name(self.imported)})"
        )


def layer_of(module: str) -> int | None:
    """The layer of a module of agentos_nb; None for one outside the package."""
    parts = module.split(".")
    if parts[0] != "agentos_nb":
        return None
    if len(parts) == 1:
        return TOP
    return _LAYER_OF.get(parts[1], TOP)


def _name(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in _LAYER_OF else "top"


def imported_modules(tree: ast.AST, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module `tree` imports, wherever the import is (module level, a function, an
    `if TYPE_CHECKING:` block), with its line: `import` and `from ... import` (relative ones
    resolved), and `importlib.import_module(...)` or `__import__(...)` of a constant name."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""
        elif isinstance(node, ast.Call) and _imports_by_name(node.func) and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                yield node.lineno, name.value


def _imports_by_name(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def upward_imports(source: str, module: str, path: str, *, is_package: bool = False) -> list[Upward]:
    """The imports in `source` (the text of `module`, found at `path`) that point up."""
    importer_layer = layer_of(module)
    assert importer_layer is not None, f"{module} is not a module of agentos_nb"
    found = []
    for line, imported in imported_modules(ast.parse(source, path), module, is_package=is_package):
        imported_layer = layer_of(imported)
        if imported_layer is None:
            continue
        importer_part, imported_part = _name(module), _name(imported)
        across = (
            importer_part in FACES
            and imported_part in FACES
            and importer_part != imported_part
            and (importer_part, imported) not in ACROSS_FACES
        )
        if imported_layer > importer_layer or across:
            found.append(Upward(path, line, module, imported))
    return sorted(found, key=lambda upward: upward.line)


def package_modules() -> Iterator[tuple[Path, str]]:
    """Every module of agentos_nb, with its dotted name."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = [PACKAGE.name, *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts)


# --- the package ---------------------------------------------------------------------------------


def test_no_module_imports_a_layer_above_its_own():
    found = [
        str(upward)
        for path, module in package_modules()
        for upward in upward_imports(
            path.read_text(),
            module,
            str(path.relative_to(PACKAGE.parent)),
            is_package=path.name == "__init__.py",
        )
    ]
    assert found == [], "imports that point up:\n" + "\n".join(found)


def test_every_subpackage_has_a_layer():
    """A new subpackage is placed in `LAYERS` on purpose, not taken for the top by default."""
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    placed = {part for parts in LAYERS for part in parts}
    assert subpackages - placed == set()
    assert placed - subpackages <= {"errors", "events"}  # the base is two modules
    assert {path.stem for path in PACKAGE.glob("*.py")} >= {"errors", "events", "app", "cli"}


def test_the_walk_sees_every_layer():
    """Guards the check against passing vacuously: each layer has modules with imports to check."""
    modules = list(package_modules())
    layers = {layer_of(module) for _, module in modules}
    assert layers == set(range(TOP + 1))
    assert len(modules) > 50


def test_the_registry_setup_returns_loads_its_faces_only_when_asked():
    """`setup(...)` composes the faces on top of the runtime without loading them: tornado and
    ipywidgets come with `serve()` and `dashboard()`, not before."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from agentos_nb import actor, setup\n"
            "registry = setup(use={'worker': actor()})\n"
            "heavy = ('tornado', 'ipywidgets', 'pydantic_ai', 'agentos_nb.http', 'agentos_nb.jupyter')\n"
            "print(type(registry).__module__, sorted(m for m in sys.modules if m.startswith(heavy)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "agentos_nb.app []"


def test_the_agent_loop_loads_with_the_first_session():
    """Importing `agentos_nb.software` or declaring a VM type with `pi` costs no pydantic-ai
    import (most of a second); the first session loads it, in a thread."""
    script = (
        "import asyncio, sys\n"
        "from agentos_nb import agent_os, setup\n"
        "from agentos_nb.software import common, pi\n"
        "heavy = ('pydantic_ai', 'agentos_nb.agents.harness', 'ipywidgets', 'tornado')\n"
        "def loaded(): return sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)})\n"
        "print(loaded())\n"
        "async def main():\n"
        "    registry = setup(use={'writer': agent_os(software=[common, pi])})\n"
        "    print(loaded())\n"
        "    async with registry:\n"
        "        vm = registry.client().writer.get_or_create(['k'])\n"
        "        await vm.create_session('pi', model='offline')\n"
        "        print(loaded())\n"
        "asyncio.run(main())\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.split("\n")[:3] == [
        "[]",
        "[]",
        "['agentos_nb', 'pydantic_ai']",
    ]


# --- the checker fails on what it must -----------------------------------------------------------

RUNTIME_REACHING_UP = """\
from __future__ import annotations

from typing import TYPE_CHECKING

from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.store import Store

if TYPE_CHECKING:
    from agentos_nb.jupyter.dashboard import Dashboard


def serve(registry):
    from agentos_nb.http.server import HttpServer  # loads only when asked for

    return HttpServer(registry)


def errors_through_the_top():
    from agentos_nb import errors

    return errors
"""


def test_a_lazy_and_a_type_checking_upward_import_are_both_reported():
    found = upward_imports(RUNTIME_REACHING_UP, "agentos_nb.actors.example", "agentos_nb/actors/example.py")
    assert [(upward.line, upward.imported) for upward in found] == [
        (9, "agentos_nb.jupyter.dashboard"),
        (13, "agentos_nb.http.server"),
        (19, "agentos_nb"),
    ]
    assert str(found[0]) == (
        "agentos_nb/actors/example.py:9: agentos_nb.actors.example (layer actors) imports "
        "agentos_nb.jupyter.dashboard (layer jupyter)"
    )


def test_relative_and_by_name_imports_are_resolved_before_they_are_judged():
    source = (
        "import importlib\n"
        "from .. import agents\n"
        "from ..agents.harness import Harness\n"
        "from . import shell\n"
        "def later():\n"
        "    return importlib.import_module('agentos_nb.agents.pi'), __import__('agentos_nb.cli')\n"
    )
    found = upward_imports(source, "agentos_nb.vm.sessions", "agentos_nb/vm/sessions.py")
    assert [(upward.line, upward.imported) for upward in found] == [
        (2, "agentos_nb"),
        (3, "agentos_nb.agents.harness"),
        (6, "agentos_nb.agents.pi"),
        (6, "agentos_nb.cli"),
    ]
    package = upward_imports("from .server import HttpServer\n", "agentos_nb.http", "x", is_package=True)
    assert package == []


def test_one_face_uses_another_only_where_allowed():
    allowed = upward_imports(
        "from agentos_nb.http.runtime_files import list_runtime_files\n",
        "agentos_nb.jupyter.server_routes",
        "agentos_nb/jupyter/server_routes.py",
    )
    assert allowed == []
    found = upward_imports(
        "from agentos_nb.http.server import HttpServer\n", "agentos_nb.jupyter.magics", "magics.py"
    )
    assert [upward.imported for upward in found] == ["agentos_nb.http.server"]
    found = upward_imports("import agentos_nb.jupyter.displays\n", "agentos_nb.http.routes", "routes.py")
    assert [upward.imported for upward in found] == ["agentos_nb.jupyter.displays"]


def test_the_top_composes_everything_and_the_base_nothing():
    composing = "from agentos_nb.http.serving import stop_when_signalled\nimport agentos_nb.jupyter\n"
    assert upward_imports(composing, "agentos_nb.app", "agentos_nb/app.py") == []
    assert [u.imported for u in upward_imports("import agentos_nb.store\n", "agentos_nb.errors", "e.py")] == [
        "agentos_nb.store"
    ]
