"""What every notebook in `notebooks/` offers a newcomer before a cell of theirs runs (nbmake
runs the notebooks themselves)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_every_notebook_loads_the_magics_so_a_typed_agent_cell_works(path: Path) -> None:
    """A `%%agent` cell added anywhere finds its magic: the notebook loads the extension in
    one of its first code cells, before any cell a reader would copy."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    loads = [index for index, source in enumerate(code) if "%load_ext agentos_nb" in source]
    assert loads, f"{path.name} never runs %load_ext agentos_nb"
    assert loads[0] <= 2, f"{path.name} loads the extension only in code cell {loads[0] + 1}"
