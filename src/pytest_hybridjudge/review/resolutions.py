"""Reviewers' decisions: the `Resolution` record and its append-only JSONL file.

The file (`gold/resolutions.jsonl` by default, `resolutions` in `[tool.hybridjudge]`) lives in the
repository. Each line is one compact JSON object; lines are only ever appended, under an exclusive
lock, never rewritten. Validation and the human decision are pure functions; I/O stays at the edges.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import HybridJudgeError
from ..manifest import ReviewItem
from .jsonl import parse_jsonl

if sys.platform != "win32":
    import fcntl

HumanDecision = Literal["pass", "fail", "disagree"]


class ReviewError(HybridJudgeError):
    """A reviewer-facing problem; the message says what is wrong and how to fix it."""


class ResolutionError(ReviewError):
    """A resolution cannot be read, or would be invalid if written."""


class Resolution(BaseModel):
    """One reviewer's decision on one review item: one line of the resolutions file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(1, description="Resolution record version")
    item_id: str = Field(
        min_length=1, description="The review item decided (hash of case, output, rubric version)"
    )
    case_id: str = Field(description="Gold case id of the item, for people reading the file")
    verdict: Literal["pass", "fail"] = Field(description="The reviewer's decision")
    score: int | None = Field(
        None, description="Score on the rubric's scale, if the reviewer gave one"
    )
    reviewer: str = Field(description="Who decided (non-empty)")
    note: str | None = Field(None, description="Why, in the reviewer's words")
    resolved_at: dt.datetime = Field(description="When it was decided, timezone-aware, in UTC")
    run_id: str | None = Field(None, description="The run whose manifest held the item")
    rubric: str | None = Field(None, description="Rubric name the item was graded on")
    rubric_version: str | None = Field(None, description="Hash of the rubric file at the time")
    tier: str | None = Field(None, description="Reviewer tier the item was routed to")
    audit: bool = Field(False, description="The item was a confident case sampled for audit")

    @field_validator("reviewer")
    @classmethod
    def _reviewer_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("reviewer must be a non-empty name")
        return value

    @field_validator("resolved_at")
    @classmethod
    def _aware_utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("resolved_at needs a timezone, e.g. 2026-01-31T12:00:00Z")
        return value.astimezone(dt.UTC)

    @classmethod
    def for_item(
        cls,
        item: ReviewItem,
        *,
        verdict: Literal["pass", "fail"],
        reviewer: str,
        score: int | None = None,
        note: str | None = None,
        resolved_at: dt.datetime | None = None,
    ) -> Resolution:
        """A resolution of `item`, copying its identity (case, run, rubric, tier) from the item."""
        return cls(
            item_id=item.item_id,
            case_id=item.case_id,
            verdict=verdict,
            score=score,
            reviewer=reviewer,
            note=note or None,
            resolved_at=resolved_at or dt.datetime.now(dt.UTC).replace(microsecond=0),
            run_id=item.run_id,
            rubric=item.rubric,
            rubric_version=item.rubric_version,
            tier=item.tier,
            audit=item.audit,
        )


def parse_resolutions(text: str, path: Path) -> list[Resolution]:
    """Parse the text of a resolutions file; a bad line raises `ResolutionError` naming it."""
    fix = "fix or remove that line by hand (the file is append-only; hybridjudge never rewrites it)"
    return parse_jsonl(text, path, Resolution, ResolutionError, "a valid resolution", fix)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ResolutionError(
            f"{path}:{line}: not UTF-8 text; save the file as UTF-8 and try again"
        ) from None


def _lock(handle: IO[bytes], exclusive: bool) -> None:
    if sys.platform != "win32":
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unlock(handle: IO[bytes]) -> None:
    if sys.platform != "win32":
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def load_resolutions(path: Path) -> list[Resolution]:
    """Every resolution in `path`, in file order; a missing file has none.

    Blank lines are ignored. A malformed line raises `ResolutionError` naming `path:line` and
    saying how to fix it.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ResolutionError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        _lock(handle, exclusive=False)
        try:
            data = handle.read()
        finally:
            _unlock(handle)
    return parse_resolutions(_decode(data, path), path)


def append_resolution(
    path: Path,
    resolution: Resolution,
    *,
    validate: Callable[[list[Resolution]], None] | None = None,
) -> None:
    """Append `resolution` to `path` as one compact JSON line; earlier bytes are never changed.

    The file is held under an exclusive `flock` while it is read, checked and appended, then
    flushed and fsynced. Parent folders are created. If the file does not end with a newline
    (edited by hand), one is written first. `validate`, if given, is called under the lock with
    the resolutions already in the file and may raise to abandon the append (so two reviewers
    appending at once cannot slip past a duplicate check).
    """
    record = json.dumps(
        resolution.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    )
    line = (record + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        _lock(handle, exclusive=True)
        try:
            handle.seek(0)
            data = handle.read()
            if validate is not None:
                validate(parse_resolutions(_decode(data, path), path))
            if data and not data.endswith(b"\n"):
                line = b"\n" + line
            handle.write(line)  # "a" mode: always at the end, whatever the position
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            _unlock(handle)


def _same_reviewer(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def validate_resolution(
    item: ReviewItem, resolution: Resolution, existing: list[Resolution]
) -> None:
    """Check `resolution` of `item` against the item and the resolutions already recorded.

    Raises `ResolutionError` when the resolution is for another item; the score is given but the
    item has no scale, or the score is outside the scale; the verdict contradicts the score
    (`pass` below the pass threshold, `fail` at or above it); or the same reviewer (compared
    case-insensitively) already resolved this item. Pure: reads nothing, writes nothing.
    """
    short = item.item_id[:12]
    if resolution.item_id != item.item_id:
        raise ResolutionError(
            f"resolution is for item {resolution.item_id[:12]}, not {short}; resolve the right item"
        )
    rubric = f"rubric '{item.rubric}'" if item.rubric else "this item"
    score = resolution.score
    if score is not None:
        if item.scale is None:
            raise ResolutionError(
                f"item {short} ({item.case_id}) has no rubric scale, so it takes no score; "
                "give only a verdict (leave the score out)"
            )
        low, high = item.scale
        if not low <= score <= high:
            raise ResolutionError(
                f"score {score} is outside the scale {low}-{high} of {rubric}; "
                f"give a score from {low} to {high}, or leave it out"
            )
        threshold = item.pass_threshold
        if threshold is not None:
            if resolution.verdict == "pass" and score < threshold:
                raise ResolutionError(
                    f"verdict 'pass' with score {score} is inconsistent: on {rubric} a score "
                    f"passes at {threshold} or more (scale {low}-{high}); give a score from "
                    f"{threshold} to {high}, or verdict 'fail'"
                )
            if resolution.verdict == "fail" and score >= threshold:
                raise ResolutionError(
                    f"verdict 'fail' with score {score} is inconsistent: on {rubric} a score "
                    f"of {threshold} or more passes (scale {low}-{high}); give a score from "
                    f"{low} to {threshold - 1}, or verdict 'pass'"
                )
    for earlier in existing:
        if earlier.item_id == item.item_id and _same_reviewer(
            earlier.reviewer, resolution.reviewer
        ):
            when = earlier.resolved_at.strftime("%Y-%m-%d %H:%M UTC")
            raise ResolutionError(
                f"{earlier.reviewer} already resolved item {short} ({item.case_id}) as "
                f"'{earlier.verdict}' on {when}; each reviewer resolves an item once. Ask another "
                "reviewer for a second opinion, or correct your earlier line in the resolutions "
                "file by hand in a reviewed commit"
            )


def resolutions_by_item(resolutions: Iterable[Resolution]) -> dict[str, list[Resolution]]:
    """Group resolutions by `item_id`, keeping file order within each item."""
    grouped: dict[str, list[Resolution]] = {}
    for resolution in resolutions:
        grouped.setdefault(resolution.item_id, []).append(resolution)
    return grouped


def latest_per_reviewer(resolutions: Iterable[Resolution]) -> list[Resolution]:
    """Each reviewer's latest resolution (by `resolved_at`, then file order), names compared
    case-insensitively; in order of `resolved_at`."""
    latest: dict[str, Resolution] = {}
    for resolution in sorted(resolutions, key=lambda r: r.resolved_at):  # stable: file order ties
        latest[resolution.reviewer.strip().casefold()] = resolution
    return sorted(latest.values(), key=lambda r: r.resolved_at)


def human_decision(resolutions: list[Resolution]) -> tuple[HumanDecision, int | None]:
    """What people decided about one item, from that item's resolutions.

    The rule: each reviewer counts once, with their latest resolution (a hand-corrected line
    appended later replaces their earlier one). If every counted reviewer gave the same verdict,
    the decision is that verdict, with the median of the scores they gave (the lower median, so it
    is always a score someone gave; `None` if nobody gave a score). If reviewers gave different
    verdicts, the decision is `"disagree"` with no score: the item stays open for review.

    Raises `ValueError` for an empty list (no resolution means no human decision).
    """
    counted = latest_per_reviewer(resolutions)
    if not counted:
        raise ValueError("human_decision needs at least one resolution")
    verdicts = {r.verdict for r in counted}
    if len(verdicts) > 1:
        return "disagree", None
    scores = [r.score for r in counted if r.score is not None]
    return counted[0].verdict, (statistics.median_low(scores) if scores else None)
