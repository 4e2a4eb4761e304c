"""Calibration: resolved escalations as a two-phase sample (issue 15, item 3), pooling runs of
one rubric version and panel, and how many more audits would certify (item 4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pytest_hybridjudge.review.calibration_report import rubric_report
from pytest_hybridjudge.review.labelled import labelled_cases
from pytest_hybridjudge.review.resolutions import Resolution
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict, PolicyInForce


def record(
    i: int,
    *,
    confidence: float,
    audit: bool = False,
    version: str = "v1",
    judges: tuple[str, ...] = ("a", "b"),
    audit_rate: float = 0.05,
) -> CaseResult:
    return CaseResult(
        case_id=f"c{i}",
        target="t",
        rubric="r",
        rubric_version=version,
        outcome="passed" if audit else "escalated",
        verdicts=[JudgeVerdict(judge=j, model=j, score=5, passed=True) for j in judges],
        panel=PanelVerdict(passed=True, votes_pass=len(judges), confidence=confidence),
        item_id=f"c{i}",
        audit=audit,
        policy=PolicyInForce(min_confidence=0.7, audit_rate=audit_rate, seed=0),
        inclusion_probability=audit_rate if audit else 1.0,
    )


def resolution(i: int, verdict: str = "pass") -> Resolution:
    return Resolution.model_validate(
        {
            "item_id": f"c{i}",
            "case_id": f"c{i}",
            "verdict": verdict,
            "reviewer": "ann",
            "resolved_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "rubric": "r",
        }
    )


def test_half_resolved_escalations_weigh_two_each() -> None:
    # run-1 escalated c0..c9 for low confidence; reviewers resolved five of them
    judged: dict[str, tuple[str, CaseResult]] = {
        f"c{i}": ("run-1", record(i, confidence=0.5)) for i in range(10)
    }
    judged |= {f"c{i}": ("run-1", record(i, confidence=0.9, audit=True)) for i in range(10, 14)}
    sent = {
        ("run-1", "r", False): {f"c{i}" for i in range(10)},
        ("run-1", "r", True): {f"c{i}" for i in range(10, 14)},
    }
    resolved = [resolution(i) for i in (0, 1, 2, 3, 4, 10, 11, 12, 13)]
    dataset = labelled_cases(judged, resolved, sent)
    weights = {c.item_id: c.weight for c in dataset.cases}
    assert weights["c0"] == pytest.approx(2.0)  # 1 / (1 x 5 of 10 resolved); was 1
    assert weights["c10"] == pytest.approx(20.0)  # every audit resolved: 1 / 0.05


def cases_of(run: str, start: int, n: int, **fields: Any) -> list[tuple[str, CaseResult]]:
    return [(run, record(start + i, confidence=0.95, audit=True, **fields)) for i in range(n)]


def report_for(pairs: list[tuple[str, CaseResult]], target: float = 0.9) -> Any:
    judged = {r.item_id or "": (run, r) for run, r in pairs}
    sent: dict[tuple[str, str, bool], set[str]] = {}
    for run, r in pairs:
        sent.setdefault((run, "r", r.audit), set()).add(r.item_id or "")
    dataset = labelled_cases(judged, [resolution(int(k[1:])) for k in judged], sent)
    return rubric_report(
        "r",
        dataset.cases,
        disagree=0,
        unjudged=0,
        target=target,
        delta=0.1,
        resamples=0,
        seed=0,
        judged=dataset.judged["r"],
        judged_groups=dataset.judged_groups["r"],
    )


def test_runs_of_one_rubric_version_and_panel_are_pooled_and_others_left_out() -> None:
    # 12 audits per run cannot certify 0.9 (22 needed); two runs of v2 pooled can
    pairs = cases_of("run-1", 0, 30, version="v1")  # an older rubric version
    pairs += cases_of("run-2", 100, 12, version="v2")
    pairs += cases_of("run-3", 200, 12, version="v2")
    pairs += cases_of("run-3", 300, 5, version="v2", judges=("a", "c"))  # another panel
    report = report_for(pairs)
    assert report.sample is not None
    assert report.sample.runs == 2 and report.sample.audits == 24
    assert report.sample.other_versions == 35
    assert report.fit is not None and report.fit.n == 24 and report.fit.passed


def test_calibrate_says_how_many_more_audits_would_certify() -> None:
    from pytest_hybridjudge.cli.calibrate import render_report

    report = report_for(cases_of("run-1", 0, 12))
    assert report.fit is not None and not report.fit.passed
    text = "\n".join(render_report(report))
    assert "about 10 more audits would certify the target" in text
    assert "at audit_rate 0.05, about 200 more confident cases judged" in text
