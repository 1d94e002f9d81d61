"""A small real MCP server for tests/test_mcp.py, run as a subprocess: over stdio by default,
or over streamable HTTP with `--http PORT`. Some of its tools misbehave on purpose."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def environment() -> str:
    """The names of the variables in this server's environment, one a line."""
    return "\n".join(sorted(os.environ))


@server.tool()
def where() -> str:
    """This server's working directory and what it holds."""
    return f"{os.getcwd()}: {', '.join(sorted(os.listdir()))}"


@server.tool()
def crash() -> str:
    """Exit the server process at once."""
    os._exit(3)


@server.tool()
async def hang() -> str:
    """Never answer."""
    await asyncio.Event().wait()
    return "never"


@server.tool()
def huge(megabytes: int = 4) -> str:
    """A very long answer."""
    return "x" * (megabytes * 1024 * 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, help="serve streamable HTTP on this port")
    parser.add_argument("--crash-on-start", action="store_true")
    options = parser.parse_args()
    if options.crash_on_start:
        print("this server refuses to start", file=sys.stderr)
        sys.exit(7)
    if options.http is not None:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
