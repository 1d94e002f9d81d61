"""Per-queue figures for the Queues tab: depth and in-flight counts from overviews, and what
only events tell (completions per second, rejections, dead letters), folded in O(1) per event."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from agentos_nb.actors.overview import ActorView
from agentos_nb.events import MessageCompleted, MessageDeadLettered, MessageRejected
from agentos_nb.jupyter.dashboard.text import actor_label

RATE_WINDOW = 5
"""Seconds of completions that completions-per-second averages over."""
HISTORY_SPAN = 60.0
"""Seconds of depth history the chart shows."""
RESAMPLE_AFTER = 1.0
"""An unchanged depth is sampled again after this long, so the chart's line keeps its time."""


@dataclass(slots=True)
class QueueStats:
    actor_id: str
    actor: str
    """The actor's label, `name/key`."""
    queue: str
    depth: int = 0
    in_flight: int = 0
    max_size: int = 0
    completed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejections by error code (QUEUE_FULL, MESSAGE_TOO_LARGE, ...)."""
    dead_lettered: int = 0
    per_second: deque[list[int]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW + 2))
    """[whole second, completions in it], newest last."""
    history: deque[tuple[float, int]] = field(default_factory=deque)
    """(time, depth) samples over the last HISTORY_SPAN seconds, oldest first."""

    def rate(self, now: float) -> float:
        """Completions per second over the last RATE_WINDOW whole seconds."""
        since = int(now) - RATE_WINDOW
        return sum(n for second, n in self.per_second if since <= second < int(now)) / RATE_WINDOW

    def active(self, now: float) -> bool:
        """Whether the figures still move with time alone (a rate decaying, a chart scrolling)."""
        recent = bool(self.per_second) and self.per_second[-1][0] >= int(now) - RATE_WINDOW
        return recent or any(depth for _, depth in self.history)

    def sample(self, at: float) -> None:
        history = self.history
        if not history or history[-1][1] != self.depth or at - history[-1][0] >= RESAMPLE_AFTER:
            history.append((at, self.depth))
        while history and history[0][0] < at - HISTORY_SPAN:
            history.popleft()


class QueueBoard:
    """Every queue seen in an overview or an event, by (actor id, queue name)."""

    def __init__(self) -> None:
        self.queues: dict[tuple[str, str], QueueStats] = {}
        self.version = 0

    def completed(self, event: MessageCompleted) -> None:
        stats = self._stats(event)
        stats.completed += 1
        second = int(event.at)
        buckets = stats.per_second
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += 1
        else:
            buckets.append([second, 1])
        self.version += 1

    def rejected(self, event: MessageRejected) -> None:
        self._stats(event).rejected[event.code] += 1
        self.version += 1

    def dead_lettered(self, event: MessageDeadLettered) -> None:
        self._stats(event).dead_lettered += 1
        self.version += 1

    def apply(self, views: list[ActorView], at: float) -> None:
        for view in views:
            label = actor_label(view.name, view.key)
            for queue in view.queues:
                key = (view.actor_id, queue.name)
                stats = self.queues.get(key)
                if stats is None:
                    stats = self.queues[key] = QueueStats(view.actor_id, label, queue.name)
                stats.depth, stats.in_flight, stats.max_size = queue.depth, queue.in_flight, queue.max_size
                stats.sample(at)
        self.version += 1

    def rows(self) -> list[QueueStats]:
        """Queues by actor, then name."""
        return sorted(self.queues.values(), key=lambda s: (s.actor, s.queue))

    def _stats(self, event: MessageCompleted | MessageRejected | MessageDeadLettered) -> QueueStats:
        key = (event.actor.actor_id, event.queue)
        stats = self.queues.get(key)
        if stats is None:
            label = actor_label(event.actor.name, event.actor.key)
            stats = self.queues[key] = QueueStats(event.actor.actor_id, label, event.queue)
        return stats
