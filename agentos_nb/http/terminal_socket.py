"""A VM's terminal over HTTP: `GET /actors/{name}/{key}/terminals/{terminal_id}` is its screen as
JSON, or, asked with `Upgrade: websocket`, the terminal itself as a WebSocket (tornado's).

The route is in the table like any other (its scope kind is `actions`, since the socket is the
terminal actions), so the server authorises the upgrade as every request, by the
`Authorization` header, before tornado's WebSocket code sees it. Open the terminal first
(`POST .../actions/open_shell`). On the socket:

- the server sends `{"output": ...}`: what the terminal writes, escape sequences and all (what
  was kept of its output first), and closes the socket when the terminal ends;
- the client sends `{"keys": "ls\\r"}` to type and `{"resize": {"cols": 100, "rows": 30}}` to
  resize. A bad frame is answered `{"error": ...}` and changes nothing; keys past `MAX_KEYS`
  close the socket (1009, saying why), as a frame past the size limit does.

Every frame is a text frame of JSON.

Cross-origin upgrades (a page of another site in the user's browser) are refused, as tornado
does by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from tornado.web import Application
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from agentos_nb.http.api import Api, actor_handle
from agentos_nb.http.errors import RouteNotFound
from agentos_nb.http.routing import Reply, Request, Router, json_bytes
from agentos_nb.vm.agent_os import is_vm
from agentos_nb.vm.handle import LocalVmHandle, VmHandle
from agentos_nb.vm.terminal_models import MAX_KEYS, check_size

TERMINAL_ROUTE = "/actors/{name}/{key}/terminals/{terminal_id}"
_PENDING_MAX = 32  # frames waiting for the VM; past this the client is sending faster than it types
_FRAME_MAX = 4 * MAX_KEYS  # bytes of one frame: the most keys one `send` takes, JSON-escaped


async def terminal_screen(request: Request) -> Reply:
    """GET without an upgrade: what the terminal shows now."""
    screen = await terminal_handle(request).terminal_screen(request.param("terminal_id"))
    return Reply(body=json_bytes(screen))


def terminal_handle(request: Request) -> VmHandle:
    """The VM the URL names (never created: its terminal must be open already)."""
    if not is_vm(request.api.definition(request.param("name"))):
        raise RouteNotFound(f"{request.param('name')!r} is not an agent VM: it has no terminals")
    handle = actor_handle(request, create=False)
    assert isinstance(handle, LocalVmHandle)  # the handle class of every VM type
    return handle


def socket_application(api: Api, router: Router) -> Application:
    """The tornado application that takes over a request the server has authorised for an upgrade.

    The socket reads its actor from the raw path by `router`, as the server did to authorise it:
    tornado's own path arguments come percent-decoded, so `%40<id>` or `a%2Cb` would name
    another actor than the one the token's scope was checked against."""
    return Application(
        [(r"/.*", TerminalSocket, {"api": api, "router": router})],
        websocket_max_message_size=_FRAME_MAX,
        websocket_ping_interval=30,
    )


class TerminalSocket(WebSocketHandler):
    """One client's connection to one open terminal."""

    def initialize(self, api: Api, router: Router) -> None:
        self._api = api
        self._router = router
        self._pending: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_PENDING_MAX)
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, *_: str, **__: str) -> None:
        try:
            params = self._router.match("GET", self.request.path)[1]  # raw, as the server authorised it
            request = Request(self._api, params, {}, b"")
            vm = terminal_handle(request)
            terminal_id = request.param("terminal_id")
            await vm.terminal_screen(terminal_id)  # an unknown terminal fails here, and is said
        except Exception as error:  # the client hears why, then the socket closes
            self.close(4404, f"{type(error).__name__}: {error}"[:120])
            return
        self._tasks = [
            asyncio.ensure_future(self._relay_output(vm, terminal_id)),
            asyncio.ensure_future(self._forward_input(vm, terminal_id)),
        ]

    def on_message(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
            if not isinstance(frame, dict) or not ({"keys"} == frame.keys() or {"resize"} == frame.keys()):
                raise ValueError('a frame is {"keys": "..."} or {"resize": {"cols": N, "rows": N}}')
            keys = frame.get("keys")
            if isinstance(keys, str) and len(keys) > MAX_KEYS:
                self.close(1009, f"a frame's keys are at most {MAX_KEYS} characters")
                return
            self._pending.put_nowait(frame)
        except asyncio.QueueFull:
            self._say("frames came faster than the terminal took them: this one was dropped")
        except ValueError as error:  # bad JSON too
            self._say(str(error))

    def on_close(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _relay_output(self, vm: VmHandle, terminal_id: str) -> None:
        try:
            async for chunk in vm.terminal_output(terminal_id):
                await self.write_message(json.dumps({"output": chunk.data}))
        except WebSocketClosedError:
            return
        except Exception as error:  # the VM slept, its host went away: the client hears it
            self._say(f"{type(error).__name__}: {error}")
        self.close(1000, "the terminal has ended")

    async def _forward_input(self, vm: VmHandle, terminal_id: str) -> None:
        while True:
            frame = await self._pending.get()
            try:
                if "keys" in frame:
                    await vm.terminal_send(terminal_id, frame["keys"])
                else:
                    size = frame["resize"]
                    if not isinstance(size, dict):
                        raise TypeError("resize takes {cols, rows}")
                    rows, cols = check_size(size.get("rows"), size.get("cols"))
                    await vm.resize_terminal(terminal_id, cols=cols, rows=rows)
            except (ValueError, TypeError) as error:
                self._say(str(error))

    def _say(self, error: str) -> None:
        with contextlib.suppress(WebSocketClosedError):
            self.write_message(json.dumps({"error": error}))
