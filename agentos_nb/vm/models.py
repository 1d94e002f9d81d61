"""What VM actions return: pydantic models, so results print, compare and cross HTTP as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

EntryKind = Literal["file", "directory", "symlink", "other"]
"""What a path holds; "other" is a fifo or the like, which a VM can make but not save."""


class ExecResult(BaseModel):
    """The outcome of `exec`: a non-zero exit code is a result, not an exception."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    stdout: str
    stderr: str
    truncated: bool = False
    timed_out: bool = False


class FileStat(BaseModel):
    """What `stat` returns: `mode` holds the permission bits (0o644), `modified` and `created`
    are Unix timestamps in seconds."""

    model_config = ConfigDict(frozen=True)

    path: str
    kind: EntryKind
    size: int
    mode: int
    modified: float
    created: float


class DirEntry(BaseModel):
    """One entry of `readdir`: its name, its full path, and (for a symlink, of the link
    itself) its kind and size in bytes."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str
    kind: EntryKind
    size: int
    target: str | None = None
    """Where a symlink points, as it was written (None for other kinds)."""


class FileRead(BaseModel):
    """One path of `read_files`: its content, or the error that kept it from being read."""

    model_config = ConfigDict(frozen=True)

    path: str
    content: bytes | str | None = None
    error: str | None = None


class FileWrite(BaseModel):
    """One path of `write_files`: written, or why not."""

    model_config = ConfigDict(frozen=True)

    path: str
    ok: bool
    error: str | None = None
