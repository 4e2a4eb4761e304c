"""Reviewers' decisions made elsewhere (a CSV, Label Studio, Argilla) into the resolutions file.

Reading a source gives `SourceDecision`s, each saying where in the source it came from, and the
records left out with why (`Skipped`). `import_decisions` matches them to review items, leaves
out what is already recorded identically (so importing a file twice adds nothing) and hands the
rest to the review desk's `resolve_many`: one lock, the same validation as `review resolve`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .records import records
from .report import SourceError

if TYPE_CHECKING:
    from ..review.decisions import Resolved, ReviewDesk
    from ..review.manifest import ReviewItem
    from ..review.resolutions import Resolution

DECISION_FORMATS = ("csv", "labelstudio", "argilla")
ROLES = ("verdict", "score", "note")
"""What a field of a labelling tool can carry into a resolution (`--map FIELD=ROLE`)."""
CSV_COLUMNS = ("item_id", "verdict", "score", "reviewer", "note")
CSV_OPTIONAL = ("lead_time_s", "resolved_at", "adjudicate")

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


def read_decisions(
    fmt: str, path: Path, roles: Mapping[str, str], users: Mapping[str, str]
) -> ReadDecisions:
    """Read the decisions in `path`, written by `fmt` (see `DECISION_FORMATS`). `roles` maps
    verdict/score/note to the tool's field names; `users` the tool's user ids to reviewer names.
    Raises `SourceError` for a file that cannot be read at all."""
    if fmt == "csv":
        return read_csv(path)
    if fmt == "labelstudio":
        from .labelstudio import read_labelstudio

        return read_labelstudio(path, roles, users)
    if fmt == "argilla":
        from .argilla import read_argilla

        return read_argilla(path, roles, users)
    raise SourceError(f"unknown format {fmt!r}; use one of {', '.join(DECISION_FORMATS)}")


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


# --- the CSV ---------------------------------------------------------------------------------


def read_csv(path: Path) -> ReadDecisions:
    """A CSV with `item_id, verdict, score, reviewer, note` (score, reviewer, note may be left
    out or empty; `lead_time_s`, `resolved_at`, `adjudicate` are read when present)."""
    read = ReadDecisions()
    for number, record in enumerate(records(path, "csv"), start=1):
        row: dict[str, str] = record.data
        if number == 1:
            missing = [c for c in ("item_id", "verdict") if c not in row]
            if missing:
                raise SourceError(
                    f"{path}:1: no column {', '.join(missing)}; the header must name "
                    f"{', '.join(CSV_COLUMNS)} (score, reviewer and note may be empty)"
                )
        ref = row["item_id"].strip()
        if not ref:
            read.skipped.append(Skipped(record.where, "no item_id"))
            continue
        try:
            verdict = verdict_of(row["verdict"]) if row["verdict"].strip() else None
            score = score_of(row.get("score"))
            lead = score_of(row.get("lead_time_s")) if row.get("lead_time_s") else None
        except ValueError as exc:
            read.skipped.append(Skipped(record.where, str(exc)))
            continue
        read.decisions.append(
            SourceDecision(
                record.where,
                ref,
                verdict,
                score=score,
                reviewer=(row.get("reviewer") or "").strip() or None,
                note=note_of(row.get("note")),
                lead_time_s=float(lead) if lead is not None else None,
                resolved_at=time_of(row.get("resolved_at")),
                adjudicate=(row.get("adjudicate") or "").strip().casefold() in ("true", "1", "yes"),
            )
        )
    return read


# --- importing -------------------------------------------------------------------------------


def import_decisions(
    desk: ReviewDesk,
    items: Sequence[ReviewItem],
    read: ReadDecisions,
    *,
    reviewer: str | None = None,
    amend: bool = False,
) -> DecisionImport:
    """Record the decisions `read` holds through `desk.resolve_many` (one lock for all).

    Each is matched to an item of `items` by id or unique prefix; `reviewer` names the
    reviewer of a decision that names none. A decision identical (verdict, score, note,
    adjudication) to the reviewer's latest on the item, recorded or earlier in the source, is
    `unchanged`: importing the same file twice adds nothing. `amend`: a reviewer's decision
    that differs from their recorded one replaces it (without it the desk refuses it).
    Adjudicating decisions are recorded after the others, so the dispute they settle is there.
    """
    from ..review.decisions import Decision
    from ..review.resolutions import ResolutionError, latest_per_reviewer, reviewer_key

    done = DecisionImport(skipped=list(read.skipped))
    by_id = {item.item_id: item for item in items}
    latest: dict[tuple[str, str], Any] = {}  # (item, reviewer) -> Resolution or SourceDecision
    for item_id, decision in desk.decisions.items():
        for resolution in latest_per_reviewer(decision.resolutions):
            latest[(item_id, reviewer_key(resolution.reviewer))] = resolution
    batch: list[tuple[SourceDecision, Decision]] = []
    ordered = sorted(read.decisions, key=lambda d: d.adjudicate)  # stable: source order kept
    for source in ordered:
        who = source.reviewer or reviewer
        if not who or not who.strip():
            why = "names no reviewer; pass --reviewer NAME for decisions that name none"
            done.skipped.append(Skipped(source.where, why))
            continue
        try:
            item = _find(source.item_ref, by_id)
        except LookupError as exc:
            done.skipped.append(Skipped(source.where, str(exc)))
            continue
        verdict = source.verdict
        if verdict is None:
            threshold = item.pass_threshold
            if source.score is None or threshold is None:
                why = "gives no verdict" + (
                    "" if source.score is None else " (and the item's rubric has no pass mark)"
                )
                done.skipped.append(Skipped(source.where, why))
                continue
            verdict = "pass" if source.score >= threshold else "fail"
        source = replace(source, verdict=verdict, reviewer=who.strip())
        key = (item.item_id, reviewer_key(who))
        earlier = latest.get(key)
        if earlier is not None and _same(earlier, source):
            if isinstance(earlier, SourceDecision):
                why = f"the same decision as {earlier.where}"
                done.skipped.append(Skipped(source.where, why))
            else:
                done.unchanged.append((source, earlier))
            continue
        latest[key] = source
        batch.append(
            (
                source,
                Decision(
                    item,
                    verdict,
                    who.strip(),
                    score=source.score,
                    note=source.note,
                    amend=amend and earlier is not None,
                    adjudicate=source.adjudicate,
                    blind=source.blind,
                    lead_time_s=source.lead_time_s,
                    resolved_at=source.resolved_at,
                ),
            )
        )
    results = desk.resolve_many([decision for _, decision in batch])
    for (source, _), result in zip(batch, results, strict=True):
        if isinstance(result, ResolutionError):
            done.refused.append((source, str(result)))
        else:
            done.imported.append((source, result))
    return done


def _find(ref: str, by_id: Mapping[str, ReviewItem]) -> ReviewItem:
    if ref in by_id:
        return by_id[ref]
    found = [item for item_id, item in by_id.items() if item_id.startswith(ref)]
    if len(found) == 1 and len(ref) >= 6:
        return found[0]
    if len(found) > 1:
        raise LookupError(f"item id {ref!r} matches {len(found)} items; give more of the id")
    raise LookupError(
        f"item {ref!r} is in no run's review manifest; check the id (`hybridjudge review` "
        "lists the items), or pass --run"
    )


def _same(earlier: Any, source: SourceDecision) -> bool:
    return (earlier.verdict, earlier.score, earlier.note or None, earlier.adjudicate) == (
        source.verdict,
        source.score,
        source.note or None,
        source.adjudicate,
    )
