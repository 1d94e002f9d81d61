"""`setup(use=...)` and the registry it returns: the runtime (`actors/registry.py`) with its faces
composed on top, so that the runtime itself never reaches up for them.

In a plain script, with no loop running, `registry.start()` serves the HTTP API and blocks, as
the seed's server does; in a notebook it starts the runtime on the kernel's loop and returns at
once, serving only when asked (`start(serve=True)`, `await registry.serve()`).
`registry.dashboard()` shows it in widgets. Each face (`agentos_nb.http`, `agentos_nb.jupyter`)
loads only when one of these asks for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from agentos_nb.actors import registry as runtime
from agentos_nb.actors.definition import ActorDefinition
from agentos_nb.errors import InvalidDefinition
from agentos_nb.store import Store, open_store
from agentos_nb.vm.handle import LocalVmHandle

if TYPE_CHECKING:
    from agentos_nb.http.scopes import ScopedToken, Webhook
    from agentos_nb.http.server import HttpServer, ServerInfo
    from agentos_nb.jupyter.dashboard import Dashboard
    from agentos_nb.jupyter.terminal_widget import TerminalWidget

# Where `start()` serves in a plain script, as Rivet's registries do.
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 6420

logger = logging.getLogger(__name__)


class ServedVmHandle(LocalVmHandle):
    """The in-process handle of a VM of a registry made by `setup`: its actions, and the faces'
    ways to show it (a terminal widget, preview links on the HTTP face)."""

    def terminal(self, *, cols: int = 80, rows: int = 24, fit_width: bool = True) -> TerminalWidget:
        """A shell in this VM as a terminal widget you type into (xterm.js, shipped with the
        package). Made in a notebook cell (it opens the shell on the running loop); closing the
        widget ends the shell. The width follows the cell unless `fit_width=False`."""
        from agentos_nb.jupyter.terminal_widget import TerminalWidget  # widgets load only when asked for

        return TerminalWidget(self, cols=cols, rows=rows, fit_width=fit_width)

    async def preview_url(self, path: str = "site", *, expires_in: float = 3600.0) -> str:
        """A link that shows this VM's files under `path` (relative to the home directory, or
        absolute) in a browser for `expires_in` seconds (at most a week), with no token: the
        signed link is the capability. A directory shows its index.html.

        It is served by the registry's HTTP face, so the registry must be serving (`await
        registry.serve()`); otherwise this raises `RuntimeError`. Links die with the server."""
        from agentos_nb.http.previews import preview_grant

        registry = self._registry
        server = registry.server if isinstance(registry, Registry) else None
        if server is None or server.info is None or server.api is None:
            raise RuntimeError(
                "preview links are served by the registry's HTTP face, which is not running: "
                "`await registry.serve()` first"
            )
        grant = preview_grant(self.name, await self.resolve(), path, expires_in)
        return server.api.previews.link(server.info.url, grant)


class Registry(runtime.Registry):
    """The runtime, served over HTTP and shown in widgets when asked to."""

    def __init__(self, definitions: Mapping[str, ActorDefinition], store: Store, name: str) -> None:
        super().__init__({name: _with_faces(d) for name, d in definitions.items()}, store, name)
        self._server: HttpServer | None = None

    def start(
        self,
        *,
        serve: bool | None = None,
        host: str = SERVE_HOST,
        port: int = SERVE_PORT,
        token: str | None = None,
        tokens: Sequence[ScopedToken | dict[str, Any]] = (),
        webhooks: Sequence[Webhook | dict[str, Any]] = (),
    ) -> Self:
        """Start the runtime.

        With a running event loop (a notebook cell), start on it and return at once; with
        `serve=True`, also serve the HTTP API in the background (`await registry.serve(...)`
        does the same and says where). With no running loop (a plain script), serve the HTTP
        API on host:port and block until Ctrl-C or SIGTERM, then drain and stop (a second one
        cuts the drain short and exits 130); `serve=False` refuses instead. The token is
        generated unless given; clients on this machine find it in the registry's runtime file.
        `tokens` and `webhooks` are as for `serve`.
        """
        if serve is not False and not _loop_running():
            from agentos_nb.http.serving import ServeInterrupted

            try:
                asyncio.run(
                    serve_until_signalled(
                        self, host=host, port=port, token=token, tokens=tokens, webhooks=webhooks
                    )
                )
            except ServeInterrupted:  # a second Ctrl-C cut the drain short: exit as a shell expects
                raise SystemExit(130) from None
            return self
        super().start()
        if serve:
            self.spawn(self._serve_in_background(host, port, token, tokens, webhooks))
        return self

    async def serve(
        self,
        *,
        host: str = SERVE_HOST,
        port: int = SERVE_PORT,
        token: str | None = None,
        tokens: Sequence[ScopedToken | dict[str, Any]] = (),
        webhooks: Sequence[Webhook | dict[str, Any]] = (),
        max_body_bytes: int | None = None,
    ) -> ServerInfo:
        """Serve the HTTP API on the running loop without blocking (starting the registry if
        needed), and say where: the URL, and the runtime file that holds the token. Serving
        already, it says where it serves.

        `token` opens every route. Each of `tokens` (`ScopedToken`s, or dicts of their fields)
        opens only its scope: kinds of route, actor patterns, queues; it is never written
        anywhere. Each of `webhooks` (`Webhook`s) lets a sender with no token post to one queue
        by signing the body with a shared secret (`X-Hub-Signature-256`)."""
        from agentos_nb.http.server import DEFAULT_MAX_BODY_BYTES, HttpServer  # loads only when asked for

        serving = self.server
        if serving is not None and serving.info is not None:
            return serving.info
        if self.phase == "new":
            self.start(serve=False)
        await self.ready()
        if self._server is None:
            self._server = HttpServer(
                self,
                host=host,
                port=port,
                token=token,
                tokens=tokens,
                webhooks=webhooks,
                max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES,
            )
        try:
            info = self._server.start()
        except BaseException:
            self._server = None
            raise
        self.attach(self._server)  # stopping the registry drains the server, then closes it
        return info

    @property
    def server(self) -> HttpServer | None:
        """The HTTP server, while this registry serves."""
        server = self._server
        return None if server is None or server.closed.is_set() else server

    async def _serve_in_background(
        self,
        host: str,
        port: int,
        token: str | None,
        tokens: Sequence[ScopedToken | dict[str, Any]],
        webhooks: Sequence[Webhook | dict[str, Any]],
    ) -> None:
        try:
            await self.serve(host=host, port=port, token=token, tokens=tokens, webhooks=webhooks)
        except Exception:  # nobody awaits this task: the log is where a failure to bind shows
            logger.exception("registry %r could not serve HTTP on %s:%s", self.name, host, port)

    def dashboard(self, **options: Any) -> Dashboard:
        """A live ipywidgets dashboard of this registry (see `agentos_nb.jupyter.dashboard`)."""
        from agentos_nb.jupyter.dashboard import Dashboard  # widgets load only when asked for

        return Dashboard(self, **options)


async def serve_until_signalled(
    registry: Registry,
    *,
    host: str,
    port: int,
    token: str | None,
    tokens: Sequence[ScopedToken | dict[str, Any]] = (),
    webhooks: Sequence[Webhook | dict[str, Any]] = (),
    max_body_bytes: int | None = None,
    ready: Callable[[ServerInfo], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM (or until the registry is stopped), then drain and stop:
    `registry.start()` in a script, and `agentos-nb serve`. `ready` hears where it serves. A
    second signal while draining cuts the drain short and raises `ServeInterrupted` (a
    `KeyboardInterrupt`)."""
    from agentos_nb.http.serving import stop_when_signalled

    try:
        info = await registry.serve(
            host=host, port=port, token=token, tokens=tokens, webhooks=webhooks, max_body_bytes=max_body_bytes
        )
    except BaseException:
        await registry.stop()
        raise
    if ready is not None:
        ready(info)
    server = registry.server
    assert server is not None
    await stop_when_signalled(registry, server)


def setup(
    *,
    use: Mapping[str, ActorDefinition],
    store: str | Store = "memory",
    name: str | None = None,
) -> Registry:
    """Gather actor definitions into a registry. `store` is "memory" or a store object.

    Without a `name`, the registry is `default` (`default-2`, ... when a running one of that
    name has other actor types): a cell run again with the same actors gets the same name,
    and so replaces the registry its last run started."""
    for actor_name, definition in use.items():
        if not actor_name.isidentifier():
            raise InvalidDefinition(f"actor name {actor_name!r} is not a Python identifier")
        if not isinstance(definition, ActorDefinition):
            raise InvalidDefinition(
                f"use[{actor_name!r}] must be made with actor(...), not {type(definition).__name__}"
            )
    return Registry(use, open_store(store), name or _default_name(use))


def _default_name(use: Mapping[str, ActorDefinition]) -> str:
    wanted = sorted(use)
    running = {registry.name: sorted(registry.definitions) for registry in runtime.running_registries()}
    names = ("default" if number == 1 else f"default-{number}" for number in itertools.count(1))
    return next(name for name in names if running.get(name, wanted) == wanted)


def _with_faces(definition: ActorDefinition) -> ActorDefinition:
    """A VM type whose handles also show it through the faces (`ServedVmHandle`)."""
    if definition.handle_class is LocalVmHandle:
        return dataclasses.replace(definition, handle_class=ServedVmHandle)
    return definition


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
