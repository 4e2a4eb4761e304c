"""Every statistic in one place: agreement among judges and with reviewers, and a threshold.

Pure functions, no I/O:

- `krippendorff_alpha` is the one wrapper of the `krippendorff` library; `judge_alpha` (ordinal,
  judges against each other over a run) and `nominal_alpha` (a judge against reviewers) use it.
- `confusion`, `cohen_kappa`, `alpha_interval` and `agreement` measure how often a judge (or the
  panel) says what reviewers said, with "pass" as the positive class.
- `fit_threshold` (in `selective`, re-exported here) chooses the panel-confidence threshold
  above which the panel may decide cases itself, so that agreement with reviewers on those
  cases is at least a target with probability at least 1 - delta, from a weighted sample.
- `ppi_mean` (in `ppi`, re-exported here) is the prediction-powered pass rate with its interval;
  `ppi_change` the prediction-powered change in pass rate between paired runs.
- `mcnemar_exact`, `paired_bootstrap` and `paired_sample_size` (in `paired`, re-exported here)
  compare two runs case by case, for the model-upgrade gate.

numpy, scipy and krippendorff are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
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


# --- the threshold with a guarantee, and pass rates with intervals --------------------------

from .paired import mcnemar_exact, paired_bootstrap, paired_sample_size  # noqa: E402
from .ppi import Change, PairLabels, PassRate, ppi_change, ppi_mean  # noqa: E402
from .selective import (  # noqa: E402
    Fit,
    audits_needed,
    clopper_pearson_lower,
    effective_sample_size,
    fit_threshold,
    min_cases,
    weighted_lower_bound,
)

__all__ = [
    "Agreement",
    "Change",
    "Confusion",
    "Fit",
    "PairLabels",
    "PassRate",
    "agreement",
    "alpha_interval",
    "audits_needed",
    "clopper_pearson_lower",
    "cohen_kappa",
    "confusion",
    "effective_sample_size",
    "fit_threshold",
    "judge_alpha",
    "krippendorff_alpha",
    "mcnemar_exact",
    "min_cases",
    "nominal_alpha",
    "paired_bootstrap",
    "paired_sample_size",
    "panel_scores",
    "ppi_change",
    "ppi_mean",
    "weighted_lower_bound",
]
