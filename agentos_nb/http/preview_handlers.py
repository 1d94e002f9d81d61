"""GET /previews/{grant}/{path}: the files a preview link opens (`previews.py` makes the links).

What is served stays under the link's directory: `..` and `.` segments, encoded slashes and dots
and empty segments are refused, and so is a path through any symlink (a link inside could point
out), so nothing outside is reachable. A directory serves its `index.html`, never a listing; a
file past `MAX_PREVIEW_BYTES` is refused.
Pages are sandboxed (`Content-Security-Policy: sandbox`): a page an agent wrote runs its scripts
in an origin of its own, never the server's (nor Jupyter's, when forwarded there).
"""

from __future__ import annotations

import mimetypes
import posixpath
from urllib.parse import unquote

from agentos_nb.http.errors import PreviewRefused
from agentos_nb.http.previews import REFUSED, PreviewGrant
from agentos_nb.http.routing import Reply, Request
from agentos_nb.vm.agent_os import is_vm
from agentos_nb.vm.handle import LocalVmHandle, VmHandle
from agentos_nb.vm.models import FileStat

MAX_PREVIEW_BYTES = 32 * 1024 * 1024
"""The largest file a preview serves: each is read whole into the server's memory."""
_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-forms allow-popups allow-modals",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


async def serve_preview(request: Request) -> Reply:
    """GET /previews/{grant}/{path}: a file under the grant's directory, or its index.html."""
    signer = request.api.previews
    grant = signer.grant(request.params["grant"])
    relative = _relative_path(request.params["path"])
    vm = _vm_handle(request, grant)
    target = posixpath.join(grant.root, *relative) if relative else grant.root
    found = await _stat_without_links(vm, grant.root, relative)
    if found is not None and found.kind == "directory":
        target = posixpath.join(target, "index.html")
        found = await _stat_without_links(vm, target, [])
    if found is None or found.kind != "file":
        raise PreviewRefused(f"nothing to show at {'/'.join(relative) or '/'} in this preview")
    _check_size(relative, found.size)
    data = await vm.read_file(target)
    _check_size(relative, len(data))  # again: the file may have grown since its stat
    content_type = mimetypes.guess_type(target)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
        content_type += "; charset=utf-8"
    return Reply(body=data, content_type=content_type, headers=dict(_HEADERS))


def _check_size(relative: list[str], size: int) -> None:
    if size > MAX_PREVIEW_BYTES:
        raise PreviewRefused(
            f"{'/'.join(relative)} is {size} bytes: a preview serves {MAX_PREVIEW_BYTES} at most"
        )


def _relative_path(raw: str) -> list[str]:
    """The segments of the path after the grant, checked while still percent-encoded, so that
    an encoded slash or dot cannot hide a step out."""
    lowered = raw.lower()
    if any(code in lowered for code in ("%2f", "%5c", "%00", "%2e")) or "\\" in raw:
        raise PreviewRefused("a preview path cannot encode slashes, dots or NUL")
    segments = [unquote(part) for part in raw.split("/")]
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash: the directory
    for segment in segments:
        if segment in ("", ".", ".."):
            raise PreviewRefused("a preview path cannot hold empty, '.' or '..' segments")
    return segments


async def _stat_without_links(vm: VmHandle, start: str, below: list[str]) -> FileStat | None:
    """What is at `start`/`below...`, refusing a symlink anywhere from `start` down."""
    path = start
    for step in [None, *below]:
        if step is not None:
            path = posixpath.join(path, step)
        try:
            info = await vm.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if info.kind == "symlink":
            raise PreviewRefused("a preview does not follow symlinks")
    return info


def _vm_handle(request: Request, grant: PreviewGrant) -> VmHandle:
    definition = request.api.registry.definitions.get(grant.name)
    if definition is None or not is_vm(definition):
        raise PreviewRefused(REFUSED)
    handle = request.api.registry.client()[grant.name].get_for_id(grant.actor_id)
    assert isinstance(handle, LocalVmHandle)  # the handle class of every VM type
    return handle
