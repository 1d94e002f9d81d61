"""`fetch` in `node`/`deno` programs of a VM with a network: allowed URLs only, through the host's
proxy (`vm/languages/deno_proxy.py`), with the host's credentials added and never visible to the
program; everything else refused, the rules named; no TCP past the proxy (Landlock); HTTPS
through a certificate authority of the run; no network at all without a network list."""

from __future__ import annotations

import asyncio
import base64
import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agentos_nb import ShellLimits, agent_os, network, setup
from agentos_nb.software import common
from agentos_nb.vm.languages import deno
from agentos_nb.vm.languages.deno_proxy import MAX_CONNECTIONS, DenoProxy
from agentos_nb.vm.outbound import Outbound
from agentos_nb.vm.shell import Shell

pytestmark = pytest.mark.anyio

SECRET = "sk-live-deno-7f3a9c-never-inside"
PROJECT = "/home/user/fetcher"
LIMITS = ShellLimits(timeout=60, max_output_bytes=200_000, max_memory=256 * 1024 * 1024)

# Everything a program can look at: the response, its headers, the request it made, its env.
SNOOP = """\
const request = new Request(Deno.args[0], { headers: { Authorization: "Bearer forged" } });
const response = await fetch(request);
const seen = {
  status: response.status,
  url: response.url,
  body: await response.text(),
  responseHeaders: [...response.headers],
  requestHeaders: [...request.headers],
  request: JSON.stringify(request),
};
const looks = {
  env: () => Deno.env.toObject(),
  processEnv: () => process.env,
  environ: () => Deno.readTextFileSync("/proc/self/environ"),
};
for (const [name, look] of Object.entries(looks)) {
  try { seen[name] = JSON.stringify(look()); } catch (error) { seen[name] = String(error); }
}
console.log(JSON.stringify(seen));
"""
STATUS = "const r = await fetch(Deno.args[0]); console.log(r.status, await r.text());\n"
CONNECT = """\
try {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port: Number(Deno.args[0]) });
  console.log("connected"); connection.close();
} catch (error) { console.log(String(error)); }
"""


@dataclass
class Server:
    """A local HTTP(S) server that records what each request carried and echoes only its body."""

    port: int
    scheme: str = "http"
    requests: list[dict] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [r["headers"] for r in self.requests if r["path"] == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        if "/slow" in self.path:
            time.sleep(3)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record.requests.append(  # type: ignore[attr-defined]
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if "/redirect?to=" in self.path:
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        reply = json.dumps({"path": self.path, "method": self.command, "got_body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    server_socket = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server_socket.socket = tls.wrap_socket(server_socket.socket, server_side=True)
    record = Server(server_socket.server_address[1], "https" if tls else "http")
    server_socket.record = record  # type: ignore[attr-defined]
    thread = threading.Thread(target=server_socket.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server_socket.shutdown()
        server_socket.server_close()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture(scope="module")
def other_server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture(scope="module")
async def registry(server, other_server):
    """VM type `net` with a network list (credentials for /api/), and `offline` without one."""
    policy = network(
        allow=[
            f"{server.base}/api/*",
            f"{other_server.base}/*",
            f"http://{socket.gethostname()}:{server.port}/*",
        ],
        credentials={f"{server.base}/api/*": {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}},
    )
    started = setup(
        use={
            "net": agent_os(software=[common], limits=LIMITS, network=policy),
            "offline": agent_os(software=[common], limits=LIMITS),
        },
        store="memory",
        name="test-deno-network",
    )
    started.start()
    await started.ready()
    yield started
    await started.stop(grace=0)


async def _vm(registry, kind: str = "net"):
    vm = getattr(registry.client(), kind).get_or_create(["fetcher"])
    await vm.write_files(
        {f"{PROJECT}/snoop.ts": SNOOP, f"{PROJECT}/status.ts": STATUS, f"{PROJECT}/connect.ts": CONNECT}
    )
    return vm


async def test_fetch_reaches_an_allowed_url_and_the_credential_stays_hidden(registry, server):
    vm = await _vm(registry)
    run = await vm.exec(f"node snoop.ts {server.base}/api/whoami", cwd=PROJECT)
    assert run.exit_code == 0, run.stderr
    seen = json.loads(run.stdout)
    assert (seen["status"], json.loads(seen["body"])["path"]) == (200, "/api/whoami")
    assert all("NotCapable" in seen[name] for name in ("env", "processEnv", "environ")), seen
    assert SECRET not in run.stdout + run.stderr
    sent = server.headers_of("/api/whoami")[0]
    assert (sent["Authorization"], sent["X-Api-Key"]) == (
        f"Bearer {SECRET}",
        SECRET,
    )  # the host's, not forged
    post = (
        f'const r = await fetch("{server.base}/api/post", {{method: "POST", body: "hello"}});'
        "console.log(JSON.parse(await r.text()).got_body)"
    )
    await vm.write_files({f"{PROJECT}/post.ts": post})
    for command in ("deno run post.ts", "npx tsx post.ts"):
        run = await vm.exec(command, cwd=PROJECT)
        assert (run.exit_code, run.stdout) == (0, "hello\n"), (command, run.stderr)
    files = await vm.readdir_recursive(PROJECT)
    assert {entry.path.rsplit("/", 1)[1] for entry in files} == {
        "snoop.ts",
        "status.ts",
        "connect.ts",
        "post.ts",
    }


async def test_a_redirect_never_carries_the_credential_elsewhere(registry, server, other_server):
    vm = await _vm(registry)
    run = await vm.exec(
        f"node snoop.ts {server.base}/api/redirect?to={other_server.base}/landed", cwd=PROJECT
    )
    assert json.loads(run.stdout)["url"] == f"{other_server.base}/landed", run.stderr
    assert server.headers_of(f"/api/redirect?to={other_server.base}/landed")[0]["X-Api-Key"] == SECRET
    landed = other_server.headers_of("/landed")[0]
    assert SECRET not in json.dumps(landed)
    assert "Authorization" not in landed  # the program's own, dropped by fetch across origins
    run = await vm.exec(f"node status.ts {server.base}/api/redirect?to=http://example.com/x", cwd=PROJECT)
    assert run.exit_code == 1, run  # the hop Deno may not name is refused, not followed by the host
    assert "NotCapable" in run.stderr, run


async def test_a_url_outside_the_rules_is_refused_naming_them(registry, server):
    vm = await _vm(registry)
    before = len(server.requests)
    run = await vm.exec(f"node status.ts {server.base}/other", cwd=PROJECT)  # the host, another path
    assert run.stdout.startswith("403 agentos: "), run
    assert f"{server.base}/api/*" in run.stdout
    run = await vm.exec(f"node status.ts {server.base}/api/../other", cwd=PROJECT)
    assert run.stdout.startswith("403 "), run
    run = await vm.exec("node status.ts http://example.com/", cwd=PROJECT)  # a host of no rule
    assert run.exit_code == 1
    assert "NotCapable" in run.stderr
    assert f"{server.base}/api/*" in run.stderr, run.stderr
    assert len(server.requests) == before


async def test_a_name_that_resolves_to_a_private_address_is_refused(registry, server):
    name, before = socket.gethostname(), len(server.requests)
    address = socket.gethostbyname(name)
    vm = await _vm(registry)
    run = await vm.exec(f"node status.ts http://{name}:{server.port}/x", cwd=PROJECT)
    assert run.stdout.startswith("403 "), run
    assert f"{name} resolves to {address}" in run.stdout
    assert "not a public address" in run.stdout
    run = await vm.exec(f"node status.ts {server.base}/api/named-address", cwd=PROJECT)  # named: allowed
    assert run.stdout.startswith("200 "), run
    assert len(server.requests) == before + 1


async def test_tcp_past_the_proxy_is_refused_by_landlock(registry, server, other_server):
    """Deno may name the rules' hosts and ports (`fetch` does), so only Landlock stops a raw connection."""
    vm = await _vm(registry)
    before = (len(server.requests), len(other_server.requests))
    for port in (server.port, other_server.port):
        run = await vm.exec(f"node connect.ts {port}", cwd=PROJECT)
        assert "Permission denied (os error 13)" in run.stdout, run
    run = await vm.exec(f"node connect.ts {server.port + 1}", cwd=PROJECT)  # a port Deno was never told
    assert "NotCapable" in run.stdout, run
    listen = "try { Deno.listen({ port: 0 }); console.log('listening') } catch (e) { console.log(String(e)) }"
    run = await vm.exec(f'node -e "{listen}"', cwd=PROJECT)
    assert "NotCapable" in run.stdout, run
    # A client of the program's own, its proxy a server's port rather than the host's proxy
    own = (
        f"const client = Deno.createHttpClient({{ proxy: {{ url: 'http://127.0.0.1:{server.port}' }} }});"
        f"try {{ await fetch('{other_server.base}/via-own-proxy', {{ client }}); console.log('reached') }}"
        " catch (e) { console.log(String(e.cause)) }"
    )
    run = await vm.exec(f'node -e "{own}"', cwd=PROJECT)
    assert "tcp connect error: Permission denied" in run.stdout, run
    # UDP, which Landlock does not cover: DNS queries only to the rules' hosts and ports
    dns = "await Deno.resolveDns('example.com', 'A', {nameServer: {ipAddr: '127.0.0.1', port: 53}})"
    run = await vm.exec(f'node -e "{dns}"', cwd=PROJECT)
    assert "NotCapable" in run.stderr, run
    assert (len(server.requests), len(other_server.requests)) == before


async def test_a_run_that_times_out_mid_fetch_stops_and_the_vm_goes_on(registry, server):
    vm = await _vm(registry)
    run = await vm.exec(f"node status.ts {server.base}/api/slow", cwd=PROJECT, timeout=1)
    assert run.exit_code == 124, run
    run = await vm.exec(f"node status.ts {server.base}/api/after", cwd=PROJECT)
    assert run.stdout.startswith("200 "), run


async def test_without_a_network_list_fetch_is_refused(registry, server):
    vm = await _vm(registry, "offline")
    before = len(server.requests)
    run = await vm.exec(f"node status.ts {server.base}/api/x", cwd=PROJECT)
    assert run.exit_code == 1
    assert "NotCapable" in run.stderr, run
    run = await vm.exec(f"node connect.ts {server.port}", cwd=PROJECT)
    assert "NotCapable" in run.stdout, run
    assert len(server.requests) == before


# --- HTTPS, and the proxy itself (in this process: its Outbound trusts a test authority) -----------


def _certificate_authority(host: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed server certificate for `host`: the server's context, and one that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    descriptor = os.memfd_create("test-key")
    os.write(descriptor, pem + key_pem)
    server_context.load_cert_chain(f"/proc/self/fd/{descriptor}")
    os.close(descriptor)
    return server_context, ssl.create_default_context(cadata=pem.decode())


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return _certificate_authority("127.0.0.1")


@pytest.fixture(scope="module")
def tls_server(tls) -> Iterator[Server]:
    yield from _serve(tls[0])


async def test_https_goes_through_a_certificate_authority_of_the_run(tls, tls_server, tmp_path):
    policy = network(
        allow=[f"{tls_server.base}/api/*"], credentials={f"{tls_server.base}/api/*": {"X-Api-Key": SECRET}}
    )
    shell = Shell(limits=LIMITS, commands={}, programs=deno.programs(Outbound(policy, trust=tls[1])))
    shell.write("/home/user/snoop.ts", SNOOP.encode())
    shell.write("/home/user/status.ts", STATUS.encode())
    run = await shell.run(f"node snoop.ts {tls_server.base}/api/secure", timeout=60)
    assert run.exit_code == 0, run.stderr
    seen = json.loads(run.stdout)
    assert (seen["status"], seen["url"]) == (200, f"{tls_server.base}/api/secure")
    assert SECRET not in run.stdout + run.stderr
    assert tls_server.headers_of("/api/secure")[0]["X-Api-Key"] == SECRET
    run = await shell.run(f"node status.ts {tls_server.base}/elsewhere", timeout=60)
    assert run.stdout.startswith("403 agentos: ")
    assert f"{tls_server.base}/api/*" in run.stdout, run
    assert sorted(name for name, _ in shell.list_dir("/home/user")) == [
        "snoop.ts",
        "status.ts",
    ]  # no certificate came back
    # Without the test's authority the host's Outbound does not trust the server: verification is on.
    strict = Shell(limits=LIMITS, commands={}, programs=deno.programs(Outbound(policy)))
    strict.write("/home/user/status.ts", STATUS.encode())
    run = await strict.run(f"node status.ts {tls_server.base}/api/x", timeout=60)
    assert run.stdout.startswith("502 ")
    assert "CERTIFICATE_VERIFY_FAILED" in run.stdout, run


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            return await reader.read(65536)
    finally:
        writer.close()


def _authorization(proxy: DenoProxy) -> str:
    """The `Proxy-Authorization` line Deno sends, from the user and secret in the proxy's URL."""
    credentials = urllib.parse.urlsplit(proxy.url)
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return f"Proxy-Authorization: Basic {token}\r\n"


async def test_the_proxy_serves_only_requests_with_the_runs_secret(server, tmp_path):
    outbound = Outbound(network(allow=[f"{server.base}/api/*"]))
    async with DenoProxy(outbound, tmp_path / "proxy", timeout=10, max_body=1000) as proxy:
        request = f"GET {server.base}/api/stolen HTTP/1.1\r\nHost: x\r\n"
        answer = await _exchange(proxy.port, f"{request}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 407 "), answer
        assert b"Proxy-Authenticate: Basic" in answer
        wrong = base64.b64encode(b"agentos:guess").decode()
        answer = await _exchange(proxy.port, f"{request}Proxy-Authorization: Basic {wrong}\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 407 "), answer
        connect = f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\nHost: x\r\n\r\n"
        assert (await _exchange(proxy.port, connect.encode())).startswith(b"HTTP/1.1 407 ")
        answer = await _exchange(proxy.port, f"{request}{_authorization(proxy)}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert [r["path"] for r in server.requests if r["path"] == "/api/stolen"] == ["/api/stolen"]


async def test_the_proxy_is_bounded_and_gone_after_the_run(server, tmp_path):
    outbound = Outbound(network(allow=[f"{server.base}/api/*"]))
    async with DenoProxy(outbound, tmp_path / "proxy", timeout=10, max_body=1000) as proxy:
        port = proxy.port
        secret = _authorization(proxy)
        assert [path.name for path in (tmp_path / "proxy").iterdir()] == ["ca.pem"]  # no key on disk
        assert b"PRIVATE KEY" not in proxy.ca_file.read_bytes()
        answer = await _exchange(
            port, f"GET {server.base}/api/ok HTTP/1.1\r\nHost: x\r\n{secret}\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        big = (
            f"POST {server.base}/api/big HTTP/1.1\r\nHost: x\r\n{secret}Content-Length: 5000\r\n\r\n".encode()
        )
        assert (await _exchange(port, big + b"x" * 5000)).startswith(b"HTTP/1.1 413 "), "body over the cap"
        answer = await _exchange(port, f"GET /api/ok HTTP/1.1\r\nHost: x\r\n{secret}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 400 "), answer  # a proxy request names a full URL
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS)]
        await asyncio.sleep(0.2)
        assert (await _exchange(port, b"")).startswith(b"HTTP/1.1 503 "), "connections over the cap"
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        slow = asyncio.create_task(
            _exchange(port, f"GET {server.base}/api/slow HTTP/1.1\r\nHost: x\r\n{secret}\r\n".encode())
        )
        await asyncio.sleep(0.5)
    assert await slow == b""  # the run ended mid-request: the connection is closed, unanswered
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    assert [r["path"] for r in server.requests if r["path"].startswith("/api/ok")] == ["/api/ok"]
