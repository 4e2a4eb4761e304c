"""Deciding a case: pass, fail, or escalate to people, and to which tier. Pure functions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .config import TIERS, EscalationSpec, ReviewSpec, Tier
from .verdict import Outcome, PanelVerdict, VerifierResult


@dataclass(frozen=True)
class CaseContext:
    """What the escalation rules need to know about the case besides the panel."""

    pass_threshold: int = 0
    always_review: bool = False
    audit: bool = False


def escalation_reasons(
    panel: PanelVerdict, policy: EscalationSpec, context: CaseContext | None = None
) -> list[str]:
    """Every rule that sends this case to people (empty when the panel decides it)."""
    context = context or CaseContext()
    reasons = []
    if panel.errors and policy.on_error:
        reasons.append(f"{panel.errors} judge(s) returned no valid verdict")
    if panel.passed is None:
        reasons.append("no judge returned a verdict")
        return reasons
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
    if policy.max_spread is not None and panel.spread > policy.max_spread:
        reasons.append(f"score spread {panel.spread:g} above max_spread {policy.max_spread:g}")
    score = panel.expected_score if panel.expected_score is not None else panel.score
    near = score is not None and abs(score - context.pass_threshold) < policy.borderline
    if policy.borderline > 0 and near:
        reasons.append(
            f"score {score:.2f} within borderline {policy.borderline:g} of pass threshold "
            f"{context.pass_threshold}"
        )
    if context.always_review:
        reasons.append("always_review")
    if not reasons and context.audit:
        reasons.append(f"audit sample (audit_rate {policy.audit_rate:g})")
    return reasons


def decide(
    verifiers: Sequence[VerifierResult],
    panel: PanelVerdict | None,
    policy: EscalationSpec,
    context: CaseContext | None = None,
) -> tuple[Outcome, list[str]]:
    """The case's outcome and its reasons, from verifier results and the panel."""
    failed = [v for v in verifiers if not v.passed]
    if failed:
        return "failed", [f"verifier {v.name} failed: {v.detail}" for v in failed]
    if panel is None:
        if not verifiers:
            return "escalated", ["nothing to grade with: configure `judges` or give `verify`"]
        return "passed", [f"verifier {v.name} passed" for v in verifiers]
    reasons = escalation_reasons(panel, policy, context)
    if reasons:
        return "escalated", reasons
    outcome: Outcome = "passed" if panel.passed else "failed"
    return outcome, [f"panel {panel.votes_pass} pass / {panel.votes_fail} fail"]


def audit_pick(seed: int, rate: float, case_id: str, output: str) -> bool:
    """Seeded, order-independent sampling: the same case and output are picked on every run."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{seed}\x1f{case_id}\x1f{output}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def is_always_review(
    tags: Sequence[str], rubric: str, rubric_flag: bool, names: Sequence[str]
) -> bool:
    """A case is always reviewed if its rubric says so or a tag or its rubric is listed."""
    return rubric_flag or rubric in names or any(tag in names for tag in tags)


def choose_tier(
    tags: Sequence[str], rubric: str, rubric_tier: Tier | None, review: ReviewSpec
) -> Tier:
    """Tier from the case's tags (a tier's own name or a `review.tiers` rule), then the rubric's
    front matter, then a rule for the rubric's name, then the default. Among several tags the
    most expensive tier wins: a case that needs an expert needs one whatever else it is."""
    from_tags: list[Tier] = [t for t in TIERS if t in tags]
    from_tags += [review.tiers[t] for t in tags if t in review.tiers]
    if from_tags:
        return max(from_tags, key=lambda t: (review.rates.get(t, 0), TIERS.index(t)))
    if rubric_tier is not None:
        return rubric_tier
    return review.tiers.get(rubric, review.default_tier)


def review_minutes(tier: Tier, rubric_minutes: float | None, review: ReviewSpec) -> float:
    """A rubric's own estimate, else the tier's."""
    return rubric_minutes if rubric_minutes is not None else review.minutes.get(tier, 2.0)
