"""The channel between the kernel and a VM host: length-prefixed frames over a pipe.

A frame is a JSON header (a pydantic model, so both sides check what they read) followed by
raw byte blobs, file contents and archives, which never pass through JSON nor pickle. On the
wire: two big-endian u32 (header length, total blob length), the header, the blobs.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.vm.mounts import Mount
from agentos_nb.vm.network import Network
from agentos_nb.vm.shell import Feature, ShellLimits

FrameKind = Literal["request", "reply", "call", "answer", "cancel", "output"]
"""request/reply: the kernel asks a host. call/answer: a script on the host runs a host
command, which the kernel answers. cancel: the other side no longer waits for frame `id`.
output: what a process (the request `id`, see `spawned.py`) printed so far, before its reply:
`args["streams"]` names the stream of each blob."""

_PREFIX = struct.Struct("!II")
MAX_HEADER = 64 * 1024 * 1024


class Failure(BaseModel):
    """An error raised on the host, as the kernel raises it again."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["os", "value", "type", "engine"]
    message: str
    errno: int | None = None
    filename: str | None = None


class Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FrameKind
    id: int
    vm: str = ""
    op: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    failure: Failure | None = None
    blobs: list[int] = Field(default_factory=list)
    """The sizes of the blobs that follow the header."""


class VmLayout(BaseModel):
    """What a VM needs on its host (the `open` request): its limits, its engine features, the
    names of its host commands, the host directories it mounts with the roots that bound them
    (the host checks them again), and its network, credentials included (None: no network)."""

    model_config = ConfigDict(extra="forbid")

    limits: ShellLimits
    features: list[Feature]
    commands: list[str]
    mounts: list[Mount] = Field(default_factory=list)
    mount_roots: list[str] = Field(default_factory=list)
    network: Network | None = None


def encode(header: Header, blobs: tuple[bytes, ...] = ()) -> bytes:
    header = header.model_copy(update={"blobs": [len(blob) for blob in blobs]}) if blobs else header
    text = header.model_dump_json(exclude_defaults=True).encode()
    return b"".join((_PREFIX.pack(len(text), sum(header.blobs)), text, *blobs))


async def read_frame(reader: asyncio.StreamReader) -> tuple[Header, list[bytes]] | None:
    """The next frame, or None at the end of the stream."""
    try:
        prefix = await reader.readexactly(_PREFIX.size)
    except asyncio.IncompleteReadError:
        return None
    header_size, blob_size = _PREFIX.unpack(prefix)
    if header_size > MAX_HEADER:
        raise ValueError(f"frame header of {header_size} bytes")
    header = Header.model_validate_json(await reader.readexactly(header_size))
    data = await reader.readexactly(blob_size) if blob_size else b""
    blobs, start = [], 0
    for size in header.blobs:
        blobs.append(data[start : start + size])
        start += size
    return header, blobs
