"""A VM's filesystem as one tar archive, so that its files outlive sleep.

bashkit's own snapshots leave out mounted filesystems, and a VM's files live in a mounted
one (see `shell.py`), so the VM packs its tree itself. Tar keeps directories, modes, symlinks
and times, and anyone can open the archive with standard tools.
"""

from __future__ import annotations

import io
import posixpath
import tarfile

from agentos_nb.vm.shell import Shell


def pack(shell: Shell) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        pending = ["/"]
        while pending:
            directory = pending.pop()
            for name, info in shell.list_dir(directory):
                path = posixpath.join(directory, name)
                member = tarfile.TarInfo(path.lstrip("/"))
                member.mode, member.mtime = info.mode, info.modified
                if info.kind == "directory":
                    member.type = tarfile.DIRTYPE
                    archive.addfile(member)
                    pending.append(path)
                elif info.kind == "symlink":
                    member.type, member.linkname = tarfile.SYMTYPE, shell.read_link(path)
                    archive.addfile(member)
                else:
                    data = shell.read(path)
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def unpack(shell: Shell, data: bytes) -> None:
    """Recreate the tree `pack` made; parents come before children in the archive."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        for member in archive:
            path = "/" + member.name
            if member.isdir():
                if shell.info(path) is None:
                    shell.mkdir(path)
            elif member.issym():
                shell.symlink(member.linkname, path)
                continue
            else:
                extracted = archive.extractfile(member)
                shell.write(path, extracted.read() if extracted is not None else b"")
            shell.chmod(path, member.mode)
