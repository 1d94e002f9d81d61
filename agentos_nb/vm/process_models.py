"""What a VM's processes (`spawn`) look like from outside: their info and their output chunks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ProcessStatus = Literal["running", "exited", "killed", "lost"]
"""`exited` on its own; `killed` by `kill`; `lost` with its VM (a host crash, or the VM's
sleep or destruction), which ends every process of the VM."""


class ProcessInfo(BaseModel):
    """A process of a VM, running or ended."""

    model_config = ConfigDict(frozen=True)

    pid: int = Field(description="Its id in this VM, from 1; not reused while the VM is awake.")
    command: str
    cwd: str
    status: ProcessStatus
    exit_code: int | None = Field(
        None, description="None while running (or lost); 128+N if killed by signal N."
    )
    signal: str | None = Field(None, description="The signal `kill` sent (SIGTERM, ...), if it was killed.")
    error: str | None = Field(None, description="Why a lost process was lost.")
    started_at: float = Field(description="Unix time.")
    ended_at: float | None = None
    stdin_open: bool = Field(description="Whether `write_stdin` can still feed it.")
    output_bytes: int = Field(0, description="Bytes it printed, both streams.")
    dropped_bytes: int = Field(0, description="The oldest of them, no longer kept (the ring is full).")


class ProcessOutput(BaseModel):
    """A chunk of a process's output, in the order the process printed it."""

    model_config = ConfigDict(frozen=True)

    pid: int
    stream: Literal["stdout", "stderr"]
    data: str
    offset: int = Field(description="Bytes the process printed before this chunk.")
    end: int = Field(description="`offset` plus this chunk's size: pass it as `since` to resume after it.")
    dropped: int = Field(
        0, description="Bytes before this chunk that this reader will never see (no longer kept)."
    )
