"""Decisions as a source holds them (`SourceDecision`), what was left out (`Skipped`), and
reading the values labelling tools write: verdicts, scores, notes, times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .report import SourceError

if TYPE_CHECKING:
    from ..review.decisions import Resolved
    from ..review.resolutions import Resolution

ROLES = ("verdict", "score", "note")
"""What a field of a labelling tool can carry into a resolution (`--map FIELD=ROLE`)."""

Verdict = Literal["pass", "fail"]


@dataclass(frozen=True)
class SourceDecision:
    """One decision as a source holds it, before it is matched to an item."""

    where: str
    """Where in the source (`file:line`, and the annotation or response)."""
    item_ref: str
    """The item id (or a unique prefix of it)."""
    verdict: Verdict | None
    score: int | None = None
    reviewer: str | None = None
    note: str | None = None
    lead_time_s: float | None = None
    resolved_at: dt.datetime | None = None
    adjudicate: bool = False
    blind: bool = False


@dataclass(frozen=True)
class Skipped:
    """A record of the source that gives no decision to import, and why."""

    where: str
    why: str


@dataclass
class ReadDecisions:
    """What a source holds: the decisions, and what was left out."""

    decisions: list[SourceDecision] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class DecisionImport:
    """What `import_decisions` did with each decision of a source."""

    imported: list[tuple[SourceDecision, Resolved]] = field(default_factory=list)
    unchanged: list[tuple[SourceDecision, Resolution]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    refused: list[tuple[SourceDecision, str]] = field(default_factory=list)


def role_map(specs: Sequence[str]) -> dict[str, str]:
    """`--map FIELD=ROLE` options as {role: field}; by default each role reads the field of
    its own name (`verdict`, `score`, `note`), as the exported labelling config names them."""
    roles = {role: role for role in ROLES}
    for spec in specs:
        name, sep, role = spec.partition("=")
        if not sep or not name.strip() or role.strip() not in ROLES:
            raise SourceError(
                f"--map {spec!r}: write FIELD=ROLE, FIELD being the labelling config's field "
                f"(Label Studio's from_name, Argilla's question) and ROLE one of "
                f"{', '.join(ROLES)} (e.g. --map rating=score)"
            )
        roles[role.strip()] = name.strip()
    return roles


# --- values ----------------------------------------------------------------------------------


def verdict_of(value: Any) -> Verdict:
    """`pass` or `fail` (any case, surrounding blanks ignored); ValueError naming the value."""
    text = str(value[0] if isinstance(value, list) and len(value) == 1 else value)
    verdict = text.strip().casefold()
    if verdict not in ("pass", "fail"):
        raise ValueError(f"verdict {text!r} is neither 'pass' nor 'fail'")
    return "pass" if verdict == "pass" else "fail"


def score_of(value: Any) -> int | None:
    """A whole-number score from a number or its text; None for empty; ValueError otherwise."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"score {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"score {value!r} is not a number") from None
    if not number.is_integer():
        raise ValueError(f"score {value!r} is not a whole number")
    return int(number)


def note_of(value: Any) -> str | None:
    """A note from text or Label Studio's list of texts; None when empty."""
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value)
    text = "" if value is None else str(value).strip()
    return text or None


def time_of(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (`Z` or an offset; naive taken as UTC); None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
