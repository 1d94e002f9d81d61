"""Who called whom through host tools, as an inline SVG: callers on the left, the tools they
called in the middle, the actors those calls reached on the right, counts on every edge.

Every label is plain text in the picture (`writer`, `review.submit`, `reviewer`, `×1`), so a
reader, a screen reader and a browser test all find the same words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from agentos_nb.jupyter.dashboard.markup import esc
from agentos_nb.jupyter.dashboard.text import clip
from agentos_nb.jupyter.wording import counted

MAX_EDGES = 40
"""The busiest edges drawn; a note says how many more there are."""
NODE_WIDTH = 170
NODE_HEIGHT = 34
ROW_GAP = 14
COLUMN_GAP = 120
PAD = 12
LABEL_CHARS = 24
ARROW = (
    '<defs><marker id="ao-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="ao-g-arrow"/></marker></defs>'
)
T = TypeVar("T")


def call_graph(
    calls_per_tool: Mapping[tuple[str, str], int], reached: Mapping[tuple[str, str, str], int]
) -> str:
    """`calls_per_tool`: (caller, toolkit.tool) -> calls; `reached`: (caller, toolkit.tool,
    actor) -> calls that reached that actor (`HOST` for calls a host function answered without
    an actor). Actor labels are `name/key`. Each tool is one node, however many call it."""
    first = sorted(calls_per_tool.items(), key=lambda item: (-item[1], item[0]))
    by_tool: Counter[tuple[str, str]] = Counter()  # one node per tool, whoever called it
    for (_, tool, actor), count in reached.items():
        by_tool[(tool, actor)] += count
    second = sorted(by_tool.items(), key=lambda item: (-item[1], item[0]))
    hidden = max(0, len(first) - MAX_EDGES) + max(0, len(second) - MAX_EDGES)
    first, second = first[:MAX_EDGES], second[:MAX_EDGES]

    callers = _ordered(caller for (caller, _), _ in first)
    tools = _ordered([*(tool for (_, tool), _ in first), *(tool for (tool, _), _ in second)])
    reached_actors = _ordered(actor for (_, actor), _ in second)
    columns: list[list[Any]] = [callers, tools, reached_actors]
    rows = max(len(column) for column in columns)
    height = 2 * PAD + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP + 18
    width = 2 * PAD + 3 * NODE_WIDTH + 2 * COLUMN_GAP

    def top(column: Sequence[object], index: int) -> float:
        # Centre shorter columns vertically against the tallest one.
        used = len(column) * NODE_HEIGHT + (len(column) - 1) * ROW_GAP
        offset = (rows * NODE_HEIGHT + (rows - 1) * ROW_GAP - used) / 2
        return PAD + 18 + offset + index * (NODE_HEIGHT + ROW_GAP)

    def left(column: int) -> float:
        return PAD + column * (NODE_WIDTH + COLUMN_GAP)

    parts: list[str] = []
    for name, column in (("callers", 0), ("tools they called", 1), ("actors the calls reached", 2)):
        parts.append(f'<text class="ao-g-head" x="{left(column)}" y="{PAD + 4}">{esc(name)}</text>')
    for (caller, tool), count in first:
        a = (left(0) + NODE_WIDTH, top(callers, callers.index(caller)) + NODE_HEIGHT / 2)
        b = (left(1), top(tools, tools.index(tool)) + NODE_HEIGHT / 2)
        parts.append(_edge(a, b, count, f"{caller} called {tool} {counted(count, 'time')}"))
    for (tool, actor), count in second:
        a = (left(1) + NODE_WIDTH, top(tools, tools.index(tool)) + NODE_HEIGHT / 2)
        b = (left(2), top(reached_actors, reached_actors.index(actor)) + NODE_HEIGHT / 2)
        parts.append(_edge(a, b, count, f"{tool} reached {actor} in {counted(count, 'call')}"))
    for index, caller in enumerate(callers):
        parts.append(_actor_node(left(0), top(callers, index), caller))
    for index, tool in enumerate(tools):
        parts.append(_tool_node(left(1), top(tools, index), tool))
    for index, actor in enumerate(reached_actors):
        parts.append(_actor_node(left(2), top(reached_actors, index), actor))
    note = f'<div class="ao-muted">{hidden} more edges not drawn</div>' if hidden else ""
    return (
        f'<svg class="ao-graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="host-tool calls">{ARROW}' + "".join(parts) + "</svg>" + note
    )


def _ordered(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _edge(a: tuple[float, float], b: tuple[float, float], count: int, title: str) -> str:
    (x1, y1), (x2, y2) = a, b
    middle = (x1 + x2) / 2
    path = f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
    label_y = (y1 + y2) / 2
    label = f"×{count}"
    label_width = 10 + 7 * len(label)
    return (
        f'<g class="ao-g-edge"><title>{esc(title)}</title>'
        f'<path d="{path}" marker-end="url(#ao-arrow)"/>'
        f'<rect x="{middle - label_width / 2}" y="{label_y - 9}" width="{label_width}" height="18" rx="9"/>'
        f'<text x="{middle}" y="{label_y + 4}" text-anchor="middle">{esc(label)}</text></g>'
    )


def _actor_node(x: float, y: float, label: str) -> str:
    name, _, key = label.partition("/")
    key_line = (
        f'<text class="ao-g-key" x="{x + 10}" y="{y + 28}">{esc(clip(key, LABEL_CHARS + 4))}</text>'
        if key
        else ""
    )
    name_y = y + 16 if key else y + 21
    return (
        f'<g class="ao-g-actor"><title>{esc(label)}</title>'
        f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6"/>'
        f'<text class="ao-g-name" x="{x + 10}" y="{name_y}">{esc(clip(name, LABEL_CHARS))}</text>'
        f"{key_line}</g>"
    )


def _tool_node(x: float, y: float, tool: str) -> str:
    return (
        f'<g class="ao-g-tool"><title>{esc(tool)}</title>'
        f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="{NODE_HEIGHT / 2}"/>'
        f'<text x="{x + NODE_WIDTH / 2}" y="{y + 21}" text-anchor="middle">'
        f"{esc(clip(tool, LABEL_CHARS))}</text></g>"
    )
