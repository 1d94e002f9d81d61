"""Host directories mounted into a VM, and the host's allow-list that bounds them.

A mount is the host's decision, never the VM's: `agent_os(mounts=[...], mount_roots=[...])`
names both the directories and the roots they must lie under, and with no roots nothing is
mountable. Paths are checked twice, by their real location (symlinks resolved): when the VM
type is defined, for an early error, and on the VM's host when the VM opens, which is the
check that counts (a symlink swapped in between is caught there). Inside the VM the engine
confines each mount to its directory: a symlink in it that leads out is refused, and a
read-only mount refuses every change (`EROFS`, naming the path).
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

_KEPT_FOR_THE_VM = ("/dev", "/tmp")
"""VM paths that stay the VM's own: a mount may not be one, nor hold one (nor lie in /dev)."""


class Mount(BaseModel):
    """A host directory shown in a VM at `vm_path`: read-only unless `read_only=False`.

    Its files stay on the host: a VM's snapshots leave them out, and a VM that wakes elsewhere
    sees the directory as it is then."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host_path: str
    vm_path: str
    read_only: bool = True


def mount(host_path: str | os.PathLike[str], vm_path: str, *, read_only: bool = True) -> Mount:
    """Show the host directory `host_path` inside VMs at `vm_path`, read-only by default. It must
    lie under one of the VM type's `mount_roots`."""
    if not isinstance(vm_path, str):
        raise TypeError(f"mount: vm_path must be a str, not {type(vm_path).__name__}")
    return Mount(host_path=os.fspath(host_path), vm_path=vm_path, read_only=read_only)


def resolve_roots(roots: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The allow-list as real, absolute directories (a root that is not a directory is a mistake)."""
    resolved = []
    for root in roots:
        real = os.path.realpath(os.path.expanduser(os.fspath(root)))
        if not os.path.isdir(real):
            raise NotADirectoryError(
                errno.ENOTDIR, "mount root is not a directory on the host", os.fspath(root)
            )
        resolved.append(real)
    return tuple(resolved)


def resolve_mounts(mounts: Sequence[Mount], roots: Sequence[str]) -> tuple[Mount, ...]:
    """`mounts` with each host path made real and checked against `roots` (already real), and
    each VM path checked: raises an `OSError` or `ValueError` that names the path at fault."""
    resolved = tuple(_resolved(item, roots) for item in mounts)
    places = [item.vm_path for item in resolved]
    for index, place in enumerate(places):
        for other in places[index + 1 :]:
            if _within(place, other) or _within(other, place):
                raise ValueError(f"mounts at {place} and {other} overlap: one VM path may hold one mount")
    return resolved


def check_vm_paths(mounts: Sequence[Mount], kept: Iterable[str]) -> None:
    """Refuse a mount over the VM paths in `kept` (the home directory, the files every boot lays
    down): it would hide them, or the boot would write into the host directory."""
    for item in mounts:
        for path in kept:
            if _within(path, item.vm_path) or _within(item.vm_path, path):
                raise ValueError(f"mount at {item.vm_path}: the VM keeps {path} there for itself")


def is_mounted(path: str, mount_points: Iterable[str]) -> bool:
    """Whether the VM path `path` is a mount point or lies inside one."""
    return any(_within(path, point) for point in mount_points)


def holds_mount(path: str, mount_points: Iterable[str]) -> bool:
    """Whether the VM path `path` is a mount point, lies inside one, or leads to one."""
    return any(_within(path, point) or _within(point, path) for point in mount_points)


def _resolved(item: Mount, roots: Sequence[str]) -> Mount:
    vm_path = item.vm_path
    if not vm_path.startswith("/") or posixpath.normpath(vm_path) != vm_path or "\0" in vm_path:
        raise ValueError(
            f"mount: the VM path must be absolute and normalised, like /mnt/data, not {vm_path!r}"
        )
    if vm_path == "/" or _within(vm_path, "/dev"):
        raise ValueError(f"mount at {vm_path}: the VM's root and /dev stay its own")
    for kept in _KEPT_FOR_THE_VM:
        if _within(kept, vm_path):
            raise ValueError(f"mount at {vm_path}: {kept} stays the VM's own")
    real = os.path.realpath(os.path.expanduser(item.host_path))
    if not os.path.isdir(real):
        raise NotADirectoryError(errno.ENOTDIR, "mount: not a directory on the host", item.host_path)
    if not any(_within(real, root) for root in roots):
        allowed = ", ".join(roots) if roots else "none: nothing is mountable until mount_roots names some"
        shown = item.host_path if real == item.host_path else f"{item.host_path} (really {real})"
        raise PermissionError(
            errno.EACCES, f"mount: {shown} is outside the host's mount roots ({allowed})", item.host_path
        )
    return item.model_copy(update={"host_path": real})


def _within(path: str, directory: str) -> bool:
    return path == directory or directory == "/" or path.startswith(directory.rstrip("/") + "/")
