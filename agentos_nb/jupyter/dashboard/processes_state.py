"""VM processes as the bus reports them (`process.started`, `.output`, `.ended`): each one's
command, status and the tail of its output, for the Processes tab."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from agentos_nb.events import ActorRef, ProcessEnded, ProcessOutputEvent, ProcessStarted

MAX_PROCESSES = 100
"""Processes kept; the oldest ended ones are forgotten first."""
TAIL_CHARS = 4000
"""Output kept per process for the tab: its newest characters."""


@dataclass(slots=True)
class ProcessView:
    actor: ActorRef
    pid: int
    command: str
    started_at: float
    status: str = "running"
    exit_code: int | None = None
    ended_at: float | None = None
    error: str | None = None
    tail: str = ""
    printed: int = 0
    """Characters of output seen, the tail's and those cut from it."""


class ProcessBoard:
    def __init__(self) -> None:
        self.processes: OrderedDict[tuple[str, int], ProcessView] = OrderedDict()
        self.version = 0

    def started(self, event: ProcessStarted) -> None:
        key = (event.actor.actor_id, event.pid)
        self.processes[key] = ProcessView(event.actor, event.pid, event.command, event.at)
        self._forget_old()
        self.version += 1

    def output(self, event: ProcessOutputEvent) -> None:
        process = self.processes.get((event.actor.actor_id, event.pid))
        if process is None:  # started before the dashboard: shown from its first output seen
            process = ProcessView(event.actor, event.pid, "?", event.at)
            self.processes[(event.actor.actor_id, event.pid)] = process
        process.tail = (process.tail + event.data)[-TAIL_CHARS:]
        process.printed += len(event.data)
        self.version += 1

    def ended(self, event: ProcessEnded) -> None:
        process = self.processes.get((event.actor.actor_id, event.pid))
        if process is None:
            process = ProcessView(event.actor, event.pid, event.command, event.at - event.duration)
            self.processes[(event.actor.actor_id, event.pid)] = process
        process.status, process.exit_code = event.status, event.exit_code
        process.ended_at, process.error = event.at, event.error
        self.version += 1

    @property
    def running(self) -> int:
        return sum(process.status == "running" for process in self.processes.values())

    def _forget_old(self) -> None:
        excess = len(self.processes) - MAX_PROCESSES
        for key in [key for key, process in self.processes.items() if process.status != "running"][:excess]:
            del self.processes[key]
