"""Deciding a case: pass, fail, or escalate to people, and to which tier. Pure functions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

from .config import EscalationSpec, ReviewSpec, Tier
from .verdict import Outcome, PanelVerdict, PolicyInForce, VerifierResult
from .words import counted

if TYPE_CHECKING:
    from .config import HybridJudgeConfig
    from .gold import GoldCase
    from .rubric import Rubric


@dataclass(frozen=True)
class Routing:
    """Everything the rules need besides the panel, decided once per case: the policy in force
    (with the rubric's calibrated min_confidence), the tier that would review it, and its flags."""

    policy: EscalationSpec = field(default_factory=EscalationSpec)
    pass_threshold: int = 0
    tier: Tier | None = None
    review_minutes: float | None = None
    always_review: bool = False
    audit: bool = False
    escalate_all: bool = False
    """Calibration certified no threshold for the rubric: the panel decides none of its cases."""


class Decision(NamedTuple):
    """A case's outcome, the reasons shown to people, and whether it was drawn as an audit."""

    outcome: Outcome
    reasons: list[str]
    audit: bool = False


def policy_for(
    rubric: str, policy: EscalationSpec, calibration: Mapping[str, float | None]
) -> EscalationSpec:
    """The escalation policy, with the rubric's calibrated min_confidence when there is one
    (a rubric calibrated to None keeps the configured one; `route` escalates all its cases)."""
    value = calibration.get(rubric)
    if value is not None:
        return policy.model_copy(update={"min_confidence": value})
    return policy


ESCALATE_ALL_REASON = "no calibrated threshold certified for this rubric: people decide every case"


def policy_in_force(routing: Routing) -> PolicyInForce:
    """What `CaseResult.policy` records of the routing: min_confidence, audit rate, seed."""
    policy = routing.policy
    return PolicyInForce(
        min_confidence=None if routing.escalate_all else policy.min_confidence,
        audit_rate=policy.audit_rate,
        seed=policy.seed,
    )


def inclusion_probability(panel: PanelVerdict, routing: Routing) -> float | None:
    """The probability that this case went to people by rules that look at nothing but its
    panel confidence and the seeded audit draw: 1 when it was escalated for low confidence
    only (or because the rubric escalates everything), the audit rate when the panel was
    confident. None when another rule (errors, split, spread, borderline, always_review) sent
    it: such cases are not a known-probability sample of those a threshold lets the panel
    decide, and calibration reports them without fitting on them."""
    others = escalation_reasons(
        panel,
        replace(
            routing,
            policy=routing.policy.model_copy(update={"min_confidence": 0.0}),
            escalate_all=False,
        ),
    )
    if others or panel.passed is None:
        return None
    if escalation_reasons(panel, routing):
        return 1.0
    return routing.policy.audit_rate


def no_verdict_reason(errors: int, kind: str = "verdict") -> str:
    """`1 judge returned no valid verdict`, `2 judges returned no valid pairwise verdict`."""
    return f"{counted(errors, 'judge')} returned no valid {kind}"


_REASON_GROUPS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), group)
    for pattern, group in (
        (
            r"\d+ judges? returned no valid (pairwise )?verdict$",
            r"a judge returned no valid \1verdict",
        ),
        (r"no valid pairwise verdict from .*$", "a judge returned no valid pairwise verdict"),
        (r"judges split \d+ pass / \d+ fail$", "judges split on pass or fail"),
        (r"judges split \d+ candidate / \d+ baseline$", "judges split on which output is better"),
        (r"panel confidence \S+ below (min_confidence \S+)$", r"panel confidence below \1"),
        (r"score spread \S+ above (max_spread \S+)$", r"score spread above \1"),
        (r"score \S+ (within borderline \S+ of pass threshold \S+)$", r"score \1"),
        (r"(reviewers disagree) \(.*\)$", r"\1"),
        (r"(position-inconsistent) \(.*\)$", r"\1 (a judge's preference flipped with the order)"),
    )
)


def reason_group(reason: str) -> str:
    """The rule behind one of a case's reasons, worded for a summary that counts cases per rule:
    `judges split 2 pass / 1 fail` and `judges split 1 pass / 2 fail` are both
    `judges split on pass or fail`; a threshold that names the rule is kept."""
    for pattern, group in _REASON_GROUPS:
        match = pattern.match(reason)
        if match:
            return match.expand(group)
    return reason


def escalation_reasons(panel: PanelVerdict, routing: Routing) -> list[str]:
    """Every rule that sends this case to people (empty when the panel decides it)."""
    policy = routing.policy
    reasons = []
    if panel.errors and policy.on_error:
        reasons.append(no_verdict_reason(panel.errors))
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
    near = score is not None and abs(score - routing.pass_threshold) < policy.borderline
    if policy.borderline > 0 and near:
        reasons.append(
            f"score {score:.2f} within borderline {policy.borderline:g} of pass threshold "
            f"{routing.pass_threshold}"
        )
    if routing.always_review:
        reasons.append("always_review")
    if routing.escalate_all:
        reasons.append(ESCALATE_ALL_REASON)
    return reasons


def decide(
    verifiers: Sequence[VerifierResult],
    panel: PanelVerdict | None,
    routing: Routing | None = None,
) -> Decision:
    """The case's outcome and its reasons, from verifier results and the panel."""
    routing = routing or Routing()
    failed = [v for v in verifiers if not v.passed]
    if failed:
        return Decision("failed", [f"verifier {v.name} failed: {v.detail}" for v in failed])
    if panel is None:
        if not verifiers:
            return Decision(
                "escalated", ["nothing to grade with: configure `judges` or give `verify`"]
            )
        return Decision("passed", [f"verifier {v.name} passed" for v in verifiers])
    reasons = escalation_reasons(panel, routing)
    if reasons:
        return Decision("escalated", reasons)
    outcome: Outcome = "passed" if panel.passed else "failed"
    decided = [f"panel {panel.votes_pass} pass / {panel.votes_fail} fail"]
    if routing.audit:  # also sent to people, to check the judges: the outcome stays the panel's
        return Decision(outcome, [*decided, audit_reason(routing.policy.audit_rate)], audit=True)
    return Decision(outcome, decided)


def audit_reason(rate: float) -> str:
    """Why a confident case is also on the review manifest."""
    share = f"{rate * 100:g}%"
    return f"drawn for audit: {share} of confident cases also go to people, to check the judges"


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
    """Tier from the case's tags (a tier's own name, built-in or configured, or a `review.tiers`
    rule), then the rubric's front matter, then a rule for the rubric's name, then the default.
    Among several tags the most expensive tier wins: a case that needs an expert needs one
    whatever else it is (then the higher rank, then the later defined)."""
    names = review.tier_names
    from_tags: list[Tier] = [t for t in names if t in tags]
    from_tags += [review.tiers[t] for t in tags if t in review.tiers]
    if from_tags:
        return max(from_tags, key=lambda t: (review.rate(t), review.rank(t), names.index(t)))
    if rubric_tier is not None:
        return rubric_tier
    return review.tiers.get(rubric, review.default_tier)


def review_minutes(tier: Tier, rubric_minutes: float | None, review: ReviewSpec) -> float:
    """A rubric's own estimate, else the tier's."""
    return rubric_minutes if rubric_minutes is not None else review.minutes_for(tier)


def route(
    case: GoldCase,
    rubric: Rubric,
    output: str,
    settings: HybridJudgeConfig,
    calibration: Mapping[str, float | None],
) -> Routing:
    """How one output under `rubric` is routed: policy, tier, minutes, always-review, audit."""
    review = settings.review
    tier = choose_tier(case.tags, rubric.name, rubric.meta.tier, review)
    # the rubric's estimate is for its own tier; a red-team review takes what red team takes
    own = rubric.meta.review_minutes if rubric.meta.tier in (None, tier) else None
    policy = policy_for(rubric.name, settings.escalation, calibration)
    return Routing(
        policy=policy,
        pass_threshold=rubric.meta.pass_threshold,
        tier=tier,
        review_minutes=review_minutes(tier, own, review),
        always_review=is_always_review(
            case.tags, rubric.name, rubric.meta.always_review, policy.always_review
        ),
        audit=audit_pick(policy.seed, policy.audit_rate, case.id, output),
        escalate_all=rubric.name in calibration and calibration[rubric.name] is None,
    )
