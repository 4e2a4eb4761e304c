"""How an item reads on the page: texts from the run as plain strings, the output's difference
from the reference, and which of the judges' words a blind reviewer may see. Pure functions;
the templates escape everything they are given."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

DIFF_LIMIT = 4000
"""Words on either side beyond which no word diff is drawn (it would take too long)."""

Kind = Literal["same", "added", "removed"]


def as_text(value: Any) -> str:
    """A run's value as text: strings as they are, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Segment:
    """A run of words the output shares with the reference, adds, or leaves out."""

    kind: Kind
    text: str


def word_diff(reference: Any, output: str | None) -> list[Segment] | None:
    """The output against the reference, word by word; None when there is nothing to compare
    or the texts are too long to compare quickly."""
    if reference is None or output is None:
        return None
    old = re.split(r"(\s+)", as_text(reference))
    new = re.split(r"(\s+)", output)
    if len(old) > 2 * DIFF_LIMIT or len(new) > 2 * DIFF_LIMIT:
        return None
    segments: list[Segment] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(new[b1:b2])))
            continue
        if op in ("replace", "delete"):
            segments.append(Segment("removed", "".join(old[a1:a2])))
        if op in ("replace", "insert"):
            segments.append(Segment("added", "".join(new[b1:b2])))
    return segments


def score_keys(scale: tuple[int, int] | None) -> list[int]:
    """The scores a digit key picks (one key per score, for scales that fit on 0-9)."""
    if scale is None:
        return []
    low, high = scale
    return list(range(low, high + 1)) if low >= 0 and high <= 9 else []
