"""The result table every benchmark prints: one row per figure, with its baseline, ratio and verdict."""

from __future__ import annotations

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
