"""Words that agree with their numbers, for everything the Jupyter face writes."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 tool call`, `2 tool calls`, `3 processes` (with `plural="processes"`)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
