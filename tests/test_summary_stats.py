"""The run's statistics in summary.json and the terminal: alpha per rubric, pass rates with
intervals from reviewed audits, the audit sample and its cost."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import write_run
from pytest_hybridjudge.config import EscalationSpec
from pytest_hybridjudge.stats import judge_alpha, krippendorff_alpha, ppi_mean
from pytest_hybridjudge.summary_text import summary_lines
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict, PolicyInForce

POLICY = PolicyInForce(min_confidence=0.7, audit_rate=0.05, seed=0)

RUN_1, RUN_2 = "20260101T090000Z-aaaaaa", "20260102T090000Z-bbbbbb"  # run ids, as runs get


def result(
    case: str,
    rubric: str,
    scores: dict[str, int],
    *,
    outcome: str = "passed",
    audit: bool = False,
    resolved: bool = False,
) -> CaseResult:
    verdicts = [JudgeVerdict(judge=j, model=j, score=s, passed=s >= 4) for j, s in scores.items()]
    passes = sum(1 for s in scores.values() if s >= 4)
    return CaseResult(
        case_id=case,
        nodeid=f"g.yaml::{case}",
        target="t",
        rubric=rubric,
        outcome=outcome,  # type: ignore[arg-type]
        verdicts=[] if resolved else verdicts,
        panel=None
        if resolved
        else PanelVerdict(
            passed=passes * 2 > len(scores) if scores else None,
            votes_pass=passes,
            votes_fail=len(scores) - passes,
            confidence=0.9,
        ),
        item_id=case,
        audit=audit,
        policy=POLICY,
        inclusion_probability=0.05,
        resolved_by=["ann"] if resolved else [],
        tier="annotator" if outcome == "escalated" else None,
        review_minutes=3.0 if outcome == "escalated" else None,
    )


def report_for(tmp_path: Path, run_id: str, results: list[CaseResult]) -> dict[str, Any]:
    return write_run(tmp_path, run_id, results=results, runs=tmp_path / "runs")


def test_alpha_is_per_rubric_never_pooled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    results = []
    for rubric, base in (("r1", 1), ("r2", 6)):
        for i in range(30):
            truth = base + int(rng.integers(0, 4))
            a, b = truth + int(rng.integers(-1, 2)), truth + int(rng.integers(-1, 2))
            results.append(result(f"{rubric}-{i}", rubric, {"a": a, "b": b}))
    summary = report_for(tmp_path, RUN_1, results)
    rubrics = summary["rubrics"]
    assert isinstance(rubrics, dict)
    pooled = judge_alpha(
        [{"a": r.verdicts[0].score or 0, "b": r.verdicts[1].score or 0} for r in results]
    )
    for rubric in ("r1", "r2"):
        mine = [r for r in results if r.rubric == rubric]
        data = [[float(r.verdicts[k].score or 0) for r in mine] for k in (0, 1)]
        alpha = rubrics[rubric]["agreement"]["krippendorff_alpha_ordinal"]
        assert alpha == pytest.approx(krippendorff_alpha(data, "ordinal"))
        assert pooled is not None and alpha < pooled - 0.2  # pooling the rubrics inflates it
    assert summary["agreement"]["krippendorff_alpha_ordinal"] is None  # type: ignore[index]
    lines = "\n".join(summary_lines(summary))  # type: ignore[arg-type]
    assert "judge alpha" in lines and "per rubric above" in lines


def test_judge_alpha_sparse_input_warns_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert judge_alpha([{"a": 1, "b": 2}, {"a": 3}, {"c": 4}]) is not None or True
        judge_alpha([{"a": 1}, {"b": 3}, {"c": 4, "a": 4}])
        judge_alpha([{"a": 1, "b": 1}, {"a": 3}])


def test_pass_rate_is_judge_only_without_reviewed_audits(tmp_path: Path) -> None:
    results = [result(f"c{i}", "r", {"a": 5 if i % 4 else 2}) for i in range(20)]
    summary = report_for(tmp_path, RUN_1, results)
    rate = summary["rubrics"]["r"]["pass_rate"]  # type: ignore[index]
    assert rate == {
        "estimate": 0.75,
        "low": None,
        "high": None,
        "method": "judge-only",
        "labelled": 0,
        "cases": 20,
        "why": "no reviewer labels: the judges' rate is uncorrected",
        "how": "the judges' labels on 20 cases, not yet checked by reviewers",
    }
    assert "  rubric r: 75.0% (no interval) (20 passed, 0 failed, 0 escalated)" in "\n".join(
        summary_lines(summary)  # type: ignore[arg-type]
    )


def test_pass_rate_uses_reviewed_audits_of_an_earlier_run(tmp_path: Path) -> None:
    # run 1: 200 cases judged pass; c0..c9 audited (rate 0.05). Reviewers fail c0..c4.
    first = [
        result(f"c{i}", "r", {"a": 5}, outcome="escalated" if i < 10 else "passed", audit=i < 10)
        for i in range(200)
    ]
    report_for(tmp_path, RUN_1, first)
    # run 2: the reviewed items are decided by review; the rest judged again
    second = [
        result(f"c{i}", "r", {}, outcome="failed" if i < 5 else "passed", resolved=True)
        for i in range(10)
    ]
    second += [result(f"c{i}", "r", {"a": 5}) for i in range(10, 200)]
    summary = report_for(tmp_path, RUN_2, second)
    rate = summary["rubrics"]["r"]["pass_rate"]  # type: ignore[index]
    expected = ppi_mean([1.0] * 200, [1.0] * 10, [0.0] * 5 + [1.0] * 5, [0.05] * 10)
    assert expected.estimate == pytest.approx(1 - 5 * 20 / 200)
    assert rate["method"] == "ppi" and rate["labelled"] == 10
    assert rate["estimate"] == pytest.approx(round(expected.estimate or 0, 4))
    assert rate["low"] < rate["estimate"] < rate["high"]
    assert summary["pass_rate"]["method"] == "ppi"  # type: ignore[index]


def test_audit_rate_and_its_cost_are_in_the_summary(tmp_path: Path) -> None:
    assert EscalationSpec().audit_rate == 0.05
    results = [result("a", "r", {"a": 5}, outcome="escalated", audit=True)]
    results += [result(f"c{i}", "r", {"a": 5}) for i in range(5)]
    summary = report_for(tmp_path, RUN_1, results)
    assert summary["audit"] == {
        "rate": 0.05,
        "seed": 0,
        "samples": 1,
        "minutes": 3.0,
        "usd": pytest.approx(1.0),  # 3 min at $20/h
    }
    line = next(x for x in summary_lines(summary) if x.startswith("audit:"))  # type: ignore[arg-type]
    assert line == "audit: 5% of confident cases (seed 0): 1 drawn, expected review 3 min, $1.00"
    json.dumps(summary)
