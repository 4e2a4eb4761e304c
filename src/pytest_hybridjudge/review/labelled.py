"""The labelled sample: reviewers' decisions paired with the judges' stored verdicts.

`labelled_cases` pairs each item people decided with the verdicts the newest run that judged it
stored, and gives each case its two-phase inclusion probability (the run's chance of sending it
to people times the share of what was sent that reviewers resolved, `resolved_shares`), so the
calibration report and the pass rates can weight a sample that was not drawn at random. Pure:
the runs' results are read by the run store (`RunStore.judged_history`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..runs import Stratum, sent_to_people, stratum_of
from .decisions import decisions_of

if TYPE_CHECKING:
    from ..verdict import CaseResult
    from .resolutions import Resolution


PanelKey = tuple[str | None, tuple[str, ...]]
"""(rubric version, judges): what must match for runs' labelled cases to be pooled in a fit."""


def panel_key(record: CaseResult) -> PanelKey:
    """The rubric version and the judges (sorted labels) behind a record's verdicts."""
    return (record.rubric_version, tuple(sorted({v.judge for v in record.verdicts})))


@dataclass(frozen=True)
class LabelledCase:
    """One reviewed item with the judges' verdicts on it, as the newest judged run stored it."""

    item_id: str
    rubric: str
    rubric_version: str | None
    run_id: str
    human_pass: bool
    panel_pass: bool | None
    panel_confidence: float | None
    decided: bool
    """The panel decided it itself (outcome passed/failed, or a confident case audited)."""
    judges: dict[str, bool]
    """Judge label -> its pass/fail, for judges that returned a valid verdict."""
    inclusion: float | None = None
    """Probability it went to people by confidence and the audit draw alone (the run's record);
    None when another rule sent it (split, errors, borderline, always_review) or an older run
    did not record it: such cases are reported, never fitted on."""
    audit: bool = False
    """Drawn as an audit of a confident case."""
    legacy: bool = False
    """Its run predates recorded sampling (no policy in the record)."""
    panel_key: PanelKey = (None, ())
    """Rubric version and judges that produced its verdicts: runs with the same key are pooled."""
    audit_rate: float | None = None
    """The audit rate its run drew audits at."""

    @property
    def weight(self) -> float | None:
        """Inverse inclusion probability: how many cases this one stands for in the fit."""
        return 1.0 / self.inclusion if self.inclusion else None


@dataclass
class Dataset:
    """The labelled cases, and what could not be used."""

    cases: list[LabelledCase] = field(default_factory=list)
    disagree: dict[str, int] = field(default_factory=dict)
    """Rubric -> items left out because reviewers disagree."""
    unjudged: dict[str, int] = field(default_factory=dict)
    """Rubric -> resolved items with no stored judge verdicts (decided by review only, or
    their runs were deleted)."""
    judged: dict[str, list[float | None]] = field(default_factory=dict)
    """Rubric -> panel confidence of every judged case (labelled or not) the panel could decide
    (None for one another rule escalated): the denominator of coverage."""
    judged_groups: dict[str, list[PanelKey]] = field(default_factory=dict)
    """Rubric -> the rubric version and judges of each entry of `judged`, in the same order."""


def resolved_shares(
    sent: Mapping[Stratum, Collection[str]], resolved: Collection[str]
) -> dict[Stratum, float]:
    """Share of each stratum's items that reviewers resolved: the second phase of the sample.

    A run sends cases to people (phase one: escalations with probability 1, audits with the
    audit rate); reviewers then resolve some of them (phase two). Within a run, rubric and kind
    (audit or escalation), the resolved items are taken as a random share of those sent, so
    each stands for 1 / share of them: its inclusion probability is the phase-one probability
    times the share. Strata with nothing resolved are absent. Pure.
    """
    shares = {}
    for key, items in sent.items():
        done = sum(1 for item in items if item in resolved)
        if done:
            shares[key] = done / len(items)
    return shares


def two_phase_probability(
    first: float | None, run_id: str, record: CaseResult, shares: Mapping[Stratum, float]
) -> float | None:
    """A reviewed case's inclusion probability: `first`, the chance its run sent it to people
    (phase one), times the share of its run's items of the same rubric and kind that reviewers
    resolved (phase two, `resolved_shares`). None when either is unknown or zero. The one rule
    behind calibration, the pass rates and the gate's prediction-powered change. Pure."""
    share = shares.get(stratum_of(run_id, record))
    return first * share if first and share else None


def labelled_cases(
    judged: Mapping[str, tuple[str, CaseResult]],
    resolutions: Iterable[Resolution],
    sent: Mapping[Stratum, Collection[str]] | None = None,
) -> Dataset:
    """Pair each resolved item's human decision with the judges' stored verdicts. Pure.

    A case's inclusion probability is two-phase: its record's (1 for a low-confidence
    escalation, the audit rate for an audit) times the share of its run's items of the same
    rubric and kind that reviewers resolved (`resolved_shares`, over `sent`, the items each run
    sent to people: `RunStore.judged_history`; default: what `judged` holds).
    """
    dataset = Dataset()
    for _, record in judged.values():
        decidable = record.panel is not None and (
            record.inclusion_probability is not None or record.policy is None
        )
        confidence = record.panel.confidence if record.panel and decidable else None
        dataset.judged.setdefault(record.rubric or "(none)", []).append(confidence)
        dataset.judged_groups.setdefault(record.rubric or "(none)", []).append(panel_key(record))
    decisions = decisions_of(resolutions)
    if sent is None:
        built: dict[Stratum, set[str]] = {}
        for item, (run_id, record) in judged.items():
            if sent_to_people(record):
                built.setdefault(stratum_of(run_id, record), set()).add(item)
        sent = built
    shares = resolved_shares(sent, {i for i, d in decisions.items() if not d.pending})
    for item, decision in decisions.items():
        stored = judged.get(item)
        latest = decision.resolutions[-1].rubric
        rubric = (stored[1].rubric if stored else None) or latest or "(none)"
        if decision.pending:
            dataset.disagree[rubric] = dataset.disagree.get(rubric, 0) + 1
            continue
        if stored is None:
            dataset.unjudged[rubric] = dataset.unjudged.get(rubric, 0) + 1
            continue
        run_id, record = stored
        panel = record.panel
        dataset.cases.append(
            LabelledCase(
                item_id=item,
                rubric=rubric,
                rubric_version=record.rubric_version,
                run_id=run_id,
                human_pass=decision.verdict == "pass",
                panel_pass=panel.passed if panel else None,
                panel_confidence=panel.confidence if panel else None,
                decided=record.outcome in ("passed", "failed") or record.audit,
                judges={
                    v.judge: v.passed
                    for v in record.verdicts
                    if v.passed is not None and v.error is None
                },
                inclusion=two_phase_probability(
                    record.inclusion_probability, run_id, record, shares
                ),
                audit=record.audit,
                legacy=record.policy is None,
                panel_key=panel_key(record),
                audit_rate=record.policy.audit_rate if record.policy else None,
            )
        )
    return dataset
