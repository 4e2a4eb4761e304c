"""Reviewers' decisions: the `Resolution` record and its append-only JSONL file.

The file (`review/resolutions.jsonl` by default, `resolutions` in `[tool.hybridjudge]`) lives in
the repository. Each line is one compact JSON object; lines are only ever appended, under an
exclusive lock, never rewritten: a reviewer corrects a decision by appending an amending line, and
a reviewer who may adjudicate (see `may_adjudicate`) settles a disagreement by appending an
adjudicating one. Validation
and the human decision are pure functions; I/O stays at the edges.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import ReviewSpec, Tier
from ..errors import HybridJudgeError
from ..files import append_jsonl, parse_jsonl, read_locked
from .manifest import ReviewItem

HumanDecision = Literal["pass", "fail", "disagree"]
LEGACY_FOLDER = "gold"
"""Where resolutions lived before they moved out of the collected gold folder."""


class ReviewError(HybridJudgeError):
    """A reviewer-facing problem; the message says what is wrong and how to fix it."""


class ResolutionError(ReviewError):
    """A resolution cannot be read, or would be invalid if written."""


class Resolution(BaseModel):
    """One reviewer's decision on one review item: one line of the resolutions file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1, 2] = Field(
        2,
        description="Resolution record version, the item's: 2 for an item id covering input and "
        "reference; 1 for an older one (case, output, rubric version), which applies to a case "
        "only while its input and reference are those of the item it decided",
    )
    item_id: str = Field(
        min_length=1,
        description="The review item decided (hash of case, input, reference, output, rubric "
        "version)",
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
    amend: bool = Field(
        False, description="Replaces this reviewer's earlier decision on the item (`--amend`)"
    )
    adjudicate: bool = Field(
        False,
        description="Settles a disagreement: this decision wins over the other reviewers' "
        "(`--adjudicate`, by a named adjudicator, a reviewer of a higher tier than the item's, "
        "or one of its tier outside the dispute)",
    )
    reviewer_tier: Tier | None = Field(
        None, description="The reviewer's own tier, from `[tool.hybridjudge.review] reviewers`"
    )
    blind: bool = Field(
        False,
        description="The reviewer decided without seeing the judges' scores, rationales, "
        "confidence or escalation reasons (a blind audit); such labels are not anchored on the "
        "judges",
    )
    lead_time_s: float | None = Field(
        None,
        ge=0,
        description="Seconds the reviewer had the item open before deciding; null when not "
        "measured (the command line does not)",
    )

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
        amend: bool = False,
        adjudicate: bool = False,
        reviewer_tier: Tier | None = None,
        blind: bool = False,
        lead_time_s: float | None = None,
    ) -> Resolution:
        """A resolution of `item`, copying its identity (case, run, rubric, tier) from the item."""
        return cls(
            schema_version=item.schema_version,
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
            amend=amend,
            adjudicate=adjudicate,
            reviewer_tier=reviewer_tier,
            blind=blind,
            lead_time_s=lead_time_s,
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


def load_resolutions(path: Path, *, root: Path | None = None) -> list[Resolution]:
    """Every resolution in `path`, in file order; a missing file has none.

    Blank lines are ignored. A malformed line raises `ResolutionError` naming `path:line` and
    saying how to fix it. `root` is the project folder (see `legacy_files`).
    """
    try:
        data = read_locked(path)
    except OSError as exc:
        raise ResolutionError(f"{path}: cannot read ({exc.strerror})") from None
    if data is None:
        check_migrated(path, root=root)
        return []
    return parse_resolutions(_decode(data, path), path)


def legacy_files(path: Path, *, root: Path | None = None) -> list[tuple[Path, Path]]:
    """(old, new) places of the files the tool kept in `gold/` beside a resolutions file at
    `path` before they moved out: the resolutions and the calibration files, those that exist.

    Only a `gold/` inside the project folder `root` counts (default: the nearest folder above
    `path` with pyproject.toml or hybridjudge.toml): another project's files are never read as
    this one's, nor moved."""
    from ..calibration import CALIBRATION_NAME, HISTORY_NAME
    from ..paths import find_project_root, inside

    old_folder = path.parent.parent / LEGACY_FOLDER
    root = root if root is not None else find_project_root(path.parent)
    if old_folder == path.parent or not inside(root, old_folder):
        return []
    moves = [(old_folder / "resolutions.jsonl", path)]
    moves += [(old_folder / name, path.parent / name) for name in (CALIBRATION_NAME, HISTORY_NAME)]
    return [(old, new) for old, new in moves if old.is_file()]


def check_migrated(path: Path, *, root: Path | None = None) -> None:
    """Raise `ResolutionError` when `path` does not exist but the old `gold/resolutions.jsonl`
    (inside the project, see `legacy_files`) does: its decisions would be silently ignored.
    The message says how to move the files."""
    moves = legacy_files(path, root=root)
    if path.exists() or not any(old.name == "resolutions.jsonl" for old, _ in moves):
        return
    commands = " && ".join(f"git mv {old} {new}" for old, new in moves)
    raise ResolutionError(
        f"{moves[0][0]} found, but reviewers' decisions are now read from {path}: files the "
        f"tool writes no longer live where gold files are collected. Move them with "
        f"`hybridjudge migrate`, or by hand: mkdir -p {path.parent} && {commands}"
    )


def append_resolution(
    path: Path,
    resolution: Resolution,
    *,
    validate: Callable[[list[Resolution]], None] | None = None,
) -> None:
    """Append `resolution` to `path` as one line, under `files.append_jsonl`'s lock.

    `validate`, if given, is called under the lock with the resolutions already in the file and
    may raise to abandon the append (so two reviewers at once cannot slip past a duplicate check).
    """

    def check(existing: bytes) -> None:
        if validate is not None:
            validate(parse_resolution_bytes(existing, path))

    append_jsonl(path, [resolution_record(resolution)], check=check)


def parse_resolution_bytes(data: bytes, path: Path) -> list[Resolution]:
    """`parse_resolutions` of the file's bytes (not UTF-8: `ResolutionError` naming the line)."""
    return parse_resolutions(_decode(data, path), path)


def resolution_record(resolution: Resolution) -> dict[str, Any]:
    """The line's JSON object, unset `blind`, `lead_time_s` left out (older versions read it)."""
    unset = {"blind"} if not resolution.blind else set()
    unset |= {"lead_time_s"} if resolution.lead_time_s is None else set()
    return resolution.model_dump(mode="json", exclude=unset)


def reviewer_key(name: str) -> str:
    """A reviewer's identity: the name without surrounding blanks, case folded ("Ann " is "ann")."""
    return name.strip().casefold()


def same_reviewer(a: str, b: str) -> bool:
    """Whether two names are the same reviewer (`reviewer_key`)."""
    return reviewer_key(a) == reviewer_key(b)


def validate_resolution(
    item: ReviewItem,
    resolution: Resolution,
    existing: list[Resolution],
    review: ReviewSpec | None = None,
) -> None:
    """Check `resolution` of `item` against the item and the resolutions already recorded.

    Raises `ResolutionError` when the resolution is for another item; the score is given but the
    item has no scale, or the score is outside the scale; the verdict contradicts the score
    (`pass` below the pass threshold, `fail` at or above it); the same reviewer (compared
    case-insensitively) already resolved this item; or it adjudicates what there is no dispute
    on, or what `review` (the tiers, reviewers and adjudicators configured) does not let this
    reviewer settle. Pure: reads nothing, writes nothing.
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
    _check_reviewer(item, resolution, existing, review or ReviewSpec())


def may_adjudicate(
    reviewer: str, reviewer_tier: Tier | None, item_tier: Tier, in_dispute: bool, review: ReviewSpec
) -> bool:
    """Who settles a dispute: a reviewer named in `adjudicators`; a reviewer whose tier ranks
    above the item's; or one of the item's own rank who has not taken part in the dispute (so a
    red_team or domain_expert item, which no built-in tier ranks above, can be settled too)."""
    if any(same_reviewer(reviewer, name) for name in review.adjudicators):
        return True
    if reviewer_tier is None:
        return False
    rank, item_rank = review.rank(reviewer_tier), review.rank(item_tier)
    return rank > item_rank or (rank == item_rank and not in_dispute)


def _check_reviewer(
    item: ReviewItem, resolution: Resolution, existing: list[Resolution], review: ReviewSpec
) -> None:
    """Once per reviewer unless amending; adjudication only of a dispute, by one who may."""
    short = item.item_id[:12]
    on_item = [r for r in existing if r.item_id == item.item_id]
    mine = [r for r in on_item if same_reviewer(r.reviewer, resolution.reviewer)]
    if mine and not resolution.amend:
        earlier = latest_per_reviewer(mine)[-1]
        when = earlier.resolved_at.strftime("%Y-%m-%d %H:%M UTC")
        raise ResolutionError(
            f"{earlier.reviewer} already resolved item {short} ({item.case_id}) as "
            f"'{earlier.verdict}' on {when}; each reviewer resolves an item once. To change "
            "your decision, resolve it again with --amend; for a second opinion, ask another "
            "reviewer"
        )
    if resolution.amend and not mine:
        raise ResolutionError(
            f"{resolution.reviewer} has not resolved item {short} ({item.case_id}) yet, so there "
            "is nothing to amend; resolve it without --amend"
        )
    if not resolution.adjudicate:
        return
    others = [r for r in on_item if not same_reviewer(r.reviewer, resolution.reviewer)]
    if not others or human_decision(others)[0] != "disagree":
        raise ResolutionError(
            f"item {short} ({item.case_id}) has no disagreement to settle; resolve it without "
            "--adjudicate"
        )
    who, tier = resolution.reviewer, resolution.reviewer_tier
    if not may_adjudicate(who, tier, item.tier, bool(mine), review):
        party = " and took part in the dispute" if mine else ""
        raise ResolutionError(
            f"{who} ({tier or 'no tier'}{party}) cannot adjudicate item {short} "
            f"({item.case_id}), routed to {item.tier}: a dispute is settled by a reviewer of a "
            f"higher tier, by one of the item's own tier who has not resolved it, or by a named "
            f"adjudicator. Ask one, or name them under [tool.hybridjudge.review]: adjudicators "
            f'= ["{who}"], or reviewers = {{ {who} = "<tier>" }}'
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
        latest[reviewer_key(resolution.reviewer)] = resolution
    return sorted(latest.values(), key=lambda r: r.resolved_at)


def human_decision(resolutions: list[Resolution]) -> tuple[HumanDecision, int | None]:
    """What people decided about one item, from that item's resolutions.

    The rule: each reviewer counts once, with their latest resolution (an amending line appended
    later replaces their earlier one). If a counted resolution adjudicates (a higher-tier reviewer
    settling a disagreement), the latest such one is the decision, with its score. Otherwise, if
    every counted reviewer gave the same verdict,
    the decision is that verdict, with the median of the scores they gave (the lower median, so it
    is always a score someone gave; `None` if nobody gave a score). If reviewers gave different
    verdicts, the decision is `"disagree"` with no score: the item stays open for review.

    Raises `ValueError` for an empty list (no resolution means no human decision).
    """
    counted = latest_per_reviewer(resolutions)
    if not counted:
        raise ValueError("human_decision needs at least one resolution")
    settled = [r for r in counted if r.adjudicate]
    if settled:
        return settled[-1].verdict, settled[-1].score
    verdicts = {r.verdict for r in counted}
    if len(verdicts) > 1:
        return "disagree", None
    scores = [r.score for r in counted if r.score is not None]
    return counted[0].verdict, (statistics.median_low(scores) if scores else None)
