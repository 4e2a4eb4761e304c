"""Pass rates with honest intervals: prediction-powered inference. Pure functions.

The judges label every case; reviewers label a sample of known inclusion probability (the
audits, and escalations they resolved). The prediction-powered estimate (Angelopoulos et al.
2023, "Prediction-powered inference") is the judges' mean over all cases plus the mean
human - judge correction on the labelled sample, each labelled case weighted by its inverse
inclusion probability (Horvitz-Thompson). `ppi_change` does the same for a gate's change in
pass rate over paired cases, each side corrected by its own reviewed sample. Re-exported from
`stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Method = Literal["ppi", "judge-only"]


@dataclass(frozen=True)
class PassRate:
    """A pass rate with its interval, and what it rests on."""

    estimate: float | None
    """The estimated pass rate; None without cases."""
    low: float | None
    """Lower end of the interval; None when no interval can be trusted (`why` says why)."""
    high: float | None
    """Upper end of the interval; None when no interval can be trusted."""
    method: Method
    """`ppi`: judges corrected by reviewers' labels; `judge-only`: the judges' rate, uncorrected,
    which has no interval that can be trusted."""
    labelled: int
    """Cases with a reviewer's label behind the correction."""
    n: int
    """Cases the rate is about."""
    why: str | None = None
    """Why there is no interval, when there is none."""


NO_LABELS = "no reviewer labels: the judges' rate is uncorrected"
NO_AUDITS = (
    "no audits among the reviewer labels: only cases reviewed for certain are corrected, "
    "the judges' confident decisions are not"
)


def ppi_mean(
    judge_all: Sequence[float],
    judge_labelled: Sequence[float],
    human_labelled: Sequence[float],
    inclusion: Sequence[float] | None = None,
    level: float = 0.95,
) -> PassRate:
    """Prediction-powered mean of the N cases in `judge_all`, with a `level` interval.

    `judge_all` holds the judges' label (1 pass, 0 fail, or a probability) of every case;
    `judge_labelled` and `human_labelled` the judges' and reviewers' labels of the labelled
    cases (a subset of the N), and `inclusion` their inclusion probabilities (default n / N, a
    simple random sample). The estimate is mean(judge_all) + sum((human - judge) / pi) / N
    (Horvitz-Thompson), clipped to [0, 1].

    The interval is normal, for the pass rate of these N cases, with the Horvitz-Thompson
    variance under Poisson sampling, sum((1 - pi) / pi^2 * (human - judge)^2) / N^2, smoothed
    so that a few labels cannot make it vanish: within each cell of labelled cases with the
    same pi and the same judge label (the rows of the audits' 2x2 judge x reviewer table),
    the disagreements d of n cases count as n (d + k) / (n + 2k), k = z^2 / 2 added to each
    cell (Agresti & Coull 1998). Ten audits that all agree thus still leave an interval as
    wide as ten audits can support; with many labels the smoothing vanishes.
    `benchmarks/passrate.py` shows its coverage at 200, 1,000 and 5,000 cases.

    No interval (`why` says why) when no case was labelled (`judge-only`), or when every
    labelled case was reviewed for certain (pi = 1) but some cases were not labelled: nothing
    was sampled from those, so nothing bounds the judges' error on them.
    """
    from statistics import NormalDist  # not scipy: a run's summary should not load it

    judge_all = [float(x) for x in judge_all]  # bools and numpy bools alike
    judge_labelled = [float(x) for x in judge_labelled]
    human_labelled = [float(x) for x in human_labelled]
    n_all, n = len(judge_all), len(judge_labelled)
    if len(human_labelled) != n:
        raise ValueError(f"{n} judge labels but {len(human_labelled)} reviewer labels")
    if n > n_all:
        raise ValueError(f"{n} labelled cases but only {n_all} cases in all")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    pis = [n / n_all] * n if inclusion is None else [float(p) for p in inclusion]
    if len(pis) != n:
        raise ValueError(f"{n} labelled cases but {len(pis)} inclusion probabilities")
    if any(not 0 < p <= 1 for p in pis):
        raise ValueError("inclusion probabilities must be in (0, 1]")
    if n_all == 0:
        return PassRate(None, None, None, "judge-only", 0, 0, NO_LABELS)
    judged = math.fsum(judge_all) / n_all
    if n == 0:
        return PassRate(judged, None, None, "judge-only", 0, n_all, NO_LABELS)
    residuals = [h - j for h, j in zip(human_labelled, judge_labelled, strict=True)]
    correction = math.fsum(r / p for r, p in zip(residuals, pis, strict=True)) / n_all
    estimate = min(1.0, max(0.0, judged + correction))  # a rate, whatever the sample
    if n < n_all and all(p >= 1 for p in pis):
        return PassRate(estimate, None, None, "ppi", n, n_all, NO_AUDITS)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    half = z * math.sqrt(_smoothed_variance(judge_labelled, residuals, pis, z * z / 2)) / n_all
    return PassRate(
        estimate=estimate,
        low=max(0.0, estimate - half),
        high=min(1.0, estimate + half),
        method="ppi",
        labelled=n,
        n=n_all,
    )


def _smoothed_variance(
    judge: Sequence[float], residuals: Sequence[float], pis: Sequence[float], k: float
) -> float:
    """Poisson-sampling Horvitz-Thompson variance of the correction's total, each cell (same
    pi, same judge label) with its squared residuals smoothed by `k` per 2x2 cell."""
    cells: dict[tuple[float, bool], list[float]] = {}
    for j, r, p in zip(judge, residuals, pis, strict=True):
        cells.setdefault((p, j >= 0.5), []).append(r * r)
    variance = 0.0
    for (p, _), squares in cells.items():
        size = len(squares)
        variance += (1 - p) / p**2 * size * (math.fsum(squares) + k) / (size + 2 * k)
    return variance


@dataclass(frozen=True)
class PairLabels:
    """One paired case for the prediction-powered change in pass rate.

    `judge_*` is each side's label without new reviews (1 passed, 0 not); where a reviewer
    labelled a side, `human_*` holds that label and `pi_*` the probability the side was sent for
    review (the audit rate for an audit, 1 for an escalation, times the share of its run's
    items of the same rubric and kind that reviewers resolved)."""

    judge_baseline: float
    judge_candidate: float
    human_baseline: float | None = None
    human_candidate: float | None = None
    pi_baseline: float | None = None
    pi_candidate: float | None = None
    joint: float | None = None
    """Probability that both sides were sent for review; None: independent draws. The audit
    draw hashes the case and output, so two sides with the same output share it (min of pis)."""


@dataclass(frozen=True)
class Change:
    """A prediction-powered change in pass rate (candidate - baseline) with its interval."""

    estimate: float
    low: float
    high: float
    labelled: int
    """Reviewer labels behind the correction (sides, not pairs)."""
    n: int
    """Paired cases."""


def _residual(human: float | None, judge: float, pi: float | None, side: str) -> float | None:
    if human is None:
        return None
    if pi is None or not 0 < pi <= 1:
        raise ValueError(f"a {side} reviewer label needs an inclusion probability in (0, 1]")
    return human - judge


def ppi_change(pairs: Sequence[PairLabels], level: float = 0.95) -> Change | None:
    """Prediction-powered change in pass rate over the N `pairs`, with a `level` interval.

    The estimate is mean(judge_c - judge_b) plus the Horvitz-Thompson correction
    sum((human_c - judge_c) / pi_c - (human_b - judge_b) / pi_b) / N over the labelled sides;
    its variance the Horvitz-Thompson variance estimator, each pair one unit with its two sides'
    joint probability: sum((1 - pi)/pi^2 r^2) over labelled sides minus
    2 (joint - pi_c pi_b) / (joint pi_c pi_b) r_c r_b over pairs labelled on both sides, over
    N^2. Interval normal, clipped to [-1, 1]. None when no side has a reviewer's label.
    """
    from statistics import NormalDist

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    n = len(pairs)
    judged: list[float] = []
    correction: list[float] = []
    variance: list[float] = []
    labelled = 0
    for p in pairs:
        judged.append(p.judge_candidate - p.judge_baseline)
        rc = _residual(p.human_candidate, p.judge_candidate, p.pi_candidate, "candidate")
        rb = _residual(p.human_baseline, p.judge_baseline, p.pi_baseline, "baseline")
        for r, pi, sign in ((rc, p.pi_candidate, 1.0), (rb, p.pi_baseline, -1.0)):
            if r is not None and pi is not None:
                labelled += 1
                correction.append(sign * r / pi)
                variance.append((1 - pi) / pi**2 * r * r)
        if rc is not None and rb is not None and p.pi_candidate and p.pi_baseline:
            pc, pb = p.pi_candidate, p.pi_baseline
            joint = pc * pb if p.joint is None else p.joint
            variance.append(-2 * (joint - pc * pb) / (joint * pc * pb) * rc * rb)
    if labelled == 0:
        return None
    estimate = (math.fsum(judged) + math.fsum(correction)) / n
    half = NormalDist().inv_cdf(0.5 + level / 2) * math.sqrt(max(0.0, math.fsum(variance))) / n
    estimate = min(1.0, max(-1.0, estimate))
    return Change(estimate, max(-1.0, estimate - half), min(1.0, estimate + half), labelled, n)
