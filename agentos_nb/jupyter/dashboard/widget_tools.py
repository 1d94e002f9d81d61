"""What every tab does with ipywidgets: batch a redraw's changes, and close what it made."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import ipywidgets as widgets


@contextlib.contextmanager
def held(items: Iterable[widgets.Widget]) -> Iterator[None]:
    """Hold each widget's sync until the block ends, so a redraw sends at most one update per
    widget however many of its traits changed."""
    with contextlib.ExitStack() as stack:
        for widget in items:
            stack.enter_context(widget.hold_sync())
        yield


def html(*classes: str, value: str = "") -> widgets.HTML:
    """An HTML widget carrying the given CSS classes, born with its value: the front end gets
    it all in the message that opens it, not in updates after."""
    return widgets.HTML(value=value, _dom_classes=classes)


def close_tree(widget: widgets.Widget) -> None:
    """Close a widget, its children, and their layouts and styles (each has a comm of its own)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    for part in ("layout", "style"):
        owned = getattr(widget, part, None)
        if isinstance(owned, widgets.Widget):
            owned.close()
    widget.close()
