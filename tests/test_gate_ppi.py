"""The prediction-powered change of a gate: the estimator, and where its labels come from."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from pytest_hybridjudge.config import GateSpec
from pytest_hybridjudge.gate.baseline import CaseSide, pair
from pytest_hybridjudge.gate.decide import compare, gate_lines
from pytest_hybridjudge.gate.ppi import NO_AUDITS, gate_ppi, pair_labels
from pytest_hybridjudge.review.decisions import ReviewDesk
from pytest_hybridjudge.review.resolutions import Resolution
from pytest_hybridjudge.runs import RunStore
from pytest_hybridjudge.stats import PairLabels, ppi_change
from pytest_hybridjudge.verdict import CaseResult


def _direct(
    jb: np.ndarray,
    jc: np.ndarray,
    hb: np.ndarray,
    hc: np.ndarray,
    ib: np.ndarray,
    ic: np.ndarray,
    pb: np.ndarray,
    pc: np.ndarray,
    joint: np.ndarray,
) -> tuple[float, float]:
    """Estimate and standard error, written out with arrays."""
    n = jb.size
    rb, rc = np.where(ib, hb - jb, 0.0), np.where(ic, hc - jc, 0.0)
    estimate = (jc - jb).mean() + (rc / pc - rb / pb).sum() / n
    var = ((1 - pc) / pc**2 * rc**2 + (1 - pb) / pb**2 * rb**2).sum()
    var -= (2 * (joint - pc * pb) / (joint * pc * pb) * rc * rb).sum()
    return float(estimate), float(np.sqrt(max(var, 0.0)) / n)


def test_ppi_change_matches_a_direct_numpy_computation() -> None:
    rng = np.random.default_rng(7)
    n = 400
    truth_b, truth_c = rng.random(n) < 0.8, rng.random(n) < 0.7
    jb = (truth_b ^ (rng.random(n) < 0.1)).astype(float)
    jc = (truth_c ^ (rng.random(n) < 0.15)).astype(float)
    pb = np.where(rng.random(n) < 0.1, 1.0, 0.2)  # escalations are always reviewed
    pc = np.where(rng.random(n) < 0.5, pb, 0.3)
    shared = (pc == pb) & (rng.random(n) < 0.5)  # same output: one audit draw for both
    ub = rng.random(n)
    uc = np.where(shared, ub, rng.random(n))
    ib, ic = ub < pb, uc < pc
    joint = np.where(shared, np.minimum(pb, pc), pb * pc)
    pairs = [
        PairLabels(
            jb[i],
            jc[i],
            float(truth_b[i]) if ib[i] else None,
            float(truth_c[i]) if ic[i] else None,
            pb[i] if ib[i] else None,
            pc[i] if ic[i] else None,
            joint[i] if shared[i] else None,
        )
        for i in range(n)
    ]
    change = ppi_change(pairs)
    assert change is not None
    estimate, se = _direct(jb, jc, truth_b, truth_c, ib, ic, pb, pc, joint)
    assert change.estimate == pytest.approx(estimate)
    z = norm.ppf(0.975)
    assert (change.low, change.high) == pytest.approx((estimate - z * se, estimate + z * se))
    assert change.labelled == int(ib.sum() + ic.sum()) and change.n == n


def test_ppi_change_is_exact_when_every_side_was_reviewed_for_certain() -> None:
    pairs = [PairLabels(1, 1, 1, 0, 1.0, 1.0), PairLabels(0, 1, 1, 1, 1.0, 1.0)]
    change = ppi_change(pairs)
    assert change is not None
    assert (change.estimate, change.low, change.high) == (-0.5, -0.5, -0.5)
    assert ppi_change([PairLabels(1, 0)] * 3) is None  # no label: no estimate
    with pytest.raises(ValueError, match="candidate reviewer label needs an inclusion"):
        ppi_change([PairLabels(1, 0, human_candidate=1.0)])


def test_ppi_change_covers_the_true_change() -> None:
    """Judges that miss the candidate's wrong answers, 30% audits on each side: the judges'
    change is biased, the PPI interval covers the true change about 95% of the time."""
    rng = np.random.default_rng(3)
    n, trials, covered, judge_covered = 300, 300, 0, 0
    for _ in range(trials):
        truth_b = rng.random(n) < 0.8
        truth_c = truth_b & ~(rng.random(n) < 0.1)
        jb = truth_b ^ (rng.random(n) < 0.05)
        jc = truth_c | (rng.random(n) < 0.5)  # half of the wrong answers fool the judges
        ib, ic = rng.random(n) < 0.3, rng.random(n) < 0.3
        pairs = [
            PairLabels(
                float(jb[i]),
                float(jc[i]),
                float(truth_b[i]) if ib[i] else None,
                float(truth_c[i]) if ic[i] else None,
                0.3 if ib[i] else None,
                0.3 if ic[i] else None,
            )
            for i in range(n)
        ]
        change = ppi_change(pairs)
        assert change is not None
        true = truth_c.mean() - truth_b.mean()
        covered += change.low <= true <= change.high
        judge_covered += abs(jc.mean() - jb.mean() - true) < change.high - change.estimate
    assert 0.9 <= covered / trials <= 0.99
    assert judge_covered / trials < 0.5  # the uncorrected judges' change is off


def _side(case: str, status: str, **kw: object) -> CaseSide:
    return CaseSide(case, status, item_id=f"{case}-{kw.pop('out', 'x')}", **kw)  # type: ignore[arg-type]


def test_labels_come_from_resolutions_and_from_runs_that_judged_a_reviewed_case() -> None:
    base = {
        "a": _side("a", "passed", review_probability=0.05, seed=1, out="same"),
        "b": _side("b", "passed", review_probability=0.05, seed=1),
        "c": _side("c", "not_passed", review_probability=1.0),  # escalated, resolved since
        "d": _side("d", "passed"),
        "e": _side("e", "passed"),
    }
    cand = {
        "a": _side("a", "passed", review_probability=0.05, seed=1, out="same"),
        "b": _side("b", "not_passed", out="y"),
        "c": _side("c", "passed", out="y"),
        "d": _side("d", "not_passed", by_review=True, out="y"),  # a reviewer decided it
        "e": _side("e", "passed", by_review=True, out="y"),  # no run recorded its judging
    }
    decided = {"a-same": False, "b-x": True, "c-x": True}
    judged = {"d-y": _side("d", "passed", review_probability=0.05, seed=1, out="y")}
    pairing = pair(base, cand)
    found = pair_labels(pairing, decided, judged)
    labels = {b.case_id: p for (b, _), p in zip(pairing.pairs, found, strict=True)}
    assert labels["a"] == PairLabels(1, 1, 0, 0, 0.05, 0.05, joint=0.05)  # one shared draw
    assert labels["b"] == PairLabels(1, 0, 1, None, 0.05, None)
    assert labels["c"] == PairLabels(0, 1, 1, None, 1.0, None)
    assert labels["d"] == PairLabels(1, 1, None, 0, None, 0.05)  # judges passed, reviewer not
    assert labels["e"] == PairLabels(1, 1)  # the reviewer's label stands, uncorrected


def _record(case: str, outcome: str, output: str, **kw: object) -> CaseResult:
    return CaseResult.model_validate(
        {
            "case_id": case,
            "target": "t",
            "outcome": outcome,
            "output": output,
            "item_id": f"{case}:{output}",
            "panel": {"passed": outcome == "passed" or kw.get("audit_pass", False)},
            "policy": {"min_confidence": 0.7, "audit_rate": 0.25, "seed": 0},
            **{k: v for k, v in kw.items() if k != "audit_pass"},
        }
    )


def test_the_gate_report_carries_the_ppi_change_in_every_output(tmp_path: Path) -> None:
    from pytest_hybridjudge.ci_summary import gate_markdown
    from pytest_hybridjudge.gate.baseline import sides
    from pytest_hybridjudge.gate.decide import GateReport, PPIChange

    base = [_record(f"q{i}", "passed", "right") for i in range(8)]
    base[0] = _record("q0", "escalated", "right", audit=True, audit_pass=True)
    cand = [_record(f"q{i}", "passed", "new") for i in range(8)]
    pairing = pair(sides(base), sides(cand))
    resolutions = tmp_path / "resolutions.jsonl"
    none, note = gate_ppi(pairing, ReviewDesk(resolutions).decisions, RunStore(tmp_path))
    assert none is None and note == NO_AUDITS
    resolution = Resolution(
        item_id="q0:right",
        case_id="q0",
        verdict="fail",
        reviewer="ann",
        resolved_at=dt.datetime.now(dt.UTC),
    )
    resolutions.write_text(resolution.model_dump_json() + "\n")
    change, note = gate_ppi(pairing, ReviewDesk(resolutions).decisions, RunStore(tmp_path))
    assert change is not None and change.labelled == 1
    # the judges see no change; the reviewed audit says the baseline missed 1/0.25 cases of 8
    assert change.estimate == pytest.approx(0 + 4 / 8)
    assert "1 reviewer label (1 on the baseline's side, 0 on the candidate's)" in note
    report = compare(pairing, GateSpec(), "base", "cand")
    report.ppi = PPIChange(estimate=change.estimate, low=change.low, high=change.high, labelled=1)
    report.ppi_note = note
    line = gate_lines(report)[-1]
    assert line.startswith("  PPI estimate of the change: +50.0% (95% interval [")
    markdown = gate_markdown(report)
    assert any(r.startswith("| PPI estimate of the change | +50.0% (95% ") for r in markdown)
    saved = GateReport.model_validate(json.loads(report.model_dump_json()))
    assert saved.ppi == report.ppi  # gate.json round-trips it


def test_a_zero_width_ppi_change_is_not_reported(tmp_path: Path) -> None:
    """Issue 15, item 1: the reviewed audit agrees with the judges, so the correction has no
    sampled variance; a change of [x, x] would claim certainty, so none is given, and why."""
    from pytest_hybridjudge.gate.baseline import sides

    base = [_record(f"q{i}", "passed", "right") for i in range(8)]
    base[0] = _record("q0", "escalated", "right", audit=True, audit_pass=True)
    cand = [_record(f"q{i}", "passed", "new") for i in range(8)]
    resolution = Resolution(
        item_id="q0:right",
        case_id="q0",
        verdict="pass",
        reviewer="ann",
        resolved_at=dt.datetime.now(dt.UTC),
    )
    resolutions = tmp_path / "resolutions.jsonl"
    resolutions.write_text(resolution.model_dump_json() + "\n")
    change, note = gate_ppi(
        pair(sides(base), sides(cand)), ReviewDesk(resolutions).decisions, RunStore(tmp_path)
    )
    assert change is None
    assert note.startswith("not estimated: the 1 reviewer label on compared cases shows")


def test_unresolved_escalations_give_the_ppi_change_no_labels(tmp_path: Path) -> None:
    """The baseline's escalation was resolved, the candidate's is fresh: the pair is left out
    of the gate, so of the PPI change too (it printed -10.0% [-10.0%, -10.0%] before)."""
    from pytest_hybridjudge.gate.baseline import sides

    base = [_record(f"q{i}", "passed", "right") for i in range(10)]
    base[0] = _record("q0", "escalated", "right")
    cand = [_record(f"q{i}", "passed", "new") for i in range(10)]
    cand[0] = _record("q0", "escalated", "new")
    resolution = Resolution(
        item_id="q0:right",
        case_id="q0",
        verdict="pass",
        reviewer="ann",
        resolved_at=dt.datetime.now(dt.UTC),
    )
    resolutions = tmp_path / "resolutions.jsonl"
    resolutions.write_text(resolution.model_dump_json() + "\n")
    pairing = pair(sides(base), sides(cand))
    assert pairing.unresolved == ["q0"]
    change, note = gate_ppi(pairing, ReviewDesk(resolutions).decisions, RunStore(tmp_path))
    assert change is None and note == NO_AUDITS


def test_resolved_audits_are_weighted_by_the_share_of_their_run_resolved(
    tmp_path: Path,
) -> None:
    """Issue 15, item 3: half the baseline run's audits and half its escalations are resolved.
    The gate compares the unresolved audits too, so each resolved audit stands for two: its
    probability is the audit rate x 0.5. The unresolved escalations are left out of the pairs,
    so every compared escalation was resolved: probability 1."""
    from helpers import write_run
    from pytest_hybridjudge.gate.baseline import sides, with_resolutions
    from pytest_hybridjudge.gate.ppi import ppi_labels
    from pytest_hybridjudge.verdict import JudgeVerdict

    said_fail = [JudgeVerdict(judge="a", model="a", score=2, passed=False)]
    said_pass = [JudgeVerdict(judge="a", model="a", score=5, passed=True)]
    base = [_record(f"q{i}", "passed", "right", rubric="r") for i in range(12)]
    for i in range(4):  # q0-q3 escalated, q4-q7 audited
        base[i] = _record(f"q{i}", "escalated", "right", rubric="r", verdicts=said_fail)
        base[i + 4] = _record(
            f"q{i + 4}", "passed", "right", rubric="r", audit=True, verdicts=said_pass
        )
    write_run(tmp_path, "20260101T000000Z-aaaaaa", results=base, runs=tmp_path / "runs")
    cand = [_record(f"q{i}", "passed", "new", rubric="r") for i in range(12)]
    resolutions = tmp_path / "resolutions.jsonl"
    resolutions.write_text(
        "".join(
            Resolution(
                item_id=f"q{i}:right",
                case_id=f"q{i}",
                verdict="pass" if i < 4 else "fail",
                reviewer="ann",
                resolved_at=dt.datetime.now(dt.UTC),
            ).model_dump_json()
            + "\n"
            for i in (0, 1, 4, 5)
        )
    )
    decisions = ReviewDesk(resolutions).decisions
    pairing = pair(with_resolutions(sides(base), decisions), sides(cand))
    assert pairing.unresolved == ["q2", "q3"]
    found = ppi_labels(pairing, decisions, RunStore(tmp_path / "runs"))
    reviewed = {
        pairing.pairs[i][0].case_id: p for i, p in enumerate(found) if p.human_baseline is not None
    }
    assert sorted(reviewed) == ["q0", "q1", "q4", "q5"]
    assert [reviewed[c].pi_baseline for c in ("q4", "q5")] == [0.25 * 0.5] * 2
    assert [reviewed[c].pi_baseline for c in ("q0", "q1")] == [1.0, 1.0]
    assert [(reviewed[c].judge_baseline, reviewed[c].human_baseline) for c in ("q0", "q4")] == [
        (0.0, 1.0),
        (1.0, 0.0),
    ]
