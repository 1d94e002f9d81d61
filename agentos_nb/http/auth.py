"""Bearer tokens: made from the OS's randomness, compared in constant time, never logged."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from typing import Literal

from agentos_nb.http.scopes import ScopedToken

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def identify(
    header: str | None, full_token: str, tokens: Sequence[ScopedToken]
) -> ScopedToken | Literal[True] | None:
    """Who an `Authorization` header is: True for the full token, a `ScopedToken`, or None.
    Every token is compared, each in constant time, so timing tells neither which nor whether."""
    if header is None:
        return None
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    offered = given.strip().encode()
    found: ScopedToken | Literal[True] | None = (
        True if hmac.compare_digest(offered, full_token.encode()) else None
    )
    for scoped in tokens:
        if hmac.compare_digest(offered, scoped.token.get_secret_value().encode()) and found is None:
            found = scoped
    return found
