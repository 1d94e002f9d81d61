"""A VM's outbound network: which URLs its `curl`, `wget` and `http` may reach, and the
credentials the host adds on the way out.

Off by default. A rule is a URL pattern, `scheme://host[:port][/path][*]`: it allows URLs of
that scheme, host and port (the scheme's by default) whose path starts with the rule's path at
a segment boundary; a final `*` says "anything below", and is the only wildcard. Paths are
compared after `.`/`..` segments (percent-encoded ones too) are resolved, so a path cannot
climb out of its rule; an encoded slash or backslash (`%2F`, `%5C`) or a backslash, which a
server may take for a separator, is refused.

Addresses: a host name must resolve to public addresses only, so a name that points at the
host's own network (loopback, private, link-local, ...) is refused however it is spelled. A
rule that names an address itself (`http://127.0.0.1:8000/*`), or `localhost`, is the user's
explicit permission for that address.

Credentials are headers bound to a rule's pattern: added to the requests whose URL matches
it, each hop of a redirect judged anew, so they never go anywhere else. They live in the
VM's host process only, never in the VM's environment, files or command lines.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class NetworkError(ValueError):
    """A URL the VM's network refuses, or a rule that cannot be read; the message names why."""


class Network(BaseModel):
    """A VM's outbound network: the URL patterns it may reach (`allow`) and, per pattern, the
    headers the host adds to requests that match it (`credentials`), which the VM never sees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: tuple[str, ...]
    credentials: dict[str, dict[str, str]] = Field(default_factory=dict, repr=False)

    def rules(self) -> tuple[Rule, ...]:
        """The allow patterns, parsed."""
        return tuple(Rule.parse(pattern) for pattern in self.allow)

    def credential_rules(self) -> tuple[tuple[Rule, dict[str, str]], ...]:
        """Each credential pattern, parsed, with the headers it adds."""
        return tuple((Rule.parse(pattern), headers) for pattern, headers in self.credentials.items())


def network(allow: Sequence[str], credentials: Mapping[str, Mapping[str, str]] | None = None) -> Network:
    """Let a VM's `curl`, `wget` and `http` reach the URLs of the `allow` patterns, such as
    `"https://api.github.com/*"`, and nothing else. `credentials` maps a pattern to headers
    the host adds to requests matching it (`{"https://api.github.com/*": {"Authorization":
    "Bearer ..."}}`); each credential pattern must lie within an allowed one."""
    if isinstance(allow, str) or not all(isinstance(pattern, str) for pattern in allow):
        raise NetworkError(f"network(allow=...) takes a list of URL patterns, not {allow!r}")
    if not allow:
        raise NetworkError("network(allow=...) needs at least one URL pattern (leave network out for none)")
    rules = [Rule.parse(pattern) for pattern in allow]
    given: dict[str, dict[str, str]] = {}
    for pattern, headers in (credentials or {}).items():
        rule = Rule.parse(pattern)
        if not any(allowed.covers(rule) for allowed in rules):
            raise NetworkError(
                f"credentials for {pattern}: no allow pattern covers it, so it would never be sent"
            )
        if not isinstance(headers, Mapping) or not headers:
            raise NetworkError(
                f"credentials for {pattern}: give the headers to add, as a dict of name to value"
            )
        for name, value in headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise NetworkError(f"credentials for {pattern}: {name!r} is not a header name")
            if not isinstance(value, str) or any(char in value for char in "\r\n\0"):
                raise NetworkError(f"credentials for {pattern}: the value of {name} must be one line of text")
        given[pattern] = dict(headers)
    return Network(allow=tuple(allow), credentials=given)


@dataclass(frozen=True, slots=True)
class Rule:
    """One URL pattern: scheme, host, port and the path its URLs start with."""

    pattern: str
    scheme: str
    host: str
    port: int
    path: str
    below_only: bool
    """The pattern ended in `/*` below a path: only URLs under that directory match."""

    @classmethod
    def parse(cls, pattern: str) -> Rule:
        """The rule a pattern states; a `NetworkError` that names the pattern if it states none."""
        text = pattern[:-1] if pattern.endswith("*") else pattern
        if "*" in text:
            raise NetworkError(f"network pattern {pattern!r}: `*` may only end a pattern")
        url = parse_url(text, what="network pattern")
        if url.query:
            raise NetworkError(f"network pattern {pattern!r}: a pattern has no query")
        return cls(pattern, url.scheme, url.host, url.port, url.path, text.endswith("/") and url.path != "/")

    @property
    def names_address(self) -> bool:
        """The rule names an address (or localhost): the user allows that address, private or not."""
        return self.host in _LOOPBACK_NAMES or address_of(self.host) is not None

    def matches(self, url: Url) -> bool:
        """Whether the URL is one this rule allows."""
        if (url.scheme, url.host, url.port) != (self.scheme, self.host, self.port):
            return False
        if self.path == "/":
            return True
        if self.below_only:
            return url.path.startswith(self.path)
        return url.path == self.path or url.path.startswith(self.path + "/")

    def covers(self, other: Rule) -> bool:
        """Whether every URL `other` matches, this one matches too."""
        probe = Url(other.scheme, other.host, other.port, other.path, "")
        return self.matches(probe)


@dataclass(frozen=True, slots=True)
class Url:
    """A URL cut to what the rules judge, its path with dot segments resolved."""

    scheme: str
    host: str
    port: int
    path: str
    query: str

    @property
    def text(self) -> str:
        """The URL as it is requested."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{host}{port}{self.path}{query}"


def parse_url(text: str, *, what: str = "URL") -> Url:
    """`text` as a `Url`; a `NetworkError` for one that is not an http(s) URL with a host."""
    if not isinstance(text, str) or any(char.isspace() or ord(char) < 32 for char in text):
        raise NetworkError(f"{what} {text!r} is not a valid URL")
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
    except ValueError as error:
        raise NetworkError(f"{what} {text!r} is not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise NetworkError(f"{what} {text!r}: only http and https URLs are allowed")
    if not host:
        raise NetworkError(f"{what} {text!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise NetworkError(f"{what} {text!r}: a user and password in the URL are not supported")
    lowered_path = parts.path.lower()
    if "%2f" in lowered_path or "%5c" in lowered_path or "\\" in parts.path:
        raise NetworkError(f"{what} {text!r}: a path cannot encode a slash or hold a backslash")
    return Url(
        scheme, host.lower().rstrip("."), port or _DEFAULT_PORTS[scheme], _clean_path(parts.path), parts.query
    )


def address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The host as an IP address, if it is written as one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local, ...;
    an IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is as public as
    the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    value = int(address)
    for network in _CARRYING_IPV4:
        if address in network:
            return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    return None


_CARRYING_IPV4 = tuple(ipaddress.IPv6Network(prefix) for prefix in ("::ffff:0:0/96", "::/96", "64:ff9b::/96"))
"""IPv6 prefixes whose last 32 bits are an IPv4 address (mapped, compatible, NAT64)."""
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
"""6to4: the IPv4 address is bits 16-48."""
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
"""Local-use NAT64 (RFC 8215): it reaches the translator's own network."""


def _clean_path(path: str) -> str:
    """The path with `.` and `..` segments resolved (percent-encoded ones too), never above `/`."""
    segments: list[str] = []
    for segment in (path or "/").split("/"):
        plain = segment.replace("%2e", ".").replace("%2E", ".")
        if plain == ".":
            continue
        if plain == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    cleaned = "/" + "/".join(part for part in segments if part)
    trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    return cleaned + "/" if trailing and cleaned != "/" else cleaned
