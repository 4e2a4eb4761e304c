"""Inter-judge agreement over a run: ordinal Krippendorff's alpha via the `krippendorff` library."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from .verdict import JudgeVerdict


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
    import krippendorff
    import numpy as np

    data = np.full((len(judges), len(columns)), np.nan)
    row = {judge: i for i, judge in enumerate(judges)}
    for col, scores in enumerate(columns):
        for judge, score in scores.items():
            data[row[judge], col] = score
    try:
        alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))
    except (ValueError, ZeroDivisionError):
        return None
    return None if math.isnan(alpha) else alpha
