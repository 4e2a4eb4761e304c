"""The gate's prediction-powered change: each paired side's label, and reviewers' where known.

The judges' label of a side is what the gate counts without new reviews (`CaseSide.status`). A
reviewer's label comes from the resolutions file (an audit or escalation resolved since its
run), or from the record itself when the run took its outcome from a review: then the judges'
label is that of the newest run that judged the same item, as for a run's pass rate
(`passrates`). A reviewed audit is a two-phase sample: its run drew it at the audit rate, and
reviewers resolved a share of its run's audits of that rubric; its inclusion probability is the
product (`review.labelled.two_phase_probability`, over the run store's judged history), since
the gate compares unresolved audits too. A resolved escalation keeps probability 1: the gate
leaves every unresolved escalation out of the pairs (`baseline.pair`), so among the cases it
compares every escalation was resolved, and weighting by the run's share would count the left-
out ones twice. A side of a run the store does not hold keeps its run's probability; one whose
probability is unknown is counted with the label the gate uses, uncorrected. `stats.ppi_change`
combines them over the pairs the gate compares (unresolved escalations and outages left out). A
change whose interval has zero width (no sampled label disagrees with the judges) is not
reported: it would claim certainty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import HybridJudgeError
from ..ppi import Change, PairLabels, ppi_change
from ..review.labelled import resolved_shares, two_phase_probability
from ..verdict import result_review_probability
from .baseline import CaseSide, Pairing

if TYPE_CHECKING:
    from ..review.decisions import ItemDecision
    from ..runs import RunStore

Side = tuple[float, float | None, float | None, tuple[str | None, int | None] | None]
NO_AUDITS = (
    "needs audits: no paired case has a reviewer's label with a known review probability; "
    "resolve the runs' audits (`hybridjudge review`) and run the gate again"
)


def degenerate_note(labelled: int) -> str:
    """Why a PPI change whose interval has no width is not reported."""
    labels = (
        "reviewer label on compared cases shows"
        if labelled == 1
        else ("reviewer labels on compared cases show")
    )
    return (
        f"not estimated: the {labelled} {labels} no sampled disagreement "
        "with the judges, so the interval would have zero width and claim a certainty the "
        "audits do not give; resolve more audits (`hybridjudge review`) and run the gate again"
    )


def side_labels(
    side: CaseSide, decided: Mapping[str, bool], judged: Mapping[str, CaseSide]
) -> Side:
    """(judges' label, reviewer's label, review probability, draw) of one side of a pair;
    `judged` holds the newest judged side of each reviewed item with its two-phase review
    probability; the draw (item id, audit seed) tells when two sides were sent for review
    together."""
    if side.by_review:
        human = float(side.status == "passed")
        before = judged.get(side.item_id or "")
        if before is None or not before.review_probability:
            return human, None, None, None
        label = float(before.status == "passed")
        return label, human, before.review_probability, (before.item_id, before.seed)
    label = float(side.status == "passed")
    reviewed = decided.get(side.item_id or "")
    before = judged.get(side.item_id or "")
    probability = side.review_probability if before is None else before.review_probability
    if reviewed is None or not probability:
        return label, None, None, None
    return label, float(reviewed), probability, (side.item_id, side.seed)


def pair_labels(
    pairing: Pairing, decided: Mapping[str, bool], judged: Mapping[str, CaseSide]
) -> list[PairLabels]:
    """Every compared pair's labels for `ppi_change`."""
    pairs = []
    for base, cand in pairing.pairs:
        jb, hb, pb, draw_b = side_labels(base, decided, judged)
        jc, hc, pc, draw_c = side_labels(cand, decided, judged)
        shared = draw_b is not None and draw_b == draw_c and pb and pc
        joint = min(pb, pc) if shared and pb and pc else None
        pairs.append(PairLabels(jb, jc, hb, hc, pb, pc, joint))
    return pairs


def _decided(decisions: Mapping[str, ItemDecision]) -> dict[str, bool]:
    """Item id -> reviewers' pass, for items they agree on."""
    return {item: d.passed for item, d in decisions.items() if d.passed is not None}


def _judged(
    pairing: Pairing, decisions: Mapping[str, ItemDecision], store: RunStore
) -> dict[str, CaseSide]:
    """The newest judged side of each reviewed item of the pairing with its review probability
    (two-phase for an audit; see the module's docstring), read from the run store only when
    reviewers labelled a compared side."""
    resolved = {item for item, d in decisions.items() if not d.pending}
    wanted = {
        s.item_id for pair in pairing.pairs for s in pair if s.item_id in resolved or s.by_review
    }
    if not wanted or not store.folder.is_dir():
        return {}
    history = store.judged_history()
    shares = resolved_shares(history.sent, resolved)
    found = {}
    for item in sorted(i for i in wanted if i and i in history.judged):
        run_id, record = history.judged[item]
        first = result_review_probability(record)
        probability = (
            two_phase_probability(first, run_id, record, shares) if record.audit else first
        )
        found[item] = replace(CaseSide.from_result(record), review_probability=probability)
    return found


def ppi_labels(
    pairing: Pairing, decisions: Mapping[str, ItemDecision], store: RunStore
) -> list[PairLabels]:
    """Every compared pair's labels, reviewers' weighted by their chance of review;
    `decisions` are the review desk's, by item id. A record the store cannot read raises
    `RecordError`."""
    return pair_labels(pairing, _decided(decisions), _judged(pairing, decisions, store))


def gate_ppi(
    pairing: Pairing,
    decisions: Mapping[str, ItemDecision],
    store: RunStore,
    level: float = 0.95,
) -> tuple[Change | None, str]:
    """The prediction-powered change of `pairing`, or None, and a note saying why or on what;
    `decisions` are the review desk's, by item id."""
    try:
        pairs = ppi_labels(pairing, decisions, store)
    except HybridJudgeError as exc:
        return None, f"not estimated: {exc}"
    change = ppi_change(pairs, level)
    if change is None:
        return None, NO_AUDITS
    if change.high - change.low < 1e-12:
        return None, degenerate_note(change.labelled)
    on_base = sum(p.human_baseline is not None for p in pairs)
    labels = "reviewer label" if change.labelled == 1 else "reviewer labels"
    return change, (
        f"{change.labelled} {labels} ({on_base} on the baseline's side, "
        f"{change.labelled - on_base} on the candidate's); reported only, not gating"
    )
