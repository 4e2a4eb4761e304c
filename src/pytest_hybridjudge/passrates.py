"""A run's pass rates with intervals: the judges' labels of this run, corrected by reviewers.

The run holds the judges' pass/fail of every case it judged; cases decided by earlier reviews
carry the reviewers' label instead. Their judges' label and inclusion probability come from the
newest run that judged them (the run store's `judged_history`), read only when the
run has such cases. `stats.ppi_mean` combines the two per rubric and overall.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .verdict import result_review_probability

if TYPE_CHECKING:
    from .ppi import PassRate
    from .runs import RunStore
    from .verdict import CaseResult


@dataclass(frozen=True)
class Row:
    """One case of the run: the judges' label, or the reviewers' (decided by review)."""

    item_id: str | None
    judge_pass: bool | None
    human_pass: bool | None


def row_of(result: CaseResult) -> Row | None:
    """The pass-rate row of a case; None for a case neither judged nor reviewed."""
    if result.resolved_by and result.outcome in ("passed", "failed"):
        return Row(result.item_id, None, result.outcome == "passed")
    if result.panel is not None and result.panel.passed is not None:
        return Row(result.item_id, result.panel.passed, None)
    if result.verifiers and result.outcome in ("passed", "failed"):  # decided by checks alone
        return Row(result.item_id, result.outcome == "passed", None)
    return None


def pass_rates(
    rows: Mapping[str, Sequence[Row]],
    store: RunStore | None,
    level: float = 0.95,
    resolved: Collection[str] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per rubric and overall: `{estimate, low, high, method, labelled, why, how}`
    (summary's `PassRate`).

    A reviewed case's inclusion probability is two-phase: the chance its run sent it to
    people (`verdict.review_probability`) times the share of its run's items of the same rubric and
    kind that reviewers resolved (`resolved_shares`), out of `resolved` (every item with a
    reviewers' decision; default: the items this run found decided by review).
    """
    stored: dict[str, tuple[bool, float]] = {}
    reviewed = {r.item_id for rs in rows.values() for r in rs if r.human_pass is not None}
    if reviewed and store is not None and store.folder.is_dir():
        from .errors import RecordError
        from .review.labelled import resolved_shares, two_phase_probability

        try:
            history = store.judged_history()
            judged, sent = history.judged, history.sent
        except RecordError:
            judged, sent = {}, {}  # a damaged older run: the rates rest on this run alone
        done = {i or "" for i in reviewed} if resolved is None else set(resolved)
        shares = resolved_shares(sent, done | {i or "" for i in reviewed})
        for item in reviewed:
            found = judged.get(item or "")
            if found is None or found[1].panel is None or found[1].panel.passed is None:
                continue
            first = result_review_probability(found[1])
            probability = two_phase_probability(first, *found, shares)
            if probability:
                stored[item or ""] = (found[1].panel.passed, probability)
    every: list[Row] = [r for rs in rows.values() for r in rs]
    per_rubric = {name: _rate(rs, stored, level) for name, rs in sorted(rows.items())}
    return per_rubric, _rate(every, stored, level)


def _rate(
    rows: Sequence[Row], stored: Mapping[str, tuple[bool, float]], level: float
) -> dict[str, Any]:
    from .stats import ppi_mean

    judge_all: list[float] = []
    judge_labelled: list[float] = []
    human: list[float] = []
    inclusion: list[float] = []
    for row in rows:
        if row.judge_pass is not None:
            judge_all.append(float(row.judge_pass))
        elif row.human_pass is not None and (row.item_id or "") in stored:
            judged, probability = stored[row.item_id or ""]
            judge_all.append(float(judged))
            judge_labelled.append(float(judged))
            human.append(float(row.human_pass))
            inclusion.append(probability)
    rate = ppi_mean(judge_all, judge_labelled, human, inclusion, level)
    return {
        "estimate": None if rate.estimate is None else round(rate.estimate, 4),
        "low": None if rate.low is None else round(rate.low, 4),
        "high": None if rate.high is None else round(rate.high, 4),
        "method": rate.method,
        "labelled": rate.labelled,
        "cases": rate.n,
        "why": rate.why,
        "how": how(rate, level),
    }


def how(rate: PassRate, level: float = 0.95) -> str:
    """How a pass rate was computed, in a phrase for people."""
    cases = f"{rate.n:,} case{'' if rate.n == 1 else 's'}"
    if rate.method == "judge-only":
        return f"the judges' labels on {cases}, not yet checked by reviewers"
    labels = f"{rate.labelled:,} reviewer label{'' if rate.labelled == 1 else 's'}"
    interval = f"{level:.0%} interval" if rate.low is not None else f"no interval: {rate.why}"
    return (
        f"prediction-powered: the judges' labels on {cases}, corrected by {labels} "
        f"weighted by 1 / their chance of review; {interval}"
    )
