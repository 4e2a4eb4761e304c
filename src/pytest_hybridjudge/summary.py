"""`summary.json`: one run's counts, agreement, cost and paths, as a documented pydantic model.

`RunReport.summary` builds it; the run store (`runs.RunStore.summary`) reads it back as a
`RunSummary`, never by string keys. `hybridjudge schema summary`
prints its JSON Schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from .verdict import Usage

SUMMARY_NAME = "summary.json"


class Outcomes(BaseModel):
    """How many cases ended each way."""

    passed: int = Field(0, description="Cases that passed")
    failed: int = Field(0, description="Cases that failed")
    escalated: int = Field(0, description="Cases sent to people")
    skipped: int = Field(0, description="Cases not run (no --judge, budget, errors before calls)")


class PassRate(BaseModel):
    """A pass rate with its 95% interval, and what it rests on."""

    estimate: float | None = Field(description="Estimated pass rate; None without judged cases")
    low: float | None = Field(description="Lower end of the 95% interval; None when untrusted")
    high: float | None = Field(description="Upper end of the 95% interval; None when untrusted")
    method: Literal["ppi", "judge-only"] = Field(
        description="`ppi`: prediction-powered (the judges' rate over all judged cases, "
        "corrected by reviewers' labels on items sampled with known probability, Angelopoulos "
        "et al. 2023); `judge-only`: no such labels, so no interval can be trusted"
    )
    labelled: int = Field(description="Reviewer-labelled cases behind the correction")
    cases: int | None = Field(None, description="Cases the rate is about")
    why: str | None = Field(None, description="Why there is no interval, when there is none")
    how: str = Field("", description="How the rate was computed, in a phrase for people")


class JudgeAgreement(BaseModel):
    """How far the judges agreed with each other: per rubric, never pooled across rubrics."""

    krippendorff_alpha_ordinal: float | None = Field(
        description="Ordinal Krippendorff's alpha of the judges' scores; None when undefined. "
        "At the run's top level: the only rubric's, None with several (see `rubrics`)"
    )
    cases_judged: int = Field(description="Cases with at least one judge verdict")
    split_cases: int = Field(description="Cases where some judges passed and others failed")


class RubricOutcomes(Outcomes):
    """Outcomes of one rubric's cases."""

    pass_rate: PassRate = Field(description="Pass rate with its interval (see `PassRate`)")
    agreement: JudgeAgreement | None = Field(
        None, description="Agreement among the judges on this rubric's cases"
    )


class AuditSample(BaseModel):
    """The random audit of confident cases: the sample calibration and pass rates rest on."""

    rate: float | None = Field(description="audit_rate in force (None: no case was routed)")
    seed: int | None = Field(description="Seed of the audit draw")
    samples: int = Field(description="Confident cases drawn for audit in this run")
    minutes: float = Field(description="Expected minutes of reviewing them")
    usd: float = Field(description="Expected USD of reviewing them")


class ReviewLoad(BaseModel):
    """The review work a tier was given."""

    items: int = Field(description="Escalated cases routed to the tier")
    minutes: float = Field(
        description="Expected minutes of review, summed: the configured minutes, or the measured "
        "median lead time per item (see `minutes_from`)"
    )
    minutes_from: Literal["configured", "measured"] = Field(
        "configured",
        description="`measured` once the tier has enough timed resolutions (5) for their median "
        "`lead_time_s` to replace the configured minutes",
    )
    median_seconds: float | None = Field(
        None, description="Median seconds reviewers had an item of the tier open (None: untimed)"
    )
    timed_reviews: int = Field(0, description="Timed resolutions `median_seconds` rests on")


class TierCost(ReviewLoad):
    """The expected cost of a tier's review work."""

    rate_per_hour: float = Field(description="USD per hour of the tier")
    usd: float = Field(description="Expected USD of the tier's reviews")


class Cost(BaseModel):
    """Inference per model and expected human review per tier, in USD."""

    inference: dict[str, float] = Field(description="Model label -> USD spent on calls")
    inference_total: float = Field(description="USD spent on calls")
    unpriced: dict[str, int] = Field(
        default_factory=dict,
        description="Model label -> calls to it without a known price: their cost is unknown "
        "and not in `inference` (add the model under [tool.hybridjudge.prices])",
    )
    review: dict[str, TierCost] = Field(description="Tier -> expected review cost")
    review_total: float = Field(description="Expected USD of all reviews")
    total: float = Field(description="Inference plus expected review, USD")


class BudgetUse(BaseModel):
    """What `--judge-budget` bought: whole cases, each reserved at its worst case first."""

    limit: float = Field(description="The budget, USD")
    spent: float = Field(description="USD spent on calls")
    cases_covered: int = Field(
        description="Cases whose worst-case cost was reserved and which then ran, as recorded "
        "(`reserved` in results.jsonl); not cases skipped for the budget, cases never run "
        "because the session stopped, nor cases deselected or skipped before the evaluator"
    )
    cases_skipped: int = Field(description="Cases skipped because their worst case did not fit")


class ModeSwitch(BaseModel):
    """A provider that refused a structured-output mode and was moved to the next one."""

    started: str = Field(description="Mode the provider started in")
    now: str = Field(description="Mode it used for the rest of the run")
    why: str = Field(description="The server's refusal, trimmed and redacted")


class ProviderCalls(BaseModel):
    """Requests one provider received in this process."""

    requests: int = Field(description="Every request sent, retries and failures included")
    retries: int = Field(description="Requests that were retries")


class BatchCounts(BaseModel):
    """`--judge-batch`: the provider batches of the run and how their requests ended."""

    waves: int = Field(description="Waves of batches sent (targets first, then judges, ...)")
    batches: int = Field(description="Batches this run created")
    collected: int = Field(
        description="Batches of earlier, interrupted runs whose results this run collected"
    )
    held: int = Field(description="Times a create waited for the enqueued-token limit")
    requests: int = Field(description="Requests sent in batches, resubmissions included")
    deduplicated: int = Field(description="Calls answered by an identical request of a wave")
    resubmitted: int = Field(description="Expired or cancelled requests sent again")
    results: dict[str, int] = Field(
        default_factory=dict,
        description="How requests ended -> count: succeeded, expired, canceled, invalid, auth, "
        "billing, server, malformed (a reply not in the API's shape)",
    )


class CallCounts(BaseModel):
    """Every request sent by the processes that ran the cases (under xdist added up from each
    worker's counts; absent when a worker crashed, whose counts are lost)."""

    requests: int = Field(description="Every request sent, retries and failures included")
    retries: int = Field(description="Requests that were retries")
    failures: int = Field(description="Calls that failed for good after their retries")
    cost: float = Field(
        0.0, description="USD of every answered call, recorded in a case or not (Ctrl-C)"
    )
    unpriced: dict[str, int] = Field(
        default_factory=dict, description="`provider/model` -> answered calls without a price"
    )
    providers: dict[str, ProviderCalls] = Field(description="Provider name -> its requests")
    mode_switches: dict[str, ModeSwitch] = Field(
        default_factory=dict, description="Provider name -> the structured-output mode it moved to"
    )
    batches: BatchCounts | None = Field(None, description="`--judge-batch` runs only")


class SummaryPaths(BaseModel):
    """Where the run wrote its files."""

    results: str = Field(description="results.jsonl: one case result per line")
    manifest: str = Field(
        description="manifest.jsonl: one review item per escalated case and audit sample"
    )
    summary: str = Field(description="This file")


class RunSummary(BaseModel):
    """`summary.json`: what one `pytest --judge` run did, written atomically at its end."""

    schema_version: Literal[1] = Field(1, description="Summary record version")
    run_id: str = Field(description="Sortable run id: start time and a random suffix")
    started: dt.datetime = Field(description="When the run started (UTC)")
    finished: dt.datetime = Field(description="When the summary was written (UTC)")
    cases: int = Field(description="Cases recorded")
    outcomes: Outcomes = Field(description="Cases by outcome")
    pass_rate: PassRate = Field(
        description="The run's one pass rate over all rubrics, with its interval and how it was "
        "computed"
    )
    rubrics: dict[str, RubricOutcomes] = Field(description="Rubric name -> its outcomes")
    agreement: JudgeAgreement = Field(description="Agreement among the judges")
    review: dict[str, ReviewLoad] = Field(
        description="Tier -> review work sent to it (escalations and audit samples)"
    )
    cost: Cost = Field(description="Inference and expected review cost")
    audits: int = Field(
        description="Confident cases sampled for audit (passed or failed as the panel decided)"
    )
    audit: AuditSample | None = Field(None, description="The audit sample and its review cost")
    by_review: int = Field(description="Cases decided by earlier reviewers' resolutions")
    usage: Usage = Field(description="Tokens, calls and cost over the whole run")
    models: dict[str, Usage] = Field(description="Model label -> its usage")
    paths: SummaryPaths = Field(description="The run's files")
    escalation_reasons: dict[str, int] = Field(
        default_factory=dict,
        description="Why cases were escalated: rule -> escalated cases it sent",
    )
    judge_errors: dict[str, int] = Field(
        default_factory=dict, description="Judge label -> verdicts it failed to give"
    )
    budget: BudgetUse | None = Field(None, description="What the budget bought, when one was set")
    calls: CallCounts | None = Field(
        None, description="Requests sent, retries and mode switches (None under xdist workers)"
    )
    outages: int = Field(
        0, description="Cases a provider outage left ungraded (`outage` in results.jsonl)"
    )
    config_error: str | None = Field(
        None, description="The provider configuration error that stopped the run, if one did"
    )
    targets: list[str] = Field(default_factory=list, description="Labels of the targets run")
    complete: bool | None = Field(
        None,
        description="Whether the run covered the whole gold set and may be a baseline (`LATEST` "
        "moves only to complete runs); None in summaries written before this was recorded",
    )
    incomplete_because: list[str] = Field(
        default_factory=list,
        description="Why the run is not complete: interrupted, collection errors, no case, a "
        "-k/-m/--lf subset, cases never finished or skipped by the budget, too many outages",
    )
