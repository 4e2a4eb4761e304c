"""Inter-judge agreement over a run: ordinal Krippendorff's alpha via the `krippendorff` library."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .verdict import JudgeVerdict


def judge_alpha(panels: Iterable[Sequence[JudgeVerdict]]) -> float | None:
    """Ordinal Krippendorff's alpha of the judges' scores across cases.

    Rows are judges, columns cases; a missing or errored verdict is a missing value. None when
    alpha is undefined (fewer than two judges or cases with pairable scores, or no variation).
    """
    import krippendorff
    import numpy as np

    columns = [list(p) for p in panels]
    judges = sorted({v.judge for panel in columns for v in panel})
    if len(judges) < 2 or len(columns) < 2:
        return None
    data = np.full((len(judges), len(columns)), np.nan)
    for col, panel in enumerate(columns):
        for verdict in panel:
            if verdict.score is not None and verdict.error is None:
                data[judges.index(verdict.judge), col] = verdict.score
    paired = np.sum(~np.isnan(data), axis=0) >= 2
    values = data[~np.isnan(data)]
    if paired.sum() < 1 or len(set(values.tolist())) < 2:
        return None
    try:
        alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))
    except (ValueError, ZeroDivisionError):
        return None
    return None if math.isnan(alpha) else alpha
