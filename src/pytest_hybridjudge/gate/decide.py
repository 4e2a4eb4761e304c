"""The gate: may the candidate replace the baseline? PASS, REGRESSED or INCONCLUSIVE. Pure.

`gate_verdict` decides from counts alone (the benchmark calls it on simulated samples, the
plugin on a real pairing through `compare`). The rules, in order:

1. a critical case (by tag or id) that passed on the baseline and not on the candidate: REGRESSED;
2. no paired case, or provider outages above `max_error_rate` of the cases: INCONCLUSIVE;
3. the candidate's pass rate below `min_pass_rate`: REGRESSED;
4. a significant drop (exact McNemar p < alpha, more losses than wins) larger than
   `max_regression`: REGRESSED;
5. the paired bootstrap interval's lower end at or above -`max_regression`: PASS;
6. otherwise INCONCLUSIVE, with the pairs needed to detect the tolerated drop with 80% power.

Escalated cases nobody has resolved yet, on either side, are left out of wins and losses like
provider outages, and listed with their count (`UNRESOLVED_RULE`): in the usual CI flow the
baseline's run has been reviewed and the candidate's is fresh, and counting the candidate's
unresolved escalations as not passed failed an equally good model.

Where reviewers labelled paired cases (audits, resolved escalations), the report also carries
the prediction-powered change (`GateReport.ppi`, from `gate.ppi`). It is reported only and never
moves the decision: at gate time the candidate's own audits are not yet reviewed, so the
correction mostly rests on the baseline's side; with the default 5% audits a side has a few
dozen labels, most with zero residual, and the normal interval then covers the true change less
often than it says (benchmarks/gate.py prints its coverage); and a decision that changed as
resolutions were appended later would make a past gate impossible to reproduce from its run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from ..config import GateSpec
from ..ppi import Change
from ..stats import mcnemar_exact, paired_bootstrap, paired_sample_size
from .baseline import Pairing

GateResult = Literal["PASS", "REGRESSED", "INCONCLUSIVE"]
Method = Literal["mcnemar", "bootstrap"]
POWER = 0.8
DEFAULT_EFFECT = 0.05  # the drop to size a study for when no regression is tolerated at all
UNRESOLVED_RULE = (
    "left out: a case escalated and not resolved by a reviewer on either side is neither a win "
    "nor a loss, like a provider outage; resolve it (`hybridjudge review`) and run the gate "
    "again to count it"
)


@dataclass(frozen=True)
class PairedCounts:
    """Paired cases reduced to counts: wins (candidate passed, baseline not), losses, ties."""

    wins: int
    losses: int
    ties_passed: int
    ties_failed: int
    outages: int = 0

    @property
    def n(self) -> int:
        """Cases compared."""
        return self.wins + self.losses + self.ties_passed + self.ties_failed

    @property
    def baseline_rate(self) -> float:
        """The baseline's pass rate over the compared cases."""
        return (self.losses + self.ties_passed) / self.n if self.n else 0.0

    @property
    def candidate_rate(self) -> float:
        """The candidate's pass rate over the compared cases."""
        return (self.wins + self.ties_passed) / self.n if self.n else 0.0

    @property
    def outage_rate(self) -> float:
        """Outages among the cases both runs selected."""
        total = self.n + self.outages
        return self.outages / total if total else 0.0


@dataclass(frozen=True)
class Verdict:
    """The gate's decision on one comparison."""

    result: GateResult
    change: float
    interval: tuple[float, float] | None
    p_value: float
    more_cases: int | None  # INCONCLUSIVE: pairs still needed for 80% power
    why: str


def gate_verdict(
    counts: PairedCounts,
    policy: GateSpec,
    critical: Sequence[str] = (),
    method: Method = "mcnemar",
) -> Verdict:
    """Decide the gate from paired counts (`critical`: critical case ids that regressed).

    `method` picks the significance rule of step 4: the exact McNemar test (what the plugin
    uses) or the paired bootstrap interval lying wholly below zero (for comparison).
    """
    n, tol = counts.n, policy.max_regression
    change = counts.candidate_rate - counts.baseline_rate
    p = mcnemar_exact(counts.wins, counts.losses)
    interval = (
        paired_bootstrap(
            counts.wins,
            counts.losses,
            counts.ties_passed + counts.ties_failed,
            resamples=policy.resamples,
            seed=policy.seed,
        )
        if n
        else None
    )

    def verdict(result: GateResult, why: str, more: int | None = None) -> Verdict:
        return Verdict(result, change, interval, p, more, why)

    if critical:
        return verdict("REGRESSED", f"critical cases regressed: {', '.join(critical)}")
    if n == 0:
        return verdict("INCONCLUSIVE", "no case was decided in both runs")
    if counts.outage_rate > policy.max_error_rate:
        return verdict(
            "INCONCLUSIVE",
            f"{counts.outages} provider outages ({counts.outage_rate:.1%} of the cases) exceed "
            f"max_error_rate {policy.max_error_rate:.1%}: rerun when the provider is healthy",
        )
    if policy.min_pass_rate is not None and counts.candidate_rate < policy.min_pass_rate:
        return verdict(
            "REGRESSED",
            f"the candidate's pass rate {counts.candidate_rate:.1%} is below min_pass_rate "
            f"{policy.min_pass_rate:.1%}",
        )
    assert interval is not None
    if method == "mcnemar":
        significant = p < policy.alpha and counts.losses > counts.wins
        test = f"exact McNemar p = {p:.3g} < alpha {policy.alpha:g}"
    else:
        significant = interval[1] < 0
        test = f"the bootstrap interval's upper end {interval[1]:+.1%} is below zero"
    if significant and change < -tol:
        return verdict(
            "REGRESSED", f"{test}, and the drop {-change:.1%} exceeds the tolerated {tol:.1%}"
        )
    if interval[0] >= -tol:
        return verdict(
            "PASS",
            f"the interval's lower end {interval[0]:+.1%} rules out a drop larger than the "
            f"tolerated {tol:.1%}",
        )
    effect = tol or DEFAULT_EFFECT
    discordant = (counts.wins + counts.losses) / n
    needed = paired_sample_size(effect, discordant, policy.alpha, POWER)
    more = max(0, needed - n)
    return verdict(
        "INCONCLUSIVE",
        f"the data neither show a significant drop larger than {tol:.1%} (McNemar p = {p:.3g}) "
        f"nor rule one out (interval's lower end {interval[0]:+.1%}); detecting a drop of "
        f"{effect:.1%} with {POWER:.0%} power at alpha {policy.alpha:g} needs about {needed} "
        f"paired cases at this discordance ({discordant:.1%}), {more} more than these {n}",
        more,
    )


class PPIChange(BaseModel):
    """The prediction-powered change in pass rate, from reviewers' labels of paired cases."""

    estimate: float = Field(description="Candidate minus baseline pass rate, corrected")
    low: float = Field(description="Lower end of the 95% interval")
    high: float = Field(description="Upper end of the 95% interval")
    labelled: int = Field(description="Reviewer labels behind the correction (sides of pairs)")


class GateReport(BaseModel):
    """`gate.json`: the comparison of a candidate with its baseline, and the gate's decision."""

    result: GateResult = Field(description="PASS, REGRESSED or INCONCLUSIVE")
    explanation: str = Field(description="One paragraph: what was compared and why this result")
    baseline: str = Field(description="The baseline: a results file, or a target label")
    candidate: str = Field(description="The candidate: this run, or a target label")
    paired: int = Field(description="Cases decided in both runs, compared")
    wins: int = Field(description="Cases the candidate passed and the baseline did not")
    losses: int = Field(description="Cases the baseline passed and the candidate did not")
    ties: int = Field(description="Cases both passed or both did not")
    baseline_pass_rate: float | None = Field(description="Over the paired cases")
    candidate_pass_rate: float | None = Field(description="Over the paired cases")
    change: float | None = Field(description="Candidate minus baseline pass rate")
    interval: tuple[float, float] | None = Field(
        description="Paired bootstrap 95% interval of the change"
    )
    mcnemar_p: float = Field(description="Two-sided exact McNemar p-value on discordant pairs")
    more_cases_needed: int | None = Field(
        description="INCONCLUSIVE: pairs still needed to detect the tolerated drop, 80% power"
    )
    ppi: PPIChange | None = Field(
        None,
        description="Prediction-powered change with its 95% interval, where reviewers labelled "
        "paired cases; reported only, it does not decide the gate",
    )
    ppi_note: str = Field("needs audits", description="What `ppi` rests on, or why it is missing")
    outages: list[str] = Field(description="Cases left out: a provider outage on either side")
    outage_rate: float = Field(description="Outages among the cases both runs selected")
    critical_regressions: list[str] = Field(description="Critical cases that regressed")
    unresolved: list[str] = Field(
        description="Cases left out: escalated and not resolved by a reviewer on either side"
    )
    unresolved_rule: str = Field(
        UNRESOLVED_RULE, description="How unresolved escalations count in the gate"
    )
    losses_list: list[str] = Field(description="The cases the candidate lost")
    only_baseline: list[str] = Field(description="Cases only the baseline has")
    only_candidate: list[str] = Field(description="Cases only the candidate has")
    not_compared: list[str] = Field(description="Cases skipped on a side for another reason")
    position_consistency: dict[str, float] = Field(
        default_factory=dict, description="Pairwise rubrics: judge -> share of stable verdicts"
    )


def compare(pairing: Pairing, policy: GateSpec, baseline: str, candidate: str) -> GateReport:
    """The gate report of a pairing under `policy`."""
    wins, losses, ties_passed, ties_failed = [], [], 0, 0
    critical: list[str] = []
    marks = set(policy.critical)
    for base, cand in pairing.pairs:
        b, c = base.status == "passed", cand.status == "passed"
        if c and not b:
            wins.append(cand.case_id)
        elif b and not c:
            losses.append(cand.case_id)
            if cand.case_id in marks or marks & set(cand.tags):
                critical.append(cand.case_id)
        elif b:
            ties_passed += 1
        else:
            ties_failed += 1
    counts = PairedCounts(len(wins), len(losses), ties_passed, ties_failed, len(pairing.outages))
    v = gate_verdict(counts, policy, critical)
    unresolved = pairing.unresolved
    extra = []
    if unresolved:
        extra.append(unresolved_text(len(unresolved), pairing.unresolved_baseline))
    if pairing.only_baseline or pairing.only_candidate:
        extra.append(
            f"{len(pairing.only_baseline)} cases only in the baseline and "
            f"{len(pairing.only_candidate)} only in the candidate are not compared"
        )
    if pairing.outages:
        extra.append(f"{len(pairing.outages)} provider outages are left out of wins and losses")
    n = counts.n
    head = f"{v.result}: "
    if n and v.interval:
        low, high = v.interval
        head += (
            f"on {n} paired cases the candidate passed {counts.candidate_rate:.1%} against the "
            f"baseline's {counts.baseline_rate:.1%} (change {v.change:+.1%}, 95% paired "
            f"bootstrap interval [{low:+.1%}, {high:+.1%}]; {_count(len(wins), 'win')}, "
            f"{_count(len(losses), 'loss')}, {_count(ties_passed + ties_failed, 'tie')}). "
        )
    return GateReport(
        result=v.result,
        explanation=head + v.why[0].upper() + v.why[1:] + "." + "".join(f" {e}." for e in extra),
        baseline=baseline,
        candidate=candidate,
        paired=n,
        wins=len(wins),
        losses=len(losses),
        ties=ties_passed + ties_failed,
        baseline_pass_rate=counts.baseline_rate if n else None,
        candidate_pass_rate=counts.candidate_rate if n else None,
        change=v.change if n else None,
        interval=v.interval,
        mcnemar_p=v.p_value,
        more_cases_needed=v.more_cases,
        outages=pairing.outages,
        outage_rate=counts.outage_rate,
        critical_regressions=critical,
        unresolved=unresolved,
        losses_list=losses,
        only_baseline=pairing.only_baseline,
        only_candidate=pairing.only_candidate,
        not_compared=pairing.not_compared,
    )


def unresolved_text(count: int, on_baseline: int) -> str:
    """The sentence saying how many unresolved escalations were left out, and on which side."""
    cases = (
        "case escalated and not resolved is"
        if count == 1
        else ("cases escalated and not resolved are")
    )
    if not on_baseline:
        sides = "on the candidate's side"
    elif on_baseline == count:
        sides = "on the baseline's side"
    else:
        sides = f"{count - on_baseline} on the candidate's side, {on_baseline} on the baseline's"
    them = "it" if count == 1 else "them"
    return (
        f"{count} {cases} left out of wins and losses ({sides}); resolve {them} with "
        f"`hybridjudge review` and run the gate again to count {them}"
    )


def _count(n: int, word: str) -> str:
    """`1 win`, `2 wins`, `1 loss`, `0 losses`, `1 tie`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"


def gate_lines(report: GateReport) -> list[str]:
    """The gate's section of the terminal summary."""
    lines = [f"gate {report.explanation}"]
    named = (
        ("critical cases regressed", report.critical_regressions),
        ("lost", report.losses_list),
        ("escalated, unresolved (left out)", report.unresolved),
        ("only in baseline", report.only_baseline),
        ("only in candidate", report.only_candidate),
        ("provider outages", report.outages),
        ("not compared (skipped)", report.not_compared),
    )
    for name, ids in named:
        if ids:
            lines.append(f"  {name}: {', '.join(ids[:20])}" + (" ..." if len(ids) > 20 else ""))
    for judge, share in report.position_consistency.items():
        lines.append(f"  position consistency of {judge}: {share:.1%}")
    lines.append(f"  PPI estimate of the change: {ppi_text(report)}")
    return lines


def ppi_text(report: GateReport) -> str:
    """The PPI estimate in words: value, interval and what it rests on, or why there is none."""
    p = report.ppi
    if p is None:
        return f"none ({report.ppi_note})"
    return f"{p.estimate:+.1%} (95% interval [{p.low:+.1%}, {p.high:+.1%}]; {report.ppi_note})"


def ppi_regressed(change: Change, policy: GateSpec) -> bool:
    """What rule 4 would say on the PPI change: its interval wholly below zero and the drop
    larger than `max_regression`. Not used by the gate (see the module's docstring); the
    benchmark measures it beside McNemar and the bootstrap."""
    return change.high < 0 and change.estimate < -policy.max_regression
