"""The numbers behind the review page's charts, as tables: each chart draws one, shows it beneath
and serves it as JSON. The statistics come from the package (`stats`, `review.calibration_report`,
the calibration file); this module only gathers and bins them. Pure, apart from `gather`."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..calibration import RubricCalibration
from ..review.calibration_report import rubric_report
from ..review.decisions import decide
from ..review.labelled import Dataset, LabelledCase
from ..review.resolutions import Resolution, latest_per_reviewer
from ..stats import agreement, cohen_kappa, confusion
from ..verdict import CaseResult
from .queue import TierLoad

BINS = 10
RESAMPLES = 200
Cell = str | int | float | None


@dataclass
class Table:
    """One chart's numbers: a title, column names and rows."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""

    def json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}


def outcome_mix(judged: Mapping[str, tuple[str, CaseResult]]) -> Table:
    """Cases by outcome (the newest judged record of each item)."""
    counts = Counter(record.outcome for _, record in judged.values())
    table = Table("Outcome mix", ["outcome", "cases"])
    table.rows = [[name, n] for name, n in counts.most_common()]
    return table


def review_load(loads: Sequence[TierLoad]) -> Table:
    """Open items, minutes and dollars per tier, and where the minutes come from."""
    table = Table(
        "Review load by tier",
        ["tier", "items", "minutes", "dollars", "minutes from"],
        note="minutes come from the measured median lead time once a tier has enough "
        "timed resolutions, else from the configured minutes",
    )
    table.rows = [
        [
            load.tier,
            load.items,
            round(load.minutes, 1),
            round(load.dollars, 2),
            "measured median" if load.measured else "configured",
        ]
        for load in loads
    ]
    return table


def score_distribution(judged: Mapping[str, tuple[str, CaseResult]]) -> Table:
    """How often each judge gave each score."""
    counts: Counter[tuple[str, int]] = Counter()
    for _, record in judged.values():
        for verdict in record.verdicts:
            if verdict.score is not None:
                counts[(verdict.judge, verdict.score)] += 1
    table = Table("Score distribution per judge", ["judge", "score", "cases"])
    table.rows = [[judge, score, n] for (judge, score), n in sorted(counts.items())]
    return table


def wilson(agreed: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a share (scipy's)."""
    from scipy.stats import binomtest

    interval = binomtest(agreed, n).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def by_rubric(cases: Sequence[LabelledCase]) -> dict[str, list[LabelledCase]]:
    grouped: dict[str, list[LabelledCase]] = {}
    for case in cases:
        grouped.setdefault(case.rubric, []).append(case)
    return dict(sorted(grouped.items()))


def reliability(dataset: Dataset) -> Table:
    """Per rubric and panel-confidence bin: cases, the share where the panel agreed with the
    reviewers, and its Wilson 95% interval."""
    table = Table(
        "Reliability: panel confidence against reviewer agreement",
        ["rubric", "confidence from", "confidence to", "cases", "agreement", "low", "high"],
    )
    for rubric, cases in by_rubric(dataset.cases).items():
        bins: dict[int, list[bool]] = {}
        for case in cases:
            if case.panel_confidence is None or case.panel_pass is None:
                continue
            index = min(int(case.panel_confidence * BINS), BINS - 1)
            bins.setdefault(index, []).append(case.panel_pass == case.human_pass)
        for index, agreed in sorted(bins.items()):
            low, high = wilson(sum(agreed), len(agreed))
            share = sum(agreed) / len(agreed)
            table.rows.append(
                [rubric, index / BINS, (index + 1) / BINS, len(agreed), round(share, 3),
                 round(low, 3), round(high, 3)]
            )  # fmt: skip
    return table


def coverage_curve(dataset: Dataset, thresholds: Mapping[str, RubricCalibration]) -> Table:
    """Per rubric and candidate threshold: the share of judged cases the panel would decide
    (coverage) against the agreement with reviewers on the labelled cases at or above it. The
    row of the threshold fitted by `calibrate --write` carries its certified lower bound."""
    table = Table(
        "Coverage against agreement",
        ["rubric", "threshold", "coverage", "agreement", "labelled cases", "fitted", "certified"],
    )
    notes = []
    for rubric, cases in by_rubric(dataset.cases).items():
        judged = [c for c in dataset.judged.get(rubric, []) if c is not None]
        labelled = [c for c in cases if c.panel_confidence is not None and c.panel_pass is not None]
        fitted = thresholds.get(rubric)
        chosen = fitted.min_confidence if fitted is not None else None
        candidates = sorted(
            {c.panel_confidence for c in labelled if c.panel_confidence is not None}
        )
        mark = min((t for t in candidates if chosen is not None and t >= chosen), default=None)
        for t in candidates:
            above = [c for c in labelled if (c.panel_confidence or 0) >= t]
            agreed = sum(c.panel_pass == c.human_pass for c in above)
            coverage = sum(c >= t for c in judged) / len(judged) if judged else None
            here = fitted is not None and t == mark
            table.rows.append(
                [rubric, round(t, 3), None if coverage is None else round(coverage, 3),
                 round(agreed / len(above), 3), len(above), "yes" if here else "",
                 fitted.lower_bound if here and fitted is not None else None]
            )  # fmt: skip
        if fitted is not None and chosen is not None:
            bound = "-" if fitted.lower_bound is None else f"{fitted.lower_bound:.3f}"
            notes.append(
                f"{rubric}: fitted threshold {chosen:.3f}, certified agreement at least {bound} "
                f"(target {fitted.target})"
            )
    table.note = "; ".join(notes) or "no threshold fitted yet (hybridjudge calibrate --write)"
    return table


def judge_confusion(dataset: Dataset) -> Table:
    """Per rubric: the panel's pass/fail against the reviewers', with Cohen's kappa and
    Krippendorff's alpha (from `rubric_report`)."""
    table = Table(
        "Judges against reviewers",
        ["rubric", "both pass", "judges pass, reviewers fail", "judges fail, reviewers pass",
         "both fail", "kappa", "alpha"],
    )  # fmt: skip
    for rubric, cases in by_rubric(dataset.cases).items():
        report = rubric_report(
            rubric, cases, disagree=0, unjudged=0, target=None, delta=0.1,
            resamples=RESAMPLES, seed=0,
        )  # fmt: skip
        c = report.panel.counts
        table.rows.append([rubric, c.tp, c.fp, c.fn, c.tn, _round(report.panel.kappa),
                           _round(report.panel.alpha)])  # fmt: skip
    return table


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True)
class Comparison:
    """One reviewer's verdict on one item against another reviewer's, or against the item's
    adjudicated outcome: what the reviewer-agreement tables count."""

    rubric: str
    reviewer: str
    against: str
    """The other reviewer, or `ADJUDICATED`."""
    verdicts: tuple[bool, bool]
    """(the reviewer passed it, the other side passed it)."""
    when: dt.datetime
    """When the comparison became possible: the later of the two reviewers' resolutions; the
    reviewer's own resolution against an adjudicated outcome."""


ADJUDICATED = "adjudicated outcome"


def comparisons(by_item: Mapping[str, list[Resolution]]) -> list[Comparison]:
    """Per item, each pair of its reviewers (the adjudicator left out), and each reviewer
    against the outcome when the item was adjudicated."""
    found = []
    for resolutions in by_item.values():
        counted = latest_per_reviewer(resolutions)
        rubric = (counted[-1].rubric if counted else None) or "(none)"
        people = [r for r in counted if not r.adjudicate]
        for a, b in itertools.combinations(sorted(people, key=lambda r: r.reviewer), 2):
            verdicts = (a.verdict == "pass", b.verdict == "pass")
            when = max(a.resolved_at, b.resolved_at)
            found.append(Comparison(rubric, a.reviewer, b.reviewer, verdicts, when))
        if any(r.adjudicate for r in counted):
            final = decide(resolutions).verdict == "pass"
            for r in people:
                verdicts = (r.verdict == "pass", final)
                found.append(Comparison(rubric, r.reviewer, ADJUDICATED, verdicts, r.resolved_at))
    return found


def reviewer_agreement(by_item: Mapping[str, list[Resolution]]) -> Table:
    """Per rubric and pair of reviewers who decided the same items: Cohen's kappa and
    Krippendorff's alpha with its 95% interval (`stats.agreement`); and each reviewer's
    agreement with adjudicated outcomes."""
    table = Table(
        "Reviewers against each other",
        ["rubric", "reviewer", "against", "items", "agreement", "kappa", "alpha", "alpha low",
         "alpha high"],
    )  # fmt: skip
    grouped: dict[tuple[str, str, str], list[tuple[bool, bool]]] = {}
    for c in comparisons(by_item):
        grouped.setdefault((c.rubric, c.reviewer, c.against), []).append(c.verdicts)
    pairs = {k: v for k, v in grouped.items() if k[2] != ADJUDICATED}
    settled = {k: v for k, v in grouped.items() if k[2] == ADJUDICATED}
    for (rubric, first, second), votes in sorted(pairs.items()):
        result = agreement([x for x, _ in votes], [y for _, y in votes], resamples=RESAMPLES)
        ci = result.alpha_ci or (None, None)
        table.rows.append(
            [rubric, first, second, result.n, _round(result.accuracy), _round(result.kappa),
             _round(result.alpha), _round(ci[0]), _round(ci[1])]
        )  # fmt: skip
    for (rubric, reviewer, against), votes in sorted(settled.items()):
        agreed = [x == y for x, y in votes]
        table.rows.append(
            [rubric, reviewer, against, len(agreed), round(sum(agreed) / len(agreed), 3),
             None, None, None, None]
        )  # fmt: skip
    return table


def iso_week(when: dt.datetime) -> str:
    """`2026-W01`: the ISO week of `when` (in UTC)."""
    year, week, _ = when.astimezone(dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def reviewer_agreement_by_week(by_item: Mapping[str, list[Resolution]]) -> Table:
    """Per ISO week, rubric and reviewer: their agreement with each other reviewer (with
    Cohen's kappa, `stats.cohen_kappa`) and with adjudicated outcomes, each share with its
    Wilson 95% interval; the week is when the comparison became possible (`Comparison.when`)."""
    table = Table(
        "Reviewers' agreement over time",
        ["week", "rubric", "reviewer", "against", "items", "agreement", "low", "high", "kappa"],
        note="by ISO week of the later resolution of each pair, and of the reviewer's own "
        "resolution against an adjudicated outcome",
    )
    grouped: dict[tuple[str, str, str, str], list[tuple[bool, bool]]] = {}
    for c in comparisons(by_item):
        key = (iso_week(c.when), c.rubric, c.reviewer, c.against)
        grouped.setdefault(key, []).append(c.verdicts)
    for (week, rubric, reviewer, against), votes in sorted(grouped.items()):
        counts = confusion([x for x, _ in votes], [y for _, y in votes])
        agreed = counts.tp + counts.tn
        low, high = wilson(agreed, counts.n)
        kappa = None if against == ADJUDICATED else _round(cohen_kappa(counts))
        table.rows.append(
            [week, rubric, reviewer, against, counts.n, round(agreed / counts.n, 3),
             round(low, 3), round(high, 3), kappa]
        )  # fmt: skip
    return table
