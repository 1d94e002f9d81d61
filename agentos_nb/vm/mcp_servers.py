"""The MCP servers a session may use, as `create_session(mcp_servers=[...])` takes them.

These are settings only (ACP's `mcpServers`, with `env` and `headers` as mappings): the agent
that opens a session connects to them on the host (`agentos_nb.agents.mcp`), so this module
needs no MCP library. Their `env` and `headers` may hold secrets: like a session's keys, they
stay in this process and are never saved with the session.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from agentos_nb.errors import ValidationError

_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=_NAME,
        description="Short and unique in the session: the model sees its tools as NAME__TOOL",
    )
    timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds one tool call may take before it fails as timed out"
    )
    startup_timeout: float = Field(
        20.0, gt=0, le=600, description="Seconds the server may take to start and list its tools"
    )


class McpStdioServer(_Server):
    """An MCP server the host starts as a subprocess and talks to over its stdin and stdout.

    It runs on the host, outside every VM: it sees none of the VM's files (give it what it needs
    through its tools' arguments), and its environment holds only PATH, HOME, SHELL, TERM, USER
    and LOGNAME from the kernel's, plus `env`: the kernel's own secrets reach it only if `env`
    passes them. Since it runs any command, it is given in-process only, never over HTTP."""

    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1, description="The executable, found on PATH")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    cwd: str | None = Field(None, description="A host directory to start it in")


class McpHttpServer(_Server):
    """An MCP server reached over streamable HTTP at `url`, with `headers` (a bearer token, say)
    on every request."""

    type: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://", description="The server's MCP endpoint")
    headers: dict[str, str] = Field(default_factory=dict, repr=False)


McpServer = Annotated[McpStdioServer | McpHttpServer, Field(discriminator="type")]
"""One MCP server of a session, told apart by `type` (`stdio` or `http`)."""

_SERVERS = pydantic.TypeAdapter(list[McpServer])


def checked_mcp_servers(servers: Iterable[Any] | None) -> tuple[McpStdioServer | McpHttpServer, ...]:
    """The servers as models (dicts are read as their JSON), or a `ValidationError` naming what
    is wrong: a bad field, or two servers of one name."""
    if servers is None:
        return ()
    if isinstance(servers, str | bytes | dict) or not isinstance(servers, Iterable):
        raise ValidationError(f"mcp_servers must be a list of MCP servers, not {type(servers).__name__}")
    try:
        checked = tuple(_SERVERS.validate_python(list(servers)))
    except pydantic.ValidationError as error:
        raise ValidationError.from_pydantic("mcp_servers", error) from None
    names = [server.name for server in checked]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"mcp_servers must have different names; given twice: {', '.join(repeated)}")
    return checked
