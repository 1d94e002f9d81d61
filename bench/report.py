"""The result table every benchmark prints: one row per figure, with its baseline, ratio and verdict."""

from __future__ import annotations

import cProfile
import os
import pstats
from dataclasses import dataclass


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    ratio: str
    target: str
    passed: bool | None  # None: informational, no target


def print_table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    table = [header, *lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for n, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))


def print_rows(rows: list[Row], subject: str) -> None:
    lines = []
    for r in rows:
        verdict = "" if r.passed is None else ("PASS" if r.passed else "MISS")
        lines.append((r.figure, r.value, r.baseline, r.ratio, r.target, verdict))
    print_table(("figure", subject, "baseline", "ratio", "target", ""), lines)


def print_profile(
    name: str, profiler: cProfile.Profile, lines: int, *, ours: tuple[str, ...] = ("agentos_nb",)
) -> None:
    """The hottest functions by own time, then those of the `ours` packages by cumulative time,
    as shares of the total."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in stats.values())

    def where(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        if filename == "~":
            return function
        parts = filename.split(os.sep)
        for root in (*ours, "pydantic", "asyncio"):
            if root in parts:
                return f"{os.sep.join(parts[parts.index(root) :])}:{line}({function})"
        return f"{parts[-1]}:{line}({function})"

    rows = [(where(key), nc, tt, ct) for key, (_cc, nc, tt, ct, _callers) in stats.items()]
    print(f"\n--- cProfile of {name}: {total:.2f} s under the profiler ---")
    print(f"{'own %':>6} {'cum %':>6} {'calls':>8}  function (by own time)")
    for label, calls, own, cumulative in sorted(rows, key=lambda r: -r[2])[:lines]:
        print(f"{100 * own / total:6.1f} {100 * cumulative / total:6.1f} {calls:8d}  {label}")
    print(f"{'own %':>6} {'cum %':>6} {'calls':>8}  {' and '.join(ours)} functions (by cumulative time)")
    mine = [r for r in rows if r[0].startswith(ours)]
    for label, calls, own, cumulative in sorted(mine, key=lambda r: -r[3])[:lines]:
        print(f"{100 * own / total:6.1f} {100 * cumulative / total:6.1f} {calls:8d}  {label}")
