"""Every statistic in one place: agreement among judges and with reviewers, and a threshold.

Pure functions, no I/O:

- `krippendorff_alpha` is the one wrapper of the `krippendorff` library; `judge_alpha` (ordinal,
  judges against each other over a run) and `nominal_alpha` (a judge against reviewers) use it.
- `confusion`, `cohen_kappa`, `alpha_interval` and `agreement` measure how often a judge (or the
  panel) says what reviewers said, with "pass" as the positive class.
- `fit_threshold` chooses the panel-confidence threshold above which the panel may decide cases
  itself, so that agreement with reviewers on those cases is at least a target with probability
  at least 1 - delta (fixed-sequence testing with exact binomial bounds, as in "Trust or
  Escalate", Jung et al. 2024).

numpy, scipy and krippendorff are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .verdict import JudgeVerdict

MIN_DEFINED_SHARE = 0.9
"""Share of bootstrap resamples in which alpha must be defined for an interval to be given."""


# --- agreement among judges ----------------------------------------------------------------


def panel_scores(panel: Sequence[JudgeVerdict]) -> dict[str, int]:
    """A case's scores by judge; an errored or missing verdict is left out."""
    return {v.judge: v.score for v in panel if v.score is not None and v.error is None}


def judge_alpha(panels: Iterable[Mapping[str, int]]) -> float | None:
    """Ordinal Krippendorff's alpha of the judges' scores (`panel_scores`) across cases.

    Rows are judges, columns cases; a judge without a score on a case is a missing value. None
    when alpha is undefined (fewer than two judges or cases with pairable scores, no variation).
    """
    columns = list(panels)
    judges = sorted({judge for scores in columns for judge in scores})
    if len(judges) < 2 or len(columns) < 2:
        return None
    paired = any(len(scores) >= 2 for scores in columns)
    if not paired or len({s for scores in columns for s in scores.values()}) < 2:
        return None  # decided before importing numpy, which a unanimous run never needs
    import numpy as np

    data = np.full((len(judges), len(columns)), np.nan)
    row = {judge: i for i, judge in enumerate(judges)}
    for col, scores in enumerate(columns):
        for judge, score in scores.items():
            data[row[judge], col] = score
    return krippendorff_alpha(data, "ordinal")


# --- agreement with reviewers --------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    """Judge against reviewers on pass/fail, "pass" being the positive class."""

    tp: int
    """Judge pass, reviewers pass."""
    fp: int
    """Judge pass, reviewers fail."""
    fn: int
    """Judge fail, reviewers pass."""
    tn: int
    """Judge fail, reviewers fail."""

    @property
    def n(self) -> int:
        """Cases counted."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float | None:
        """Share of cases where the judge said what reviewers said; None without cases."""
        return (self.tp + self.tn) / self.n if self.n else None


def confusion(predicted: Sequence[bool], actual: Sequence[bool]) -> Confusion:
    """Count judge verdicts (`predicted`, True = pass) against reviewers' (`actual`)."""
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} verdicts but {len(actual)} reviewer decisions")
    pairs = list(zip(predicted, actual, strict=True))
    return Confusion(
        tp=sum(1 for p, a in pairs if p and a),
        fp=sum(1 for p, a in pairs if p and not a),
        fn=sum(1 for p, a in pairs if not p and a),
        tn=sum(1 for p, a in pairs if not p and not a),
    )


def cohen_kappa(counts: Confusion) -> float | None:
    """Cohen's kappa of a 2x2 table: (observed - chance agreement) / (1 - chance agreement).

    Chance agreement comes from each side's own pass rate. None when undefined: no cases, or
    both sides gave one and the same label to every case (chance agreement is 1).
    """
    n = counts.n
    if n == 0:
        return None
    observed = (counts.tp + counts.tn) / n
    judge_pass, human_pass = (counts.tp + counts.fp) / n, (counts.tp + counts.fn) / n
    chance = judge_pass * human_pass + (1 - judge_pass) * (1 - human_pass)
    if math.isclose(chance, 1.0):
        return None
    return (observed - chance) / (1 - chance)


def krippendorff_alpha(
    data: Sequence[Sequence[float]] | NDArray[Any], level: Literal["nominal", "ordinal"]
) -> float | None:
    """Krippendorff's alpha of a raters x units table (NaN = missing), via `krippendorff`.

    The one wrapper of the library. None when alpha is undefined: no pairable values, a single
    value throughout (expected disagreement 0), or a result the library cannot compute.
    """
    import warnings

    import krippendorff
    import numpy as np

    values = np.asarray(data, dtype=float)
    present = values[~np.isnan(values)]
    if present.size == 0 or np.all(present == present[0]):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            alpha = float(krippendorff.alpha(reliability_data=values, level_of_measurement=level))
    except (ValueError, ZeroDivisionError):
        return None
    return None if math.isnan(alpha) else alpha


def nominal_alpha(predicted: Sequence[bool], actual: Sequence[bool]) -> float | None:
    """Krippendorff's alpha (nominal) of two raters on the same cases.

    None when undefined: fewer than two cases, or a single value across both raters.
    """
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} verdicts but {len(actual)} reviewer decisions")
    if len(predicted) < 2:
        return None
    return krippendorff_alpha([list(map(float, predicted)), list(map(float, actual))], "nominal")


def alpha_interval(
    predicted: Sequence[bool],
    actual: Sequence[bool],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `nominal_alpha`, resampling cases (seeded).

    Resamples in which alpha is undefined (every label the same) are left out; when more than
    `1 - MIN_DEFINED_SHARE` of them are, the data cannot support an interval and None is
    returned. None too for fewer than two cases or `resamples` < 1.
    """
    import numpy as np

    n = len(predicted)
    if n != len(actual):
        raise ValueError(f"{n} verdicts but {len(actual)} reviewer decisions")
    if n < 2 or resamples < 1:
        return None
    data = np.array([predicted, actual], dtype=float)
    rng = np.random.default_rng(seed)
    estimates = []
    for rows in rng.integers(0, n, size=(resamples, n)):
        alpha = krippendorff_alpha(data[:, rows], "nominal")
        if alpha is not None:
            estimates.append(alpha)
    if len(estimates) < MIN_DEFINED_SHARE * resamples:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Agreement:
    """How one judge (or the panel) agrees with reviewers on the cases both decided."""

    counts: Confusion
    """Pass/fail confusion counts, judge against reviewers."""
    kappa: float | None
    """Cohen's kappa; None when undefined."""
    alpha: float | None
    """Krippendorff's alpha (nominal); None when undefined."""
    alpha_ci: tuple[float, float] | None
    """Bootstrap interval of alpha; None when the data cannot support one."""

    @property
    def n(self) -> int:
        """Cases compared."""
        return self.counts.n

    @property
    def accuracy(self) -> float | None:
        """Share of cases where the judge said what reviewers said."""
        return self.counts.accuracy


def agreement(
    predicted: Sequence[bool],
    actual: Sequence[bool],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """Confusion counts, accuracy, Cohen's kappa and Krippendorff's alpha with its interval."""
    counts = confusion(predicted, actual)
    return Agreement(
        counts=counts,
        kappa=cohen_kappa(counts),
        alpha=nominal_alpha(predicted, actual),
        alpha_ci=alpha_interval(predicted, actual, resamples=resamples, level=level, seed=seed),
    )


# --- the threshold with a guarantee --------------------------------------------------------


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


@dataclass(frozen=True)
class Fit:
    """The panel-confidence threshold chosen for one rubric, and what it buys."""

    threshold: float
    """Decide cases whose panel confidence is at least this; 1.0 when no threshold qualifies."""
    passed: bool
    """Whether a threshold qualified (agreement certified at `target` with 1 - `delta`)."""
    coverage: float
    """Share of the calibration cases with confidence >= threshold (decided by the panel)."""
    n: int
    """Calibration cases (with a panel confidence and a reviewer decision)."""
    n_selected: int
    """Calibration cases with confidence >= threshold."""
    agreement: float | None
    """Observed agreement with reviewers among the selected cases; None when none are."""
    lower_bound: float | None
    """Clopper-Pearson lower bound of that agreement at level 1 - delta; None when none are."""
    target: float
    """Agreement required on the cases the panel decides."""
    delta: float
    """Allowed probability that the chosen threshold misses the target."""
    tested: int
    """Candidate thresholds tested (0: too few cases could ever certify the target)."""


def min_cases(target: float, delta: float) -> int:
    """The fewest cases that can certify `target` at level 1 - `delta` (if all of them agree)."""
    n = max(1, math.ceil(math.log(delta) / math.log(target)))
    while delta ** (1 / n) < target:  # floating-point edge of the ceiling
        n += 1
    return n


def fit_threshold(
    confidences: Sequence[float], agreements: Sequence[bool], target: float, delta: float
) -> Fit:
    """The lowest panel-confidence threshold whose selective agreement is certified.

    Fixed-sequence testing (Bauer 1991; "Learn then Test", Angelopoulos et al. 2021; "Trust or
    Escalate", Jung et al. 2024). The candidates are the distinct confidences, from highest
    (most conservative) to lowest. At each candidate t, H0 "agreement among cases with
    confidence >= t is below `target`" is rejected when the Clopper-Pearson lower bound at level
    1 - `delta` is at least `target`; the first candidate that fails stops the sequence, and the
    threshold is the last candidate that passed. Every candidate is tested at the full level
    `delta`, in an order that depends on the confidences alone (never on agreement), so the
    probability that the chosen threshold's true agreement is below `target` is at most `delta`
    -- provided the calibration cases are a random sample of the cases the threshold will be
    used on. `tests/test_calibration.py` checks this by simulation.

    Candidates selecting fewer cases than could ever certify `target` (even if all of them
    agreed, `delta ** (1 / n) < target`) are skipped instead of stopping the sequence: whether a
    candidate is skipped depends on the confidences only, never on agreement.

    When no candidate qualifies, the threshold is 1.0 (escalate everything but confidence 1.0)
    and `passed` is False.
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
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidences must be numbers from 0 to 1")
    n = int(conf.size)

    def result(threshold: float, passed: bool, tested: int) -> Fit:
        selected = conf >= threshold
        n_selected = int(selected.sum())
        agreed = int(agree[selected].sum())
        return Fit(
            threshold=threshold,
            passed=passed,
            coverage=n_selected / n if n else 0.0,
            n=n,
            n_selected=n_selected,
            agreement=agreed / n_selected if n_selected else None,
            lower_bound=clopper_pearson_lower(agreed, n_selected, delta) if n_selected else None,
            target=target,
            delta=delta,
            tested=tested,
        )

    if n == 0:
        return result(1.0, False, 0)
    order = np.argsort(-conf, kind="stable")
    ranked = conf[order]
    # Each distinct confidence, highest first, selects everything down to its last tie.
    last_of_ties = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    n_selected = last_of_ties + 1
    agreed = np.cumsum(agree[order])[last_of_ties]
    testable = n_selected >= min_cases(target, delta)  # others could not certify the target
    certified = _lower_bounds(agreed[testable], n_selected[testable], delta) >= target
    failures = np.flatnonzero(~certified)
    stop = int(failures[0]) if failures.size else int(certified.size)
    tested = min(stop + 1, int(certified.size))
    if stop == 0:
        return result(1.0, False, tested)
    return result(float(ranked[last_of_ties[testable]][stop - 1]), True, tested)


def _lower_bounds(agreed: NDArray[np.int_], n: NDArray[np.int_], delta: float) -> NDArray[Any]:
    """`clopper_pearson_lower` of many counts at once."""
    import numpy as np
    from scipy.stats import beta

    bounds = np.zeros(agreed.shape, dtype=float)
    some = agreed > 0
    bounds[some] = beta.ppf(delta, agreed[some], n[some] - agreed[some] + 1)
    return bounds


# --- paired comparison of two runs (the gate) ----------------------------------------------


def mcnemar_exact(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against Binomial(wins + losses, 1/2).

    `wins` are pairs the candidate passed and the baseline did not, `losses` the reverse; ties
    carry no information about the difference. 1.0 when there is no discordant pair.
    """
    from scipy.stats import binomtest

    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be counts, got {wins} and {losses}")
    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def paired_bootstrap(
    wins: int, losses: int, ties: int, resamples: int = 4000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the change in pass rate (candidate - baseline) over paired cases.

    Resampling n pairs with replacement only changes how many are wins, losses and ties, so
    each resample is one multinomial draw of the three counts (the same distribution as drawing
    pair indices, far cheaper); a seeded `numpy.random.Generator` makes it repeatable.
    """
    import numpy as np

    n = wins + losses + ties
    if n == 0:
        raise ValueError("no paired cases to resample")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [wins / n, losses / n, ties / n], size=resamples)
    diffs = (draws[:, 0] - draws[:, 1]) / n
    tail = (1 - level) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return float(low), float(high)


def paired_sample_size(
    difference: float, discordant: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Pairs needed for a two-sided McNemar test at `alpha` to detect a change in pass rate of
    `difference` with probability `power`, when a share `discordant` of pairs disagree.

    Connor (1987), "Sample size for testing differences in proportions for the paired-sample
    design", Biometrics 43: n = (z_{a/2} sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2. The discordant
    share is raised to at least |d| (a change of d needs that many discordant pairs).
    """
    from scipy.stats import norm

    d = abs(difference)
    if not 0 < d <= 1:
        raise ValueError(f"difference must be a nonzero change in pass rate, got {difference}")
    psi = min(1.0, max(discordant, d))
    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    root = float(z_a) * math.sqrt(psi) + float(z_b) * math.sqrt(max(psi - d * d, 0.0))
    return math.ceil(root**2 / d**2)
