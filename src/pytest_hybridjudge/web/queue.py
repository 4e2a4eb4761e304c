"""The review queue as the page shows it: which items a reviewer still has to decide, in what
order, filtered and paged, with counts, minutes and dollars per tier. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..config import ReviewSpec
from ..cost import review_cost
from ..review.decisions import decide
from ..review.lead_times import LeadTime, expected_minutes
from ..review.leases import Lease, Leases
from ..review.manifest import ReviewItem
from ..review.resolutions import Resolution, latest_per_reviewer, same_reviewer

PAGE_SIZE = 50


def reviewed_by(resolutions: Sequence[Resolution], reviewer: str) -> bool:
    return any(same_reviewer(r.reviewer, reviewer) for r in resolutions)


def is_blind(item: ReviewItem, review: ReviewSpec) -> bool:
    """Audit items, and items of a tier configured `blind = true`, are reviewed blind."""
    return item.audit or review.blind(item.tier)


def needs_people(item: ReviewItem, resolutions: Sequence[Resolution], review: ReviewSpec) -> bool:
    """Still open: fewer reviewers than `reviews_per_item` asks, or reviewers who disagree."""
    if not resolutions:
        return True
    if decide(resolutions).pending:
        return True
    return len(latest_per_reviewer(resolutions)) < review.reviews_needed(item.audit)


def disputed(resolutions: Sequence[Resolution]) -> bool:
    return bool(resolutions) and decide(resolutions).pending


def open_items(
    items: Iterable[ReviewItem], by_item: Mapping[str, list[Resolution]], review: ReviewSpec
) -> list[ReviewItem]:
    """Items that still need people, in the runs' order."""
    return [i for i in items if needs_people(i, by_item.get(i.item_id, []), review)]


def reviewer_queue(
    items: Iterable[ReviewItem],
    by_item: Mapping[str, list[Resolution]],
    reviewer: str,
    review: ReviewSpec,
    leases: Leases,
) -> list[ReviewItem]:
    """What `reviewer` still has to decide, in their order (skipped items last). A disputed
    item goes to people outside the dispute (see the adjudication view)."""
    mine = [
        i
        for i in open_items(items, by_item, review)
        if not reviewed_by(by_item.get(i.item_id, []), reviewer)
    ]
    order = leases.order([i.item_id for i in mine], reviewer)
    by_id = {i.item_id: i for i in mine}
    return [by_id[i] for i in order]


@dataclass(frozen=True)
class Filters:
    """The queue page's filters (None: any)."""

    tier: str | None = None
    rubric: str | None = None
    run: str | None = None
    reason: str | None = None
    mine: bool = False

    def keep(self, item: ReviewItem, my_tier: str | None, lease: Lease | None, me: str) -> bool:
        if self.tier and item.tier != self.tier:
            return False
        if self.rubric and (item.rubric or "") != self.rubric:
            return False
        if self.run and item.run_id != self.run:
            return False
        if self.reason and not any(self.reason.lower() in r.lower() for r in reasons_of(item)):
            return False
        if self.mine:
            held = lease is not None and same_reviewer(lease.reviewer, me)
            return held or (my_tier is not None and item.tier == my_tier)
        return True


def reasons_of(item: ReviewItem) -> list[str]:
    """Why the item is with people (an audit says so first)."""
    return (["audit"] if item.audit else []) + list(item.reasons)


@dataclass(frozen=True)
class TierLoad:
    """Open items of one tier: how many, expected minutes (configured or measured) and dollars."""

    tier: str
    items: int
    minutes: float
    dollars: float
    configured_minutes: float
    median_seconds: float | None
    measured: bool


def tier_loads(
    items: Sequence[ReviewItem], review: ReviewSpec, measured: Mapping[str, LeadTime]
) -> list[TierLoad]:
    """Per tier: open items, minutes and dollars (`lead_times.expected_minutes`: the measured
    median once a tier has enough timed resolutions, else each item's configured minutes)."""
    loads = []
    for tier in sorted({i.tier for i in items}, key=review.rank):
        mine = [i for i in items if i.tier == tier]
        lead_time = measured.get(tier)
        expected = expected_minutes(len(mine), sum(i.review_minutes for i in mine), lead_time)
        loads.append(
            TierLoad(
                tier=tier,
                items=len(mine),
                minutes=expected.minutes,
                dollars=review_cost(expected.minutes, review.rate(tier)),
                configured_minutes=review.minutes_for(tier),
                median_seconds=None if lead_time is None else lead_time.median_seconds,
                measured=expected.measured,
            )
        )
    return loads


@dataclass(frozen=True)
class Page:
    """One page of rows and where it is among all of them."""

    rows: list[ReviewItem]
    number: int
    pages: int
    total: int


def page_of(items: Sequence[ReviewItem], number: int, size: int = PAGE_SIZE) -> Page:
    """Page `number` (1-based, clamped) of `items`."""
    pages = max(1, -(-len(items) // size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(list(items[start : start + size]), number, pages, len(items))


@dataclass(frozen=True)
class Progress:
    """The header: item n of m, and about how many minutes are left for the reviewer's tier."""

    n: int
    m: int
    minutes_left: float


def progress(
    done: int, queue: Sequence[ReviewItem], tier: str | None, loads: Sequence[TierLoad]
) -> Progress:
    """`done` decided by this reviewer so far plus `queue` still to do; minutes left from the
    tier's load (per item), for the reviewer's tier (all tiers when they have none)."""
    per_item = {load.tier: load.minutes / load.items for load in loads if load.items}
    left = [i for i in queue if tier is None or i.tier == tier]
    minutes = sum(per_item.get(i.tier, i.review_minutes) for i in left)
    return Progress(n=min(done + 1, done + len(queue)), m=done + len(queue), minutes_left=minutes)
