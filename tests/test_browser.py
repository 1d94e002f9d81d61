"""The browser tier: JupyterLab on 127.0.0.1, driven by Playwright in Debian's chromium.

A notebook is opened as a newcomer would, run with Run -> Run All Cells, and its widgets are
checked in the rendered page. Screenshots and the server's log are kept under
test-output/browser/<test>/ (gitignored). Deselect with `-m "not browser"` where chromium is
missing; `.ci/run` installs it, so CI always runs this tier.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from lab_server import JupyterLab, model_free_environment
from playwright.sync_api import Locator, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "test-output" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
# What this machine's chromium needs: no sandbox as root, no GPU, and no background connections
# (a closed network refuses them, noisily).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 60_000  # one page step: kernel start, a click, a render
RUN_ALL_TIMEOUT_MS = 120_000  # every cell of a notebook
NOTEBOOK = "03_agent_to_agent.ipynb"
STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """This test's folder of screenshots and logs, emptied of an earlier run's."""
    folder = OUTPUT / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    """The folder JupyterLab serves, and its kernels' working directory."""
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def lab(lab_root: Path, tmp_path: Path, output_dir: Path) -> Iterator[JupyterLab]:
    server = JupyterLab.start(lab_root, tmp_path / "jupyter-state", output_dir / "jupyterlab.log")
    try:
        server.wait_until_ready(timeout=60)
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A page in a fresh headless chromium profile. Debian's chromium only: no browser download."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium, which .ci/run installs "
            "(apt-get install chromium). Deselect them with -m 'not browser'."
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1100},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            yield page
        finally:
            context.close()


def copy_without_outputs(notebook: nbformat.NotebookNode, destination: Path) -> None:
    """Save `notebook` as never run: no outputs, counts or saved widget state, so whatever the
    page shows later comes from this run's kernel."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, destination)


@contextmanager
def evidence_on_failure(page: Page, lab: JupyterLab, output_dir: Path) -> Iterator[None]:
    """On any failure, keep what the page looked like next to the server's log before failing."""
    try:
        yield
    except BaseException:
        shot = output_dir / "failure.png"
        try:
            page.screenshot(path=shot)
        except Exception as error:  # the page may be gone; the original failure matters more
            shot = Path(f"(no screenshot: {error})")
        print(f"browser test failed; screenshot {shot}, JupyterLab log {lab.log_path}")
        raise


def run_all(page: Page, lab: JupyterLab, notebook: str) -> None:
    """Open `notebook`, wait for its kernel, run every cell from the menu, and wait until the run
    is over; fail on any error or stderr output, and if a cell did not run."""
    page.goto(lab.url(f"lab/tree/{notebook}"))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # The status bar names the kernel once it is connected ("No Kernel | Idle" comes first).
    kernel_status = page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]')
    expect(kernel_status).to_have_text(re.compile(r"^(?!No Kernel).+ \| Idle$"), timeout=STEP_TIMEOUT_MS)
    page.get_by_role("menubar").get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # Over when no cell is queued or running ([*]) and one has run: all of them, or the cells
    # up to an error (JupyterLab then un-queues the rest).
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                .map(prompt => prompt.textContent.trim());
            return prompts.some(prompt => /^\\[\\d+\\]:$/.test(prompt)) && !prompts.includes('[*]:');
        }""",
        timeout=RUN_ALL_TIMEOUT_MS,
    )
    # Tracebacks and stderr both render as the stderr mime type in JupyterLab.
    errors = page.locator(STDERR_OUTPUT).all_text_contents()
    separator = "\n---\n"
    assert errors == [], f"cells wrote errors:\n{separator.join(errors)}"
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_text_contents()
    ran = [re.fullmatch(r"\[\d+\]:", prompt.strip()) is not None for prompt in prompts]
    assert all(ran), f"not every cell ran: {prompts}"


def save_screenshots(
    page: Page, element: Locator, output_dir: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keep `element` and the whole page, and say where past pytest's capture, even on success."""
    element.screenshot(path=output_dir / f"{name}.png")
    page.screenshot(path=output_dir / "page.png", full_page=True)
    with capsys.disabled():
        print(f"\nscreenshots: {output_dir / f'{name}.png'} and {output_dir / 'page.png'}")


def test_the_server_and_its_kernels_get_no_model_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-a-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", "/home/someone/.jupyter")
    environment = model_free_environment(tmp_path)
    assert "ANTHROPIC_API_KEY" not in environment
    assert "OPENAI_BASE_URL" not in environment
    assert environment["JUPYTER_CONFIG_DIR"] == str(tmp_path / "config")  # the user's is never read


@pytest.mark.browser
@pytest.mark.timeout(480)
def test_run_all_renders_a_widget(
    page: Page, lab: JupyterLab, lab_root: Path, output_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tier itself: server, chromium, Run All and the ipywidgets extension work together."""
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import ipywidgets\nanswer = 6 * 7"),
            nbformat.v4.new_code_cell(
                "banner = ipywidgets.HTML(f'<b>the answer is {answer}</b>')\n"
                "banner.add_class('smoke-banner')\n"
                "banner"
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(notebook, lab_root / "smoke.ipynb")
    with evidence_on_failure(page, lab, output_dir):
        run_all(page, lab, "smoke.ipynb")
        banner = page.locator(".smoke-banner")
        expect(banner).to_have_text("the answer is 42")
        save_screenshots(page, banner, output_dir, "widget", capsys)


@pytest.mark.browser
@pytest.mark.timeout(480)
def test_agent_to_agent_dashboard_shows_the_review_call(
    page: Page, lab: JupyterLab, lab_root: Path, output_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Notebook 03 run in the browser: the writer's `review.submit` call reaches the reviewer, and
    the live dashboard's Tool calls tab draws it and lists it as finished without error."""
    notebook = nbformat.read(REPO / "notebooks" / NOTEBOOK, as_version=4)
    copy_without_outputs(notebook, lab_root / NOTEBOOK)
    with evidence_on_failure(page, lab, output_dir):
        run_all(page, lab, NOTEBOOK)
        dashboard = page.locator(".agentos-dashboard")
        expect(dashboard).to_have_count(1)
        dashboard.locator(".lm-TabBar-tab", has_text=re.compile(r"^Tool calls$")).click()

        graph = dashboard.locator(".agentos-call-graph")
        for label in ("writer", "review.submit", "reviewer", re.compile(r"×\d+")):
            expect(graph).to_contain_text(label, timeout=RUN_ALL_TIMEOUT_MS)
        calls = dashboard.locator(".agentos-tool-calls")
        review_call = calls.locator("tbody tr", has_text="review.submit")
        expect(review_call).to_have_count(1)
        headers = calls.locator("thead th").all_text_contents()
        expected = {
            "caller": "writer/my-project",
            "tool": "review.submit",
            "reached": "reviewer/my-project",
            "result or error": re.compile(r'^\{"review"'),  # a failed call shows its error code first
        }
        for column, text in expected.items():
            expect(review_call.locator("td").nth(headers.index(column))).to_have_text(text)
        # the header counts the writer and the reviewer with the Tool calls tab on screen too
        expect(dashboard.locator(".agentos-dashboard-header")).to_contain_text("2 actors")

        dashboard.scroll_into_view_if_needed()
        save_screenshots(page, dashboard, output_dir, "dashboard", capsys)


@pytest.mark.browser
@pytest.mark.timeout(480)
def test_a_fresh_agent_cell_in_the_quickstart_makes_the_file_the_files_tab_shows(
    page: Page, lab: JupyterLab, lab_root: Path, output_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer's first own prompt: notebook 01 is run, then a new `%%agent` cell is typed with
    a request from the offline model's corpus; the reply says what was done, and the dashboard's
    Files tab shows the new file, whose text the viewer then shows."""
    from test_offline_everyday import CORPUS

    prompt = "Write a fizzbuzz program at fizz.py and run it"
    assert prompt in [case.prompt for case in CORPUS]
    notebook = nbformat.read(REPO / "notebooks" / "01_quickstart.ipynb", as_version=4)
    copy_without_outputs(notebook, lab_root / "01_quickstart.ipynb")
    with evidence_on_failure(page, lab, output_dir):
        run_all(page, lab, "01_quickstart.ipynb")
        # Type a new cell below the last one, as a newcomer would, and run it.
        page.locator(".jp-Notebook .jp-Cell").last.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        page.keyboard.press("Enter")
        page.keyboard.type(f"%%agent vm notebook\n{prompt}")
        page.keyboard.press("Shift+Enter")
        new_cell = page.locator(".jp-Notebook .jp-CodeCell", has_text=prompt)
        expect(new_cell.locator(".jp-InputArea")).to_contain_text(prompt)
        expect(new_cell.locator(".jp-OutputArea")).to_contain_text("I wrote", timeout=STEP_TIMEOUT_MS)
        expect(new_cell.locator(".jp-OutputArea")).to_contain_text("FizzBuzz")
        assert page.locator(STDERR_OUTPUT).all_text_contents() == []

        dashboard = page.locator(".agentos-dashboard")
        expect(dashboard).to_have_count(1)
        dashboard.scroll_into_view_if_needed()
        dashboard.locator(".lm-TabBar-tab", has_text=re.compile(r"^Files$")).click()
        tree = dashboard.locator(".agentos-file-tree select")
        row = tree.locator("option", has_text="fizz.py")
        if row.count() == 0:  # the tab relists on the VM's next change event; Refresh reads now
            dashboard.locator(".agentos-file-refresh").click()
        expect(row).to_have_count(1, timeout=STEP_TIMEOUT_MS)
        tree.select_option(label=row.text_content() or "")
        expect(dashboard.locator(".agentos-file-viewer")).to_contain_text('print("FizzBuzz")')
        save_screenshots(page, dashboard, output_dir, "files", capsys)
