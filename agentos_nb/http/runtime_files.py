"""Runtime files: how a serving registry tells other processes of the same user where it is.

Each serving registry writes `<runtime_dir>/agentos_nb/registry-<pid>-<safe name>.json`, readable
only by its user (it holds the bearer token), and removes it when it stops. The remote client
finds a token there for a URL it is given; the Jupyter server extension lists the registries
running in kernels. `<runtime_dir>` is $AGENTOS_NB_RUNTIME_DIR, else Jupyter's runtime directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, Field

RUNTIME_DIR_VARIABLE = "AGENTOS_NB_RUNTIME_DIR"
SUBDIRECTORY = "agentos_nb"


class RegistryRuntimeInfo(BaseModel):
    """What a runtime file holds."""

    id: str
    """`<pid>-<safe name>`: unique among the registries running on this machine."""
    name: str
    url: str
    token: str
    pid: int = Field(gt=0)
    started_at: float


def runtime_dir() -> Path:
    """The directory that holds the runtime files (it may not exist yet)."""
    configured = os.environ.get(RUNTIME_DIR_VARIABLE)
    if configured:
        base = Path(configured)
    else:
        try:
            from jupyter_core.paths import jupyter_runtime_dir
        except ImportError:
            base = Path.home() / ".local" / "share" / "jupyter" / "runtime"
        else:
            base = Path(jupyter_runtime_dir())
    return base / SUBDIRECTORY


def safe_name(name: str) -> str:
    """A registry name as a file name can carry it."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-")[:64] or "registry"


def write_runtime_file(*, name: str, url: str, token: str) -> tuple[Path, RegistryRuntimeInfo]:
    """Write this process's runtime file for registry `name`, mode 0600, atomically."""
    pid = os.getpid()
    info = RegistryRuntimeInfo(
        id=f"{pid}-{safe_name(name)}", name=name, url=url, token=token, pid=pid, started_at=time.time()
    )
    directory = runtime_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"registry-{info.id}.json"
    partial = directory / f".{path.name}.{os.urandom(4).hex()}.tmp"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(info.model_dump_json(indent=2).encode())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return path, info


def remove_runtime_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def list_runtime_files() -> list[RegistryRuntimeInfo]:
    """The registries serving on this machine, oldest first; files that cannot be read, or
    whose process is gone (it was killed before it could remove its file), are skipped."""
    directory = runtime_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("registry-*.json"):
        try:
            info = RegistryRuntimeInfo.model_validate_json(path.read_bytes())
        except (OSError, pydantic.ValidationError):
            continue
        if _alive(info.pid):
            found.append(info)
    return sorted(found, key=lambda info: info.started_at)


def find_runtime_file(url: str) -> RegistryRuntimeInfo | None:
    """The newest registry serving at `url` (localhost and 127.0.0.1 are one host)."""
    wanted = _origin(url)
    matching = [info for info in list_runtime_files() if _origin(info.url) == wanted]
    return matching[-1] if matching else None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number matches no registry
        port = -1
    return parts.scheme, host, port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, though not ours
        return True
    except OSError:
        return False
    return True
