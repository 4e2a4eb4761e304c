"""The panel-confidence threshold with a guarantee, fitted on a weighted sample. Pure functions.

`fit_threshold` chooses the threshold above which the panel may decide cases itself, so that
agreement with reviewers on those cases is at least a target with probability at least
1 - delta (fixed-sequence testing, as in "Trust or Escalate", Jung et al. 2024). Its sample is
weighted by inverse inclusion probability, because reviewers see cases chosen by the pipeline:
a 5% audit of confident cases stands for 20 cases each. Re-exported from `stats`.

numpy and scipy are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def clopper_pearson_lower(agreed: int, n: int, delta: float) -> float:
    """Exact one-sided lower confidence bound, at level 1 - delta, of a binomial proportion.

    The `delta` quantile of Beta(agreed, n - agreed + 1); 0 when nothing agreed (or n is 0).
    """
    from scipy.stats import beta

    if not 0 <= agreed <= n:
        raise ValueError(f"agreed must be between 0 and n ({n}), got {agreed}")
    if agreed == 0:
        return 0.0
    return float(beta.ppf(delta, agreed, n - agreed + 1))


def effective_sample_size(weights: Sequence[float]) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2: n itself when the weights are equal."""
    total = sum(weights)
    squares = sum(w * w for w in weights)
    return total * total / squares if squares else 0.0


def weighted_lower_bound(
    agreements: Sequence[bool], weights: Sequence[float], delta: float
) -> float:
    """Lower confidence bound (level 1 - delta) of a weighted agreement rate.

    Clopper-Pearson on the Kish effective sample size n_eff and the weighted rate p
    (Korn & Graubard 1998): the `delta` quantile of Beta(p n_eff, (1 - p) n_eff + 1). With
    equal weights (one audit rate) it is the exact Clopper-Pearson bound.
    """
    w = [float(x) for x in weights]
    if len(w) != len(agreements):
        raise ValueError(f"{len(agreements)} agreements but {len(w)} weights")
    if not w:
        return 0.0
    rate = sum(x for x, a in zip(w, agreements, strict=True) if a) / sum(w)
    return float(_lower_bounds(rate, effective_sample_size(w), delta))


def _lower_bounds(rate: Any, n_eff: Any, delta: float) -> Any:
    """`weighted_lower_bound` from rates and effective sizes (arrays or numbers)."""
    import numpy as np
    from scipy.stats import beta

    rate, n_eff = np.asarray(rate, dtype=float), np.asarray(n_eff, dtype=float)
    agreed = rate * n_eff
    some = agreed > 1e-12
    safe_a = np.where(some, agreed, 1.0)
    safe_b = np.maximum(n_eff - agreed, 0.0) + 1.0
    return np.where(some, beta.ppf(delta, safe_a, safe_b), 0.0)


def min_cases(target: float, delta: float) -> int:
    """The fewest cases that can certify `target` at level 1 - `delta` (if all of them agree)."""
    n = max(1, math.ceil(math.log(delta) / math.log(target)))
    while delta ** (1 / n) < target:  # floating-point edge of the ceiling
        n += 1
    return n


def audits_needed(target: float, delta: float, agreement: float = 1.0) -> int | None:
    """Cases needed to certify `target` at 1 - `delta` when their agreement rate is
    `agreement` (1.0: the bare minimum, `min_cases`); None when `agreement` <= `target`,
    which no number of cases can certify."""
    if agreement <= target:
        return None
    if agreement >= 1.0:
        return min_cases(target, delta)

    def certifies(n: int) -> bool:
        return bool(_lower_bounds(agreement, n, delta) >= target)

    high = min_cases(target, delta)
    while not certifies(high):
        high *= 2
        if high > 10**9:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if certifies(mid) else (mid, high)
    return high


@dataclass(frozen=True)
class Fit:
    """The panel-confidence threshold chosen for one rubric, and what it buys."""

    threshold: float | None
    """Decide cases whose panel confidence is at least this; None when no threshold is
    certified: every case of the rubric is escalated."""
    passed: bool
    """Whether a threshold qualified (agreement certified at `target` with 1 - `delta`)."""
    coverage: float
    """Estimated share of the sampled population with confidence >= threshold (weighted)."""
    n: int
    """Calibration cases (with a panel confidence, a reviewer decision and a weight)."""
    n_selected: int
    """Calibration cases with confidence >= threshold."""
    agreement: float | None
    """Weighted agreement with reviewers among the selected cases; None when none are."""
    lower_bound: float | None
    """Its lower confidence bound at level 1 - delta; None when none are selected."""
    target: float
    """Agreement required on the cases the panel decides."""
    delta: float
    """Allowed probability that the chosen threshold misses the target."""
    tested: int
    """Candidate thresholds tested (0: too few cases could ever certify the target)."""
    effective_n: float = 0.0
    """Kish effective sample size of all calibration cases (n when the weights are equal)."""
    needed: int | None = None
    """When nothing is certified: more cases (of the same weight) needed to certify the
    target at the agreement seen among the most confident cases; None when that agreement is
    at or below the target, so more cases of the same kind would not help."""


def fit_threshold(
    confidences: Sequence[float],
    agreements: Sequence[bool],
    target: float,
    delta: float,
    weights: Sequence[float] | None = None,
) -> Fit:
    """The lowest panel-confidence threshold whose selective agreement is certified.

    Fixed-sequence testing (Bauer 1991; "Learn then Test", Angelopoulos et al. 2021; "Trust or
    Escalate", Jung et al. 2024). The candidates are the distinct confidences, from highest
    (most conservative) to lowest. At each candidate t, H0 "agreement among cases with
    confidence >= t is below `target`" is rejected when the lower confidence bound of the
    weighted agreement at level 1 - `delta` is at least `target`; the first candidate that fails
    stops the sequence, and the threshold is the last candidate that passed. Every candidate is
    tested at the full level `delta`, in an order that depends on the confidences alone, so the
    probability that the chosen threshold's true agreement is below `target` is at most `delta`
    -- provided the cases are a sample of known inclusion probability of the cases the
    threshold will be used on.

    `weights` are inverse inclusion probabilities (1 / audit_rate for an audit); the bound is
    Clopper-Pearson on the Kish effective sample size (`weighted_lower_bound`), exact when the
    weights are equal. Candidates whose effective size could not certify `target` even if all
    agreed are skipped: that depends on confidences and weights only, never on agreement.
    `benchmarks/calibration.py` shows the guarantee by simulation of the whole pipeline.

    When no candidate qualifies, the threshold is None (escalate everything), `passed` is
    False and `needed` says how many more cases would be needed.
    """
    import numpy as np

    if len(confidences) != len(agreements):
        raise ValueError(f"{len(confidences)} confidences but {len(agreements)} agreements")
    if not 0 < target < 1:
        raise ValueError(f"target must be between 0 and 1 (exclusive), got {target}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be between 0 and 1 (exclusive), got {delta}")
    conf = np.asarray(confidences, dtype=float)
    agree = np.asarray(agreements, dtype=bool)
    w = np.ones(conf.size) if weights is None else np.asarray(weights, dtype=float)
    if w.size != conf.size:
        raise ValueError(f"{conf.size} confidences but {w.size} weights")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidences must be numbers from 0 to 1")
    if w.size and (not np.all(np.isfinite(w)) or w.min() <= 0):
        raise ValueError("weights must be positive numbers (1 / inclusion probability)")
    n = int(conf.size)
    total = float(w.sum())
    n_eff = total * total / float((w * w).sum()) if n else 0.0
    need_min = min_cases(target, delta)

    def result(threshold: float | None, tested: int, needed: int | None = None) -> Fit:
        selected = conf >= threshold if threshold is not None else np.zeros(n, dtype=bool)
        n_selected = int(selected.sum())
        ws = w[selected]
        rate = float(ws[agree[selected]].sum() / ws.sum()) if n_selected else None
        return Fit(
            threshold=threshold,
            passed=threshold is not None,
            coverage=float(ws.sum() / total) if n_selected else 0.0,
            n=n,
            n_selected=n_selected,
            agreement=rate,
            lower_bound=float(_lower_bounds(rate, effective_sample_size(ws.tolist()), delta))
            if rate is not None
            else None,
            target=target,
            delta=delta,
            tested=tested,
            effective_n=n_eff,
            needed=needed,
        )

    if n == 0:
        return result(None, 0, need_min)
    order = np.argsort(-conf, kind="stable")
    ranked, w_ranked = conf[order], w[order]
    # Each distinct confidence, highest first, selects everything down to its last tie.
    last_of_ties = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    w_sum = np.cumsum(w_ranked)[last_of_ties]
    w_sq = np.cumsum(w_ranked * w_ranked)[last_of_ties]
    w_agree = np.cumsum(w_ranked * agree[order])[last_of_ties]
    ess = w_sum * w_sum / w_sq
    testable = ess >= need_min - 1e-9  # others could not certify the target
    rates = w_agree[testable] / w_sum[testable]
    certified = _lower_bounds(rates, ess[testable], delta) >= target
    failures = np.flatnonzero(~certified)
    stop = int(failures[0]) if failures.size else int(certified.size)
    tested = min(stop + 1, int(certified.size))
    if stop == 0:
        return result(None, tested, _more_needed(rates, ess[testable], n_eff, target, delta))
    return result(float(ranked[last_of_ties[testable]][stop - 1]), tested)


def _more_needed(
    rates: NDArray[np.float64], ess: NDArray[np.float64], n_eff: float, target: float, delta: float
) -> int | None:
    """More effective cases needed, at the agreement of the first tested candidate (or of all
    cases when none could be tested)."""
    if rates.size:
        needed = audits_needed(target, delta, float(rates[0]))
        return None if needed is None else max(1, math.ceil(needed - float(ess[0])))
    return max(1, math.ceil(min_cases(target, delta) - n_eff))
