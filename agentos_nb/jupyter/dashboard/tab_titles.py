"""The tabs a dashboard can show, and checking a caller's choice of them."""

from __future__ import annotations

from collections.abc import Sequence

TITLES = ("Actors", "Queues", "Sessions", "Tool calls", "Files", "Processes", "Cron", "Events")


def chosen_tabs(tabs: Sequence[str] | None) -> tuple[str, ...]:
    """The titles asked for, in the order given (all of them for None); a clear ValueError otherwise."""
    if tabs is None:
        return TITLES
    valid = ", ".join(repr(title) for title in TITLES)
    if isinstance(tabs, str):
        raise ValueError(f"tabs takes a list of tab titles, such as tabs=[{tabs!r}]; the tabs are {valid}")
    titles = tuple(tabs)
    for title in titles:
        if title not in TITLES:
            raise ValueError(f"unknown dashboard tab {title!r}; the tabs are {valid}")
    if not titles:
        raise ValueError(f"tabs=[] would show nothing; pick one or more of {valid}")
    repeated = sorted({title for title in titles if titles.count(title) > 1}, key=TITLES.index)
    if repeated:
        raise ValueError(f"each tab can be shown once; given twice: {', '.join(map(repr, repeated))}")
    return titles
