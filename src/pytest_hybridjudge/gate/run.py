"""The gate at the end of a run: pair this run with its baseline, decide, write `gate.json`.

The I/O edge of the gate (`decide`): the baseline is read when the session starts (a wrong
`--judge-baseline` stops the run before any call); this run's results are read back from
results.jsonl once it is written, so the run never holds every result in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import GateSpec, HybridJudgeConfig
from ..files import write_json_atomic
from ..runs import RESULTS_FIX
from .baseline import BaselineError, CaseSide, pair, sides, with_resolutions
from .decide import GateReport, PPIChange, compare
from .ppi import gate_ppi

if TYPE_CHECKING:
    from ..review.decisions import ItemDecision
    from ..runs import RunPaths, RunStore
    from ..verdict import CaseResult

GATE_NAME = "gate.json"
OWN_RESULTS_FIX = (
    "this run's own results.jsonl was changed or removed before the gate read it; run again"
)


@dataclass(frozen=True)
class Baseline:
    """What this run is compared with: an earlier run's cases, or a target of this run."""

    label: str
    cases: Mapping[str, CaseSide] | None = None  # an earlier run
    target: str | None = None  # a target of this session


def load_baseline(
    option: str | None, settings: HybridJudgeConfig, store: RunStore
) -> Baseline | None:
    """The baseline the command line or `[tool.hybridjudge.gate]` names, checked; None when the
    run has none. Problems raise `BaselineError` naming the option or key and the fix (a run
    that cannot be found `RunReferenceError`, a results line that cannot be read `RecordError`)."""
    gate = settings.gate
    labels = [t.label for t in settings.targets]
    for key in ("baseline", "candidate"):
        value = getattr(gate, key)
        if value is not None and value not in labels:
            raise BaselineError(
                f"[tool.hybridjudge.gate] {key} = {value!r} names no target; the targets are "
                f"{', '.join(labels) or 'none'}"
            )
    if len(labels) > 1 and gate.candidate is None and (option or gate.baseline):
        raise BaselineError(
            "several targets run: name the one to gate with `candidate` in [tool.hybridjudge.gate]"
        )
    if option:
        path = store.resolve(option, "--judge-baseline").results
        fix = RESULTS_FIX.format(option="--judge-baseline")
        records = store.results(path, fix, "the baseline's")
        label = f"{path} (the latest complete run)" if option == "latest" else str(path)
        return Baseline(label=label, cases=sides(records, _earlier_target(records, gate, path)))
    if gate.baseline is not None:
        if gate.candidate is None:
            raise BaselineError(
                "[tool.hybridjudge.gate] names a `baseline` target but no `candidate`: name both"
            )
        return Baseline(label=f"target {gate.baseline}", target=gate.baseline)
    return None


def _earlier_target(records: Sequence[CaseResult], gate: GateSpec, path: Path) -> str | None:
    """Which of an earlier run's targets is the baseline, when it ran several: the gate's
    `baseline`, else its `candidate` (the same target's earlier results)."""
    labels = sorted({r.target for r in records})
    if len(labels) <= 1:
        return None
    for name in (gate.baseline, gate.candidate):
        if name in labels:
            return name
    raise BaselineError(
        f"--judge-baseline {path}: that run holds several targets ({', '.join(labels)}); name "
        "the one to compare with as `baseline` (or `candidate`) in [tool.hybridjudge.gate]"
    )


def gate_run(
    baseline: Baseline,
    settings: HybridJudgeConfig,
    store: RunStore,
    paths: RunPaths,
    decisions: Mapping[str, ItemDecision] | None = None,
) -> GateReport:
    """Compare this run's results (read back from `paths.results`) with `baseline`; write and
    return the gate report in the run's folder.

    `decisions` (the review desk's, by item id) apply to both sides alike, as they are now,
    and give the prediction-powered change its labels."""
    gate = settings.gate
    records = store.results(paths.results, OWN_RESULTS_FIX, "this run's")
    reviewed = decisions or {}
    candidate = with_resolutions(sides(records, gate.candidate), reviewed)
    earlier = baseline.cases if baseline.cases is not None else sides(records, baseline.target)
    base, base_label = with_resolutions(earlier, reviewed), baseline.label
    cand_label = f"target {gate.candidate}" if gate.candidate else "this run"
    pairing = pair(base, candidate)
    report = compare(pairing, gate, base_label, cand_label)
    report.position_consistency = position_consistency(records)
    change, report.ppi_note = gate_ppi(pairing, reviewed, store)
    if change is not None:
        report.ppi = PPIChange(
            estimate=round(change.estimate, 4),
            low=round(change.low, 4),
            high=round(change.high, 4),
            labelled=change.labelled,
        )
    write_json_atomic(paths.run_dir / GATE_NAME, report.model_dump(mode="json"))
    return report


def position_consistency(records: Iterable[CaseResult]) -> dict[str, float]:
    """Per judge, the share of its pairwise verdicts that did not flip when the order did."""
    stable: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    for record in records:
        for j in record.pairwise.judgments if record.pairwise is not None else ():
            if j.consistent is not None:
                judged[j.judge] += 1
                stable[j.judge] += j.consistent
    return {judge: stable[judge] / judged[judge] for judge in sorted(judged)}


__all__ = ["GATE_NAME", "Baseline", "BaselineError", "gate_run", "load_baseline"]
