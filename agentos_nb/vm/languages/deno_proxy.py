"""The network of one Deno run in a VM that has one: a forward proxy in the VM's host process.

Deno's `fetch` goes to this proxy (`HTTP_PROXY`/`HTTPS_PROXY`), and Landlock lets the Deno child
connect to its port and nothing else. Every request is made again by `Outbound`, as `curl`'s
are: the VM's rules judge each one, the checked address is pinned, the host's credentials are
added on the way out. For `https://` the proxy does not open a blind tunnel (it would see only a
host and port, and could add no credential): it answers the program's TLS itself, with a
certificate authority made for this run alone (its key never leaves this process; Deno is given
the certificate only), and `Outbound` makes the real request with normal TLS verification.

Only the run's own program may use it: the port is on 127.0.0.1, where any local process could
connect, so each run has a secret of its own, given to Deno in the proxy's URL
(`http://agentos:SECRET@127.0.0.1:PORT`); a request or CONNECT without it is answered 407.

Bounded: request and response bodies up to a cap, a time limit per request, a few connections
at once; it lives only as long as the run (`async with`), so a finished, stopped or timed-out
run leaves nothing listening.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hmac
import ipaddress
import os
import secrets
import ssl
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType

import h11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agentos_nb.vm.network import NetworkError, address_of, parse_url
from agentos_nb.vm.outbound import Outbound, Refused, TimedOut, TooManyRedirects, Unreachable

MAX_CONNECTIONS = 8
"""Connections the program may hold open to the proxy at once; more are answered 503."""
_MAX_HEAD = 64 * 1024  # bytes of a request line and headers
_MAX_HOSTS = 64  # TLS certificates made in one run
_USER = "agentos"  # the user name in the proxy's URL; the password is the run's secret
# Headers about one connection, not the request: never passed on. `accept-encoding` is left to
# the host's client, which decodes what it asked for; `content-encoding` then no longer holds.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
_DROPPED_FROM_RESPONSES = _HOP_HEADERS | {"content-encoding"}


class DenoProxy:
    """A forward proxy for one run: `async with DenoProxy(...) as proxy`, then give Deno
    `proxy.url`, `proxy.port` and `proxy.ca_file`."""

    def __init__(self, outbound: Outbound, directory: Path, *, timeout: float, max_body: int) -> None:
        self._outbound = outbound
        self._directory = directory
        self._timeout = timeout
        self._max_body = max_body
        self._connections: set[asyncio.Task[None]] = set()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._authority: _Authority | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        self.ca_file = directory / "ca.pem"
        self._secret = secrets.token_urlsafe(24)
        credentials = base64.b64encode(f"{_USER}:{self._secret}".encode()).decode()
        self._authorization = f"Basic {credentials}".encode()

    @property
    def url(self) -> str:
        """The proxy as `HTTP_PROXY` names it, with the run's secret: requests without it get 407."""
        return f"http://{_USER}:{self._secret}@127.0.0.1:{self.port}"

    async def __aenter__(self) -> DenoProxy:
        self._authority = await asyncio.to_thread(_Authority)
        self._directory.mkdir(mode=0o700, exist_ok=True)
        self.ca_file.write_bytes(self._authority.certificate_pem)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self._contexts.clear()
        self._authority = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if len(self._connections) > MAX_CONNECTIONS:
                writer.write(_plain_response(503, f"more than {MAX_CONNECTIONS} connections at once"))
                await writer.drain()
                return
            await self._converse(reader, writer, tunnel=None)
        except (ConnectionError, ssl.SSLError, h11.ProtocolError, TimeoutError, ValueError):
            pass  # the program broke its side of the conversation (or sent no URL): the connection ends
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tunnel: str | None
    ) -> None:
        """Answer the requests of one connection; `tunnel` is the `host:port` of a CONNECT, whose
        TLS the proxy now speaks."""
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        while True:
            event = await self._next(connection, reader)
            if not isinstance(event, h11.Request):
                return
            if tunnel is None and not self._authorized(event.headers):
                challenge = f'Proxy-Authenticate: Basic realm="{_USER}"\r\n'
                writer.write(_plain_response(407, "this proxy serves its own run only", challenge))
                await writer.drain()
                return
            method = event.method.decode("ascii")
            target = event.target.decode("ascii", errors="replace")
            if method == "CONNECT" and tunnel is None:
                await self._open_tunnel(connection, reader, writer, target)
                return
            body = await self._body(connection, reader)
            if body is None:
                status, reason, headers, content = _error(
                    413, f"the request body passes the VM's limit of {self._max_body} bytes"
                )
            elif tunnel is not None:
                status, reason, headers, content = await self._forward(
                    method, f"https://{tunnel}{target}", event.headers, body
                )
            elif target.startswith(("http://", "https://")):
                status, reason, headers, content = await self._forward(method, target, event.headers, body)
            else:
                status, reason, headers, content = _error(400, f"{target}: a proxy request names a full URL")
            bodiless = method == "HEAD" or status in (204, 304)
            if not bodiless:
                headers.append(("Content-Length", str(len(content))))
            encoded = [(name.encode(), value.encode()) for name, value in headers]
            writer.write(_send(connection, h11.Response(status_code=status, reason=reason, headers=encoded)))
            if content and not bodiless:
                writer.write(_send(connection, h11.Data(data=content)))
            writer.write(_send(connection, h11.EndOfMessage()))
            await writer.drain()
            if body is None or connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    def _authorized(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """Whether the request carries this run's secret (inside a tunnel, its CONNECT did)."""
        given = [value for name, value in headers if name.lower() == b"proxy-authorization"]
        return len(given) == 1 and hmac.compare_digest(given[0].strip(), self._authorization)

    async def _open_tunnel(
        self,
        connection: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        target: str,
    ) -> None:
        """Say yes to the CONNECT, then speak TLS as `target` with this run's certificate."""
        host = parse_url(f"https://{target}/").host  # a NetworkError ends a target that is no host
        await self._next(connection, reader)  # the CONNECT's end
        writer.write(
            _send(connection, h11.Response(status_code=200, reason=b"Connection established", headers=[]))
        )
        if connection.trailing_data[0]:
            return  # the program spoke before the tunnel was open: not TLS as it should be
        await writer.start_tls(self._context_for(host), ssl_handshake_timeout=self._timeout)
        await self._converse(reader, writer, tunnel=target)

    async def _next(self, connection: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = connection.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(self._timeout):
                connection.receive_data(await reader.read(65536))

    async def _body(self, connection: h11.Connection, reader: asyncio.StreamReader) -> bytes | None:
        """The request's body, or None when it passes the cap (the connection then ends)."""
        body = bytearray()
        while True:
            event = await self._next(connection, reader)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._max_body:
                    return None
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:
                raise ConnectionError("the request ended early")

    async def _forward(
        self, method: str, url: str, received: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes, list[tuple[str, str]], bytes]:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in received
            if name.decode("latin-1").lower() not in _HOP_HEADERS
        ]
        try:
            reply = await self._outbound.request(
                method, url, headers, body or None, timeout=self._timeout, max_body=self._max_body
            )
        except Refused as refused:
            return _error(403, str(refused))
        except TimedOut as error:
            return _error(504, str(error))
        except (Unreachable, TooManyRedirects) as error:
            return _error(502, str(error))
        except NetworkError as error:
            return _error(400, str(error))
        if reply.truncated:
            return _error(502, f"{url}: the response passes the VM's limit of {self._max_body} bytes")
        kept = [(name, value) for name, value in reply.headers if name.lower() not in _DROPPED_FROM_RESPONSES]
        return reply.status, reply.reason.encode("latin-1", errors="replace"), kept, reply.body

    def _context_for(self, host: str) -> ssl.SSLContext:
        context = self._contexts.get(host)
        if context is None:
            if len(self._contexts) >= _MAX_HOSTS or self._authority is None:
                raise ConnectionError("too many hosts in one run")
            context = self._contexts[host] = self._authority.server_context(host)
        return context


class _Authority:
    """A certificate authority for one run: its key lives in this object only."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentos-nb proxy of one Deno run")])
        now = datetime.datetime.now(datetime.UTC)
        public = self._key.public_key()
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(certificates=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = self._certificate.public_bytes(serialization.Encoding.PEM)

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context that presents a certificate for `host`, signed by this authority."""
        key = ec.generate_private_key(ec.SECP256R1())
        address = address_of(host)
        alternative: x509.GeneralName = (
            x509.IPAddress(ipaddress.ip_address(host)) if address is not None else x509.DNSName(host)
        )
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_alpn_protocols(["http/1.1"])
        # `ssl` loads keys from files only: an anonymous in-memory file, so the key touches no disk.
        descriptor = os.memfd_create("agentos-proxy-key", os.MFD_CLOEXEC)
        try:
            os.write(descriptor, chain)
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return context


def _key_usage(*, certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _send(connection: h11.Connection, event: h11.Event) -> bytes:
    return connection.send(event) or b""


def _error(status: int, message: str) -> tuple[int, bytes, list[tuple[str, str]], bytes]:
    """A response the proxy gives itself; its body says why, as `curl` would on stderr."""
    return (
        status,
        HTTPStatus(status).phrase.encode(),
        [("Content-Type", "text/plain; charset=utf-8")],
        f"agentos: {message}\n".encode(),
    )


def _plain_response(status: int, message: str, headers: str = "") -> bytes:
    """A response that ends the connection, written without h11 (`headers`: whole lines)."""
    body = f"agentos: {message}\n".encode()
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"{headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
