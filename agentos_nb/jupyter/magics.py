"""`%%agent` and `%agentos`: prompting agents and looking into a registry from cells.

In a cell, both run through the extension's input transformer (see `extension.py`), which turns
them into a top-level `await` of `run_agent` / `run_agentos`: the cell really waits, on the
kernel's own loop, while background actors keep working. Reached any other way (IPython's
`run_cell_magic` or `run_line_magic` from code, or `%agentos` indented inside a block), the
magic shows a display in the calling cell at once, starts the same work as a task on the
running loop, shows its progress and its result (or error) in that display, and returns the
task: `await` it for the result. Without a running loop (a terminal between cells) that is a
UsageError.

Magics act on the registry started last in the kernel, or the one `--registry NAME` names.
Every mistake (a bad line, no registry, an unknown actor, queue or path, bad JSON, a full queue)
is a `UsageError`, which IPython shows as one line, without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.display import DisplayHandle, display

from agentos_nb.actors.handles import ActorHandle
from agentos_nb.actors.registry import Registry, running_registries
from agentos_nb.errors import AgentOSError
from agentos_nb.jupyter import displays
from agentos_nb.jupyter.agent_cell import LiveTurn, SessionMemory, run_turn, sink_for, updatable
from agentos_nb.jupyter.magic_lines import (
    AGENT_USAGE,
    SUBCOMMAND_USAGE,
    AgentLine,
    AgentosLine,
    CatLine,
    DashboardLine,
    ListLine,
    SendLine,
    ShellLine,
    Target,
    parse_agent_line,
    parse_agentos_line,
)
from agentos_nb.vm.handle import LocalVmHandle
from agentos_nb.vm.session_models import PromptResult

if TYPE_CHECKING:
    from agentos_nb.jupyter.dashboard import Dashboard
    from agentos_nb.jupyter.terminal_widget import TerminalWidget

VM_ACTION = "stream_prompt"
"""An actor type with this action is an agent VM (made with `agent_os`)."""


class AgentRequest(NamedTuple):
    """A `%%agent` cell checked against the registry, ready to run."""

    registry: Registry
    line: AgentLine
    prompt: str


@magics_class
class AgentosMagics(Magics):
    """The magics, and what they started: sessions to continue, tasks, dashboards."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.sessions = SessionMemory()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dashboards: list[Dashboard] = []
        self.terminals: list[TerminalWidget] = []

    # --- the magics --------------------------------------------------------------------------

    @no_var_expand
    @cell_magic("agent")  # type: ignore[arg-type]  # IPython types cell_magic(name) as decorator-or-function
    def agent(self, line: str, cell: str) -> asyncio.Task[PromptResult]:
        """Prompt an agent VM with the cell's body; the reply streams in, the cell's value is the
        PromptResult.

            %%agent ACTOR [KEY] [--session ID | --new] [--agent TYPE] [--model M] [--timeout S]
                    [--registry NAME]

        ACTOR is a VM actor type of the registry (made with agent_os), KEY its key (default: the
        empty key; `writer my-project` and `writer/my-project` are the same VM). The session is
        continued per (registry, actor, key, agent, model); --new starts a new one (continued
        from then on), --session ID prompts that session once. --agent picks the agent type of a
        new session (default pi), --model its model (default: an API key's provider, else the
        offline model). Past --timeout seconds the turn is cancelled. The body (trimmed of blank
        space around it) is sent as written: nothing in it is expanded or formatted.
        """
        request = self._agent_request(line, cell)
        return self._in_background(
            lambda shown: self._agent(request, shown, background=True), f"%%agent {line}"
        )

    @no_var_expand
    @line_magic("agentos")  # type: ignore[arg-type]  # as for cell_magic above
    def agentos(self, line: str) -> Any:
        """Look into the running registry.

            %agentos dashboard | events | tools        the live dashboard, or one of its tabs
            %agentos ls ACTOR[/KEY] [PATH]            a VM's directory (default /home/user)
            %agentos cat ACTOR[/KEY] PATH             a VM's file
            %agentos send ACTOR[/KEY] QUEUE [--wait] [--timeout S] JSON
                                                      send a message; JSON runs to the end of the line
            %agentos shell ACTOR [KEY] [--cols N] [--rows N]
                                                      a terminal on a VM, to type into

        Each takes --registry NAME (default: the registry started last).
        """
        registry, parsed = self._agentos_request(line)
        if isinstance(parsed, DashboardLine):  # made at once: a dashboard needs no waiting
            return self._dashboard(registry, parsed)
        if isinstance(parsed, ShellLine):  # made at once: the widget opens its shell itself
            return self._terminal(registry, parsed)
        return self._in_background(
            lambda shown: _into(shown, self._agentos(registry, parsed)), f"%agentos {line}"
        )

    # --- what the input transformer awaits ----------------------------------------------------

    async def run_agent(self, line: str, body: str) -> PromptResult:
        return await self._agent(self._agent_request(line, body))

    async def run_agentos(self, line: str) -> Any:
        return await self._agentos(*self._agentos_request(line))

    # --- checking a line against the registry, before anything runs ---------------------------

    def _agent_request(self, line: str, body: str) -> AgentRequest:
        parsed = parse_agent_line(line)
        prompt = body.strip()
        if not prompt:
            raise UsageError(f"the prompt is the cell's body, and it is empty\nUsage: {AGENT_USAGE}")
        registry = pick_registry(parsed.registry)
        vm_type(registry, parsed.target)
        return AgentRequest(registry, parsed, prompt)

    def _agentos_request(self, line: str) -> tuple[Registry, AgentosLine]:
        parsed = parse_agentos_line(line)
        registry = pick_registry(parsed.registry)
        if isinstance(parsed, ListLine | CatLine | ShellLine):
            vm_type(registry, parsed.target)
        elif isinstance(parsed, SendLine):
            actor_type(registry, parsed.target)
        return registry, parsed

    # --- the work ---------------------------------------------------------------------------

    async def _agent(
        self,
        request: AgentRequest,
        shown: DisplayHandle | None = None,
        *,
        background: bool = False,
    ) -> PromptResult:
        """The turn, streamed into `shown` or a new display; in the background, the display
        shows the reply too, since no cell value will."""
        registry, line, prompt = request
        vm = registry.client()[line.target.actor].get_or_create(line.target.key)
        with runtime_errors():
            if line.session is not None:
                session = await vm.get_session(line.session)
                if session.closed:
                    raise UsageError(f"session {line.session!r} of {line.target.label} is closed")
            else:
                key = (registry.name, line.target, line.agent, line.model)
                session = await self.sessions.session(
                    vm, key, agent=line.agent, model=line.model, new=line.new
                )
            turn = LiveTurn(line.target.label, session, timeout=line.timeout, show_result=background)
            return await run_turn(vm, turn, prompt, sink_for(self.shell, shown))

    async def _agentos(self, registry: Registry, line: AgentosLine) -> Any:
        if isinstance(line, DashboardLine):
            return self._dashboard(registry, line)
        if isinstance(line, ShellLine):
            return self._terminal(registry, line)
        accessor = registry.client()[line.target.actor]
        with runtime_errors():
            if isinstance(line, ListLine):
                entries = await accessor.get(line.target.key).readdir(line.path)
                return displays.Listing(line.target.label, line.path, tuple(entries))
            if isinstance(line, CatLine):
                content = await accessor.get(line.target.key).read_file(line.path)
                return displays.FileView(line.target.label, line.path, content)
            # A send creates its actor, as `client.NAME.get_or_create(key).send(...)` does.
            handle: ActorHandle = accessor.get_or_create(line.target.key)
            return await handle.send(line.queue, line.body, wait=line.wait, timeout=line.timeout)

    def _terminal(self, registry: Registry, line: ShellLine) -> TerminalWidget:
        from agentos_nb.jupyter.terminal_widget import TerminalWidget  # widgets load only when asked for

        vm = registry.client()[line.target.actor].get_or_create(line.target.key)
        assert isinstance(vm, LocalVmHandle)  # vm_type checked it is a VM
        try:
            terminal = TerminalWidget(vm, cols=line.cols, rows=line.rows)
        except ValueError as error:
            raise UsageError(f"{error}\nUsage: {SUBCOMMAND_USAGE['shell']}") from None
        self.terminals = [*(kept for kept in self.terminals if kept.comm is not None), terminal]
        return terminal

    def _dashboard(self, registry: Registry, line: DashboardLine) -> Dashboard:
        from agentos_nb.jupyter.dashboard import Dashboard  # widgets load only when asked for

        dashboard = Dashboard(registry, tabs=line.tabs)
        # Closed ones (their cell ran again, or close() was called) are not kept for unloading.
        self.dashboards = [*(kept for kept in self.dashboards if not kept.closed), dashboard]
        return dashboard

    # --- work started without the transformer -----------------------------------------------

    def _in_background(
        self, start: Callable[[DisplayHandle | None], Coroutine[Any, Any, Any]], name: str
    ) -> asyncio.Task[Any]:
        """Show a display in the calling cell now (output that comes after a cell ended may be
        dropped by the notebook), then run `start(display)` as a task that fills it in. In a
        terminal, which cannot update a display, the task prints instead (`start(None)`)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                f"{name.split()[0]} needs the kernel's running event loop: write it at the start of "
                "a cell (a line, for %agentos), where the agentos_nb extension makes the cell await it"
            ) from None
        shown = None
        if updatable(self.shell):
            shown = display(_note(f"{name}: running…", displays.INFO), raw=True, display_id=True)
        task = loop.create_task(start(shown), name=name)
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._show_failure, shown))
        return task

    def _show_failure(self, shown: DisplayHandle | None, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            _show(shown, _note(f"{task.get_name()}: cancelled", displays.WARN), raw=True)
        elif (error := task.exception()) is not None:
            _show(shown, _note(f"{type(error).__name__}: {error}", displays.BAD), raw=True)

    def close(self) -> None:
        """What the magics started ends with the extension: tasks cancelled, dashboards closed."""
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()
        for dashboard in self.dashboards:
            dashboard.close()
        self.dashboards.clear()
        for terminal in self.terminals:
            terminal.close()
        self.terminals.clear()


async def _into(shown: DisplayHandle | None, work: Coroutine[Any, Any, Any]) -> Any:
    value = await work
    _show(shown, value)
    return value


def _show(shown: DisplayHandle | None, value: Any, *, raw: bool = False) -> None:
    """Into the display made for it, or (in a terminal) printed now."""
    if shown is None:
        display(value, raw=raw)
    else:
        shown.update(value, raw=raw)


def _note(text: str, color: str) -> dict[str, str]:
    """A one-line display, as a raw MIME bundle."""
    return {"text/plain": text, "text/html": displays.box(displays.esc(text), color)}


@contextlib.contextmanager
def runtime_errors() -> Iterator[None]:
    """The runtime's errors, and a VM's file errors, as one-line UsageErrors naming their type."""
    try:
        yield
    except (AgentOSError, OSError) as error:
        raise UsageError(f"{type(error).__name__}: {error}") from None


def pick_registry(name: str | None) -> Registry:
    """The registry named `name`, or the one started last; a UsageError if there is none."""
    running = running_registries()
    if not running:
        raise UsageError(
            "no agentos_nb registry is running in this kernel: start one first, e.g. "
            "`registry = setup(use={...}); registry.start()`"
        )
    if name is None:
        return running[-1]
    for registry in running:
        if registry.name == name:
            return registry
    raise UsageError(f"no running registry is named {name!r}; running: {_names(r.name for r in running)}")


def actor_type(registry: Registry, target: Target) -> None:
    if target.actor not in registry.definitions:
        raise UsageError(
            f"registry {registry.name!r} has no actor type {target.actor!r}; "
            f"it has: {_names(registry.definitions)}"
        )


def vm_type(registry: Registry, target: Target) -> None:
    """ACTOR must be an agent VM: the type exists and was made with agent_os."""
    actor_type(registry, target)
    if VM_ACTION not in registry.definitions[target.actor].actions:
        vms = [name for name, d in registry.definitions.items() if VM_ACTION in d.actions]
        raise UsageError(
            f"{target.actor!r} is not an agent VM (made with agent_os); the VMs of registry "
            f"{registry.name!r}: {_names(vms) if vms else 'none'}"
        )


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
