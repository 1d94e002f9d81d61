"""The /agentos/api routes of the jupyter-server extension: list the registries that kernels (or
scripts) of this user serve, and forward requests to one of them.

A registry announces itself with a runtime file holding its URL and bearer token. Callers of these
routes authenticate to Jupyter, never to the registry: the token stays on this machine, so a
webhook can reach a notebook's agents with nothing but Jupyter's own token (`?token=` or an
`Authorization: token ...` header), on Binder too.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pydantic
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from agentos_nb.http.runtime_files import RegistryRuntimeInfo, list_runtime_files, runtime_dir

AUTH_RESOURCE = "agentos"  # what a Jupyter authorizer (JupyterHub's, say) is asked about

# Request headers that carry meaning for the registry; Jupyter's cookies and token stay here.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "Last-Event-ID")
# Response headers relayed besides the status and the body: X-Accel-Buffering keeps a proxy in
# front of Jupyter (nginx, as on Binder and JupyterHub) from holding back an event stream.
RELAYED_RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "X-Accel-Buffering", "Allow")

# The registry bounds its own waits (`?wait=true&timeout=S`) and event streams last until the
# caller leaves, so only connecting is timed.
REGISTRY_TIMEOUT = httpx.Timeout(None, connect=5.0)


class RegistryListing(pydantic.BaseModel):
    """What GET /agentos/api/registries tells about one registry: never its token."""

    id: str
    name: str
    url: str
    pid: int
    started_at: float

    @classmethod
    def of(cls, info: RegistryRuntimeInfo) -> RegistryListing:
        parts = urlsplit(info.url)
        return cls(
            id=info.id,
            name=info.name,
            url=f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}",  # scheme, host and port only
            pid=info.pid,
            started_at=info.started_at,
        )


class RegistryError(pydantic.BaseModel):
    """The body of the errors this extension answers itself, shaped as the registry's own."""

    error: str
    message: str


@functools.cache
def registry_tls_context() -> ssl.SSLContext:
    """One TLS context for every forward: httpx would otherwise load the CA bundle for each
    request's client (about 40 ms), though registries serve plain HTTP on loopback."""
    return ssl.create_default_context()


async def running_registries() -> list[RegistryRuntimeInfo]:
    """The registries whose runtime files name a live process, oldest first, read off the loop."""
    return await asyncio.to_thread(list_runtime_files)


def find_registry(registries: list[RegistryRuntimeInfo], wanted: str) -> RegistryRuntimeInfo | None:
    """The registry `wanted` names: by id, or else by name, the newest of that name. A name
    outlives kernel restarts (an id holds the pid), so a webhook's URL can keep working."""
    by_id = next((info for info in registries if info.id == wanted), None)
    if by_id is not None:
        return by_id
    named = [info for info in registries if info.name == wanted]
    return named[-1] if named else None


def left_behind(registry_id: str) -> bool:
    """Whether `registry_id` has a runtime file though its process is gone (killed before it
    could remove the file): the registry existed, and cannot be reached now."""
    return any(path.name == f"registry-{registry_id}.json" for path in runtime_dir().glob("registry-*.json"))


class RegistriesHandler(APIHandler):
    """GET /agentos/api/registries: the registries a request can be forwarded to."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        listings = [RegistryListing.of(info) for info in await running_registries()]
        self.set_header("Content-Type", "application/json")
        self.finish({"registries": [listing.model_dump(mode="json") for listing in listings]})


class RegistryForwardHandler(APIHandler):
    """/agentos/api/registries/{id}/{rest}: the same request, sent to the registry's <url>/{rest}
    with its token; its status, content type and body come back as they are, and an event
    stream is relayed event by event until either side leaves."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, route: re.Pattern[str]) -> None:
        self.route = route  # the full URL pattern, to take {rest} still percent-encoded
        self.relay: asyncio.Task[None] | None = None

    def compute_etag(self) -> str | None:
        return None  # live state: a 304 would hide a change

    def on_connection_close(self) -> None:
        if self.relay is not None:
            self.relay.cancel()  # the caller left: stop reading the registry's stream

    @web.authenticated
    @authorized  # read or write, by the request's method
    async def get(self, registry_id: str, rest: str) -> None:
        """`rest` arrives percent-decoded: `target_url` takes it from the raw path instead."""
        await self.forward(registry_id)

    post = put = delete = get

    async def forward(self, registry_id: str) -> None:
        registry = find_registry(await running_registries(), registry_id)
        if registry is None:
            if await asyncio.to_thread(left_behind, registry_id):
                self.fail(502, "registry.unreachable", f"the process of registry {registry_id!r} has exited")
            else:
                self.fail(
                    404,
                    "registry.not_found",
                    f"no running registry has the id or name {registry_id!r}; "
                    "GET /agentos/api/registries lists them",
                )
            return
        self.relay = asyncio.ensure_future(self.relay_from(registry))
        try:
            await asyncio.wait([self.relay])
        finally:
            self.relay.cancel()
        if not self.relay.cancelled():
            self.relay.result()

    def target_url(self, registry: RegistryRuntimeInfo) -> str:
        """<url>/{rest}, with {rest} as the caller encoded it (a key part may hold an encoded "/"
        or ","), and the query without Jupyter's own `token`."""
        matched = self.route.fullmatch(self.request.path)
        assert matched is not None  # tornado routed this request here by the same pattern
        query = parse_qsl(self.request.query, keep_blank_values=True)
        kept = urlencode([(name, value) for name, value in query if name != "token"])
        url = f"{registry.url.rstrip('/')}/{matched['rest']}"
        return f"{url}?{kept}" if kept else url

    async def relay_from(self, registry: RegistryRuntimeInfo) -> None:
        asked = self.request.headers
        headers = {name: asked[name] for name in FORWARDED_REQUEST_HEADERS if name in asked}
        headers["Authorization"] = f"Bearer {registry.token}"
        # trust_env=False: a proxy from the environment must not see loopback traffic and its token
        client = httpx.AsyncClient(verify=registry_tls_context(), timeout=REGISTRY_TIMEOUT, trust_env=False)
        async with client:
            request = client.build_request(
                self.request.method, self.target_url(registry), headers=headers, content=self.request.body
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as error:
                self.fail(
                    502,
                    "registry.unreachable",
                    f"registry {registry.id!r} does not answer at {RegistryListing.of(registry).url} "
                    f"({type(error).__name__}); its kernel may have stopped",
                )
                return
            try:
                await self.relay_response(response)
            finally:
                await response.aclose()

    async def relay_response(self, response: httpx.Response) -> None:
        self.set_status(response.status_code)
        for name in RELAYED_RESPONSE_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        streaming = response.headers.get("Content-Type", "").startswith("text/event-stream")
        try:
            if streaming:
                await self.flush()  # the caller sees the stream open before the first event
            async for chunk in response.aiter_bytes():
                self.write(chunk)
                if streaming:
                    await self.flush()
        except (httpx.TransportError, StreamClosedError):
            return  # one side left mid-body; what was relayed is all the caller gets
        self.finish()

    def fail(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(RegistryError(error=code, message=message).model_dump_json())


Route = tuple[str, type[APIHandler], dict[str, Any]]


def registry_routes(base_url: str) -> list[Route]:
    """The extension's tornado routes under Jupyter's base URL."""
    forward = url_path_join(base_url, r"agentos/api/registries/(?P<registry_id>[^/]+)/(?P<rest>.*)")
    return [
        (url_path_join(base_url, "agentos/api/registries"), RegistriesHandler, {}),
        (forward, RegistryForwardHandler, {"route": re.compile(forward)}),
    ]
