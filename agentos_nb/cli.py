"""The `agentos-nb` command: the demo, serving a registry over HTTP, and reading a store.

`agentos-nb demo` runs seed 000, a writer agent and a reviewer agent joined by a host tool, and
`agentos-nb demo --queues` runs seed 002's queue examples. `agentos-nb inspect STORE` shows
what a SQLite store holds. `agentos-nb serve module:registry` serves a registry's HTTP API.
The runtime never prints: all that is shown here is read from the registry's event bus as it
happens, and rendered with rich.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import to_jsonable_python
from rich.console import Console, RenderableType
from rich.markdown import Markdown
from rich.padding import Padding
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from agentos_nb import Registry, demo, errors
from agentos_nb.app import SERVE_HOST, SERVE_PORT, serve_until_signalled
from agentos_nb.events import (
    ActorCrashed,
    ActorRef,
    Event,
    EventBus,
    EventsDropped,
    MessageCompleted,
    MessageEnqueued,
    MessageReceived,
    MessageRejected,
    Subscription,
    ToolCallFinished,
    ToolCallStarted,
)
from agentos_nb.store.report import read_blobs, read_store
from agentos_nb.vm.languages import python_wasi
from agentos_nb.vm.session_models import (
    AgentMessageChunk,
    AgentThoughtChunk,
    DiffContent,
    Notice,
    SessionClosed,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    ToolCall,
    ToolCallUpdate,
    TurnEnded,
    UserMessageChunk,
)
from agentos_nb.vm.sessions import saved_sessions

if TYPE_CHECKING:
    from agentos_nb.http.scopes import TokenFile

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red")
"""One per actor, in the order they first appear."""
PREVIEW_LINES = 3
PREVIEW_WIDTH = 100
INDENT = 4
"""Columns per level of nesting: a session a host tool started sits under the tool's caller."""


class DemoFailed(Exception):
    """The demo could not go on; the message says why."""


@dataclass(frozen=True, slots=True)
class _Actor:
    label: str
    colour: str
    depth: int


@dataclass(slots=True)
class _Speech:
    """Message chunks of one session, printed as one panel when the agent stops talking."""

    who: ActorRef
    thought: bool
    parts: list[str]


class Narrator:
    """Renders a registry's events while they happen, one line (or panel) per step.

    `types` picks the events (see `EventBus.subscribe`); `show_keys` labels actors `name/key`,
    for registries where one actor type serves several keys."""

    def __init__(self, console: Console, bus: EventBus, types: Sequence[str], *, show_keys: bool) -> None:
        self._console = console
        self._events: Subscription = bus.subscribe(types=[*types, "actor.crashed"], buffer=10_000)
        self._show_keys = show_keys
        self._label_width = 18 if show_keys else 9  # the demos' widest labels: issue_worker/main, reviewer
        self._actors: dict[str, _Actor] = {}
        self._open_calls: list[str] = []  # callers of the host tool calls under way, innermost last
        self._speech: dict[str, _Speech] = {}  # by session id
        self._calls: dict[str, ToolCall] = {}  # by tool call id
        self._last_call: str | None = None  # the tool call whose line is the last one printed
        self._files_shown: set[tuple[str, str]] = set()
        self._notices_shown: set[tuple[str, str]] = set()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Narrator:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Print what is left, then stop reading."""
        self._events.close()
        if self._reader is not None:
            await self._reader
        self._flush_speech()

    def say(self, renderable: RenderableType) -> None:
        """Print something of the demo's own, after every event that happened before it."""
        for event in self._events.get_nowait():
            self._show(event)
        self._flush_speech()
        self._console.print(renderable)
        self._last_call = None

    async def _read(self) -> None:
        async for event in self._events:
            self._show(event)

    # --- events ------------------------------------------------------------------------------

    def _show(self, event: Event) -> None:
        if isinstance(event, SessionUpdated):
            self._show_update(event.actor, event.update)
        elif isinstance(event, SessionCreated):
            info = event.session
            self._line(event.actor, "●", f"{info.agent_type} session {info.session_id} opened")
        elif isinstance(event, SessionClosed):
            self._line(event.actor, "○", f"session {event.session_id} closed", style="dim")
        elif isinstance(event, ToolCallStarted):
            self._line(event.actor, "→", f"{event.toolkit}.{event.tool} {_json(event.input)}", style="bold")
            self._open_calls.append(event.actor.actor_id)
        elif isinstance(event, ToolCallFinished):
            if event.actor.actor_id in self._open_calls:
                self._open_calls.remove(event.actor.actor_id)
            where = f"{event.toolkit}.{event.tool}"
            if event.ok:
                done = f"{where} returned in {event.duration:.2f} s: {_json(event.result)}"
                self._line(event.actor, "←", done, style="bold")
            else:
                failed = f"{where} failed in {event.duration:.2f} s: {event.error}: {event.message}"
                self._line(event.actor, "←", failed, style="bold red")
        elif isinstance(event, MessageEnqueued):
            self._line(event.actor, "⇢", f"{event.queue} #{event.message_id} enqueued ({event.size} B)")
        elif isinstance(event, MessageReceived):
            again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self._line(event.actor, "⇠", f"{event.queue} #{event.message_id} received{again}")
        elif isinstance(event, MessageCompleted):
            response = f": {_json(event.response)}" if event.response is not None else ""
            self._line(event.actor, "✓", f"{event.queue} #{event.message_id} completed{response}")
        elif isinstance(event, MessageRejected):
            full = event.code == errors.QueueFull.code
            what = Text("backpressure: " if full else "refused: ", "yellow" if full else "red")
            self._line(event.actor, "!", what.append(event.reason))
        elif isinstance(event, ActorCrashed):
            crash = f"crashed in {event.phase}: {event.error_type}: {event.error}"
            self._line(event.actor, "✗", crash, style="bold red")
        elif isinstance(event, EventsDropped):
            self._print(Text(f"({event.count} events not shown: the terminal fell behind)", "dim"), 0)
        else:
            self._line(getattr(event, "actor", None), "·", event.type, style="dim")

    def _show_update(self, who: ActorRef, update: SessionUpdate) -> None:
        if isinstance(update, AgentMessageChunk | AgentThoughtChunk):
            thought = isinstance(update, AgentThoughtChunk)
            speech = self._speech.get(update.session_id)
            if speech is None or speech.thought != thought:
                self._flush_speech()
                speech = self._speech[update.session_id] = _Speech(who, thought, [])
            speech.parts.append(update.content.text)
        elif isinstance(update, UserMessageChunk):
            self._line(who, "»", _preview(update.content.text))
        elif isinstance(update, Notice):
            if (who.actor_id, update.text) in self._notices_shown:
                return  # a VM's every session announces its model: once is enough
            self._notices_shown.add((who.actor_id, update.text))
            style = {"info": "dim", "warning": "yellow", "error": "bold red"}[update.level]
            self._line(who, "!", update.text, style=style)
        elif isinstance(update, ToolCall):
            self._calls[update.tool_call_id] = update
            self._line(who, "▸", update.title)
            self._last_call = update.tool_call_id
        elif isinstance(update, ToolCallUpdate):
            self._show_tool_result(who, update)
        elif isinstance(update, TurnEnded):
            usage = update.usage
            ended = (
                f"turn ended: {update.stop_reason} · {usage.requests} model requests, "
                f"{usage.tool_calls} tool call{'' if usage.tool_calls == 1 else 's'}"
            )
            if update.error:
                self._line(who, "■", f"{ended} · {update.error}", style="red")
            else:
                self._line(who, "■", ended, style="dim")

    def _show_tool_result(self, who: ActorRef, update: ToolCallUpdate) -> None:
        if update.status not in ("completed", "failed"):
            return
        call = self._calls.get(update.tool_call_id)
        mark, style = ("✓", "green") if update.status == "completed" else ("✗", "red")
        output = update.raw_output or ""
        preview = f"{len(output.splitlines())} lines" if call and call.kind == "read" else _preview(output)
        if update.tool_call_id == self._last_call:  # right under its own line: no need to repeat it
            self._line(who, mark, Text(preview, "dim"), style=style, labelled=False)
        else:
            title = call.title if call else update.tool_call_id
            self._line(who, mark, Text(title).append(f" · {preview}", "dim"), style=style)
        for content in update.content:
            if isinstance(content, DiffContent) and (content.path, content.new_text) not in self._files_shown:
                self._files_shown.add((content.path, content.new_text))
                self._show_file(who, content.path, content.new_text)

    def _show_file(self, who: ActorRef, path: str, text: str) -> None:
        actor = self._actor(who)
        self._print(_code(path, text, title=path, colour=actor.colour), actor.depth)

    def _flush_speech(self) -> None:
        speeches, self._speech = list(self._speech.values()), {}
        for speech in speeches:
            text = "".join(speech.parts).strip()
            if not text:
                continue
            actor = self._actor(speech.who)
            title = f"{actor.label} (thinking)" if speech.thought else actor.label
            style = "dim" if speech.thought else actor.colour
            panel = Panel(Markdown(text), title=title, title_align="left", border_style=style)
            self._console.print(Padding(panel, (0, 0, 0, INDENT * actor.depth)))
        if speeches:
            self._last_call = None

    # --- printing ----------------------------------------------------------------------------

    def _line(
        self, who: ActorRef | None, mark: str, text: str | Text, *, style: str = "", labelled: bool = True
    ) -> None:
        """One step: who, a mark, and what happened, which wraps under itself."""
        actor = self._actor(who) if who is not None else _Actor("", "white", 0)
        row = Table.grid(padding=(0, 1))
        row.add_column(width=self._label_width, no_wrap=True)
        row.add_column(width=1, no_wrap=True)
        row.add_column()
        label = Text(actor.label if labelled else "", f"bold {actor.colour}")
        row.add_row(
            label, Text(mark, style or actor.colour), text if isinstance(text, Text) else Text(text, style)
        )
        self._print(row, actor.depth)

    def _print(self, renderable: RenderableType, depth: int) -> None:
        self._flush_speech()
        self._console.print(Padding(renderable, (0, 0, 0, INDENT * depth), expand=False))
        self._last_call = None

    def _actor(self, ref: ActorRef) -> _Actor:
        """Actors keep the colour and nesting they had when first seen: an actor first heard
        from while a host tool call is under way works for that call."""
        actor = self._actors.get(ref.actor_id)
        if actor is None:
            caller = self._actors.get(self._open_calls[-1]) if self._open_calls else None
            label = f"{ref.name}/{'/'.join(ref.key)}" if self._show_keys else ref.name
            colour = COLOURS[len(self._actors) % len(COLOURS)]
            actor = self._actors[ref.actor_id] = _Actor(label, colour, caller.depth + 1 if caller else 0)
        return actor


def _preview(text: str, *, lines: int = PREVIEW_LINES) -> str:
    """The first `lines` non-empty lines, each cut to a readable width, saying what was left out."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    shown = [line if len(line) <= PREVIEW_WIDTH else line[: PREVIEW_WIDTH - 1] + "…" for line in kept[:lines]]
    more = len(kept) - len(shown)
    if more:
        shown.append(f"… {more} more line{'s' if more > 1 else ''}")
    return "\n".join(shown) or "(no output)"


def _code(path: str, text: str, *, title: str, colour: str = "none") -> Panel:
    """A file with line numbers, since reviews cite them."""
    lexer = Syntax.guess_lexer(path, text)
    syntax = Syntax(
        text.removesuffix("\n"), lexer, line_numbers=True, word_wrap=True, background_color="default"
    )
    return Panel(syntax, title=title, title_align="left", border_style=colour)


def _json(value: Any) -> str:
    return _preview(json.dumps(to_jsonable_python(value, fallback=repr), ensure_ascii=False), lines=1)


# --- the demos ---------------------------------------------------------------------------------

SEED_000_INTRO = """\
Two agent VMs. The **writer** has the `review` toolkit, which inside its VM is the command \
`agentos-review submit --path FILE`. That command runs on the host: it copies the file into the \
**reviewer**'s VM and asks the reviewer for a review, which comes back to the writer as JSON."""

SEED_002_INTRO = """\
Actors with queues feed agents in VMs: a **task runner** takes one task at a time, a **reviewer** \
answers completable messages, and an **issue worker** takes issues an action ingests."""


async def writer_and_reviewer(console: Console, model: str | None) -> None:
    """Seed 000: the writer writes, submits through the host tool, and reads the review."""
    console.print(Panel(Markdown(SEED_000_INTRO), title="seed 000 · agent-to-agent", title_align="left"))
    started = time.monotonic()
    async with (
        demo.seed_000_registry(model) as registry,
        Narrator(console, registry.bus, ["session.", "tool."], show_keys=False),
    ):
        writer = registry.client().writer.get_or_create(demo.PROJECT)
        session = await writer.create_session("pi")
        result = await writer.send_prompt(session.session_id, demo.WRITER_PROMPT)
    console.print(
        Rule(f"done in {time.monotonic() - started:.1f} s · the writer's turn: {result.stop_reason}")
    )


async def queues(console: Console, model: str | None) -> None:
    """Seed 002: serial tasks with backpressure, a completable review, an ingested issue."""
    console.print(Panel(Markdown(SEED_002_INTRO), title="seed 002 · queues", title_align="left"))
    started = time.monotonic()
    async with (
        demo.seed_002_registry(model) as registry,
        Narrator(console, registry.bus, ["message.", "session."], show_keys=True) as narrator,
    ):
        client = registry.client()
        with registry.bus.subscribe(types=["message.completed", "actor.crashed"]) as settled:
            narrator.say(Rule("Serial tasks: one message at a time"))
            tasks = client.task_runner.get_or_create(["main"])
            for prompt in demo.TASKS:
                await tasks.send("tasks", {"prompt": prompt})
            extra = {"prompt": "Add a CHANGELOG entry"}
            try:
                await tasks.send("tasks", extra)
            except errors.QueueFull:
                narrator.say(Text("the sender waits for room: send(..., block=True)", "yellow"))
                await tasks.send("tasks", extra, block=True)
            with contextlib.suppress(errors.ValidationError):  # the narrator shows the refusal
                await tasks.send("tasks", {"prompt": 123})
            await _until_completed(settled, "tasks", len(demo.TASKS) + 1)

            narrator.say(Rule("Request/response: completable messages"))
            await client.vm.get_or_create(["reviewer"]).write_file(demo.REVIEWED_FILE, demo.AUTH_TS)
            narrator.say(
                _code(demo.REVIEWED_FILE, demo.AUTH_TS, title=f"{demo.REVIEWED_FILE} in vm/reviewer")
            )
            result = await client.reviewer.get_or_create(["main"]).send(
                "review", {"file": demo.REVIEWED_FILE}, wait=True, timeout=120
            )
            if result.status != "completed":
                raise DemoFailed(f"the review ended {result.status}: {result.error}")
            narrator.say(Panel(Markdown(result.response.summary), title="Review:", title_align="left"))

            narrator.say(Rule("Ingesting from external systems: an action pushes to a queue"))
            await client.issue_worker.get_or_create(["main"]).ingest_issue(**demo.ISSUE)
            await _until_completed(settled, "issues", 1)
    console.print(Rule(f"done in {time.monotonic() - started:.1f} s"))


async def _until_completed(events: Subscription, queue: str, count: int) -> None:
    """Wait for `count` messages of `queue` to be completed; a crash ends the demo."""
    done = 0
    async for event in events:
        if isinstance(event, ActorCrashed):
            raise DemoFailed(f"{event.actor.name} crashed: {event.error_type}: {event.error}")
        if isinstance(event, MessageCompleted) and event.queue == queue:
            done += 1
            if done == count:
                return
    raise DemoFailed("the registry stopped")


def inspect_store(console: Console, path: str) -> None:
    """Rich tables of a store file: actors, queues with their depths, dead letters, sessions."""
    report = read_store(path)
    console.print(
        Rule(f"{report.path} · {report.size / 1024:,.0f} KB · store schema {report.schema_version}")
    )
    names = {actor.actor_id: f"{actor.name}/{'/'.join(actor.key)}" for actor in report.actors}

    actors = Table(title="Actors", title_justify="left")
    for column in ("actor", "id", "created", "state", "saved"):
        actors.add_column(column)
    for actor in report.actors:
        saved = ", ".join(f"{name} {size / 1024:,.1f} KB" for name, size in sorted(actor.blobs.items()))
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(actor.created_at))
        actors.add_row(names[actor.actor_id], actor.actor_id, created, actor.state, saved)
    console.print(actors)

    queues = Table(title="Queues", title_justify="left")
    for column in ("actor", "queue", "pending", "in flight", "completed", "dead"):
        queues.add_column(column, justify="left" if column in ("actor", "queue") else "right")
    for row in report.queues:
        queues.add_row(
            names.get(row.actor_id, row.actor_id),
            row.queue,
            str(row.pending),
            str(row.in_flight),
            str(row.completed),
            Text(str(row.dead), "red" if row.dead else ""),
        )
    console.print(queues)

    if report.dead_letters:
        dead = Table(title="Dead letters", title_justify="left")
        for column in ("id", "actor", "queue", "attempts", "error", "body"):
            dead.add_column(column)
        for letter in report.dead_letters:
            dead.add_row(
                str(letter.message_id),
                names.get(letter.actor_id, letter.actor_id),
                letter.queue,
                str(letter.attempts),
                letter.error,
                letter.body,
            )
        console.print(dead)

    sessions = Table(title="Sessions", title_justify="left")
    for column in ("vm", "session", "agent", "model", "turns", "updates", "last"):
        sessions.add_column(column)
    for actor_id, blob in read_blobs(path, "sessions").items():
        for info, updates in saved_sessions(blob):
            last = updates[-1].session_update if updates else ""
            model = f"{info.model} (offline)" if info.offline else info.model
            sessions.add_row(
                names.get(actor_id, actor_id),
                info.session_id,
                info.agent_type,
                model,
                str(info.turns),
                str(len(updates)),
                last,
            )
    console.print(sessions if sessions.row_count else Text("No open sessions saved.", "dim"))


class ServeFailed(Exception):
    """`agentos-nb serve` could not find or serve the registry; the message says why."""


def load_registry(target: str) -> Registry:
    """The registry that `module:name` (or `path/to/file.py:name`) names. Without `:name`, the
    module's one Registry. Called on the running loop, so that a module that calls
    `registry.start()` at import starts it there instead of serving and blocking."""
    where, _, name = target.partition(":")
    try:
        if where.endswith(".py") or os.sep in where:
            path = os.path.abspath(where)
            sys.path.insert(0, os.path.dirname(path))
            spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
            if spec is None or spec.loader is None:
                raise ServeFailed(f"{where} is not a Python file")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where)
    except (ImportError, OSError) as error:
        raise ServeFailed(f"cannot import {where}: {error}") from None
    if name:
        found = getattr(module, name, None)
        if not isinstance(found, Registry):
            raise ServeFailed(f"{where} has no registry named {name!r} (made with setup(...))")
        return found
    registries = [value for value in vars(module).values() if isinstance(value, Registry)]
    if len(registries) != 1:
        raise ServeFailed(f"{where} has {len(registries)} registries; name one: {where}:NAME")
    return registries[0]


def read_token_file(path: str) -> TokenFile:
    """The scoped tokens and webhooks in `path`, which only its owner may read: it holds secrets."""
    from agentos_nb.http.scopes import TokenFile

    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & 0o077:
                raise ServeFailed(f"{path} can be read by others (mode {mode & 0o777:o}); chmod 600 it")
            return TokenFile.model_validate_json(file.read())
    except OSError as error:
        raise ServeFailed(f"cannot read the token file: {error}") from None
    except pydantic.ValidationError as error:
        raise ServeFailed(f"the token file {path} is not valid: {error}") from None


async def serve(
    console: Console, target: str, host: str, port: int, token: str | None, extra: TokenFile | None = None
) -> None:
    """Serve until Ctrl-C or SIGTERM; the token is shown here, once, unless it was given.
    `extra` (a token file) adds scoped tokens and webhooks; they are never shown."""
    from agentos_nb.http.server import ServerInfo

    registry = load_registry(target)

    def ready(info: ServerInfo) -> None:
        console.print(
            Text.assemble(("serving ", "bold"), (registry.name, "bold cyan"), " at ", (info.url, "bold"))
        )
        if token is None:
            console.print(Text.assemble("token: ", (info.token.get_secret_value(), "bold yellow")))
        console.print(
            Text(
                f"The token is also in {info.runtime_file} (readable only by you), where clients on "
                "this machine find it: create_client(url). Ctrl-C stops, after the work under way.",
                "dim",
            )
        )

    await serve_until_signalled(
        registry,
        host=host,
        port=port,
        token=token,
        tokens=extra.tokens if extra else (),
        webhooks=extra.webhooks if extra else (),
        ready=ready,
    )
    console.print(Text("stopped", "dim"))


DESCRIPTION = """\
agentos_nb: actors with durable queues, agent VMs and coding-agent sessions, for Python and
Jupyter. This command runs the demo in the terminal, serves a registry's HTTP API, and shows
what a SQLite store holds. No API key is needed: without one, the offline model answers."""

EXAMPLES = """\
examples:
  agentos-nb demo                      a writer and a reviewer agent, live (offline without a key)
  agentos-nb demo --queues             seed 002's queue examples
  agentos-nb serve app.py:registry     serve a registry at http://127.0.0.1:8765
  agentos-nb inspect agents.db         what a SQLite store holds

In Jupyter: %load_ext agentos_nb, then %%agent cells and registry.dashboard().
Documentation: the README of the package's repository."""


def _package_version() -> str:
    try:
        return importlib.metadata.version("agentos_nb")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentos-nb",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"agentos-nb {_package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_command = commands.add_parser(
        "demo",
        help="run seed 000 in the terminal: a writer agent and a reviewer agent joined by a host tool",
        description="Run seed 000 live in the terminal: a writer agent writes a file in its VM and asks "
        "a reviewer agent, through a host tool, to review it. Without ANTHROPIC_API_KEY or "
        "OPENAI_API_KEY the offline model answers (and says so).",
    )
    demo_command.add_argument("--queues", action="store_true", help="run seed 002's queue examples instead")
    demo_command.add_argument(
        "--model",
        help="the model every session uses, e.g. anthropic:claude-sonnet-4-5 or offline "
        "(default: ANTHROPIC_API_KEY or OPENAI_API_KEY picks one, else the offline model answers)",
    )
    commands.add_parser(
        "prepare",
        help="compile the VM's CPython once for this machine (about 2 minutes; later VMs start at once)",
        description="Compile CPython for WebAssembly into this machine's cache (~/.cache/agentos-nb, or "
        "$AGENTOS_NB_CACHE) and lay out pytest for VMs: python3 in a VM needs it. Run once per machine.",
    )
    inspect_command = commands.add_parser(
        "inspect",
        help="show what a SQLite store file holds",
        description="Show the actors, queues, dead letters and saved sessions in a SQLite store file, "
        "without changing it (a file that is not a store, or a damaged one, is refused).",
    )
    inspect_command.add_argument("store", help="the store file, or its sqlite:/// URL")
    serve_command = commands.add_parser(
        "serve",
        help="serve a registry's HTTP API until Ctrl-C",
        description="Serve the registry that a module or file makes with setup(...) over HTTP, on "
        "127.0.0.1 by default, with a bearer token (shown once, and written for clients on this "
        "machine to find). Ctrl-C stops after the work under way; a second Ctrl-C cuts it short.",
    )
    serve_command.add_argument("registry", help="module:name or path/to/file.py:name of the registry")
    serve_command.add_argument(
        "--host", default=SERVE_HOST, help=f"the address to bind (default {SERVE_HOST})"
    )
    serve_command.add_argument(
        "--port", type=int, default=SERVE_PORT, help=f"the port (default {SERVE_PORT}; 0 picks one)"
    )
    serve_command.add_argument(
        "--token",
        default=os.environ.get("AGENTOS_NB_TOKEN"),
        help="the bearer token (default $AGENTOS_NB_TOKEN, else a new one)",
    )
    serve_command.add_argument(
        "--token-file",
        help='a JSON file, readable only by you, of scoped tokens and signed webhooks: {"tokens": '
        '[{"token", "routes", "actors", "queues", "label"}], "webhooks": [{"actor", "queue", "secret"}]}',
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    console = Console()
    if args.command == "prepare":
        try:
            python_wasi.prepare(lambda line: console.print(line, highlight=False))
        except (RuntimeError, OSError) as error:  # no artifacts, no wasmtime, a cache it cannot write
            console.print(Text("Cannot prepare: ", "bold red").append(str(error)))
            return 1
        return 0
    if args.command == "inspect" and not console.is_terminal:
        console = Console(width=1000)  # piped, rich would cut the tables' names at 80 columns
    if args.command == "serve":
        try:
            extra = read_token_file(args.token_file) if args.token_file is not None else None
            asyncio.run(serve(console, args.registry, args.host, args.port, args.token, extra))
        except OSError as error:
            reason = str(error)
            if error.errno == errno.EADDRINUSE:
                reason = (
                    f"port {args.port} on {args.host} is in use (another server?); "
                    "choose one with --port N, or --port 0 for any free port"
                )
            console.print(Text("Cannot serve: ", "bold red").append(reason))
            return 1
        except (ServeFailed, errors.AgentOSError) as error:
            console.print(Text("Cannot serve: ", "bold red").append(str(error)))
            return 1
        except KeyboardInterrupt:  # a second Ctrl-C, while the first one's drain was under way
            console.print(Text("Interrupted: the work under way was cut short.", "bold red"))
            return 130
        return 0
    if args.command == "inspect":
        path = args.store.removeprefix("sqlite:///").split("?", 1)[0]
        try:
            inspect_store(console, path)
        except errors.StoreUnusable as error:
            console.print(Text("Cannot inspect: ", "bold red").append(str(error)))
            return 1
        return 0
    run = queues if args.queues else writer_and_reviewer
    try:
        asyncio.run(run(console, args.model))
    except (DemoFailed, errors.AgentOSError) as error:
        console.print(Text("The demo stopped: ", "bold red").append(str(error)))
        return 1
    return 0
