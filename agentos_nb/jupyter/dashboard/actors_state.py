"""What the dashboard knows of each actor: the last `registry.overview()`, kept current by actor
events between fetches, and which events mean a fresh overview is worth its cost."""

from __future__ import annotations

from dataclasses import dataclass

from agentos_nb.actors.overview import ActorView
from agentos_nb.events import ActionFinished, ActorCrashed, ActorEvent, ActorRef
from agentos_nb.vm.session_models import SessionUpdated

STATUS_AFTER = {
    "actor.created": "awake",
    "actor.woke": "awake",
    "actor.slept": "asleep",
    "actor.destroyed": "gone",
}
"""An actor's status as an event leaves it, until the next overview says otherwise."""

FILE_CHANGING_ACTIONS = frozenset({"write_file", "write_files", "mkdir", "move", "delete_file"})
"""VM actions after which a file listing may be out of date (commands report as shell.command)."""


@dataclass(slots=True)
class Crashes:
    count: int
    last_error: str


class ActorsState:
    """Actors in creation order with their status, and two flags saying what has gone stale:
    `members_stale` (actors came, went, woke or slept) and `depths_stale` (messages moved)."""

    def __init__(self) -> None:
        self.views: list[ActorView] = []
        self.status: dict[str, str] = {}
        self.crashes: dict[str, Crashes] = {}
        self.file_changes: dict[str, int] = {}
        """Per VM, how many events so far may have changed its files."""
        self.refs: dict[str, ActorRef] = {}
        """Actors seen in events, overview or not: the VM pickers offer them at once."""
        self.fetched = False
        self.members_stale = True
        self.depths_stale = True
        self.version = 0

    def seen(self, event: ActorEvent) -> None:
        """Any event about an actor: remember it, so a new one is offered before an overview."""
        if event.actor.actor_id not in self.refs:
            self.refs[event.actor.actor_id] = event.actor
            self.members_stale = True

    def message_moved(self, event: ActorEvent) -> None:
        """The commonest event by far, so it only sets a flag: the actor it is about was
        announced (actor.created) or is in the overview, taken before any message was folded."""
        self.depths_stale = True

    def status_changed(self, event: ActorEvent) -> None:
        self.seen(event)
        self.status[event.actor.actor_id] = STATUS_AFTER[event.type]
        self.members_stale = True
        self.version += 1

    def crashed(self, event: ActorCrashed) -> None:
        self.seen(event)
        previous = self.crashes.get(event.actor.actor_id)
        self.crashes[event.actor.actor_id] = Crashes((previous.count if previous else 0) + 1, event.error)
        self.version += 1

    def action_finished(self, event: ActionFinished) -> None:
        self.seen(event)
        if event.action in FILE_CHANGING_ACTIONS:
            self.files_touched(event)

    def session_updated(self, event: SessionUpdated) -> None:
        if event.update.session_update == "tool_call_update":  # an agent's tool may have written
            self.files_touched(event)

    def files_touched(self, event: ActorEvent) -> None:
        actor_id = event.actor.actor_id
        self.file_changes[actor_id] = self.file_changes.get(actor_id, 0) + 1

    def apply(self, views: list[ActorView]) -> None:
        """Take a fresh overview: it is the truth about status and queues from now on. An actor
        seen in an event but missing from it is gone: events are folded before an overview is
        asked for, and an actor is announced only once the store has it."""
        self.views = views
        self.status = {actor_id: "gone" for actor_id in self.refs}
        self.status.update((view.actor_id, view.status) for view in views)
        for view in views:
            if view.actor_id not in self.refs:
                self.refs[view.actor_id] = ActorRef(name=view.name, key=view.key, actor_id=view.actor_id)
        self.fetched = True
        self.members_stale = False
        self.depths_stale = False
        self.version += 1

    def status_of(self, actor_id: str) -> str:
        """awake, asleep, waking, stopping or gone; unknown actors count as asleep."""
        return self.status.get(actor_id, "asleep")

    def summary(self) -> str:
        """`2 actors (1 awake)`: those seen in an overview or an event and not gone since. Kept
        current by actor events alone, so the header is right whichever tab is on screen."""
        if not self.fetched and not self.refs:
            return "counting actors…"
        statuses = [self.status_of(actor_id) for actor_id in self.refs]
        present = sum(status != "gone" for status in statuses)
        return f"{present} actor{'s' * (present != 1)} ({statuses.count('awake')} awake)"
