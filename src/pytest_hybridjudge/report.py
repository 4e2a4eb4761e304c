"""The run's record as it grows: each result spooled, counted, and summed up in the summary;
the run store (`runs.RunStore`) writes its files."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_RATES
from .cost import review_cost
from .escalation import reason_group
from .files import LineSpool, atomic_writer
from .passrates import Row, row_of
from .review.lead_times import ExpectedMinutes, LeadTime, expected_minutes
from .review.manifest import ReviewItem
from .runs import RecordWriteError, RunPaths, RunStore
from .stats import panel_scores
from .summary import (
    BatchCounts,
    BudgetUse,
    CallCounts,
    Cost,
    ModeSwitch,
    ProviderCalls,
    ReviewLoad,
    RunSummary,
    TierCost,
)
from .verdict import CaseResult, PolicyInForce, Usage

if TYPE_CHECKING:
    from .batches.broker import BatchStats
    from .calls import CallStats


@dataclass
class Tally:
    """Running totals over a run's results: all the summary needs, without keeping the results.

    Per case it keeps only the judges' scores (for alpha); the results that go to people
    (escalated, or drawn for audit) are kept whole for the manifest. So a 10,000-case run does
    not hold 10,000 results in memory.
    """

    counts: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    per_rubric: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_model: dict[str, Usage] = field(default_factory=lambda: defaultdict(Usage))
    review: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: {"items": 0, "minutes": 0.0})
    )
    panels: dict[str, list[dict[str, int]]] = field(default_factory=lambda: defaultdict(list))
    splits: Counter[str] = field(default_factory=Counter)
    rows: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    audit_minutes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    audit_items: Counter[str] = field(default_factory=Counter)
    policy: PolicyInForce | None = None
    split: int = 0
    audits: int = 0
    by_review: int = 0
    over_budget: int = 0
    reserved: int = 0  # cases that got their budget reservation and ran
    targets: set[str] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)  # escalated cases per rule
    judge_errors: Counter[str] = field(default_factory=Counter)
    to_review: list[CaseResult] = field(default_factory=list)  # escalated, or drawn for audit
    outages: int = 0
    config_error: str | None = None

    def add(self, r: CaseResult) -> None:
        """Count one case's result."""
        self.counts[r.outcome] += 1
        self.usage.add(r.usage)
        self.per_rubric[r.rubric or "(none)"][r.outcome] += 1
        self.per_model[r.target].add(r.target_usage)
        for v in r.verdicts:
            self.per_model[v.judge].add(v.usage)
            self.judge_errors[v.judge] += v.error is not None
        for j in r.pairwise.judgments if r.pairwise else ():
            self.per_model[j.judge].add(j.usage)  # both orders' calls
        self.over_budget += r.over_budget
        self.targets.add(r.target)
        self.reserved += r.reserved
        self.outages += r.outage  # cases lost to provider outages
        self.config_error = self.config_error or r.config_error
        rubric = r.rubric or "(none)"
        if r.verdicts:
            self.panels[rubric].append(panel_scores(r.verdicts))
        if r.panel and r.panel.votes_pass and r.panel.votes_fail:
            self.split += 1
            self.splits[rubric] += 1
        row = row_of(r)
        if row is not None:
            self.rows[rubric].append(row)
        self.policy = self.policy or r.policy
        if r.audit:
            self.audit_minutes[r.tier or "annotator"] += r.review_minutes or 0.0
            self.audit_items[r.tier or "annotator"] += 1
        if r.resolved_by:
            self.by_review += 1
        if r.outcome == "escalated":
            self.reasons.update(dict.fromkeys(map(reason_group, r.reasons)).keys())
        # an audit keeps the panel's outcome and still goes to people: a review item either way
        if r.outcome == "escalated" or r.audit:
            self.to_review.append(r)
            entry = self.review[r.tier or "annotator"]
            entry["items"] += 1
            entry["minutes"] += r.review_minutes or 0.0
            self.audits += bool(r.audit)


@dataclass
class RunReport:
    """Filled from test reports on the controller, written at session finish.

    Each result is appended to `<results>.partial` as it arrives and counted in `tally`; at the
    end the partial file becomes results.jsonl by an atomic rename. A case recorded twice (a
    rerun plugin, a crashed xdist worker) keeps its last record, found by one pass over the file.
    """

    run_id: str
    paths: RunPaths
    store: RunStore | None = None  # default: the store of the runs folder `paths` lie in
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    rates: Mapping[str, float] = field(default_factory=lambda: tier_rates(DEFAULT_RATES))
    tally: Tally = field(default_factory=Tally)
    budget: float | None = None  # USD, when the run has one
    calls: CallStats | None = None  # the caller's counters, when it ran in this process
    resolved: frozenset[str] | None = None  # items reviewers decided (for pass rates)
    lead_times: Mapping[str, LeadTime] = field(default_factory=dict)  # measured, per tier
    incomplete: list[str] | None = None  # why the run is not complete; None: not judged
    _times: Counter[str] = field(default_factory=Counter)  # records per node id
    _spool: LineSpool | None = None
    write_error: RecordWriteError | None = None  # set when a record could not be written

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = RunStore(self.paths.run_dir.parent)

    @property
    def partial(self) -> Path:
        """Where results go while the run is going on."""
        return self.paths.partial

    def add(self, result: CaseResult) -> None:
        """Record a case's result (the last record for a node id wins)."""
        if self.write_error is not None:
            return  # the disk refused an earlier record: the records on it stay whole
        try:
            if self._spool is None:
                self._spool = LineSpool(self.partial)  # a killed run keeps every record made
            self._spool.write(result.model_dump_json() + "\n")
        except OSError as exc:
            kept = self._spool.lines if self._spool is not None else 0
            self.write_error = RecordWriteError.of(exc, self.partial, kept)
            raise self.write_error from None
        key = _key(result)
        self._times[key] += 1
        if self._times[key] == 1:
            self.tally.add(result)  # a repeated record is counted when the file is reread

    def recorded(self, nodeid: str) -> bool:
        """Whether the case has a record yet."""
        return nodeid in self._times

    def __len__(self) -> int:
        return len(self._times)

    def review_items(self) -> list[ReviewItem]:
        """One review item per escalated case and per audit sample."""
        return [ReviewItem.from_result(r, self.run_id) for r in self.tally.to_review]

    def summary(self) -> RunSummary:
        """Counts, pass rate per rubric, agreement, cost, tokens and paths."""
        from .passrates import pass_rates
        from .stats import judge_alpha

        t = self.tally
        alphas = {name: judge_alpha(panels) for name, panels in t.panels.items()}
        rubric_rates, overall = pass_rates(t.rows, self.store, resolved=self.resolved)
        judge_only = {"estimate": None, "low": None, "high": None, "method": "judge-only"}
        return RunSummary.model_validate(
            {
                "run_id": self.run_id,
                "started": self.started,
                "finished": dt.datetime.now(dt.UTC),
                "cases": len(self),
                "outcomes": t.counts,
                "pass_rate": overall,
                "rubrics": {
                    name: {
                        **c,
                        "pass_rate": rubric_rates.get(name, {**judge_only, "labelled": 0}),
                        "agreement": {
                            "krippendorff_alpha_ordinal": alphas.get(name),
                            "cases_judged": len(t.panels.get(name, [])),
                            "split_cases": t.splits.get(name, 0),
                        }
                        if name in t.panels
                        else None,
                    }
                    for name, c in sorted(t.per_rubric.items())
                },
                "agreement": {  # alpha is per rubric: pooling rubrics would inflate it
                    "krippendorff_alpha_ordinal": next(iter(alphas.values()))
                    if len(alphas) == 1
                    else None,
                    "cases_judged": sum(len(p) for p in t.panels.values()),
                    "split_cases": t.split,
                },
                "audit": self._audit(t),
                "review": {tier: _load(e) for tier, e in self._expected(t.review).items()},
                "cost": self._cost(t.per_model, self._expected(t.review)),
                "audits": t.audits,
                "by_review": t.by_review,
                "usage": t.usage,
                "models": dict(sorted(t.per_model.items())),
                "paths": {
                    "results": str(self.paths.results),
                    "manifest": str(self.paths.manifest),
                    "summary": str(self.paths.summary),
                },
                "escalation_reasons": dict(t.reasons.most_common()),
                "judge_errors": {judge: n for judge, n in sorted(t.judge_errors.items()) if n},
                "budget": self._budget(),
                "calls": _call_counts(self.calls) if self.calls is not None else None,
                "outages": t.outages,
                "config_error": t.config_error,
                "targets": sorted(t.targets),
                "complete": None if self.incomplete is None else not self.incomplete,
                "incomplete_because": self.incomplete or [],
            }
        )

    def _budget(self) -> BudgetUse | None:
        if self.budget is None:
            return None
        t = self.tally
        return BudgetUse(
            limit=self.budget,
            spent=round(t.usage.cost, 6),
            cases_covered=t.reserved,
            cases_skipped=t.over_budget,
        )

    def _expected(self, work: Mapping[str, Mapping[str, float]]) -> dict[str, ExpectedMinutes]:
        """Per tier, the expected minutes of `work` (items and configured minutes): measured
        once the tier has enough timed resolutions (`lead_times.expected_minutes`)."""
        return {
            tier: expected_minutes(int(v["items"]), v["minutes"], self.lead_times.get(tier))
            for tier, v in sorted(work.items())
        }

    def _audit(self, t: Tally) -> dict[str, Any]:
        """The audit sample in force and the expected cost of reviewing it."""
        audits = self._expected(
            {k: {"items": t.audit_items[k], "minutes": m} for k, m in t.audit_minutes.items()}
        )
        return {
            "rate": t.policy.audit_rate if t.policy else None,
            "seed": t.policy.seed if t.policy else None,
            "samples": t.audits,
            "minutes": round(sum(e.minutes for e in audits.values()), 2),
            "usd": round(
                sum(review_cost(e.minutes, self.rates.get(k, 0.0)) for k, e in audits.items()), 4
            ),
        }

    def _cost(self, per_model: Mapping[str, Usage], review: Mapping[str, ExpectedMinutes]) -> Cost:
        """Inference per model and expected human review per tier, with totals, in USD."""
        inference = {name: round(u.cost, 6) for name, u in sorted(per_model.items())}
        people = {
            tier: TierCost(
                **_load(e).model_dump(),
                rate_per_hour=self.rates.get(tier, 0.0),
                usd=round(review_cost(e.minutes, self.rates.get(tier, 0.0)), 4),
            )
            for tier, e in review.items()
        }
        inference_total = sum(inference.values())
        review_total = sum(p.usd for p in people.values())
        unpriced = {name: u.unpriced_calls for name, u in per_model.items() if u.unpriced_calls}
        return Cost(
            inference=inference,
            inference_total=round(inference_total, 6),
            unpriced=dict(sorted(unpriced.items())),
            review=people,
            review_total=round(review_total, 4),
            total=round(inference_total + review_total, 4),
        )

    def write(self) -> dict[str, Any]:
        """Write results, manifest and summary atomically; return the summary as written.

        After a failed record write nothing more is written: `.partial` keeps the whole records
        and the error is raised again."""
        if self.write_error is not None:
            if self._spool is not None:
                self._spool.close(sync=False)
                self._spool = None
            raise self.write_error
        assert self.store is not None
        self._finish_results()
        self.store.write_manifest(self.paths, self.review_items())
        summary = self.summary()
        self.store.write_summary(self.paths, summary, complete=not self.incomplete)
        return summary.model_dump(mode="json")

    def _finish_results(self) -> None:
        """Turn the partial file into results.jsonl: renamed, or rewritten with last records."""
        assert self.store is not None
        spool, self._spool = self._spool, None
        if spool is None:
            if not self._times:  # no case at all: still an (empty) results file
                self.store.publish_results(self.paths, written=False)
            return
        spool.close()
        if max(self._times.values()) > 1:
            self._keep_last_records()
        self.store.publish_results(self.paths, written=True)

    def _keep_last_records(self) -> None:
        """Rewrite the partial file with each case's last record, and count those afresh."""
        seen: Counter[str] = Counter()
        self.tally = Tally()
        with self.partial.open(encoding="utf-8") as lines, atomic_writer(self.partial) as out:
            for line in lines:
                result = CaseResult.model_validate_json(line)
                key = _key(result)
                seen[key] += 1
                if seen[key] == self._times[key]:  # this case's last record
                    out.write(line)
                    self.tally.add(result)


def _load(expected: ExpectedMinutes) -> ReviewLoad:
    """A tier's review work as `summary.json` records it, saying where its minutes come from."""
    lead_time = expected.lead_time
    return ReviewLoad(
        items=expected.items,
        minutes=round(expected.minutes, 4),
        minutes_from="measured" if expected.measured else "configured",
        median_seconds=None if lead_time is None else lead_time.median_seconds,
        timed_reviews=0 if lead_time is None else lead_time.timed,
    )


def _call_counts(stats: CallStats) -> CallCounts:
    names = sorted(stats.requests_by_provider)
    return CallCounts(
        requests=stats.requests,
        retries=stats.retries,
        failures=stats.failures,
        cost=round(stats.cost, 6),
        unpriced=dict(sorted(stats.unpriced.items())),
        providers={
            name: ProviderCalls(
                requests=stats.requests_by_provider.get(name, 0),
                retries=stats.retries_by_provider.get(name, 0),
            )
            for name in names
        },
        mode_switches={
            name: ModeSwitch(started=a, now=b, why=why)
            for name, (a, b, why) in sorted(stats.mode_switches.items())
        },
        batches=_batch_counts(stats.batch) if stats.batch is not None else None,
    )


def _batch_counts(stats: BatchStats) -> BatchCounts:
    return BatchCounts(
        waves=stats.waves,
        batches=stats.batches,
        collected=stats.adopted,
        held=stats.held,
        requests=stats.requests,
        deduplicated=stats.deduplicated,
        resubmitted=stats.resubmitted,
        results=dict(sorted(stats.results.items())),
    )


def _key(result: CaseResult) -> str:
    return result.nodeid or result.case_id


def tier_rates(table: Mapping[str, float]) -> dict[str, float]:
    """USD per hour by tier name."""
    return {str(tier): rate for tier, rate in table.items()}
