"""Over HTTP, no caller starts a program on the host.

An MCP stdio server (`McpStdioServer`) runs any command with the kernel's rights, so it is
taken in-process only: one among an action's arguments over HTTP is refused with 403, before
the action runs. A server reached over HTTP (`McpHttpServer`) is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentos_nb.http.errors import Forbidden
from agentos_nb.vm.mcp_servers import McpStdioServer


def refuse_host_commands(values: Iterable[Any]) -> None:
    """Raise `Forbidden` if any of the (bound, validated) argument values holds a stdio server."""
    for value in values:
        items = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            if isinstance(item, McpStdioServer):
                raise Forbidden(
                    f"MCP server {item.name!r} is a stdio server: it would start a program on the host, "
                    "which no HTTP caller may do; give an McpHttpServer (a URL), or create the session "
                    "in-process"
                )
