"""Counts in words people read: `1 case`, `2 cases`, never `2 case(s)`."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` and the noun in the right number: `counted(1, "judge")` is `1 judge`,
    `counted(3, "audit sample")` is `3 audit samples`; give `plural` when it is not `+s`."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
