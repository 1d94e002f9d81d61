"""The bearer token: made from the OS's randomness, compared in constant time, never logged."""

from __future__ import annotations

import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def authorized(header: str | None, token: str) -> bool:
    """Whether an `Authorization` header carries `token` as a bearer token."""
    if header is None:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
