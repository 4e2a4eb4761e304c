"""How long reviews take: the configured minutes per item, or the median lead time reviewers
measured once a tier has enough timed resolutions. The one rule the review page's queue, its
load chart and the terminal cost report after `pytest --judge` all use. Pure functions."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from .resolutions import Resolution

MEASURED_AFTER = 5
"""Timed resolutions a tier needs before its measured median replaces the configured minutes."""


@dataclass(frozen=True)
class LeadTime:
    """The median seconds reviewers had an item of one tier open, and what it rests on."""

    median_seconds: float
    timed: int
    """Resolutions with a `lead_time_s` the median is taken over."""

    @property
    def enough(self) -> bool:
        """Enough timed resolutions (`MEASURED_AFTER`) for the median to be used."""
        return self.timed >= MEASURED_AFTER


def lead_times(resolutions: Iterable[Resolution]) -> dict[str, LeadTime]:
    """Per tier the item was routed to: the median `lead_time_s` and how many it rests on."""
    seconds: dict[str, list[float]] = {}
    for r in resolutions:
        if r.lead_time_s is not None and r.tier is not None:
            seconds.setdefault(r.tier, []).append(r.lead_time_s)
    return {tier: LeadTime(statistics.median(s), len(s)) for tier, s in sorted(seconds.items())}


@dataclass(frozen=True)
class ExpectedMinutes:
    """Expected minutes of reviewing some items of one tier, and where they come from."""

    items: int
    minutes: float
    lead_time: LeadTime | None
    """The tier's measured lead time, whether or not it was used."""

    @property
    def measured(self) -> bool:
        """The minutes come from the measured median, not the configured minutes."""
        return self.lead_time is not None and self.lead_time.enough

    @property
    def source(self) -> str:
        """`measured` or `configured`."""
        return "measured" if self.measured else "configured"

    @property
    def per_item(self) -> float:
        """Minutes per item (0 for no items)."""
        return self.minutes / self.items if self.items else 0.0


def expected_minutes(items: int, configured: float, lead_time: LeadTime | None) -> ExpectedMinutes:
    """Minutes to review `items` items of one tier: `items` times the measured median once the
    tier has `MEASURED_AFTER` timed resolutions, else `configured` (the items' configured
    minutes, summed)."""
    if lead_time is not None and lead_time.enough:
        return ExpectedMinutes(items, items * lead_time.median_seconds / 60, lead_time)
    return ExpectedMinutes(items, configured, lead_time)
