"""Over HTTP, no caller starts a program on the host or makes it reach its private network.

An MCP stdio server (`McpStdioServer`) runs any command with the kernel's rights, so it is
taken in-process only: one among an action's arguments over HTTP is refused with 403, before
the action runs. A server reached over HTTP (`McpHttpServer`) is accepted when its host is
public: the host would POST to its URL, so a loopback, private or link-local one (a metadata
service, say) is refused with 403 too, whether written as an address or a name that resolves to
one. The notebook's own code (in-process) may name any server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from agentos_nb.http.errors import Forbidden
from agentos_nb.vm.mcp_servers import McpHttpServer, McpStdioServer
from agentos_nb.vm.network import NetworkError, address_of, is_public, parse_url

_RESOLVE_TIMEOUT = 10.0  # seconds to resolve a server's host name before it is refused


async def refuse_host_commands(values: Iterable[Any]) -> None:
    """Raise `Forbidden` if any of the (bound, validated) argument values holds a stdio server,
    or an HTTP server whose host is not public."""
    for value in values:
        items = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            if isinstance(item, McpStdioServer):
                raise Forbidden(
                    f"MCP server {item.name!r} is a stdio server: it would start a program on the host, "
                    "which no HTTP caller may do; give an McpHttpServer (a URL), or create the session "
                    "in-process"
                )
            if isinstance(item, McpHttpServer):
                await _refuse_private(item)


async def _refuse_private(server: McpHttpServer) -> None:
    try:
        url = parse_url(server.url, what=f"MCP server {server.name!r}'s URL")
    except NetworkError as error:
        raise Forbidden(str(error)) from None
    for address in await _addresses(server, url.host, url.port):
        if not is_public(address):
            raise Forbidden(
                f"MCP server {server.name!r} at {server.url} reaches {address}, which is not a public "
                "address: no HTTP caller may make the host connect to its own or its private network; "
                "create the session in-process to use it"
            )


async def _addresses(
    server: McpHttpServer, host: str, port: int
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    literal = address_of(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as error:
        raise Forbidden(
            f"MCP server {server.name!r} at {server.url}: its host {host!r} could not be resolved to check "
            f"that it is public ({error or 'timed out'})"
        ) from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
