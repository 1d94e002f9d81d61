"""Preview links (`vm.preview_url`): a signed, expiring URL on the HTTP face that serves a VM's
files under one directory, with no token; altered or expired links, traversal, encoded slashes,
symlinks and listings are refused."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from agentos_nb import agent_os, setup
from agentos_nb.http.previews import PreviewGrant, PreviewSigner
from agentos_nb.software import common

pytestmark = pytest.mark.anyio


@pytest.fixture
async def site(tmp_path, monkeypatch):
    """A served registry with one VM holding a small site, its handle and an HTTP client."""
    monkeypatch.setenv("AGENTOS_NB_RUNTIME_DIR", str(tmp_path))
    registry = setup(use={"vm": agent_os(software=[common])}, name=f"previews-{id(tmp_path)}")
    await registry.serve(port=0)
    vm = registry.client().vm.get_or_create(["site"])
    await vm.write_file("site/index.html", "<h1>Built by an agent</h1><script src='app.js'></script>")
    await vm.write_file("site/app.js", "document.title = 'live';")
    await vm.write_file("site/style.css", "h1 { color: red }")
    await vm.write_file("site/data.json", '{"ok": true}')
    await vm.write_file("site/sub/page.html", "<p>deeper</p>")
    await vm.write_file("secret.txt", "outside the site")
    async with httpx.AsyncClient() as http:
        yield registry, vm, http
    await registry.stop(grace=0)


async def test_a_link_serves_the_index_and_files_with_their_types_and_no_token(site):
    registry, vm, http = site
    url = await vm.preview_url("site", expires_in=60)
    assert url.startswith(registry.server.info.url + "/previews/")
    assert registry.server.token not in url
    page = await http.get(url)
    assert page.status_code == 200
    assert page.text.startswith("<h1>Built by an agent</h1>")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, kind in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("sub/page.html", "text/html; charset=utf-8"),
    ]:
        reply = await http.get(url + name)
        assert (reply.status_code, reply.headers["content-type"]) == (200, kind), name
    assert (await http.get(url + "index.html")).text == page.text
    assert (await vm.preview_url("/home/user/site/")).startswith(registry.server.info.url)


async def test_a_file_changed_in_the_vm_is_served_changed(site):
    _, vm, http = site
    url = await vm.preview_url("site")
    await vm.exec("echo '<h1>v2</h1>' > site/index.html")
    assert (await http.get(url)).text == "<h1>v2</h1>\n"


async def test_an_expired_link_is_refused(site, monkeypatch):
    _, vm, http = site
    url = await vm.preview_url("site", expires_in=1)
    assert (await http.get(url)).status_code == 200
    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    reply = await http.get(url)
    assert reply.status_code == 403
    assert reply.json()["error"] == "http.preview_refused"


async def test_an_altered_link_is_refused(site):
    registry, vm, http = site
    url = await vm.preview_url("site")
    base, grant, _ = url.rsplit("/", 2)
    payload, mac = grant.split(".")
    forged = PreviewGrant.model_validate_json(_unb64(payload)).model_copy(update={"root": "/home/user"})
    forged_payload = _b64(forged.model_dump_json().encode())
    longer = PreviewGrant.model_validate_json(_unb64(payload)).model_copy(update={"expires": 1e12})
    for altered in [
        f"{base}/{forged_payload}.{mac}/secret.txt",  # another directory, the old signature
        f"{base}/{_b64(longer.model_dump_json().encode())}.{mac}/",  # a longer life
        f"{base}/{payload}.{mac[:-2]}AA/",  # a signature changed
        f"{base}/{payload}/",  # no signature
        f"{base}/{payload}.{mac}x/",
        f"{base}/not-base64!.{mac}/",
    ]:
        reply = await http.get(altered)
        assert reply.status_code == 403, altered
    other_server = PreviewSigner().link(registry.server.info.url, forged)  # signed with another secret
    assert (await http.get(other_server + "secret.txt")).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "sub/../../secret.txt",
        "..%2Fsecret.txt",
        "%2e%2e/secret.txt",
        "sub%2F..%2F..%2Fsecret.txt",
        "..%5Csecret.txt",
        "sub//page.html",
        "./index.html",
        "index.html%00.png",
    ],
)
async def test_nothing_outside_the_directory_is_reachable(site, path):
    _, vm, _ = site
    url = await vm.preview_url("site")
    status, body = await _raw_get(url, path)  # as written: httpx would resolve `..` before sending
    assert status == 403, path
    assert b"outside the site" not in body


async def test_symlinks_are_not_followed(site):
    _, vm, http = site
    url = await vm.preview_url("site")
    await vm.exec("ln -s ../secret.txt site/leak.txt && ln -s /home/user site/home && ln -s sub site/alias")
    for path in ["leak.txt", "home/secret.txt", "alias/page.html"]:
        reply = await http.get(url + path)
        assert reply.status_code == 403, path
        assert "outside the site" not in reply.text
    await vm.exec("mv site real-site && ln -s real-site site")  # the directory itself a link
    assert (await http.get(url)).status_code == 403


async def test_a_directory_without_an_index_is_not_listed(site):
    _, vm, http = site
    url = await vm.preview_url("site")
    reply = await http.get(url + "sub/")
    assert reply.status_code == 403
    assert "page.html" not in reply.text
    assert (await http.get(url + "missing.html")).status_code == 403


async def test_a_link_is_for_one_vm(site):
    registry, vm, http = site
    other = registry.client().vm.get_or_create(["other"])
    await other.write_file("site/index.html", "<p>other</p>")
    mine, theirs = await vm.preview_url("site"), await other.preview_url("site")
    assert (await http.get(mine)).text != (await http.get(theirs)).text


async def test_bad_arguments_are_refused_naming_what_was_wrong(site):
    _, vm, _ = site
    with pytest.raises(ValueError, match="expires_in must be more than 0"):
        await vm.preview_url("site", expires_in=0)
    with pytest.raises(ValueError, match="at most 604800 seconds"):
        await vm.preview_url("site", expires_in=10**9)
    with pytest.raises(TypeError, match="expires_in is a number"):
        await vm.preview_url("site", expires_in="60")
    with pytest.raises(PermissionError, match="outside the VM's root"):
        await vm.preview_url("../../..")


async def test_without_the_http_face_a_link_cannot_be_made(start_registry):
    registry = await start_registry(vm=agent_os())
    vm = registry.client().vm.get_or_create(["quiet"])
    with pytest.raises(RuntimeError, match=r"not running: `await registry.serve\(\)` first"):
        await vm.preview_url("site")


async def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET `url` + `path` with the path sent exactly as written."""
    parsed = httpx.URL(url)
    reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
    target = parsed.raw_path.decode() + path
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {parsed.host}\r\nConnection: close\r\n\r\n".encode())
    reply = await reader.read()
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_the_link_alone_decides_whatever_token_comes_with_it(site):
    registry, vm, http = site
    url = await vm.preview_url("site")
    for headers in [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {registry.server.token}"},
    ]:
        assert (await http.get(url, headers=headers)).status_code == 200
    base, grant, _ = url.rsplit("/", 2)
    forged = f"{base}/{grant.replace('.', '.A')}/"
    full = {"Authorization": f"Bearer {registry.server.token}"}
    assert (await http.get(forged, headers=full)).status_code == 403  # the full token opens no bad link


async def test_a_file_too_large_to_preview_is_refused(site, monkeypatch):
    from agentos_nb.http import preview_handlers

    _, vm, http = site
    url = await vm.preview_url("site")
    monkeypatch.setattr(preview_handlers, "MAX_PREVIEW_BYTES", 100)
    await vm.write_file("site/big.bin", b"x" * 101)
    reply = await http.get(url + "big.bin")
    assert reply.status_code == 403
    assert "101 bytes: a preview serves 100 at most" in reply.json()["message"]
    assert (await http.get(url + "app.js")).status_code == 200


async def test_a_file_that_grew_after_its_size_was_checked_is_refused(site, monkeypatch):
    from agentos_nb.http import preview_handlers

    _, vm, http = site
    url = await vm.preview_url("site")
    monkeypatch.setattr(preview_handlers, "MAX_PREVIEW_BYTES", 100)
    await vm.write_file("site/grows.bin", b"x" * 10)
    stat = preview_handlers._stat_without_links

    async def stat_then_grow(*args):
        found = await stat(*args)
        if found is not None and found.kind == "file":
            await vm.write_file("site/grows.bin", b"x" * 101)  # between the stat and the read
        return found

    monkeypatch.setattr(preview_handlers, "_stat_without_links", stat_then_grow)
    reply = await http.get(url + "grows.bin")
    assert reply.status_code == 403
    assert "101 bytes: a preview serves 100 at most" in reply.json()["message"]
