"""Reviewers' decisions made elsewhere (a CSV, Label Studio, Argilla) into the resolutions file.

Reading a source gives `SourceDecision`s, each saying where in the source it came from, and the
records left out with why (`Skipped`). `import_decisions` matches them to review items, leaves
out what is already recorded identically (so importing a file twice adds nothing) and hands the
rest to the review desk's `resolve_many`: one lock, the same validation as `review resolve`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .argilla import read_argilla
from .decision_sources import (
    DecisionImport,
    ReadDecisions,
    Skipped,
    SourceDecision,
    note_of,
    score_of,
    time_of,
    verdict_of,
)
from .labelstudio import read_labelstudio
from .records import records
from .report import SourceError

if TYPE_CHECKING:
    from ..review.decisions import ReviewDesk
    from ..review.manifest import ReviewItem

DECISION_FORMATS = ("csv", "labelstudio", "argilla")
CSV_COLUMNS = ("item_id", "verdict", "score", "reviewer", "note")


def read_decisions(
    fmt: str, path: Path, roles: Mapping[str, str], users: Mapping[str, str]
) -> ReadDecisions:
    """Read the decisions in `path`, written by `fmt` (see `DECISION_FORMATS`). `roles` maps
    verdict/score/note to the tool's field names; `users` the tool's user ids to reviewer names.
    Raises `SourceError` for a file that cannot be read at all."""
    if fmt == "csv":
        return read_csv(path)
    if fmt == "labelstudio":
        return read_labelstudio(path, roles, users)
    if fmt == "argilla":
        return read_argilla(path, roles, users)
    raise SourceError(f"unknown format {fmt!r}; use one of {', '.join(DECISION_FORMATS)}")


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
