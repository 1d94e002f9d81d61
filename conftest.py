"""Run-wide test settings: the rootdir conftest, so that it applies to notebooks too.

Kernels that tests start (nbmake's, jupyter_client's, JupyterLab's) are other processes that
inherit this environment: the machine's model keys are removed from it for the whole run, so no
notebook or kernel in a test can reach a real model (the offline model answers instead), and
their runtime files go to a temporary directory.
"""

import os
import shutil
import tempfile

import pytest

MODEL_ENVIRONMENT = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")


def pytest_configure(config: pytest.Config) -> None:
    for name in MODEL_ENVIRONMENT:
        os.environ.pop(name, None)
    # Registries that serve (notebooks, kernels, servers in subprocesses) write their runtime
    # files here, never into the user's Jupyter runtime directory.
    os.environ["AGENTOS_NB_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="agentos-nb-test-runtime-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("AGENTOS_NB_RUNTIME_DIR", ""), ignore_errors=True)
