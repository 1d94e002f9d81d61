"""A fake LLM server on 127.0.0.1 for tests: Anthropic Messages, OpenAI Responses and OpenAI Chat
Completions, each plain JSON and streamed (SSE), scripted reply by reply, recording every request it gets.

    def test_x(fake_provider):
        fake_provider.script(Reply(text="hi"), Reply(tool_calls=[ToolCall("bash", {"command": "ls"})]))
        env = {"ANTHROPIC_API_KEY": "sk-ant-test-1234", "ANTHROPIC_BASE_URL": fake_provider.base_url}
        ...
        assert fake_provider.requests[0].headers["x-api-key"] == "sk-ant-test-1234"

Replies are served in order, whichever endpoint asks. Besides `Reply`, a script may hold
`Failure(status, ...)` (an error response in the provider's own shape), `HANG` (no answer until the
client gives up) and `DROP` (close the connection without a response). The stdlib server runs in a
daemon thread, so it never blocks the test's event loop.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: Mapping[str, Any] | str = field(default_factory=dict)
    """The arguments: a mapping (sent as JSON), or raw JSON text sent as is."""
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful answer: text, tool calls, or both (text first)."""

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    input_tokens: int = 11
    output_tokens: int = 7
    chunk_size: int = 4
    """Streamed text and tool arguments arrive in pieces of this many characters."""
    stop_reason: str | None = None
    """Anthropic's stop_reason / Chat Completions' finish_reason, by default from whether there are
    tool calls; for Responses, the `incomplete_details.reason` of a response left incomplete."""
    drop_after: int | None = None
    """When streamed: close the connection after this many events, mid-stream."""
    stall_after: int | None = None
    """When streamed: stop sending (without closing) after this many events."""


@dataclass(frozen=True)
class Failure:
    """An error response. Without a body, one in the provider's own shape, whose message for a 401
    echoes the API key received (as some providers do), so tests can check that it is redacted."""

    status: int
    body: Mapping[str, Any] | str | None = None
    retry_after: str | float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Signal:
    name: str

    def __repr__(self) -> str:
        return self.name


HANG = _Signal("HANG")
"""Read the request, then send nothing until the client gives up (or the server stops)."""
DROP = _Signal("DROP")
"""Read the request, then close the connection without a response."""

Scripted = Reply | Failure | _Signal


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lowercased names."""
    body: Any
    """The parsed JSON body (None if there was none or it wasn't JSON)."""

    @property
    def api_key(self) -> str | None:
        """The key the client sent: `x-api-key` (Anthropic) or `Authorization: Bearer` (OpenAI)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}


class FakeProvider:
    """The running server: `script()` what it answers, read `requests` for what it was sent."""

    def __init__(self, *, hang_limit: float = 30.0) -> None:
        self._replies: list[Scripted] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.hang_limit = hang_limit
        self.requests: list[RecordedRequest] = []
        self.unscripted = 0
        """Requests that found the script empty (answered with a 500 saying so)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-provider",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url_anthropic(self) -> str:
        """For ANTHROPIC_BASE_URL: the SDK appends `/v1/messages` itself."""
        return self.base_url

    @property
    def base_url_openai(self) -> str:
        """For OPENAI_BASE_URL: the SDK appends `/responses` or `/chat/completions` to it."""
        return f"{self.base_url}/v1"

    def script(self, *replies: Scripted | str) -> FakeProvider:
        """Queue replies, served in order; a plain string is a text reply."""
        with self._lock:
            self._replies.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)
        return self

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._replies)

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # lets hanging handlers go
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, request: RecordedRequest) -> Scripted | None:
        with self._lock:
            self.requests.append(request)
            if self._replies:
                return self._replies.pop(0)
            self.unscripted += 1
            return None


def _handler_for(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._json(404, {"error": {"type": "not_found_error", "message": f"no GET {self.path} here"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = RecordedRequest("POST", self.path, headers, body)
            route = self.path.split("?", 1)[0]
            if route.endswith("/v1/messages"):
                flavour = "anthropic"
            elif route.endswith("/responses"):
                flavour = "responses"
            elif route.endswith("/chat/completions"):
                flavour = "openai"
            else:
                fake._next(request)
                self._json(404, {"error": {"type": "not_found_error", "message": f"no route {route}"}})
                return
            reply = fake._next(request)
            stream = isinstance(body, dict) and body.get("stream") is True
            if reply is None:
                self._json(500, _error_body(flavour, 500, "fake provider: the script has no reply left"))
            elif reply is DROP:
                self.close_connection = True
            elif reply is HANG:
                fake._release.wait(fake.hang_limit)
                self.close_connection = True
            elif isinstance(reply, Failure):
                self._failure(flavour, reply, request)
            elif isinstance(reply, Reply):
                model = body.get("model", "fake") if isinstance(body, dict) else "fake"
                if flavour == "anthropic" and stream:
                    self._sse(_anthropic_events(reply, model), reply)
                elif flavour == "anthropic":
                    self._json(200, _anthropic_message(reply, model))
                elif flavour == "responses" and stream:
                    self._sse(_responses_events(reply, model, body), reply)
                elif flavour == "responses":
                    self._json(200, _responses_response(reply, model, body, secrets.token_hex(6), done=True))
                elif stream:
                    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                    self._sse(_openai_chunks(reply, model, include_usage), reply)
                else:
                    self._json(200, _openai_completion(reply, model))

        def _failure(self, flavour: str, failure: Failure, request: RecordedRequest) -> None:
            body = failure.body
            if body is None:
                message = f"fake {failure.status} error"
                if failure.status == 401:  # as OpenAI does, but unmasked: the worst case
                    message = f"Incorrect API key provided: {request.api_key}"
                body = _error_body(flavour, failure.status, message)
            headers = dict(failure.headers)
            if failure.retry_after is not None:
                headers["retry-after"] = str(failure.retry_after)
            self._json(failure.status, body, headers)

        def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _sse(self, events: list[tuple[str | None, str]], reply: Reply) -> None:
            # Chunked, as real servers send it: a connection closed before the last chunk is an error
            # the client sees, not a quietly shorter stream.
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for sent, (event, data) in enumerate(events):
                if reply.drop_after is not None and sent >= reply.drop_after:
                    self.close_connection = True
                    return
                if reply.stall_after is not None and sent >= reply.stall_after:
                    fake._release.wait(fake.hang_limit)
                    self.close_connection = True
                    return
                frame = ((f"event: {event}\n" if event else "") + f"data: {data}\n\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
                time.sleep(0.001)  # separate TCP sends, so the client really sees deltas arrive
            self.wfile.write(b"0\r\n\r\n")

    return Handler


# --- Anthropic Messages -----------------------------------------------------------------------------


def _args_json(call: ToolCall) -> str:
    return call.args if isinstance(call.args, str) else json.dumps(dict(call.args))


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(size, 1))] or [""]


def _anthropic_content(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    for n, call in enumerate(reply.tool_calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_fake_{n}",
                "name": call.name,
                "input": json.loads(_args_json(call) or "{}"),
            }
        )
    return blocks


def _anthropic_stop(reply: Reply) -> str:
    return reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")


def _anthropic_message(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _anthropic_content(reply),
        "stop_reason": _anthropic_stop(reply),
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def _anthropic_events(reply: Reply, model: str) -> list[tuple[str | None, str]]:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                **_anthropic_message(reply, model),
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
            },
        }
    ]
    index = 0
    if reply.text:
        events.append(
            {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
        )
        for piece in _pieces(reply.text, reply.chunk_size):
            delta = {"type": "text_delta", "text": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    for n, call in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": call.id or f"toolu_fake_{n}", "name": call.name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for piece in _pieces(_args_json(call), reply.chunk_size):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _anthropic_stop(reply), "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        }
    )
    events.append({"type": "message_stop"})
    return [(event["type"], json.dumps(event)) for event in events]


# --- OpenAI Chat Completions ------------------------------------------------------------------------


def _openai_finish(reply: Reply) -> str:
    return reply.stop_reason or ("tool_calls" if reply.tool_calls else "stop")


def _openai_usage(reply: Reply) -> dict[str, int]:
    total = reply.input_tokens + reply.output_tokens
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": total,
    }


def _openai_completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_fake_{n}",
                "type": "function",
                "function": {"name": call.name, "arguments": _args_json(call)},
            }
            for n, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _openai_finish(reply), "logprobs": None}
        ],
        "usage": _openai_usage(reply),
    }


def _openai_chunks(reply: Reply, model: str, include_usage: bool) -> list[tuple[str | None, str]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [choice]}  # fmt: skip

    chunks = [chunk({"role": "assistant", "content": ""})]
    if reply.text:
        chunks += [chunk({"content": piece}) for piece in _pieces(reply.text, reply.chunk_size)]
    for n, call in enumerate(reply.tool_calls):
        start = {"index": n, "id": call.id or f"call_fake_{n}", "type": "function",
                 "function": {"name": call.name, "arguments": ""}}  # fmt: skip
        chunks.append(chunk({"tool_calls": [start]}))
        for piece in _pieces(_args_json(call), reply.chunk_size):
            chunks.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, _openai_finish(reply)))
    if include_usage:
        chunks.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                       "model": model, "choices": [], "usage": _openai_usage(reply)})  # fmt: skip
    return [(None, json.dumps(c)) for c in chunks] + [(None, "[DONE]")]


# --- OpenAI Responses -------------------------------------------------------------------------------


def _responses_output(reply: Reply, tag: str) -> list[dict[str, Any]]:
    """The finished output items: one assistant message, then a `function_call` item per call. Item
    ids are unique per response, as OpenAI's are; call ids are the script's, or `call_fake_N`."""
    items: list[dict[str, Any]] = []
    if reply.text:
        text = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
        items.append({"type": "message", "id": f"msg_{tag}", "status": "completed", "role": "assistant",
                      "content": [text]})  # fmt: skip
    for n, call in enumerate(reply.tool_calls):
        items.append({"type": "function_call", "id": f"fc_{tag}_{n}", "call_id": call.id or f"call_fake_{n}",
                      "name": call.name, "arguments": _args_json(call), "status": "completed"})  # fmt: skip
    return items


def _responses_response(reply: Reply, model: str, request: Any, tag: str, *, done: bool) -> dict[str, Any]:
    """The response object, as finished (with output and usage) or as just created; it echoes the
    request's settings as the real API does."""
    request = request if isinstance(request, dict) else {}
    incomplete = done and reply.stop_reason is not None
    return {
        "id": f"resp_{tag}",
        "object": "response",
        "created_at": int(time.time()),
        "status": ("incomplete" if incomplete else "completed") if done else "in_progress",
        "error": None,
        "incomplete_details": {"reason": reply.stop_reason} if incomplete else None,
        "instructions": request.get("instructions"),
        "model": model,
        "output": _responses_output(reply, tag) if done else [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "store": request.get("store", True),
        "usage": _responses_usage(reply) if done else None,
    }


def _responses_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _responses_events(reply: Reply, model: str, request: Any) -> list[tuple[str | None, str]]:
    """The event sequence OpenAI streams: created, each item added, its deltas, done, completed."""
    tag = secrets.token_hex(6)
    created = _responses_response(reply, model, request, tag, done=False)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": created},
        {"type": "response.in_progress", "response": created},
    ]
    for index, item in enumerate(_responses_output(reply, tag)):
        where = {"output_index": index}
        if item["type"] == "message":
            [part] = item["content"]
            ids = {"item_id": item["id"], **where, "content_index": 0}
            events += [
                {"type": "response.output_item.added", **where,
                 "item": {**item, "status": "in_progress", "content": []}},
                {"type": "response.content_part.added", **ids, "part": {**part, "text": ""}},
                *({"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []}
                  for piece in _pieces(part["text"], reply.chunk_size)),
                {"type": "response.output_text.done", **ids, "text": part["text"], "logprobs": []},
                {"type": "response.content_part.done", **ids, "part": part},
            ]  # fmt: skip
        else:
            ids = {"item_id": item["id"], **where}
            events += [
                {"type": "response.output_item.added", **where,
                 "item": {**item, "status": "in_progress", "arguments": ""}},
                *({"type": "response.function_call_arguments.delta", **ids, "delta": piece}
                  for piece in _pieces(item["arguments"], reply.chunk_size)),
                {"type": "response.function_call_arguments.done", **ids, "arguments": item["arguments"]},
            ]  # fmt: skip
        events.append({"type": "response.output_item.done", **where, "item": item})
    finished = _responses_response(reply, model, request, tag, done=True)
    terminal = "response.incomplete" if finished["status"] == "incomplete" else "response.completed"
    events.append({"type": terminal, "response": finished})
    return [(event["type"], json.dumps({**event, "sequence_number": n})) for n, event in enumerate(events)]


def _error_body(flavour: str, status: int, message: str) -> dict[str, Any]:
    if flavour == "anthropic":
        error_type = _ANTHROPIC_ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {"type": "error", "error": {"type": error_type, "message": message}}
    error_type, code = _OPENAI_ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# --- fixture ----------------------------------------------------------------------------------------


@contextmanager
def running_fake_provider(*, hang_limit: float = 30.0) -> Iterator[FakeProvider]:
    fake = FakeProvider(hang_limit=hang_limit).start()
    try:
        yield fake
    finally:
        fake.stop()


def serve_fake_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The `fake_provider` fixture's body (conftest registers it): a fake Anthropic + OpenAI
    (Responses and Chat Completions) server on 127.0.0.1, stopped after the test."""
    # Never route 127.0.0.1 through a proxy from the environment.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with running_fake_provider() as fake:
        yield fake
