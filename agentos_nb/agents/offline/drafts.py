"""The files the writer writes: small, plausible, slightly imperfect drafts, so a review has something
real to find."""

from __future__ import annotations

import functools
import json

from agentos_nb.agents.offline.prompts import WORDS, paths
from agentos_nb.agents.offline.text import (
    JS_EXTENSIONS,
    PY_EXTENSIONS,
    SH_EXTENSIONS,
    TS_EXTENSIONS,
    extension,
    shorten,
)

_TS_API = """\
// A small REST API for @items@, on Node's built-in http module.
import { createServer, IncomingMessage, ServerResponse } from "node:http";

interface @Item@ {
  id: number;
  name: string;
  createdAt: string;
}

const @items@: any[] = [];
let nextId = 1;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => resolve(data));
  });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  console.log(req.method, url.pathname);

  if (req.method === "GET" && url.pathname === "/@items@") {
    return sendJson(res, 200, @items@);
  }

  const match = url.pathname.match(/^\\/@items@\\/(\\d+)$/);
  if (req.method === "GET" && match) {
    const @item@ = @items@.find((entry) => entry.id == match[1]);
    if (!@item@) {
      res.end(JSON.stringify({ error: "not found" }));
      return;
    }
    return sendJson(res, 200, @item@);
  }

  if (req.method === "POST" && url.pathname === "/@items@") {
    const data = JSON.parse(await readBody(req));
    if (typeof data.name !== "string" || data.name.trim() === "") {
      return sendJson(res, 400, { error: "name is required" });
    }
    // TODO: limit the name's length and reject duplicates
    const @item@ = { id: nextId++, ...data, createdAt: new Date().toISOString() };
    @items@.push(@item@);
    return sendJson(res, 201, @item@);
  }

  if (req.method === "DELETE" && match) {
    const index = @items@.findIndex((entry) => entry.id == match[1]);
    if (index >= 0) @items@.splice(index, 1);
    return sendJson(res, 204, null);
  }

  sendJson(res, 404, { error: "no such route" });
});

server.listen(3000, () => {
  console.log("API listening on http://localhost:3000");
});
"""

# JavaScript: the same server without the type annotations.
_TS_TO_JS = (
    ("import { createServer, IncomingMessage, ServerResponse }", "import { createServer }"),
    ("interface @Item@ {\n  id: number;\n  name: string;\n  createdAt: string;\n}\n\n", ""),
    ("const @items@: any[] = [];", "const @items@ = [];"),
    ("(res: ServerResponse, status: number, body: unknown): void", "(res, status, body)"),
    ("(req: IncomingMessage): Promise<string>", "(req)"),
)

_PY_API = '''\
"""A small REST API for @items@, on the standard library's http.server."""

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

API_TOKEN = "dev-secret-123"


@dataclass
class @Item@:
    id: int
    name: str
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


@items@: dict[int, @Item@] = {}


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        if self.path == "/@items@":
            return self._send(200, [asdict(entry) for entry in @items@.values()])
        if self.path.startswith("/@items@/"):
            try:
                entry = @items@[int(self.path.rsplit("/", 1)[1])]
            except:
                return self._send(404, {"error": "not found"})
            return self._send(200, asdict(entry))
        self._send(404, {"error": "no such route"})

    def do_POST(self):
        if self.path != "/@items@":
            return self._send(404, {"error": "no such route"})
        length = int(self.headers.get("Content-Length", 0))
        data = json.loads(self.rfile.read(length))
        # TODO: validate the fields and reject unknown ones
        entry = @Item@(id=len(@items@) + 1, name=data["name"])
        @items@[entry.id] = entry
        self._send(201, asdict(entry))


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
'''

_SHELL = """\
#!/usr/bin/env bash
# @title@: @task@
set -euo pipefail

target="${1:-.}"

echo "Running @title@ on $target"
for file in "$target"/*; do
  [ -f "$file" ] || continue
  lines=$(wc -l < "$file")
  echo "$file: $lines lines"
done

# TODO: replace this draft with the real steps
echo "done"
"""

_TEXT = """\
# @title@

A first draft, written by agentos_nb's offline model for the request:

> @task@

## Goal

Say in one or two sentences what this is for and who reads it.

## Plan

1. Gather what is already known.
2. Write the main part.
3. Check it against the goal above.

## Open questions

- Anything the request leaves unclear.

A session with a real model (ANTHROPIC_API_KEY or OPENAI_API_KEY set) would write the real content.
"""


@functools.lru_cache(maxsize=256)
def draft(path: str, prompt: str) -> tuple[str, str]:
    """The file the writer writes at `path`, chosen by its extension and the prompt's words,
    and a phrase describing it."""
    suffix = extension(path)
    items = _resource(prompt)
    routes = f"GET /{items}, GET /{items}/:id, POST /{items} and DELETE /{items}/:id"
    if suffix in TS_EXTENSIONS or suffix in JS_EXTENSIONS:
        template = _TS_API
        if suffix in JS_EXTENSIONS:
            for typed, plain in _TS_TO_JS:
                template = template.replace(typed, plain)
        code = _fill(template, items)
        return code, f"a small REST API for {items} on Node's `http` module, kept in memory, with {routes}"
    if suffix in PY_EXTENSIONS:
        routes = f"GET /{items}, GET /{items}/<id> and POST /{items}"
        description = (
            f"a small REST API for {items} on `http.server` and dataclasses, kept in memory, with {routes}"
        )
        return _fill(_PY_API, items), description
    name = path.rsplit("/", 1)[-1]
    stem = name.split(".")[0] or name
    task = shorten(" ".join(prompt.split()), 200)
    if suffix == ".json":
        document = {"name": stem, "description": task, "version": "0.1.0", "todo": ["fill in the details"]}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n", "a JSON skeleton to fill in"
    if suffix in SH_EXTENSIONS:
        script = _SHELL.replace("@title@", stem).replace("@task@", task)
        return script, "a bash script that walks the files of a folder, as a starting point"
    title = stem.replace("-", " ").replace("_", " ").capitalize()
    text = _TEXT.replace("@title@", title).replace("@task@", task)
    return text, "a first draft with a goal, a plan and open questions"


def _fill(template: str, items: str) -> str:
    item = items[:-1]
    return template.replace("@items@", items).replace("@Item@", item.capitalize()).replace("@item@", item)


_RESOURCES = frozenset(
    {
        "user",
        "todo",
        "task",
        "note",
        "book",
        "product",
        "item",
        "order",
        "post",
        "comment",
        "event",
        "message",
        "customer",
        "project",
        "article",
        "movie",
        "recipe",
    }
)


def _resource(prompt: str) -> str:
    """The plural noun the API serves: the first known one among the prompt's words (paths left
    out, so /home/user does not count), else "users"."""
    without_paths = prompt
    for path in paths(prompt):
        without_paths = without_paths.replace(path, " ")
    for word in WORDS.findall(without_paths.lower()):
        singular = word[:-1] if word.endswith("s") else word
        if singular in _RESOURCES:
            return singular + "s"
    return "users"
