"""Requests a VM makes, as its host makes them under the VM's `Network` (`network.py`).

It runs in the VM's host process, which alone holds the credentials. Every hop of a request
(the first and each redirect) is judged anew: its URL must match a rule, its host must
resolve to addresses that rule allows, and the connection goes to the very address that was
checked (pinned), so a name that resolves differently a moment later (DNS rebinding) changes
nothing. Credentials are added for the hops whose URL matches their pattern, and the
script's own `Authorization` and `Cookie` headers are dropped when a redirect changes origin,
as curl does.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

from agentos_nb.vm.network import Network, NetworkError, Rule, Url, address_of, is_public, parse_url

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_HOST_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
MAX_BODY = 32 * 1024 * 1024
"""Bytes of a response body the host keeps; the rest is cut (and said)."""


class Refused(NetworkError):
    """The VM's network rules refuse the request; the message names the rule or its absence."""


class Unreachable(OSError):
    """The host could not reach the server: a name that does not resolve, a refused connection."""


class TimedOut(OSError):
    """The request took longer than its time limit."""


class TooManyRedirects(OSError):
    """More redirects than the caller follows."""


@dataclass(slots=True)
class Reply:
    """One response, as the commands print it."""

    url: str
    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    truncated: bool = False
    hops: list[Reply] = field(default_factory=list)
    """The redirect responses that came before this one, in order."""


class Outbound:
    """The requests of one VM: its rules, and the credentials it never sees."""

    def __init__(self, policy: Network, *, trust: ssl.SSLContext | None = None) -> None:
        """`trust` replaces the usual certificate authorities (certifi's) for checking servers
        (tests that serve TLS locally give theirs)."""
        self._rules = policy.rules()
        self._credentials = policy.credential_rules()
        self._trust = trust

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The allow rules, in the order they were given."""
        return self._rules

    async def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        *,
        follow: bool = False,
        max_redirects: int = 20,
        timeout: float = 60.0,
        max_body: int = MAX_BODY,
    ) -> Reply:
        """Make the request (following redirects if `follow`); raises `Refused`, `Unreachable`,
        `TimedOut`, `TooManyRedirects`, or `NetworkError` for a URL that is not one."""
        if not _METHOD.fullmatch(method):
            raise NetworkError(f"{method!r} is not an HTTP method")
        hops: list[Reply] = []
        target = parse_url(url)
        sent = list(headers)
        try:
            if self._trust is None:  # made once: loading the authorities takes ~20 ms, off the loop
                self._trust = await asyncio.to_thread(httpx.create_ssl_context, trust_env=False)
            async with asyncio.timeout(timeout), _client(self._trust) as client:
                while True:
                    reply = await self._once(client, method, target, sent, body, max_body)
                    location = dict((k.lower(), v) for k, v in reply.headers).get("location")
                    if not (follow and reply.status in _REDIRECTS and location):
                        reply.hops = hops
                        return reply
                    hops.append(reply)
                    if len(hops) > max_redirects:
                        raise TooManyRedirects(f"more than {max_redirects} redirects")
                    following = parse_url(urljoin(target.text, location))
                    if (following.scheme, following.host, following.port) != (
                        target.scheme,
                        target.host,
                        target.port,
                    ):
                        sent = [(k, v) for k, v in sent if k.lower() not in _HOST_BOUND_HEADERS]
                    if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    target = following
        except TimeoutError:
            raise TimedOut(f"the request took more than {timeout:g} s") from None

    def rule_for(self, url: Url) -> Rule:
        """The rule that allows `url`; `Refused` names the rules when none does."""
        for rule in self._rules:
            if rule.matches(url):
                return rule
        patterns = ", ".join(rule.pattern for rule in self._rules)
        raise Refused(f"{url.text} is not allowed: it matches none of the VM's network rules ({patterns})")

    async def _once(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: Url,
        headers: list[tuple[str, str]],
        body: bytes | None,
        max_body: int,
    ) -> Reply:
        rule = self.rule_for(url)
        address = await _checked_address(url, rule)
        outgoing = list(headers)
        for credential_rule, credential in self._credentials:
            if credential_rule.matches(url):
                names = {name.lower() for name in credential}
                outgoing = [(k, v) for k, v in outgoing if k.lower() not in names]
                outgoing.extend(credential.items())
        # The URL's host, never the script's: a Host header of its own could steer the request
        # (and its credentials) to another site behind the same address.
        outgoing = [(k, v) for k, v in outgoing if k.lower() != "host"]
        outgoing.append(("Host", url.text.split("/")[2]))
        pinned = Url(url.scheme, address, url.port, url.path, url.query)
        request = httpx.Request(
            method, pinned.text, headers=outgoing, content=body, extensions={"sni_hostname": url.host}
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as error:
            raise TimedOut(f"{url.text}: {error or 'timed out'}") from None
        except httpx.HTTPError as error:
            raise Unreachable(f"{url.text}: {error or type(error).__name__}") from None
        try:
            data, truncated = bytearray(), False
            decoder = _BoundedDecoder(response.headers.get("content-encoding", ""))
            async for chunk in response.aiter_raw():
                # Decoded a step at a time, never past the limit: a small compressed body can
                # expand a thousandfold.
                truncated = decoder.decode_into(data, chunk, max_body)
                if truncated:
                    break
        except zlib.error as error:
            raise Unreachable(f"{url.text}: the compressed response could not be decoded: {error}") from None
        except httpx.HTTPError as error:
            raise Unreachable(f"{url.text}: {error or type(error).__name__}") from None
        finally:
            await response.aclose()
        return Reply(
            url=url.text,
            status=response.status_code,
            reason=response.reason_phrase,
            http_version=response.http_version,
            headers=list(response.headers.multi_items()),
            body=bytes(data),
            truncated=truncated,
        )


async def _checked_address(url: Url, rule: Rule) -> str:
    """The address to connect to: one the rule allows (a name's must all be public)."""
    literal = address_of(url.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise Unreachable(f"could not resolve host {url.host}: {error.strerror or error}") from None
        addresses = [parsed for info in found if (parsed := address_of(str(info[4][0]).split("%")[0]))]
    if not addresses:
        raise Unreachable(f"could not resolve host {url.host}")
    if not rule.names_address:
        for address in addresses:
            if not is_public(address):
                raise Refused(
                    f"{url.text} is not allowed: {url.host} resolves to {address}, which is not a public "
                    f"address, and rule {rule.pattern} allows public addresses only (a rule that names "
                    "the address allows it)"
                )
    return str(addresses[0])


class _BoundedDecoder:
    """A response body's gzip or deflate undone as it arrives, never more than asked for at
    once. Other encodings (and none) are kept as sent."""

    def __init__(self, content_encoding: str) -> None:
        encoding = content_encoding.strip().lower()
        self._deflate = encoding == "deflate"
        self._decoder = zlib.decompressobj(
            zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        )
        self._decodes = self._deflate or encoding in ("gzip", "x-gzip")
        self._started = False

    def decode_into(self, data: bytearray, chunk: bytes, limit: int) -> bool:
        """Add `chunk`, decoded, to `data` up to `limit` bytes; True if there was more (cut)."""
        if not self._decodes:
            data += chunk
        else:
            pending = chunk
            while pending and not self._decoder.eof and len(data) <= limit:
                data += self._decompress(pending, limit - len(data) + 1)
                pending = self._decoder.unconsumed_tail
        if len(data) > limit:
            del data[limit:]
            return True
        return False

    def _decompress(self, pending: bytes, room: int) -> bytes:
        try:
            decoded = self._decoder.decompress(pending, room)
        except zlib.error:
            if not (self._deflate and not self._started):
                raise
            # "deflate" is often sent raw, without its zlib header, as browsers and httpx allow
            self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            decoded = self._decoder.decompress(pending, room)
        self._started = True
        return decoded


def _client(trust: ssl.SSLContext) -> httpx.AsyncClient:
    """No proxies or netrc from the host's environment, no redirects of its own; a compressed
    body is decoded by `_BoundedDecoder`, not by httpx (which would decode it unbounded)."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=None, verify=trust)
