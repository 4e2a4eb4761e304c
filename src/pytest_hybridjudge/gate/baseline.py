"""The run a gate compares with: its cases as the run store read them, paired by id.

A case is reduced to what a comparison needs (`CaseSide`): passed, not passed (failed, or
escalated and not resolved by a reviewer), a provider outage, or skipped for another reason.
An escalated case nobody has resolved (or whose reviewers disagree) on either side is left out
of the comparison like an outage (`Pairing.unresolved`): it is neither a win nor a loss.
A reviewer's verdict counts as the case's outcome: a by-review record already carries it, and
`with_resolutions` applies the reviewers' file as it is now to records written before. An
audit sample is a confident decision drawn at random for review, not a doubt: it counts as what
the confident panel decided, so the audit rate does not move the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InputError
from ..verdict import result_review_probability

if TYPE_CHECKING:
    from ..review.decisions import ItemDecision
    from ..verdict import CaseResult

Status = Literal["passed", "not_passed", "outage", "skipped"]


class BaselineError(InputError):
    """The baseline run cannot be found or read; the message names the path and the fix."""


@dataclass(frozen=True)
class CaseSide:
    """One case's result on one side of a comparison."""

    case_id: str
    status: Status
    escalated: bool = False
    by_review: bool = False
    tags: tuple[str, ...] = ()
    input: Any = None
    output: str | None = None
    item_id: str | None = None
    reason: str = ""
    pairwise: bool = False  # judged against the baseline's output: the baseline is the reference
    review_probability: float | None = None  # sent to people: audit rate for an audit, 1 else
    seed: int | None = None  # of the audit draw
    verified: bool = True  # every verifier passed: only then can a review decide the case

    @classmethod
    def from_result(cls, record: CaseResult) -> CaseSide:
        """From a run's record of the case."""
        status: Status
        if record.outage:
            status = "outage"
        elif record.outcome == "passed" or (
            record.outcome == "escalated"
            and record.audit
            and record.panel is not None
            and record.panel.passed is True
        ):
            status = "passed"
        elif record.outcome in ("failed", "escalated"):
            status = "not_passed"  # an escalated case nobody resolved has not passed
        else:
            status = "skipped"
        return cls(
            case_id=record.case_id,
            status=status,
            escalated=record.outcome == "escalated" and not record.audit,
            by_review=bool(record.resolved_by),
            tags=tuple(record.tags),
            input=record.input,
            output=record.output,
            item_id=record.item_id,
            reason="; ".join(record.reasons),
            pairwise=record.pairwise is not None,
            review_probability=result_review_probability(record),
            seed=record.policy.seed if record.policy is not None else None,
            verified=all(v.passed for v in record.verifiers),
        )


def with_resolutions(
    cases: Mapping[str, CaseSide], decisions: Mapping[str, ItemDecision]
) -> dict[str, CaseSide]:
    """Each side as a run would record it now: where reviewers decided its item (the same case,
    output and rubric version), their decision replaces the judges', as the evaluator does; so
    a baseline run written before the review and a candidate run after it count alike.
    `decisions` is the review desk's, by item id."""
    return {case_id: _resolved(side, decisions) for case_id, side in cases.items()}


def _resolved(side: CaseSide, decisions: Mapping[str, ItemDecision]) -> CaseSide:
    decision = decisions.get(side.item_id or "")
    if decision is None or not side.verified or side.status not in ("passed", "not_passed"):
        return side
    if decision.pending:
        return replace(
            side,
            status="not_passed",
            escalated=True,
            by_review=True,
            review_probability=1.0,
            reason="reviewers disagree",
        )
    status: Status = "passed" if decision.passed else "not_passed"
    outcome = "passed" if decision.passed else "failed"
    return replace(
        side,
        status=status,
        escalated=False,
        by_review=True,
        review_probability=None,
        reason=f"{outcome} by review",
    )


def sides(records: Iterable[CaseResult], target: str | None = None) -> dict[str, CaseSide]:
    """Each case's side, by case id, keeping only `target`'s records when one is named.

    Records of several targets without a `target` to choose raise `BaselineError`: cases would
    pair with an arbitrary one of them.
    """
    chosen = [r for r in records if target is None or r.target == target]
    targets = sorted({r.target for r in chosen})
    if target is None and len(targets) > 1:
        raise BaselineError(
            f"the results hold several targets ({', '.join(targets)}); name the ones to compare "
            "with `baseline` and `candidate` in [tool.hybridjudge.gate]"
        )
    return {r.case_id: CaseSide.from_result(r) for r in chosen}


@dataclass
class Pairing:
    """The cases of two runs matched by case id."""

    pairs: list[tuple[CaseSide, CaseSide]] = field(default_factory=list)  # (baseline, candidate)
    outages: list[str] = field(default_factory=list)  # a provider outage on either side
    not_compared: list[str] = field(default_factory=list)  # skipped on a side for another reason
    unresolved: list[str] = field(default_factory=list)  # escalated, not decided by a reviewer
    unresolved_baseline: int = 0  # of them, unresolved on the baseline's side
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)


def pair(baseline: Mapping[str, CaseSide], candidate: Mapping[str, CaseSide]) -> Pairing:
    """Match cases by id; every case lands in exactly one list of the `Pairing`."""
    pairing = Pairing()
    for case_id in sorted(baseline.keys() | candidate.keys()):
        base, cand = baseline.get(case_id), candidate.get(case_id)
        if cand is not None and cand.pairwise and cand.status != "skipped":
            # compared with the baseline's output itself: the baseline is the reference (passed)
            base = CaseSide(case_id, "passed", tags=cand.tags, output=cand.output)
        if cand is None:
            pairing.only_baseline.append(case_id)
        elif base is None:
            pairing.only_candidate.append(case_id)
        elif "outage" in (base.status, cand.status):
            pairing.outages.append(case_id)
        elif "skipped" in (base.status, cand.status):
            pairing.not_compared.append(case_id)
        elif base.escalated or cand.escalated:  # nobody has decided it yet: neither win nor loss
            pairing.unresolved.append(case_id)
            pairing.unresolved_baseline += base.escalated
        else:
            pairing.pairs.append((base, cand))
    return pairing
