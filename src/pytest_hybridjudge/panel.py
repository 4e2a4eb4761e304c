"""Combining judges into one panel verdict, and deciding a case's outcome: pure functions."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from .config import Aggregation, EscalationSpec
from .verdict import JudgeVerdict, Outcome, PanelVerdict, VerifierResult


def aggregate(
    verdicts: Sequence[JudgeVerdict], pass_threshold: int, method: Aggregation = "median"
) -> PanelVerdict:
    """Aggregate score (median by default) and majority pass/fail over the valid verdicts.

    A tied vote falls back to the aggregated score against the threshold.
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
    confidences = [v.confidence for v in valid if v.confidence is not None]
    return PanelVerdict(
        score=score,
        passed=passed,
        votes_pass=votes_pass,
        votes_fail=votes_fail,
        errors=errors,
        spread=max(scores) - min(scores),
        confidence=statistics.fmean(confidences) if confidences else None,
    )


def escalation_reasons(panel: PanelVerdict, policy: EscalationSpec) -> list[str]:
    """Why the panel cannot decide this case on its own (empty when it can)."""
    reasons = []
    if panel.errors and policy.on_error:
        reasons.append(f"{panel.errors} judge(s) returned no valid verdict")
    if panel.passed is None:
        reasons.append("no judge returned a verdict")
    if policy.on_split and panel.votes_pass and panel.votes_fail:
        reasons.append(f"judges split {panel.votes_pass} pass / {panel.votes_fail} fail")
    if (
        panel.confidence is not None
        and policy.min_confidence > 0
        and panel.confidence < policy.min_confidence
    ):
        reasons.append(
            f"panel confidence {panel.confidence:.2f} below min_confidence {policy.min_confidence}"
        )
    return reasons


def decide(
    verifiers: Sequence[VerifierResult],
    panel: PanelVerdict | None,
    policy: EscalationSpec,
) -> tuple[Outcome, list[str]]:
    """The case's outcome and its reasons, from verifier results and the panel."""
    failed = [v for v in verifiers if not v.passed]
    if failed:
        return "failed", [f"verifier {v.name} failed: {v.detail}" for v in failed]
    if panel is None:
        if not verifiers:
            return "escalated", [
                "nothing to grade with: configure `judges` or give the case `verify`"
            ]
        return "passed", [f"verifier {v.name} passed" for v in verifiers]
    reasons = escalation_reasons(panel, policy)
    if reasons:
        return "escalated", reasons
    outcome: Outcome = "passed" if panel.passed else "failed"
    return outcome, [f"panel {panel.votes_pass} pass / {panel.votes_fail} fail"]
