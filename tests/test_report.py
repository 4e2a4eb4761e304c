"""The run report: results streamed to a partial file, counted as they come, renamed at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_hybridjudge.report import RunReport
from pytest_hybridjudge.runs import RunPaths
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict, Usage


def _result(case: str, outcome: str, score: int = 5, judges: str = "ab") -> CaseResult:
    verdicts = [
        JudgeVerdict(judge=j, model=f"openai/{j}", score=score, usage=Usage(calls=1, cost=0.5))
        for j in judges
    ]
    return CaseResult(
        case_id=case,
        nodeid=f"gold/g.yaml::{case}",
        target="openai/t",
        rubric="correctness",
        outcome=outcome,  # type: ignore[arg-type]
        verdicts=verdicts,
        panel=PanelVerdict(votes_pass=len(judges)),
        target_usage=Usage(calls=1, cost=1.0),
        usage=Usage(calls=1 + len(judges), cost=1.0 + 0.5 * len(judges)),
        tier="annotator" if outcome == "escalated" else None,
        review_minutes=2.0 if outcome == "escalated" else None,
    )


def configured(items: int, minutes: float) -> dict[str, object]:
    """A tier's review load whose minutes come from the settings (no timed reviews yet)."""
    return {
        "items": items,
        "minutes": minutes,
        "minutes_from": "configured",
        "median_seconds": None,
        "timed_reviews": 0,
    }


def _report(tmp_path: Path) -> RunReport:
    return RunReport("run-1", RunPaths.for_run(tmp_path / "runs", "run-1"))


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_results_stream_to_a_partial_file_and_become_results_at_the_end(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.add(_result("a", "passed"))
    report.add(_result("b", "escalated", score=3))
    assert [r["case_id"] for r in _lines(report.partial)] == ["a", "b"]  # on disk already
    assert not report.paths.results.exists()  # never a half-written results.jsonl
    summary = report.write()
    assert not report.partial.exists()
    assert [(r["case_id"], r["outcome"]) for r in _lines(report.paths.results)] == [
        ("a", "passed"),
        ("b", "escalated"),
    ]
    assert summary["outcomes"] == {"passed": 1, "failed": 0, "escalated": 1, "skipped": 0}
    assert summary["cases"] == 2
    assert summary["usage"]["calls"] == 6
    assert summary["models"]["a"]["calls"] == 2 and summary["models"]["openai/t"]["calls"] == 2
    assert summary["review"] == {"annotator": configured(1, 2.0)}
    assert summary["agreement"]["cases_judged"] == 2
    assert summary["agreement"]["krippendorff_alpha_ordinal"] == 1.0
    assert [i["case_id"] for i in _lines(report.paths.manifest)] == ["b"]


def test_a_case_recorded_twice_keeps_its_last_record_everywhere(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.add(_result("a", "escalated", score=3))
    report.add(_result("b", "passed"))
    report.add(_result("a", "failed", score=1))  # e.g. a rerun plugin ran it again
    summary = report.write()
    records = _lines(report.paths.results)
    assert [(r["case_id"], r["outcome"]) for r in records] == [("b", "passed"), ("a", "failed")]
    assert summary["cases"] == 2
    assert summary["outcomes"] == {"passed": 1, "failed": 1, "escalated": 0, "skipped": 0}
    assert summary["usage"]["calls"] == 6  # the superseded record's calls are not counted
    assert summary["review"] == {}
    assert _lines(report.paths.manifest) == []


def test_a_run_without_cases_writes_empty_files(tmp_path: Path) -> None:
    report = _report(tmp_path)
    summary = report.write()
    assert report.paths.results.read_text() == ""
    assert summary["cases"] == 0 and summary["pass_rate"]["estimate"] is None
    assert (tmp_path / "runs" / "LATEST").read_text() == "run-1\n"


def test_writing_twice_keeps_the_results(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.add(_result("a", "passed"))
    report.write()
    report.write()
    assert [r["case_id"] for r in _lines(report.paths.results)] == ["a"]


def test_pairwise_judges_are_in_the_cost_per_model(tmp_path: Path) -> None:
    from pytest_hybridjudge.verdict import PairwiseJudgment, PairwiseResult

    report = _report(tmp_path)
    report.add(_result("a", "passed"))
    pairwise = _result("p", "passed", judges="")
    pairwise.pairwise = PairwiseResult(
        baseline_output="old",
        judgments=[
            PairwiseJudgment(judge="a", usage=Usage(calls=2, cost=0.25)),
            PairwiseJudgment(judge="c", usage=Usage(calls=2, cost=0.75)),
        ],
    )
    report.add(pairwise)
    cost = report.summary().cost
    assert cost.inference == {"a": 0.75, "b": 0.5, "c": 0.75, "openai/t": 2.0}
    assert cost.inference_total == pytest.approx(4.0)


def test_budget_covers_only_cases_that_got_their_reservation(tmp_path: Path) -> None:
    report = RunReport("run-1", RunPaths.for_run(tmp_path / "runs", "run-1"), budget=10.0)
    ran = _result("a", "passed")
    ran.reserved = True
    refused = _result("b", "skipped", judges="")
    refused.over_budget = True
    report.add(ran)
    report.add(refused)
    report.add(_result("c", "skipped", judges=""))  # never run: the session stopped first
    budget = report.summary().budget
    assert budget is not None
    assert (budget.cases_covered, budget.cases_skipped) == (1, 1)


def test_an_audit_keeps_its_outcome_and_is_a_review_item_counted_apart(tmp_path: Path) -> None:
    """An audit is a confident decision also sent to people: it passes or fails like any other
    case, and it is in the manifest (with its review cost) and counted as an audit sample."""
    from pytest_hybridjudge.summary_text import summary_lines
    from pytest_hybridjudge.verdict import PolicyInForce

    report = _report(tmp_path)
    audited = _result("a", "passed").model_copy(
        update={
            "audit": True,
            "tier": "annotator",
            "review_minutes": 2.0,
            "policy": PolicyInForce(min_confidence=0.0, audit_rate=0.05, seed=0),
        }
    )
    report.add(audited)
    report.add(_result("b", "passed"))
    report.add(_result("c", "escalated", score=3))
    summary = report.write()
    assert summary["outcomes"] == {"passed": 2, "failed": 0, "escalated": 1, "skipped": 0}
    assert summary["audits"] == 1 and summary["audit"]["samples"] == 1
    manifest = _lines(report.paths.manifest)
    assert [(i["case_id"], i["audit"]) for i in manifest] == [("a", True), ("c", False)]
    assert summary["review"] == {"annotator": configured(2, 4.0)}
    lines = summary_lines(summary)
    assert any("1 audit sample;" in line for line in lines), lines
    assert any(
        line.endswith("manifest.jsonl (2 to review: 1 escalated, 1 audit sample)") for line in lines
    ), lines


def test_escalation_reasons_are_counted_per_rule_in_words(tmp_path: Path) -> None:
    """Before, the summary grouped reasons by replacing numbers with N: "judges split N pass / N
    fail: 2", "N judge(s) returned no valid verdict: 1"."""
    from pytest_hybridjudge.summary_text import summary_lines

    report = _report(tmp_path)
    reasons = {
        "a": ["judges split 2 pass / 1 fail"],
        "b": ["judges split 1 pass / 2 fail", "1 judge returned no valid verdict"],
        "c": ["2 judges returned no valid verdict"],
    }
    for case, why in reasons.items():
        report.add(_result(case, "escalated", score=3).model_copy(update={"reasons": why}))
    summary = report.write()
    assert summary["escalation_reasons"] == {
        "judges split on pass or fail": 2,
        "a judge returned no valid verdict": 2,
    }
    lines = summary_lines(summary)
    start = lines.index("escalated because:")
    assert lines[start + 1 : start + 3] == [
        "  judges split on pass or fail: 2 cases",
        "  a judge returned no valid verdict: 2 cases",
    ]
    text = "\n".join(lines)
    assert " N " not in text and "(s)" not in text
