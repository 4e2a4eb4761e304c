"""Combining judges' verdicts into one panel verdict: a pure function."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from .confidence import panel_confidence
from .config import Aggregation
from .verdict import JudgeVerdict, PanelVerdict


def aggregate(
    verdicts: Sequence[JudgeVerdict],
    pass_threshold: int,
    method: Aggregation = "median",
    scale: tuple[int, int] | None = None,
) -> PanelVerdict:
    """Aggregate score (median by default) and majority pass/fail over the valid verdicts.

    A tied vote falls back to the aggregated score against the threshold. The confidence is
    P(the panel's decision is right): see `confidence.panel_confidence`. `scale` is accepted for
    callers that pass it and no longer used.
    """
    valid = [v for v in verdicts if v.score is not None and v.error is None]
    errors = len(verdicts) - len(valid)
    if not valid:
        return PanelVerdict(errors=errors)
    scores = [float(v.score) for v in valid if v.score is not None]
    combine: dict[str, Callable[[list[float]], float]] = {
        "median": statistics.median,
        "mean": statistics.fmean,
        "min": min,
    }
    score = combine[method](scores)
    votes_pass = sum(1 for v in valid if v.passed)
    votes_fail = len(valid) - votes_pass
    passed = votes_pass > votes_fail if votes_pass != votes_fail else score >= pass_threshold
    beliefs = [(v.confidence, v.passed == passed) for v in valid if v.confidence is not None]
    spread = max(scores) - min(scores)
    expected = [
        v.expected_score if v.expected_score is not None else score_of_v
        for v, score_of_v in zip(valid, scores, strict=True)
    ]
    return PanelVerdict(
        score=score,
        passed=passed,
        votes_pass=votes_pass,
        votes_fail=votes_fail,
        errors=errors,
        spread=spread,
        confidence=panel_confidence(beliefs),
        expected_score=statistics.fmean(expected),
    )
