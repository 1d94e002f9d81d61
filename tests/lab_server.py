"""A throwaway JupyterLab server for the browser test.

It runs this environment's `python -m jupyterlab` on 127.0.0.1 with a random token, and keeps every
piece of state (config, settings, workspaces, runtime files, IPython profile) in a directory of the
test's own, so the user's Jupyter setup is neither read nor changed. Its kernels get an environment
without model keys or provider URLs: notebooks answer with the offline model.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

# JupyterLab settings for a quiet, deterministic page: every cell stays attached to the DOM (so
# the test sees outputs scrolled out of view), and no news or update check reaches the network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def model_free_environment(state_dir: Path) -> dict[str, str]:
    """The server's (and so its kernels') environment: ours, minus model keys and provider URLs,
    with Jupyter's and IPython's per-user directories moved into `state_dir`."""
    environment = {
        name: value for name, value in os.environ.items() if not name.endswith(("_API_KEY", "_BASE_URL"))
    }
    for variable, folder in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        environment[variable] = str(state_dir / folder)
    environment["JUPYTER_PLATFORM_DIRS"] = "1"
    # `python`, `jupyter` and what kernels start are this environment's, activated or not.
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")])
    return environment


def free_port() -> int:
    """A port nobody listens on right now (the server refuses to fall back to another one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class JupyterLab:
    """A running server: its process (the leader of a process group), address, token and log."""

    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log_path: Path

    @classmethod
    def start(cls, root_dir: Path, state_dir: Path, log_path: Path) -> JupyterLab:
        """Start serving `root_dir`; returns at once (see `wait_until_ready`)."""
        settings_dir = state_dir / "settings"
        for plugin, values in LAB_SETTINGS.items():
            path = settings_dir / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        port = free_port()
        token = secrets.token_hex(24)
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root_dir}",
            f"--LabApp.user_settings_dir={settings_dir}",
            f"--LabApp.workspaces_dir={state_dir / 'workspaces'}",
        ]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=root_dir,
                env=model_free_environment(state_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
        return cls(process, f"http://127.0.0.1:{port}", token, log_path)

    def url(self, path: str) -> str:
        """The address of `path` (e.g. "lab/tree/x.ipynb"), with the token a browser needs."""
        separator = "&" if "?" in path else "?"
        return f"{self.base_url}/{path}{separator}token={self.token}"

    def log(self) -> str:
        """What the server has written so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def api(self, path: str) -> object:
        """GET a REST endpoint (e.g. "api/status") and decode its JSON."""
        request = urllib.request.Request(
            f"{self.base_url}/{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def wait_until_ready(self, timeout: float) -> None:
        """Block until /api/status answers; fail with the server's log if it exits or is too slow.
        (The test is synchronous, as Playwright's sync API is: a bounded poll is the way.)"""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.api("api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"JupyterLab did not answer on {self.base_url} within {timeout} s:\n{self.log()}"
                    ) from None
                time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server and everything it started, killing what lingers after `grace` seconds.
        Kernels run in sessions of their own, so they are found by ancestry, not process group."""
        if self.process.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                server = psutil.Process(self.process.pid)
                processes = [server, *server.children(recursive=True)]
                for process in processes:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        process.terminate()
                _, alive = psutil.wait_procs(processes, timeout=grace)
                for process in alive:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left in its process group
        self.process.wait(timeout=grace)
