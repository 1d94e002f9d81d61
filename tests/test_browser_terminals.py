"""The browser tier for notebook 07: the terminal widget in JupyterLab takes typed keys and shows
the shell's answer, and a VM's preview page shows in an IFrame (see tests/test_browser.py for
the server, the page and Run All)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from lab_server import JupyterLab
from playwright.sync_api import Page, expect
from test_browser import (  # the fixtures are used by name
    REPO,
    STEP_TIMEOUT_MS,
    copy_without_outputs,
    evidence_on_failure,
    lab,  # noqa: F401
    lab_root,  # noqa: F401
    output_dir,  # noqa: F401
    page,  # noqa: F401
    run_all,
    save_screenshots,
)

NOTEBOOK = "07_processes_and_terminals.ipynb"


@pytest.mark.browser
@pytest.mark.timeout(480)
def test_typing_into_the_terminal_widget_and_a_preview_in_an_iframe(
    page: Page,  # noqa: F811
    lab: JupyterLab,  # noqa: F811
    lab_root: Path,  # noqa: F811
    output_dir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Notebook 07 run in the browser; then `echo hi` typed into its terminal shows `hi` on the
    terminal's screen, and the preview IFrame shows the page the VM's files hold."""
    notebook = nbformat.read(REPO / "notebooks" / NOTEBOOK, as_version=4)
    copy_without_outputs(notebook, lab_root / NOTEBOOK)
    with evidence_on_failure(page, lab, output_dir):
        run_all(page, lab, NOTEBOOK)
        terminal = page.locator(".agentos-terminal")
        expect(terminal).to_have_count(1)
        rows = terminal.locator(".xterm-rows")
        expect(rows).to_contain_text("$", timeout=STEP_TIMEOUT_MS)  # the shell's first prompt
        terminal.scroll_into_view_if_needed()
        terminal.click()
        page.keyboard.type("echo hi")
        page.keyboard.press("Enter")
        lines = [re.compile(r"^\s*\$ echo hi\s*$"), re.compile(r"^\s*hi\s*$")]
        for line in lines:
            expect(rows.locator("div").filter(has_text=line)).to_have_count(1, timeout=STEP_TIMEOUT_MS)
        save_screenshots(page, terminal, output_dir, "terminal", capsys)

        frame = page.frame_locator("iframe[src*='/previews/']")
        expect(frame.locator("h1.preview-heading")).to_have_text("Hello from the VM", timeout=STEP_TIMEOUT_MS)
        iframe = page.locator("iframe[src*='/previews/']")
        iframe.scroll_into_view_if_needed()
        iframe.screenshot(path=output_dir / "preview.png")
