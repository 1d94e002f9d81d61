"""The browser tier for permission requests: notebook 08 run in JupyterLab with nobody
answering in code, so its `%%agent` cell waits on a real click of *Allow once* in its output;
the turn then goes on, the file is written, and the rest of the notebook runs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from lab_server import JupyterLab
from playwright.sync_api import Page, expect
from test_browser import (  # noqa: F401 (fixtures)
    REPO,
    RUN_ALL_TIMEOUT_MS,
    STDERR_OUTPUT,
    STEP_TIMEOUT_MS,
    copy_without_outputs,
    evidence_on_failure,
    lab,
    lab_root,
    output_dir,
    page,
    save_screenshots,
)

NOTEBOOK = "08_permissions_and_modes.ipynb"


def attended(notebook: nbformat.NotebookNode) -> None:
    """The notebook as a reader who clicks runs it: no answers in code."""
    [setup] = [c for c in notebook.cells if c.cell_type == "code" and "UNATTENDED = True" in c.source]
    setup.source = setup.source.replace("UNATTENDED = True", "UNATTENDED = False")


@pytest.mark.browser
@pytest.mark.timeout(480)
def test_a_click_on_allow_once_in_the_agent_output_lets_the_turn_go_on(
    page: Page,  # noqa: F811
    lab: JupyterLab,  # noqa: F811
    lab_root: Path,  # noqa: F811
    output_dir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    notebook = nbformat.read(REPO / "notebooks" / NOTEBOOK, as_version=4)
    attended(notebook)
    copy_without_outputs(notebook, lab_root / NOTEBOOK)
    with evidence_on_failure(page, lab, output_dir):
        page.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        kernel_status = page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]')
        expect(kernel_status).to_have_text(re.compile(r"^(?!No Kernel).+ \| Idle$"), timeout=STEP_TIMEOUT_MS)
        page.get_by_role("menubar").get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()

        agent_cell = page.locator(".jp-Notebook .jp-CodeCell", has_text="%%agent writer demo")
        request = agent_cell.locator(".agentos-permission")
        expect(request).to_contain_text("Permission needed", timeout=RUN_ALL_TIMEOUT_MS)
        expect(request).to_contain_text("write /home/user/hello.py")
        outputs = agent_cell.locator(".jp-OutputArea")
        expect(outputs).to_contain_text("waiting for your answer")
        # The turn waits: the cell is still running, and the cells after it are queued.
        expect(agent_cell.locator(".jp-InputPrompt")).to_have_text("[*]:")
        save_screenshots(page, request, output_dir, "permission-request", capsys)

        request.locator(".agentos-permission-allow-once").click()

        expect(request).to_contain_text("allowed once", timeout=STEP_TIMEOUT_MS)
        expect(outputs).to_contain_text("I wrote hello.py.", timeout=STEP_TIMEOUT_MS)
        expect(agent_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[\d+\]:$"))
        for button in request.locator("button").all():
            expect(button).to_be_disabled()
        # The rest of the notebook ran after it: the file the click allowed is printed.
        printed = page.locator(".jp-Notebook .jp-CodeCell", has_text="answering.cancel()")
        expect(printed.locator(".jp-OutputArea")).to_contain_text('print("hello, world")')
        last = page.locator(".jp-Notebook .jp-CodeCell").last
        expect(last.locator(".jp-InputPrompt")).to_have_text(
            re.compile(r"^\[\d+\]:$"), timeout=RUN_ALL_TIMEOUT_MS
        )
        assert page.locator(STDERR_OUTPUT).all_text_contents() == []
        save_screenshots(page, agent_cell, output_dir, "permission-answered", capsys)
