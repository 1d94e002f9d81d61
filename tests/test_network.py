"""A VM's network: off by default; `curl`, `wget` and `http` reach allowed URLs only; private
addresses need a rule that names them; credentials are added by the host, only for their own
pattern (redirects included), and never visible inside the VM."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from agentos_nb import agent_os, errors, network
from agentos_nb.software import common
from agentos_nb.vm.net_commands import network_commands
from agentos_nb.vm.network import NetworkError, Rule, address_of, is_public, parse_url
from agentos_nb.vm.outbound import Outbound
from agentos_nb.vm.shell import CommandCall

pytestmark = pytest.mark.anyio

SECRET = "sk-live-7f3a9c-never-inside"
BOMB_BYTES = 64 * 1024 * 1024
GZIP_BOMB = gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9)
"""About a kilobyte per megabyte: a body that expands a thousandfold."""
GZIP_TEXT = b"hello gzip\n" * 10_000
BIG_BODY = 3 * 1024 * 1024


@dataclass
class Server:
    """A local HTTP server that records what each request carried and never echoes it."""

    port: int
    requests: list[dict] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [r["headers"] for r in self.requests if r["path"] == path]


def _serve() -> Iterator[Server]:
    server_socket = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    record = Server(server_socket.server_address[1])
    server_socket.record = record  # type: ignore[attr-defined]
    thread = threading.Thread(target=server_socket.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server_socket.shutdown()
        server_socket.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record.requests.append(  # type: ignore[attr-defined]
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path in ("/api/bomb", "/api/big", "/api/gzip"):
            payload = {"/api/bomb": GZIP_BOMB, "/api/big": b"x" * BIG_BODY}.get(self.path)
            payload = gzip.compress(GZIP_TEXT) if payload is None else payload
            self.send_response(200)
            if self.path != "/api/big":
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if "/redirect?to=" in self.path:
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        reply = json.dumps({"path": self.path, "method": self.command, "got_body": body.decode()}).encode()
        self.send_response(404 if "/missing" in self.path else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture
def other_server() -> Iterator[Server]:
    yield from _serve()


async def _vm(start_registry, name: str = "net", **kwargs):
    registry = await start_registry(vm=agent_os(software=[common], **kwargs))
    return registry.client().vm.get_or_create([name])


async def test_the_network_is_off_by_default(start_registry, server):
    vm = await _vm(start_registry)
    for command in (f"curl -s {server.base}/a", f"wget -qO- {server.base}/a", f"http GET {server.base}/a"):
        run = await vm.exec(command)  # the engine's own commands, which have no network
        assert '"path"' not in run.stdout, (command, run)
        assert "not configured" in run.stdout + run.stderr, (command, run)
    assert server.requests == []


async def test_curl_wget_and_http_reach_an_allowed_url(start_registry, server):
    vm = await _vm(start_registry, network=network(allow=[f"{server.base}/api/*"]))
    run = await vm.exec(f"curl -s {server.base}/api/one")
    assert (run.exit_code, json.loads(run.stdout)["path"]) == (0, "/api/one"), run.stderr
    run = await vm.exec(f"curl -sS -X POST -H 'Content-Type: text/plain' -d 'hello' {server.base}/api/post")
    assert json.loads(run.stdout) == {"path": "/api/post", "method": "POST", "got_body": "hello"}
    run = await vm.exec(f"echo piped | curl -s --data-binary @- {server.base}/api/stdin -w '%{{http_code}}'")
    assert run.stdout.endswith("}200"), run
    assert '"got_body": "piped\\n"' in run.stdout, run
    run = await vm.exec(
        f"wget -qO- {server.base}/api/two; cd /tmp && wget -q {server.base}/api/file.json && cat file.json"
    )
    assert run.stdout.count('"path"') == 2, run.stderr
    assert "/api/file.json" in run.stdout, run.stderr
    run = await vm.exec(f"http POST {server.base}/api/three name=agent count:=2 X-Trace:abc")
    assert json.loads(run.stdout)["got_body"] == '{"name": "agent", "count": 2}', run
    assert server.headers_of("/api/three")[0]["X-Trace"] == "abc"
    run = await vm.exec(f"curl -s -o out.json {server.base}/api/four && cat out.json")
    assert json.loads(run.stdout)["path"] == "/api/four"
    run = await vm.exec(f"curl -sf {server.base}/api/../api/missing")
    assert run.exit_code == 22  # resolved to /api/missing, which the server answers with 404


@pytest.mark.parametrize(
    "url",
    [
        "{base}/other",
        "{base}/apix",
        "{base}/api/../other",
        "{base}/api/%2e%2e/other",
        "http://127.0.0.2:{port}/api/x",
        "http://2130706433:{port}/api/x",  # 127.0.0.1 spelled as one number
        "https://127.0.0.1:{port}/api/x",
    ],
)
async def test_anything_else_is_refused_naming_the_rules(start_registry, server, url):
    vm = await _vm(start_registry, network=network(allow=[f"{server.base}/api/*"]))
    target = url.format(base=server.base, port=server.port)
    for command in (f"curl -sS '{target}'", f"wget -q -O- '{target}'", f"http GET '{target}'"):
        run = await vm.exec(command)
        assert run.exit_code != 0, (command, run)
        assert "not allowed" in run.stderr, (command, run.stderr)
        assert f"{server.base}/api/*" in run.stderr, (command, run.stderr)
    assert server.requests == []


async def test_a_name_that_resolves_to_a_private_address_is_refused(start_registry, server):
    """DNS rebinding, as far as a test can: a rule for a host name lets the name through only
    to public addresses; this machine's own name resolves to a loopback or private one."""
    name = socket.gethostname()
    address = socket.gethostbyname(name)
    vm = await _vm(start_registry, network=network(allow=[f"http://{name}:{server.port}/*"]))
    run = await vm.exec(f"curl -sS http://{name}:{server.port}/x")
    assert run.exit_code == 7
    assert f"{name} resolves to {address}" in run.stderr, run.stderr
    assert "not a public address" in run.stderr, run.stderr
    assert server.requests == []


async def test_a_rule_that_names_the_address_or_localhost_allows_it(start_registry, server):
    vm = await _vm(
        start_registry, network=network(allow=[f"http://localhost:{server.port}/*", f"{server.base}/*"])
    )
    assert (await vm.exec(f"curl -s http://localhost:{server.port}/named")).exit_code == 0
    assert (await vm.exec(f"curl -s {server.base}/literal")).exit_code == 0
    assert [r["path"] for r in server.requests] == ["/named", "/literal"]


async def test_credentials_are_added_on_the_way_out_and_never_seen_inside(start_registry, server):
    policy = network(
        allow=[f"{server.base}/api/*"],
        credentials={f"{server.base}/api/*": {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}},
    )
    assert SECRET not in repr(policy)
    vm = await _vm(start_registry, network=policy)
    told = await vm.read_file("/etc/agentos/instructions.md", encoding="utf-8")
    assert f"- {server.base}/api/*" in told  # agents learn what they reach, and not to hunt for keys
    assert "authenticated by the host" in told
    run = await vm.exec(f"curl -s -H 'Authorization: Bearer forged' {server.base}/api/whoami")
    assert run.exit_code == 0
    assert SECRET not in run.stdout
    sent = server.headers_of("/api/whoami")[0]
    assert (sent["Authorization"], sent["X-Api-Key"]) == (f"Bearer {SECRET}", SECRET)
    await vm.exec(f"curl -s -H 'Host: elsewhere.example' {server.base}/api/steered")
    assert server.headers_of("/api/steered")[0]["Host"] == f"127.0.0.1:{server.port}"  # not steerable
    await vm.exec(f"wget -qO- {server.base}/api/w; http {server.base}/api/h")
    assert (
        server.headers_of("/api/w")[0]["X-Api-Key"] == SECRET == server.headers_of("/api/h")[0]["X-Api-Key"]
    )
    looks = [
        "env",
        "set",
        "declare -p",
        "export -p",
        "cat /proc/self/environ /proc/self/cmdline /proc/1/environ",
        "ls -R /proc",
        "grep -r -l sk-live / ; grep -r -l Bearer /",
        "history",
        "cat ~/.bash_history ~/.curlrc ~/.netrc /etc/environment",
        "python3 -c 'import os; print(dict(os.environ))'",
    ]
    for look in looks:
        run = await vm.exec(look)
        assert SECRET not in run.stdout + run.stderr, look
        assert "X-Api-Key" not in run.stdout + run.stderr, look
    files = await vm.readdir_recursive("/")
    for entry in files:
        if entry.kind == "file":
            assert SECRET.encode() not in await vm.read_file(entry.path), entry.path


async def test_credentials_go_only_where_their_pattern_says(start_registry, server, other_server):
    policy = network(
        allow=[f"{server.base}/*", f"{other_server.base}/*"],
        credentials={f"{server.base}/api/*": {"X-Api-Key": SECRET}},
    )
    vm = await _vm(start_registry, network=policy)
    await vm.exec(
        f"curl -s {server.base}/api/yes; curl -s {server.base}/public; curl -s {other_server.base}/api/yes"
    )
    assert server.headers_of("/api/yes")[0]["X-Api-Key"] == SECRET
    assert "X-Api-Key" not in server.headers_of("/public")[0]
    assert "X-Api-Key" not in other_server.headers_of("/api/yes")[0]


async def test_a_redirect_never_carries_credentials_elsewhere(start_registry, server, other_server):
    policy = network(
        allow=[f"{server.base}/*", f"{other_server.base}/*"],
        credentials={f"{server.base}/api/*": {"Authorization": f"Bearer {SECRET}"}},
    )
    vm = await _vm(start_registry, network=policy)
    hops = [
        f"curl -sL -H 'Cookie: mine=1' '{server.base}/api/redirect?to={other_server.base}/landed'",
        f"wget -qO- '{server.base}/api/redirect?to={other_server.base}/landed-wget'",
        f"http --follow '{server.base}/api/redirect?to={server.base}/public'",
    ]
    for hop in hops:
        run = await vm.exec(hop)
        assert run.exit_code == 0, (hop, run)
    assert [
        r["headers"].get("Authorization") for r in server.requests if r["path"].startswith("/api/redirect")
    ] == [f"Bearer {SECRET}"] * 3
    for landed in other_server.requests + server.headers_of("/public"):
        headers = landed.get("headers", landed)
        assert "Authorization" not in headers, landed
        assert "Cookie" not in headers, landed


async def test_a_redirect_to_a_url_outside_the_rules_is_refused(start_registry, server, other_server):
    vm = await _vm(start_registry, network=network(allow=[f"{server.base}/*"]))
    run = await vm.exec(f"curl -sSL '{server.base}/redirect?to={other_server.base}/x'")
    assert run.exit_code == 7
    assert f"{other_server.base}/x is not allowed" in run.stderr, run.stderr
    assert other_server.requests == []
    run = await vm.exec(f"curl -sS '{server.base}/redirect?to={other_server.base}/x'")  # not followed
    assert run.exit_code == 0


async def test_bad_command_lines_fail_like_the_programs(start_registry, server):
    vm = await _vm(start_registry, network=network(allow=[f"{server.base}/*"]))
    run = await vm.exec(f"curl --proxy http://evil:1 {server.base}/x")
    assert run.exit_code == 2
    assert "--proxy" in run.stderr
    run = await vm.exec("curl -s")
    assert run.exit_code == 2
    assert "no URL" in run.stderr
    run = await vm.exec(f"curl -sS -H 'bad header' {server.base}/x")
    assert run.exit_code == 2
    assert "not a header" in run.stderr
    run = await vm.exec(f"curl -sS -X 'GET /smuggled HTTP/1.1' {server.base}/x")
    assert run.exit_code == 3
    assert "not an HTTP method" in run.stderr
    assert server.requests == []
    run = await vm.exec(f"curl -s 127.0.0.1:{server.port}/no-scheme")  # http, as curl takes it
    assert json.loads(run.stdout)["path"] == "/no-scheme"


@pytest.mark.parametrize(
    ("allow", "credentials", "said"),
    [
        (["https://*.github.com/*"], None, "only end"),
        (["ftp://example.com/*"], None, "only http and https"),
        (["https://user:pw@example.com/*"], None, "user and password"),
        ([], None, "at least one"),
        ("https://example.com/*", None, "list of URL patterns"),
        (["https://a.example/*"], {"https://b.example/*": {"X-Key": "v"}}, "no allow pattern covers"),
        (["https://a.example/api/*"], {"https://a.example/*": {"X-Key": "v"}}, "no allow pattern covers"),
        (["https://a.example/*"], {"https://a.example/*": {"X-Key": "v\r\nInjected: 1"}}, "one line"),
        (["https://a.example/*"], {"https://a.example/*": {"Bad Name": "v"}}, "not a header name"),
    ],
)
def test_bad_network_rules_are_refused(allow, credentials, said):
    with pytest.raises(NetworkError, match=said):
        network(allow=allow, credentials=credentials)


def test_network_must_be_made_with_network():
    with pytest.raises(errors.InvalidDefinition, match="network\\(\\.\\.\\.\\)"):
        agent_os(network={"allow": ["https://example.com/*"]})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("https://api.github.com/*", "https://api.github.com/repos/x", True),
        ("https://api.github.com/*", "https://API.GitHub.com:443/", True),
        ("https://api.github.com/*", "http://api.github.com/", False),  # another scheme
        ("https://api.github.com/*", "https://api.github.com:8443/", False),  # another port
        ("https://api.github.com/*", "https://api.github.com.evil.example/", False),
        ("https://api.github.com/*", "https://evil.example/https://api.github.com/", False),
        ("https://x.example/v1", "https://x.example/v1", True),
        ("https://x.example/v1", "https://x.example/v1/users?page=2", True),
        ("https://x.example/v1", "https://x.example/v10", False),
        ("https://x.example/v1/*", "https://x.example/v1", False),  # below it only
        ("https://x.example/v1/*", "https://x.example/v1/a/../../v2", False),
        ("https://x.example/v1/*", "https://x.example/v1/a/%2E%2E/b", True),  # still under /v1/
    ],
)
def test_rules_match_scheme_host_port_and_path_prefix(pattern, url, allowed):
    assert Rule.parse(pattern).matches(parse_url(url)) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "https://h.example/repos/me/..%2F..%2Fother",
        "https://h.example/repos/me/..%2f..%2fother",
        "https://h.example/repos/me/..%5Cother",
        "https://h.example/repos/me/..%5cother",
        "https://h.example/repos/me/..\\other",
    ],
)
def test_an_encoded_slash_or_a_backslash_in_a_path_is_refused(url):
    with pytest.raises(NetworkError, match="cannot encode a slash or hold a backslash"):
        parse_url(url)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # loopback, spelled as IPv6
        ("224.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
    ],
)
def test_only_public_addresses_count_as_public(address, public):
    parsed = address_of(address)
    assert parsed is not None
    assert is_public(parsed) is public


async def test_a_gzip_bomb_is_decoded_only_up_to_the_limit(server):
    outbound = Outbound(network(allow=[f"{server.base}/api/*"]))
    limit = 1024 * 1024
    tracemalloc.start()
    try:
        reply = await outbound.request(
            "GET", f"{server.base}/api/bomb", [("Accept-Encoding", "gzip")], max_body=limit
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (len(reply.body), reply.truncated) == (limit, True)
    assert set(reply.body) == {0}  # decoded, not the compressed bytes
    assert len(GZIP_BOMB) < BOMB_BYTES // 500
    assert peak < 16 * limit, f"decoding took {peak} bytes at its peak for a {limit}-byte limit"


async def test_a_small_gzip_body_is_decoded_whole(server):
    outbound = Outbound(network(allow=[f"{server.base}/api/*"]))
    reply = await outbound.request("GET", f"{server.base}/api/gzip")
    assert (reply.body, reply.truncated) == (GZIP_TEXT, False)


async def test_curl_keeps_no_more_of_a_body_than_the_vms_memory(server):
    megabyte = 1024 * 1024
    allowed = network(allow=[f"{server.base}/api/*"])
    commands = network_commands(allowed, lambda: None, max_memory=megabyte)  # type: ignore[arg-type, return-value]
    call = CommandCall("curl", ["curl", "-s", f"{server.base}/api/big"], None, {}, "/")
    reply = await commands["curl"](call)
    assert len(reply.stdout) == megabyte < BIG_BODY
