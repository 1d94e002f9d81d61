"""A queue's depth over time as a small inline SVG: a step line with a light fill, the newest
value at the right edge, so it reads at a glance in a table cell."""

from __future__ import annotations

from collections.abc import Sequence

from agentos_nb.jupyter.dashboard.markup import esc

WIDTH = 120
HEIGHT = 22


MIN_SPAN = 10.0
"""A young history is stretched over at least this many seconds, not squeezed into a corner."""


def sparkline(samples: Sequence[tuple[float, int]], *, now: float, span: float, ceiling: int = 0) -> str:
    """`samples` are (time, depth), oldest first; the chart covers the last `span` seconds (less
    while the history is younger) and its top is the largest depth seen, raised towards
    `ceiling` (a queue's limit) so that a small backlog does not look full."""
    if not samples:
        return ""
    span = max(MIN_SPAN, min(span, now - samples[0][0]))
    peak = max(max(depth for _, depth in samples), 1)
    top = max(peak, min(ceiling, peak * 4)) if ceiling else peak
    start = now - span

    def x(at: float) -> float:
        return round(max(0.0, min(1.0, (at - start) / span)) * WIDTH, 1)

    def y(depth: int) -> float:
        return round(HEIGHT - 1 - (HEIGHT - 2) * depth / top, 1)

    points = []
    previous: int | None = None
    for at, depth in samples:
        if previous is not None:
            points.append(f"{x(at)},{y(previous)}")
        points.append(f"{x(at)},{y(depth)}")
        previous = depth
    points.append(f"{WIDTH},{y(samples[-1][1])}")
    line = " ".join(points)
    first_x = x(samples[0][0])
    area = f"{first_x},{HEIGHT - 1} {line} {WIDTH},{HEIGHT - 1}"
    title = f"depth over the last {span:.0f} s: now {samples[-1][1]}, peak {peak}"
    return (
        f'<svg class="ao-spark" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img"><title>{esc(title)}</title>'
        f'<polygon points="{area}" class="ao-spark-area"/>'
        f'<polyline points="{line}" class="ao-spark-line"/></svg>'
    )
