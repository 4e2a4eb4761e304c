"""The review desk: what people decided about each item, and the one way to record a decision.

`ReviewDesk` owns the resolutions file of a project. It reads the file once (on first use) and
keeps it; its own writes refresh what it holds, from the file as it was under the lock, so a
decision recorded by someone else in between is seen too. Everything that turns resolutions
into decisions goes through `decide` (one item) or `decisions_of` (all), pure functions of
resolutions already read; nothing outside `review/` applies the rule itself.

`ReviewDesk.resolve` is the one operation that records a decision: the command line (`review
resolve`, `review walk`), imports and the review page all call it. It validates the decision
against the file under the file's exclusive lock, appends it and returns the new decision, so
two reviewers resolving at once both land and neither slips past the other's check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from ..config import ReviewSpec, Tier
from ..errors import describe_validation_error
from ..files import append_jsonl_built
from ..paths import configured
from .lead_times import LeadTime, lead_times
from .manifest import ReviewItem
from .resolutions import (
    HumanDecision,
    Resolution,
    ResolutionError,
    append_resolution,
    human_decision,
    latest_per_reviewer,
    load_resolutions,
    parse_resolution_bytes,
    resolution_record,
    resolutions_by_item,
    reviewer_key,
    same_reviewer,
    validate_resolution,
)
from .store import find_in_runs, load_items, upgrade_legacy

if TYPE_CHECKING:
    from ..config import HybridJudgeConfig
    from ..runs import RunStore


@dataclass(frozen=True)
class ItemDecision:
    """What people decided about one item, from every resolution recorded on it."""

    verdict: HumanDecision
    """`pass` or `fail`; `disagree` while the reviewers' latest verdicts differ."""
    score: int | None
    """The decided score (an adjudicator's, else the lower median of the scores given)."""
    resolutions: tuple[Resolution, ...]
    """Every resolution of the item, in file order (amended ones included)."""

    @property
    def pending(self) -> bool:
        """The item still needs people: its reviewers disagree."""
        return self.verdict == "disagree"

    @property
    def passed(self) -> bool | None:
        """Whether people passed it; None while they disagree."""
        return None if self.pending else self.verdict == "pass"

    @property
    def counted(self) -> list[Resolution]:
        """Each reviewer's latest resolution, the ones the decision rests on, oldest first."""
        return latest_per_reviewer(self.resolutions)

    @property
    def reviewers(self) -> tuple[str, ...]:
        """Who decided it (each once, as they last spelled their name), oldest first."""
        return tuple(r.reviewer for r in self.counted)


def decide(resolutions: Sequence[Resolution]) -> ItemDecision:
    """The decision on one item from its resolutions (see `resolutions.human_decision` for the
    rule). Raises `ValueError` for no resolutions: then people have decided nothing."""
    verdict, score = human_decision(list(resolutions))
    return ItemDecision(verdict, score, tuple(resolutions))


def decisions_of(resolutions: Iterable[Resolution]) -> dict[str, ItemDecision]:
    """Every item's decision, by item id, from resolutions already read."""
    return {item: decide(lines) for item, lines in resolutions_by_item(resolutions).items()}


def decided_items(decisions: Mapping[str, ItemDecision]) -> frozenset[str]:
    """Items people reached a decision on (not "disagree")."""
    return frozenset(item for item, decision in decisions.items() if not decision.pending)


@dataclass(frozen=True)
class Resolved:
    """What `ReviewDesk.resolve` recorded and what people now decide about the item."""

    resolution: Resolution
    decision: ItemDecision


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one item, as `ReviewDesk.resolve_many` takes it (the
    arguments of `ReviewDesk.resolve`)."""

    item: ReviewItem
    verdict: Literal["pass", "fail"]
    reviewer: str
    score: int | None = None
    note: str | None = ""
    amend: bool = False
    adjudicate: bool = False
    blind: bool = False
    lead_time_s: float | None = None
    resolved_at: dt.datetime | None = None


@dataclass
class ReviewDesk:
    """A project's reviewers' decisions: read once, asked per item, added to by `resolve`.

    `path` is the resolutions file; `review` the tiers, reviewers and adjudicators configured;
    `root` the project folder; `store` (the run store), when given, lets a resolution of an
    older item id apply to the item under its id today (`store.upgrade_legacy`) and lets the
    desk find items.
    """

    path: Path
    review: ReviewSpec = field(default_factory=ReviewSpec)
    root: Path | None = None
    store: RunStore | None = None
    _recorded: list[Resolution] | None = field(default=None, init=False, repr=False)
    _resolutions: list[Resolution] | None = field(default=None, init=False, repr=False)
    _decisions: dict[str, ItemDecision] | None = field(default=None, init=False, repr=False)

    @classmethod
    def for_project(
        cls, root: Path, settings: HybridJudgeConfig, store: RunStore | None = None
    ) -> ReviewDesk:
        """The desk of the project at `root` with its settings (`resolutions`, `runs_dir`,
        `[tool.hybridjudge.review]`); `store` is the project's run store when one is open."""
        from ..runs import RunStore

        return cls(
            configured(root, settings.resolutions),
            settings.review,
            root=root,
            store=store or RunStore.configured(root, settings),
        )

    # --- reading ---------------------------------------------------------------------------

    @property
    def recorded(self) -> list[Resolution]:
        """The lines of the resolutions file, in file order (read on first use, then kept).

        Raises `ResolutionError` for a file that cannot be read, naming `path:line`."""
        if self._recorded is None:
            self._recorded = load_resolutions(self.path, root=self.root)
        return self._recorded

    @property
    def resolutions(self) -> list[Resolution]:
        """The recorded resolutions, each of an older item id also under the item's id today."""
        if self._resolutions is None:
            recorded = self.recorded
            legacy = self.store is not None and any(r.schema_version == 1 for r in recorded)
            self._resolutions = (
                upgrade_legacy(recorded, self.store) if legacy and self.store else recorded
            )
        return self._resolutions

    @property
    def decisions(self) -> dict[str, ItemDecision]:
        """Every decided or disputed item's decision, by item id."""
        if self._decisions is None:
            self._decisions = decisions_of(self.resolutions)
        return self._decisions

    def decision(self, item_id: str) -> ItemDecision | None:
        """What people decided about the item; None when nobody resolved it."""
        return self.decisions.get(item_id)

    def score(self, item_id: str) -> int | None:
        """The item's decided score; None when undecided or decided without one."""
        decision = self.decision(item_id)
        return None if decision is None else decision.score

    def reviewers(self, item_id: str) -> tuple[str, ...]:
        """Who resolved the item, each once; empty when nobody did."""
        decision = self.decision(item_id)
        return () if decision is None else decision.reviewers

    def is_pending(self, item_id: str) -> bool:
        """The item needs people: nobody resolved it, or its reviewers disagree."""
        decision = self.decision(item_id)
        return decision is None or decision.pending

    def pending(self, items: Iterable[ReviewItem]) -> list[ReviewItem]:
        """The items that still need people, in the order given."""
        return [item for item in items if self.is_pending(item.item_id)]

    def queue(self, items: Iterable[ReviewItem], reviewer: str) -> list[ReviewItem]:
        """The pending items `reviewer` has not resolved yet, in the order given."""
        return [
            item
            for item in self.pending(items)
            if not any(same_reviewer(r, reviewer) for r in self.reviewers(item.item_id))
        ]

    def decided_items(self) -> frozenset[str]:
        """Items people reached a decision on (not "disagree")."""
        return decided_items(self.decisions)

    def lead_times(self) -> dict[str, LeadTime]:
        """Per tier, the median seconds reviewers had an item open and how many timed
        resolutions it rests on (`lead_times.lead_times`, over each line of the file once)."""
        return lead_times(self.recorded)

    def reviewer_tier(self, reviewer: str) -> Tier | None:
        """The reviewer's tier from `[tool.hybridjudge.review] reviewers` (`reviewer_key`)."""
        tiers = {reviewer_key(name): tier for name, tier in self.review.reviewers.items()}
        return tiers.get(reviewer_key(reviewer))

    # --- finding items ---------------------------------------------------------------------

    def items(self, run: str | None = "all") -> list[ReviewItem]:
        """The review items of `run` (`latest`, `all` or a run id; see `store.load_items`)."""
        return load_items(self._runs(), run)

    def find(self, item_id: str, run: str | None = "all") -> ReviewItem:
        """The item whose id is `item_id` or starts with it (see `store.find_in_runs`)."""
        return find_in_runs(self._runs(), item_id, run)

    def _runs(self) -> RunStore:
        if self.store is None:
            raise ResolutionError("this review desk was built without a runs folder")
        return self.store

    # --- writing ---------------------------------------------------------------------------

    def resolve(
        self,
        item: ReviewItem,
        verdict: Literal["pass", "fail"],
        reviewer: str,
        *,
        score: int | None = None,
        note: str | None = "",
        amend: bool = False,
        adjudicate: bool = False,
        blind: bool = False,
        lead_time_s: float | None = None,
        resolved_at: dt.datetime | None = None,
    ) -> Resolved:
        """Record `reviewer`'s decision on `item` and return it with the item's new decision.

        The reviewer's tier comes from the settings. The decision is validated (score on the
        scale and consistent with the verdict, once per reviewer unless `amend`, `adjudicate`
        only of a dispute and by one who may; see `validate_resolution`) against the file under
        its exclusive lock, then appended; an invalid one raises `ResolutionError` and writes
        nothing. `blind`: the reviewer saw no judge's output before deciding; `lead_time_s`:
        seconds they had the item open.
        """
        decision = Decision(
            item,
            verdict,
            reviewer,
            score=score,
            note=note,
            amend=amend,
            adjudicate=adjudicate,
            blind=blind,
            lead_time_s=lead_time_s,
            resolved_at=resolved_at,
        )
        resolution = self._resolution(decision)
        seen: list[list[Resolution]] = []

        def check(existing: list[Resolution]) -> None:
            validate_resolution(item, resolution, existing, self.review)
            seen.append(existing)

        # Checked first against what this desk holds, so a refused decision creates no file;
        # then again under the lock against the file as it is.
        validate_resolution(item, resolution, self.recorded, self.review)
        append_resolution(self.path, resolution, validate=check)
        self._refresh([*seen[-1], resolution])
        found = self.decision(item.item_id)
        assert found is not None  # it holds the resolution just written
        return Resolved(resolution, found)

    def resolve_many(self, decisions: Sequence[Decision]) -> list[Resolved | ResolutionError]:
        """Record many decisions under ONE acquisition of the file's lock (an import).

        Each is validated exactly as `resolve` validates one, in the order given, against the
        file as the lock shows it plus the decisions of this batch accepted before it; the
        valid ones are appended together. Returns, per decision and in order, what was
        recorded (`Resolved`) or why it was refused (the `ResolutionError`, nothing written).
        """
        built: list[Resolution | ResolutionError] = []
        for decision in decisions:
            try:
                built.append(self._resolution(decision))
            except ResolutionError as exc:
                built.append(exc)
        outcome: list[Resolution | ResolutionError] = []
        seen: list[list[Resolution]] = []

        def batch(existing: list[Resolution]) -> list[Resolution]:
            outcome.clear()
            seen[:] = [existing]
            by_item = resolutions_by_item(existing)
            accepted: list[Resolution] = []
            for decision, resolution in zip(decisions, built, strict=True):
                if isinstance(resolution, ResolutionError):
                    outcome.append(resolution)
                    continue
                on_item = by_item.setdefault(decision.item.item_id, [])
                try:
                    validate_resolution(decision.item, resolution, on_item, self.review)
                except ResolutionError as exc:
                    outcome.append(exc)
                    continue
                on_item.append(resolution)
                accepted.append(resolution)
                outcome.append(resolution)
            return accepted

        # As `resolve`: a batch where nothing is valid against what this desk holds creates no
        # file; the decisions are validated again under the lock.
        if batch(list(self.recorded)):
            written = _append_batch(self.path, batch)
            self._refresh([*seen[-1], *written])
        results: list[Resolved | ResolutionError] = []
        for item_outcome in outcome:
            if isinstance(item_outcome, ResolutionError):
                results.append(item_outcome)
                continue
            found = self.decision(item_outcome.item_id)
            assert found is not None  # it holds the resolution just written
            results.append(Resolved(item_outcome, found))
        return results

    def _resolution(self, decision: Decision) -> Resolution:
        """The resolution `decision` would record (the reviewer's tier from the settings);
        `ResolutionError` when it is not a valid record at all (e.g. no reviewer named)."""
        try:
            return Resolution.for_item(
                decision.item,
                verdict=decision.verdict,
                reviewer=decision.reviewer,
                score=decision.score,
                note=decision.note,
                resolved_at=decision.resolved_at,
                amend=decision.amend,
                adjudicate=decision.adjudicate,
                reviewer_tier=self.reviewer_tier(decision.reviewer),
                blind=decision.blind,
                lead_time_s=decision.lead_time_s,
            )
        except ValidationError as exc:
            raise ResolutionError(describe_validation_error(exc)) from None

    def _refresh(self, recorded: list[Resolution]) -> None:
        """Hold `recorded` as the file's lines (what the lock showed, plus this desk's write)."""
        self._recorded, self._resolutions, self._decisions = recorded, None, None


def _append_batch(
    path: Path, batch: Callable[[list[Resolution]], list[Resolution]]
) -> list[Resolution]:
    """Append the resolutions `batch` returns, `batch` being called once under the file's lock
    (`files.append_jsonl_built`) with the resolutions already in the file; returns them."""
    written: list[Resolution] = []

    def build(existing: bytes) -> list[dict[str, Any]]:
        written[:] = batch(parse_resolution_bytes(existing, path))
        return [resolution_record(resolution) for resolution in written]

    append_jsonl_built(path, build)
    return written
