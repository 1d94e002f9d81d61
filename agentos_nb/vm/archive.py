"""A VM's filesystem as one tar archive, so that its files outlive sleep; and putting entries
in place over whatever stands there, which unpacking and booting both need.

bashkit's own snapshots leave out mounted filesystems, and a VM's files live in a mounted
one (see `shell.py`), so the VM packs its tree itself. Tar keeps directories, modes and
symlinks, and anyone can open the archive with standard tools. Modification times are kept in
the archive but not restored: bashkit's filesystem cannot set them. Entries that are neither
files, directories nor symlinks (fifos) are left out, and so are mounted host directories
(`mounts.py`): their files are the host's.
"""

from __future__ import annotations

import io
import posixpath
import tarfile

from agentos_nb.vm.mounts import holds_mount
from agentos_nb.vm.shell import Shell


def pack(shell: Shell, skip: frozenset[str] = frozenset()) -> bytes:
    """The tree as a tar archive, without the paths in `skip` and the mounted host directories."""
    skip = skip | frozenset(shell.mount_points)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        pending = ["/"]
        while pending:
            directory = pending.pop()
            for name, info in shell.list_dir(directory):
                path = posixpath.join(directory, name)
                if path in skip:
                    continue
                member = tarfile.TarInfo(path.lstrip("/"))
                member.mode, member.mtime = info.mode, info.modified
                if info.kind == "directory":
                    member.type = tarfile.DIRTYPE
                    archive.addfile(member)
                    pending.append(path)
                elif info.kind == "symlink":
                    member.type, member.linkname = tarfile.SYMTYPE, shell.read_link(path)
                    archive.addfile(member)
                elif info.kind == "file":
                    data = shell.read(path)
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def unpack(shell: Shell, data: bytes) -> None:
    """Recreate the tree `pack` made (parents come before children in the archive) over a
    fresh filesystem, whose own few directories give way to what the archive holds. What
    the archive holds where a host directory is now mounted, or on the way to one, stays out:
    the mount points are the host's to place."""
    mount_points = shell.mount_points
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        for member in archive:
            path = "/" + member.name
            if holds_mount(path, mount_points):
                continue
            if member.isdir():
                place_directory(shell, path, member.mode)
            elif member.issym():
                place_symlink(shell, path, member.linkname)
            else:
                extracted = archive.extractfile(member)
                place_file(shell, path, extracted.read() if extracted is not None else b"", member.mode)


def place_directory(shell: Shell, path: str, mode: int) -> None:
    """Make `path` a directory with `mode`, whatever stands there or in its parents now."""
    _clear_for(shell, path, "directory")
    if shell.info(path) is None:
        shell.mkdir(path)
    shell.chmod(path, mode)


def place_file(shell: Shell, path: str, content: bytes, mode: int) -> None:
    _clear_for(shell, path, "file")
    shell.write(path, content)
    shell.chmod(path, mode)


def place_symlink(shell: Shell, path: str, target: str) -> None:
    _clear_for(shell, path, "symlink")
    shell.symlink(target, path)


def _clear_for(shell: Shell, path: str, kind: str) -> None:
    """Make every parent of `path` a real directory and remove a `path` of another kind (or
    any symlink there), so the entry can be put in place."""
    parent = "/"
    for part in path.strip("/").split("/")[:-1]:
        parent = posixpath.join(parent, part)
        found = shell.info(parent)
        if found is not None and found.kind != "directory":
            shell.remove(parent)
            found = None
        if found is None:
            shell.mkdir(parent)
    found = shell.info(path)
    if found is not None and (found.kind != kind or kind == "symlink"):
        shell.remove(path, recursive=found.kind == "directory")
