"""The records a run produces: judge verdicts, panel verdicts, verifier results, case results."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .providers.base import Completion

Outcome = Literal["passed", "failed", "escalated", "skipped"]


class Verdict(BaseModel):
    """What a judge must answer: validated from its structured output. Keys beyond these are
    kept (`model_extra`), not refused: models add `reasoning` and the like."""

    model_config = ConfigDict(extra="allow")
    score: int = Field(description="Score on the rubric's scale")
    rationale: str = Field(description="Why the judge gave this score")
    confidence: float = Field(ge=0.0, le=1.0, description="The judge's own confidence, 0..1")


@functools.lru_cache(maxsize=64)
def verdict_schema(scale: tuple[int, int]) -> dict[str, Any]:
    """JSON Schema for a verdict on `scale`, in the strict form structured output requires.

    One object per scale, shared by every request that carries it (as pairwise's
    `CHOICE_SCHEMA` is): read it, never change it."""
    low, high = scale
    return {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "enum": list(range(low, high + 1))},
            "rationale": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["score", "rationale", "confidence"],
        "additionalProperties": False,
    }


class Usage(BaseModel):
    """Tokens and time spent on calls."""

    input_tokens: int = Field(0, description="Prompt tokens")
    output_tokens: int = Field(0, description="Generated tokens")
    calls: int = Field(
        0, description="Requests sent to providers (retries and failures included; no cache hits)"
    )
    cache_hits: int = Field(0, description="Calls answered from the cache")
    latency: float = Field(0.0, description="Seconds spent waiting on providers")
    cost: float = Field(0.0, description="USD paid for these calls (cache hits cost nothing)")
    unpriced_calls: int = Field(
        0, description="Calls to a model without a known price: their cost is not in `cost`"
    )

    def add(self, other: Usage) -> None:
        """Accumulate `other` into this one."""
        # straight into the fields: a pydantic attribute set costs a few microseconds, and a
        # cached run adds usages tens of thousands of times (nothing here needs validating)
        mine, theirs = self.__dict__, other.__dict__
        for name in _USAGE_FIELDS:
            mine[name] += theirs[name]
        self.__pydantic_fields_set__.update(_USAGE_FIELDS)

    def count(self, completion: Completion) -> None:
        """Accumulate one completion's tokens, time and cost."""
        mine = self.__dict__
        mine["input_tokens"] += completion.input_tokens
        mine["output_tokens"] += completion.output_tokens
        mine["latency"] += completion.latency
        mine["cost"] += completion.cost
        if completion.cached:
            mine["cache_hits"] += 1
            self.__pydantic_fields_set__.update(_COUNTED_CACHED)
        else:
            mine["calls"] += completion.requests
            mine["unpriced_calls"] += not completion.priced
            self.__pydantic_fields_set__.update(_COUNTED_CALLED)


_USAGE_FIELDS = tuple(Usage.model_fields)
_COUNTED = ("input_tokens", "output_tokens", "latency", "cost")
_COUNTED_CACHED = (*_COUNTED, "cache_hits")
_COUNTED_CALLED = (*_COUNTED, "calls", "unpriced_calls")


class JudgeVerdict(BaseModel):
    """One judge's verdict on one output, or the error that stopped it."""

    judge: str = Field(description="Judge label (its name or `provider/model`)")
    model: str = Field(description="`provider/model`")
    score: int | None = Field(None, description="Score, None when the judge errored")
    passed: bool | None = Field(None, description="score >= pass_threshold")
    rationale: str = Field("", description="The judge's reasoning")
    confidence: float | None = Field(None, description="Confidence in the score, 0..1")
    confidence_signal: Literal["logprobs", "samples", "self"] | None = Field(
        None,
        description="Where the confidence came from: score-token log-probabilities, "
        "agreement across samples, or the judge's own confidence field",
    )
    self_confidence: float | None = Field(None, description="The judge's self-reported confidence")
    expected_score: float | None = Field(
        None, description="Probability-weighted score (logprobs) or mean sample score"
    )
    samples: list[int] = Field(default_factory=list, description="Scores of repeated samples")
    error: str | None = Field(None, description="Why no valid verdict was obtained")
    outage: bool = Field(
        False, description="The error was a provider outage after retries, not the judge's answer"
    )
    attempts: int = Field(1, description="Replies needed (2 when the first did not validate)")
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Keys the judge's reply held beyond the verdict schema (e.g. `reasoning`)",
    )
    logprobs: list[dict[str, Any]] | None = Field(None, description="Token log-probabilities")
    usage: Usage = Field(default_factory=Usage)


class VerifierResult(BaseModel):
    """One deterministic check."""

    name: str = Field(description="Verifier kind, e.g. `regex`")
    passed: bool = Field(description="Whether the output satisfied it")
    detail: str = Field("", description="What was expected and what was found")


class PanelVerdict(BaseModel):
    """The judges' verdicts combined."""

    score: float | None = Field(None, description="Aggregated score (median by default)")
    passed: bool | None = Field(None, description="Majority pass/fail of the valid verdicts")
    votes_pass: int = Field(0, description="Judges voting pass")
    votes_fail: int = Field(0, description="Judges voting fail")
    errors: int = Field(0, description="Judges that returned no valid verdict")
    spread: float = Field(0.0, description="Highest minus lowest valid score")
    expected_score: float | None = Field(
        None, description="Mean of the judges' probability-weighted scores (or scores)"
    )
    confidence: float | None = Field(
        None, description="Panel confidence: judges' confidence weighed by their agreement"
    )


Preference = Literal["candidate", "baseline", "tie"]


class PairwiseJudgment(BaseModel):
    """One judge's comparison of the candidate's and the baseline's output, in both orders."""

    judge: str = Field(description="Judge label")
    candidate_first: Preference | None = Field(
        None, description="What it preferred with the candidate shown first (None: no verdict)"
    )
    baseline_first: Preference | None = Field(
        None, description="What it preferred with the baseline shown first (None: no verdict)"
    )
    consistent: bool | None = Field(
        None, description="Both orders gave the same preference; None when one had no verdict"
    )
    preferred: Preference | None = Field(
        None, description="The preference; an order-flipping verdict is a tie"
    )
    rationale: str = Field("", description="The judge's reasoning (candidate-first order)")
    error: str | None = Field(None, description="Why a verdict is missing")
    usage: Usage = Field(default_factory=Usage)


class PairwiseResult(BaseModel):
    """A pairwise rubric's comparison of the candidate with the baseline."""

    baseline_output: str = Field(description="The baseline's output for the case")
    judgments: list[PairwiseJudgment] = Field(default_factory=list)
    preferred: Preference | None = Field(None, description="The panel's decided preference")


class PolicyInForce(BaseModel):
    """The escalation policy a case was routed under: enough to reconstruct its sampling."""

    min_confidence: float | None = Field(
        description="Panel confidence below which it was escalated (the rubric's calibrated "
        "value when there is one); null when the rubric escalates every case"
    )
    audit_rate: float = Field(description="Share of confident cases sampled for audit")
    seed: int = Field(description="Seed of the audit draw")


class CaseResult(BaseModel):
    """Everything one case produced: the record written to results.jsonl."""

    schema_version: Literal[1] = Field(1, description="Result record version")
    case_id: str
    nodeid: str = ""
    source: str = Field("", description="Gold file")
    target: str = Field(description="Target label")
    rubric: str | None = None
    rubric_version: str | None = None
    outcome: Outcome
    reasons: list[str] = Field(default_factory=list, description="Why this outcome")
    input: Any = None
    reference: Any = None
    output: str | None = None
    rendered_rubric: str | None = None
    score: float | None = None
    pass_threshold: int | None = None
    scale: tuple[int, int] | None = None
    verifiers: list[VerifierResult] = Field(default_factory=list)
    verdicts: list[JudgeVerdict] = Field(default_factory=list)
    panel: PanelVerdict | None = None
    target_usage: Usage = Field(default_factory=Usage)
    usage: Usage = Field(default_factory=Usage, description="Target and judges together")
    error: str | None = Field(None, description="What stopped the case, if anything")
    tags: list[str] = Field(default_factory=list)
    tier: str | None = Field(None, description="Reviewer tier, when escalated")
    review_minutes: float | None = Field(None, description="Expected review minutes")
    audit: bool = Field(False, description="Escalated as a random audit of a confident case")
    item_id: str | None = Field(None, description="Review item id (case, output, rubric version)")
    resolved_by: list[str] = Field(default_factory=list, description="Reviewers who decided it")
    over_budget: bool = Field(False, description="Skipped: its worst case did not fit the budget")
    reserved: bool = Field(
        False, description="Under a budget: its worst case was reserved and the case then ran"
    )
    pairwise: PairwiseResult | None = Field(
        None, description="Pairwise rubrics: the comparison with the baseline's output"
    )
    outage: bool = Field(
        False,
        description="A provider failed after its retries (timeouts, 429, 5xx, connection): the "
        "target's, and the case is skipped, or every call of a judge that then gave no verdict; "
        "an outage says nothing about the model (a gate leaves it out of wins and losses)",
    )
    config_error: str | None = Field(
        None,
        description="A provider's configuration error (401/403/404, unknown model) that stopped "
        "the run: the case is skipped and no more calls were sent",
    )
    policy: PolicyInForce | None = Field(None, description="The escalation policy in force")
    inclusion_probability: float | None = Field(
        None,
        description="Probability that the case went to people by confidence and the audit draw "
        "alone: 1 if escalated for low confidence only, the audit rate if the panel was "
        "confident; null when another rule sent it or no panel judged it",
    )


def review_probability(outcome: str, audit: bool, audit_rate: float | None) -> float | None:
    """The probability that a judged case was sent to people: its audit rate for an audit, 1 for
    any other escalation; None when unknown (an older run recorded no policy) or not sent.

    Takes the record's fields, so a result read as JSON and a `CaseResult` count alike (see
    `result_review_probability`)."""
    if audit:
        return audit_rate or None
    return 1.0 if outcome == "escalated" else None


def result_review_probability(result: CaseResult) -> float | None:
    """`review_probability` of a case's result."""
    rate = result.policy.audit_rate if result.policy else None
    return review_probability(result.outcome, result.audit, rate)


DecidedBy = Literal["review", "judges", "verifiers", "target", "none"]


def decided_by(result: CaseResult) -> DecidedBy:
    """Who decided the case: the one rule behind junit's `hybridjudge.decided_by` and the
    `decided_by` column of `hybridjudge export results`.

    `review` when reviewers' resolutions decided it (or disagree on it); `verifiers` when a
    verifier failed it; `judges` when a panel or pairwise judges graded it (escalated included:
    they sent it to people); `verifiers` when passing verifiers alone decided it; `target` when
    the target produced no output and that failed the case; `none` when nothing did (skipped,
    or nothing to grade with).
    """
    if result.outcome == "skipped":
        return "none"
    if result.resolved_by:
        return "review"
    if any(not v.passed for v in result.verifiers):
        return "verifiers"
    if result.panel is not None or (result.pairwise is not None and result.pairwise.judgments):
        return "judges"
    if result.verifiers:
        return "verifiers"
    if result.output is None and result.outcome == "failed":
        return "target"
    return "none"
