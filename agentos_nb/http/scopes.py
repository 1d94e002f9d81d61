"""Least privilege on the HTTP face: scoped tokens and signed webhooks.

Every route says which kind of access it needs (`Route.scope`). The server's own token opens
every kind; each extra token (`ScopedToken`) opens only the kinds it lists, on the actors its
patterns match and, for sends, the queues they match: anything else is 403 `http.forbidden`,
naming what the token allows. An actor pattern is `name/key` matched by `fnmatch` (case
sensitive) against the actor type and its key as the URL writes it (parts percent-encoded and
joined by ","), so `task_runner/*` is any key of `task_runner`; a pattern without "/" is an
actor type, any key. A token that may reach any key of a type may name its actors by id too.

A webhook (`Webhook`) lets a sender that holds no token post to one queue, signing each body
with a shared secret as GitHub does (`X-Hub-Signature-256: sha256=<hex>`). When it also sends
`X-Webhook-Timestamp` (Unix seconds), the signature covers `<timestamp>.<body>` as Stripe's
does, the timestamp must be within `REPLAY_SECONDS`, and a signature seen in that window is
refused: the same request twice enqueues once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agentos_nb.http.errors import BadSignature, Forbidden
from agentos_nb.http.paths import ActorAddress, key_segment

RouteKind = Literal[
    "health",
    "read",
    "create",
    "send",
    "wait",
    "dead_letters",
    "actions",
    "files_read",
    "files_write",
    "exec",
    "sessions",
    "events",
    "previews",
]
"""What a route does, as a scope grants it. `health` is public; `read` is the API document,
the list of actors and an actor's identity; `create` makes an actor (PUT or POST on it);
`previews` serves a VM's files to whoever holds a signed preview link (`previews.py`)."""

ROUTE_KINDS: tuple[RouteKind, ...] = get_args(RouteKind)

SIGNATURE_HEADER = "X-Hub-Signature-256"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
REPLAY_SECONDS = 300.0
"""How far a signed timestamp may be from the server's clock, either way."""
MAX_SEEN_SIGNATURES = 100_000
"""Signatures remembered for the replay window; past this, new timestamped requests are refused
until old ones expire, rather than forgotten early (which would let a replay through)."""

_Strict = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ScopedToken(BaseModel):
    """An extra bearer token and what it may do (`serve(tokens=[...])`, `--token-file`)."""

    model_config = _Strict

    token: SecretStr = Field(min_length=16, description="The bearer token; at least 16 characters.")
    routes: frozenset[RouteKind] = Field(min_length=1, description="The kinds of route it opens.")
    actors: tuple[str, ...] = Field(("*",), min_length=1, description="`name/key` patterns (fnmatch).")
    queues: tuple[str, ...] = Field(("*",), min_length=1, description="Queue patterns a send may reach.")
    label: str = Field("scoped", description="How refusals name it (the token never is).")

    def describe(self) -> str:
        return (
            f"token {self.label!r} allows {', '.join(sorted(self.routes))} on actors "
            f"{', '.join(self.actors)}"
            + (f", queues {', '.join(self.queues)}" if "send" in self.routes else "")
        )

    def covers_actor(self, name: str, key: tuple[str, ...]) -> bool:
        return _matches(self.actors, name, _key_text(key))

    def check(self, kind: RouteKind, params: dict[str, str], address: ActorAddress | None) -> None:
        """Raise `Forbidden` unless this token opens `kind` on what `params` name."""
        if kind == "health":
            return
        if kind not in self.routes:
            raise Forbidden(f"{self.describe()}; not {kind}", allowed=self._allowed())
        name, queue = _decoded(params, "name"), _decoded(params, "queue")
        if name is not None and address is not None:
            if address.key is not None:
                allowed = self.covers_actor(name, address.key)
            else:
                allowed = any(_split(p)[1] == "*" and fnmatchcase(name, _split(p)[0]) for p in self.actors)
            if not allowed:
                what = f"{name}/{_key_text(address.key)}" if address.key is not None else f"{name} by id"
                raise Forbidden(f"{self.describe()}; not {what}", allowed=self._allowed())
        if kind == "send" and queue is not None and not any(fnmatchcase(queue, p) for p in self.queues):
            raise Forbidden(f"{self.describe()}; not queue {queue}", allowed=self._allowed())

    def _allowed(self) -> dict[str, Any]:
        return {"routes": sorted(self.routes), "actors": list(self.actors), "queues": list(self.queues)}


class Webhook(BaseModel):
    """A queue that takes signed posts with no token (`serve(webhooks=[...])`)."""

    model_config = _Strict

    actor: str = Field(description="`name/key` pattern (fnmatch), as for tokens: `issue_worker/*`.")
    queue: str = Field(description="The queue (exactly).")
    secret: SecretStr = Field(min_length=16, description="The shared secret; never logged or written.")
    require_timestamp: bool = Field(False, description="Refuse posts without a signed timestamp.")

    def serves(self, params: dict[str, str], address: ActorAddress) -> bool:
        return (
            address.key is not None
            and _decoded(params, "queue") == self.queue
            and _matches((self.actor,), _decoded(params, "name") or "", _key_text(address.key))
        )


class TokenFile(BaseModel):
    """What `agentos-nb serve --token-file PATH` reads (JSON): scoped tokens and webhooks."""

    model_config = _Strict

    tokens: list[ScopedToken] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)


def scoped_tokens(given: Iterable[ScopedToken | dict[str, Any]], full_token: str) -> list[ScopedToken]:
    """`given` validated; a token given twice, or equal to the full one, is refused."""
    tokens = [ScopedToken.model_validate(token) for token in given]  # its config hides the input
    seen = {full_token}
    for scoped in tokens:
        value = scoped.token.get_secret_value()
        if value in seen:
            raise ValueError(f"token {scoped.label!r} is given twice, or is the server's own token")
        seen.add(value)
    return tokens


def signed_webhooks(given: Iterable[Webhook | dict[str, Any]]) -> list[Webhook]:
    return [Webhook.model_validate(webhook) for webhook in given]


class SignatureCheck:
    """Checks signed webhook posts, and remembers the timestamped ones it let through."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()

    def verify(
        self, webhook: Webhook, signature: str | None, timestamp: str | None, body: bytes
    ) -> str | None:
        """Raise `BadSignature` unless the post is signed with the webhook's secret, fresh and
        new. Returns what to `forget` if the post is then not accepted, so its sender may retry."""
        if signature is None:
            raise BadSignature(f"this queue wants the header {SIGNATURE_HEADER}: sha256=<hex> or a token")
        if timestamp is None and webhook.require_timestamp:
            raise BadSignature(f"this queue wants a signed {TIMESTAMP_HEADER}")
        signed = body if timestamp is None else timestamp.encode() + b"." + body
        secret = webhook.secret.get_secret_value().encode()
        expected = "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            raise BadSignature(f"the {SIGNATURE_HEADER} signature does not match the body")
        if timestamp is None:
            return None
        now = time.time()
        try:
            sent = float(timestamp)
        except ValueError:
            raise BadSignature(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
        if not abs(now - sent) <= REPLAY_SECONDS:
            raise BadSignature(
                f"{TIMESTAMP_HEADER} is more than {REPLAY_SECONDS:g} s from the server's clock"
            )
        self._expire(now)
        if expected in self._seen:
            raise BadSignature("this signed request was already received (a replay)")
        if len(self._seen) >= MAX_SEEN_SIGNATURES:
            raise BadSignature("too many signed requests in the replay window; retry later")
        self._seen[expected] = sent + REPLAY_SECONDS
        return expected

    def forget(self, signature: str) -> None:
        self._seen.pop(signature, None)

    def _expire(self, now: float) -> None:
        while self._seen:
            signature, until = next(iter(self._seen.items()))
            if until >= now:
                break
            del self._seen[signature]


def _decoded(params: dict[str, str], name: str) -> str | None:
    """A path parameter as the handlers read it (`Request.param`)."""
    raw = params.get(name)
    return None if raw is None else unquote(raw)


def _key_text(key: tuple[str, ...] | None) -> str:
    return "" if key is None or key in ((), ("",)) else key_segment(key)


def _split(pattern: str) -> tuple[str, str]:
    name, slash, key = pattern.partition("/")
    return name, key if slash else "*"


def _matches(patterns: Iterable[str], name: str, key: str) -> bool:
    return any(
        fnmatchcase(name, name_pattern) and fnmatchcase(key, key_pattern)
        for name_pattern, key_pattern in map(_split, patterns)
    )
