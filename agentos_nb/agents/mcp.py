"""A session's MCP servers, connected on the host with the `mcp` SDK's client, and their tools
offered to the model beside read, write, edit and bash.

Why the SDK's `mcp.Client` and not `pydantic_ai.mcp`: pydantic-ai 2.7x dropped `MCPServerStdio`
and `MCPServerStreamableHTTP` for `MCPToolset`, which needs fastmcp on top of the SDK and runs
inside `Agent.run`'s toolsets, while this harness drives models through `pydantic_ai.direct`
and shows every call as an ACP update; so the SDK it builds on does the talking here.

Each server lives in a task of its own, which enters and leaves the client (anyio's task groups
must be left by the task that entered them); calls come from the turn's task. A stdio server
gets the SDK's scrubbed environment plus its own `env`, its stderr goes to a temporary file
(quoted when it fails to start), and it is stopped, then killed, when the session closes. A
call that takes longer than the server's `timeout` fails as a result the model reads, as does
a server that crashed; an answer longer than `OUTPUT_BYTE_LIMIT` is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import httpx2
import mcp_types
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic_ai.tools import ToolDefinition

from agentos_nb.agents.tools import ToolCallPlan, ToolOutcome, cut_output, failed_outcome, text_outcome
from agentos_nb.errors import McpServerFailed
from agentos_nb.vm.mcp_servers import McpHttpServer, McpStdioServer

McpSpec = McpStdioServer | McpHttpServer

SEPARATOR = "__"
"""Between a server's name and its tool's in the name the model calls: `notes__add`."""
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NAME_LIMIT = 64  # what Anthropic's and OpenAI's APIs accept as a tool name
_LIST_PAGES = 20  # pages of tools/list read at most: a server that pages forever cannot hang a session
_TOOLS_PER_SERVER = 100  # offered to the model at most: every tool is in every model request
_DESCRIPTION_LIMIT = 2000  # characters of a tool's description the model sees
_STDERR_TAIL = 2000  # characters of a failed server's stderr quoted in its error
_STOP_GRACE = 10.0  # seconds a server has to stop before its task is cancelled (the SDK kills it by then)


@dataclass(frozen=True, slots=True)
class _Tool:
    server: _Connection
    name: str
    """The server's own name for it."""
    annotations: mcp_types.ToolAnnotations | None


class McpTools:
    """The tools of a session's MCP servers: their definitions for the model, and their calls."""

    def __init__(self, connections: Sequence[_Connection]) -> None:
        self._connections = list(connections)
        self._tools: dict[str, _Tool] = {}
        self.definitions: list[ToolDefinition] = []
        for connection in self._connections:
            for tool in connection.tools[:_TOOLS_PER_SERVER]:
                name = _model_name(connection.spec.name, tool.name)
                if name in self._tools:
                    continue  # two tool names that differ only in characters the APIs refuse
                self._tools[name] = _Tool(connection, tool.name, tool.annotations)
                description = (tool.description or tool.title or tool.name)[:_DESCRIPTION_LIMIT]
                self.definitions.append(
                    ToolDefinition(
                        name=name,
                        description=f"(MCP server {connection.spec.name}) {description}".strip(),
                        parameters_json_schema=tool.input_schema or {"type": "object", "properties": {}},
                    )
                )

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def policy_name(self, name: str) -> str:
        """How a permission policy names this tool: `mcp:SERVER.TOOL`."""
        tool = self._tools[name]
        return f"mcp:{tool.server.spec.name}.{tool.name}"

    def read_only(self, name: str) -> bool:
        """Whether the server marks the tool read-only (its `readOnlyHint`): plan mode lets only
        these run."""
        annotations = self._tools[name].annotations
        return bool(annotations is not None and annotations.read_only_hint)

    def plan(self, name: str, args: dict[str, Any]) -> ToolCallPlan:
        tool = self._tools[name]
        return ToolCallPlan(f"{tool.server.spec.name}: {tool.name}", "other")

    async def run(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        tool = self._tools[name]
        server = tool.server
        label = f"{tool.name} (MCP server {server.spec.name})"
        try:
            async with asyncio.timeout(server.spec.timeout):
                result = await server.call(tool.name, args)
        except TimeoutError:
            return failed_outcome(f"{label} did not answer within {server.spec.timeout:g} s")
        except MCPError as error:
            return failed_outcome(f"{label} failed: {server.explain(error)}")
        except Exception as error:  # the server's answer must never crash the turn
            return failed_outcome(f"{label} failed: {type(error).__name__}: {error}")
        text, cut = cut_output(_result_text(result))
        if cut:
            text += "\n[output cut: it was too long]"
        if result.is_error:
            return failed_outcome(text)
        return text_outcome(text or "(no output)")

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self._connections))


async def open_mcp_tools(servers: Sequence[McpSpec]) -> McpTools:
    """Start or reach every server and list its tools; `McpServerFailed` names the one that
    could not (the others are stopped again)."""
    # The SDK imports jsonschema at the first call of a tool with an output schema: seconds on a
    # busy machine, which would block the event loop. Imported here in a thread meanwhile.
    validators = asyncio.ensure_future(asyncio.to_thread(importlib.import_module, "jsonschema.validators"))
    connections: list[_Connection] = []
    try:
        for spec in servers:
            connections.append(await _Connection.open(spec))
        await validators
    except BaseException:
        validators.cancel()
        await asyncio.gather(*(connection.close() for connection in connections))
        raise
    return McpTools(connections)


class _Connection:
    """One server: the task that holds its client open, and the tools it listed."""

    def __init__(self, spec: McpSpec) -> None:
        self.spec = spec
        self.tools: list[mcp_types.Tool] = []
        self._client: Client | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stderr: IO[bytes] | None = None
        self._ended: str | None = None

    @classmethod
    async def open(cls, spec: McpSpec) -> _Connection:
        connection = cls(spec)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        connection._task = asyncio.create_task(connection._hold(ready), name=f"agentos-mcp-{spec.name}")
        try:
            async with asyncio.timeout(spec.startup_timeout):
                await asyncio.shield(ready)
        except BaseException as error:
            stderr = connection._stderr_tail()
            await connection.close(at_once=True)
            if isinstance(error, TimeoutError):
                raise McpServerFailed(
                    f"MCP server {spec.name!r} did not start and list its tools within "
                    f"{spec.startup_timeout:g} s{stderr}"
                ) from None
            raise
        return connection

    async def call(self, tool: str, args: dict[str, Any]) -> mcp_types.CallToolResult:
        if self._client is None or self._ended is not None:
            raise MCPError(-32000, self._ended or "not connected")
        return await self._client.call_tool(tool, args)

    def explain(self, error: MCPError) -> str:
        if "Connection closed" in str(error):
            return f"the server has stopped{self._stderr_tail()}"
        return str(error)

    async def close(self, *, at_once: bool = False) -> None:
        """Stop the server; `at_once` for one still starting, which waits for no stop signal."""
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            done = set() if at_once else (await asyncio.wait({task}, timeout=_STOP_GRACE))[0]
            if not done:
                task.cancel()
                await asyncio.wait({task})
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self._transport() as transport, Client(transport) as client:
                self.tools = await _list_tools(client)
                self._client = client
                ready.set_result(None)
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            reason = _reason(error)
            if not ready.done():
                ready.set_exception(
                    McpServerFailed(
                        f"MCP server {self.spec.name!r} failed to start: {reason}{self._stderr_tail()}"
                    )
                )
            else:
                self._ended = f"the server's connection ended: {reason}"
        finally:
            self._client = None
            if not ready.done():
                ready.cancel()

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        spec = self.spec
        if isinstance(spec, McpStdioServer):
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  closed with the connection
            parameters = StdioServerParameters(
                command=spec.command, args=spec.args, env=spec.env, cwd=spec.cwd
            )
            yield stdio_client(parameters, errlog=self._stderr)  # type: ignore[arg-type]
            return
        timeout = httpx2.Timeout(spec.startup_timeout, read=max(spec.timeout, spec.startup_timeout))
        async with create_mcp_http_client(headers=dict(spec.headers), timeout=timeout) as http:
            yield streamable_http_client(spec.url, http_client=http)

    def _stderr_tail(self) -> str:
        stream = self._stderr
        if stream is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
            size = stream.seek(0, 2)
            stream.seek(max(0, size - _STDERR_TAIL))
            tail = stream.read().decode(errors="replace").strip()
            if tail:
                return f"; its stderr ends with:\n{tail}"
        return ""


async def _list_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(_LIST_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _model_name(server: str, tool: str) -> str:
    return f"{server}{SEPARATOR}{_TOOL_NAME.sub('_', tool)}"[:_NAME_LIMIT]


def _reason(error: BaseException) -> str:
    """The first real failure inside the task groups the SDK nests."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, FileNotFoundError):
        return f"no such command: {error.filename or error}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _result_text(result: mcp_types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[resource: {resource.uri}, {resource.mime_type or 'binary'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)
