"""Preview links (`vm.preview_url(path)`): a signed, expiring URL on the registry's HTTP face that
serves one VM's files under one directory, so a browser (an `IFrame` in a notebook) shows the
site an agent built there. This module makes and checks the links; `preview_handlers.py`
serves them.

The link is the capability: `/previews/{grant}/{file}`, where the grant names the actor type, the
VM, the directory and the expiry, and carries an HMAC-SHA256 of them under a secret that only
this server holds (made when it starts, so links die with it). No bearer token is needed, and
none is in the URL. A link altered in any way, or expired, is a 403.

The secret is the server's own (`Api.previews`), never written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from pydantic import BaseModel, ConfigDict, ValidationError

from agentos_nb.http.errors import PreviewRefused
from agentos_nb.vm.files import resolve_path

PREVIEW_PREFIX = "/previews/"
MAX_EXPIRES_IN = 7 * 24 * 3600.0
"""The longest a preview link may live, in seconds."""
REFUSED = "this preview link is not valid: altered, expired, or for a server that has restarted"


class PreviewGrant(BaseModel):
    """What a link opens: the files under `root` of the VM `actor_id` (of type `name`), until
    `expires` (Unix time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    actor_id: str
    root: str
    expires: float


class PreviewSigner:
    """Makes and checks preview links under one secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def link(self, base_url: str, grant: PreviewGrant) -> str:
        """The URL of the grant's directory (its `index.html`)."""
        payload = _b64(grant.model_dump_json().encode())
        return f"{base_url}{PREVIEW_PREFIX}{payload}.{_b64(self._mac(payload))}/"

    def grant(self, signed: str, *, now: float | None = None) -> PreviewGrant:
        """The grant a link's first segment carries; `PreviewRefused` unless intact and unexpired."""
        payload, _, mac = signed.partition(".")
        try:
            given = _unb64(mac)
            if not hmac.compare_digest(given, self._mac(payload)):
                raise PreviewRefused(REFUSED)
            grant = PreviewGrant.model_validate(json.loads(_unb64(payload)))
        except (ValueError, ValidationError, binascii.Error, UnicodeDecodeError):
            raise PreviewRefused(REFUSED) from None
        if (time.time() if now is None else now) >= grant.expires:
            raise PreviewRefused(REFUSED)
        return grant

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._secret, b"agentos-preview:" + payload.encode(), hashlib.sha256).digest()


def preview_grant(name: str, actor_id: str, path: str, expires_in: float) -> PreviewGrant:
    """A grant for `path` (absolute, or relative to the home directory) for `expires_in` seconds;
    a `ValueError` names what was wrong."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        raise TypeError(f"expires_in is a number of seconds, not {expires_in!r}")
    if not 0 < expires_in <= MAX_EXPIRES_IN:
        raise ValueError(
            f"expires_in must be more than 0 and at most {MAX_EXPIRES_IN:g} seconds, not {expires_in!r}"
        )
    root = resolve_path(path)
    return PreviewGrant(name=name, actor_id=actor_id, root=root, expires=time.time() + expires_in)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or len(text) > 4096:
        raise ValueError("no such segment")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
