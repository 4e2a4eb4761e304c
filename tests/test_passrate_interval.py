"""The pass rate's interval stays honest with few reviewer labels (issue 15, item 2)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import write_run
from pytest_hybridjudge.stats import ppi_mean

RUN_1, RUN_2 = "20260101T090000Z-aaaaaa", "20260102T090000Z-bbbbbb"  # run ids, as runs get


def test_no_disagreement_in_the_audits_is_not_a_zero_width_interval() -> None:
    # 200 cases, the judges pass 198; 10 audits at 5% all agree: the old interval was [99%, 99%]
    judge = [1.0] * 198 + [0.0] * 2
    rate = ppi_mean(judge, [1.0] * 10, [1.0] * 10, [0.05] * 10)
    assert rate.low is not None and rate.high is not None
    assert rate.estimate == pytest.approx(0.99)
    assert rate.high - rate.low > 0.1  # ten audits cannot pin 190 unreviewed cases to a point
    assert rate.low <= 0.935  # a true 93.5% is inside, as it was not before


def test_the_interval_is_the_smoothed_horvitz_thompson_one() -> None:
    # the variance, computed by hand: per inclusion probability and judge label, the 2x2 table's
    # disagreements with z^2/2 added to each cell (Agresti-Coull), under Poisson sampling
    rng = np.random.default_rng(3)
    n_all = 400
    judge_all = (rng.random(n_all) < 0.8).astype(float)
    labelled = rng.choice(n_all, 30, replace=False)
    human = judge_all[labelled].copy()
    human[:4] = 1 - human[:4]
    pis = np.array([0.05] * 20 + [0.5] * 10)
    rate = ppi_mean(judge_all, judge_all[labelled], human, pis)
    z = 1.959963984540054
    k = z * z / 2
    residual = human - judge_all[labelled]
    variance = 0.0
    for p in (0.05, 0.5):
        for side in (0.0, 1.0):
            cell = (pis == p) & (judge_all[labelled] == side)
            n, d = cell.sum(), (residual[cell] ** 2).sum()
            if n:
                variance += (1 - p) / p**2 * n * (d + k) / (n + 2 * k)
    estimate = judge_all.mean() + (residual / pis).sum() / n_all
    assert rate.estimate == pytest.approx(estimate)
    assert rate.high is not None and rate.low is not None
    half = z * math.sqrt(variance) / n_all
    assert rate.high == pytest.approx(min(1.0, estimate + half))
    assert rate.low == pytest.approx(max(0.0, estimate - half))


def test_reviewed_only_for_certain_gives_no_interval_and_says_why() -> None:
    # escalations reviewed with certainty say nothing about the confident cases nobody audited
    rate = ppi_mean([1.0] * 100, [0.0] * 5, [1.0] * 5, [1.0] * 5)
    assert rate.method == "ppi" and rate.estimate == pytest.approx(1.0)
    assert rate.low is None and rate.high is None
    assert rate.why is not None and "audit" in rate.why
    # every case reviewed: exact, no interval needed beyond the point
    exact = ppi_mean([1.0] * 3, [1.0] * 3, [0.0, 1.0, 1.0], [1.0] * 3)
    assert exact.low == exact.high == pytest.approx(2 / 3)


@pytest.mark.parametrize("cases", [200, 1000])
def test_the_interval_covers_with_default_audits(cases: int) -> None:
    # the setting: 5% audits, true pass rate 95%, the confident judges right 93.5%
    rng = np.random.default_rng(cases)
    covered, trials, without = 0, 300, 0
    for _ in range(trials):
        human = rng.random(cases) < 0.95
        escalated = rng.random(cases) < 0.15
        right = rng.random(cases) < np.where(escalated, 0.7, 0.935)
        judge = np.where(right, human, ~human).astype(float)
        audited = ~escalated & (rng.random(cases) < 0.05)
        labelled = audited | escalated
        pis = np.where(audited, 0.05, 1.0)[labelled]
        rate = ppi_mean(judge, judge[labelled], human[labelled].astype(float), pis)
        if rate.low is None or rate.high is None:  # no audit drawn at all: no interval
            assert rate.why is not None and not audited.any()
            without += 1
            continue
        covered += rate.low - 1e-12 <= human.mean() <= rate.high + 1e-12
    assert covered / (trials - without) >= 0.93
    assert without <= 0.01 * trials


# --- escalations only partly resolved: a two-phase sample (issue 15, item 3) -----------------


def _record(case: str, *, outcome: str, audit: bool = False, resolved: bool = False) -> Any:
    from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict, PolicyInForce

    verdicts = [] if resolved else [JudgeVerdict(judge="a", model="a", score=5, passed=True)]
    return CaseResult(
        case_id=case,
        nodeid=f"g.yaml::{case}",
        target="t",
        rubric="r",
        outcome=outcome,  # type: ignore[arg-type]
        verdicts=verdicts,
        panel=None if resolved else PanelVerdict(passed=True, votes_pass=1, confidence=0.5),
        item_id=case,
        audit=audit,
        policy=PolicyInForce(min_confidence=0.7, audit_rate=0.05, seed=0),
        inclusion_probability=None if resolved else (0.05 if audit else 1.0),
        resolved_by=["ann"] if resolved else [],
    )


def _summary(tmp_path: Path, run_id: str, records: list[Any]) -> dict[str, Any]:
    return write_run(tmp_path, run_id, results=records, runs=tmp_path / "runs")


def test_resolved_escalations_stand_for_the_unresolved_ones_of_their_run(tmp_path: Path) -> None:
    # run 1: 20 of 100 cases escalated (judges pass them all); reviewers resolved 10, all failed
    first = [_record(f"c{i}", outcome="escalated" if i < 20 else "passed") for i in range(100)]
    _summary(tmp_path, RUN_1, first)
    second = [_record(f"c{i}", outcome="failed", resolved=True) for i in range(10)]
    second += [
        _record(f"c{i}", outcome="escalated" if i < 20 else "passed") for i in range(10, 100)
    ]
    rate = _summary(tmp_path, RUN_2, second)["pass_rate"]
    # each resolved escalation stands for 1 / (10 of 20 resolved) = 2 escalations
    expected = ppi_mean([1.0] * 100, [1.0] * 10, [0.0] * 10, [0.5] * 10)
    assert expected.estimate == pytest.approx(0.8)
    assert rate["estimate"] == pytest.approx(0.8)
    assert rate["labelled"] == 10


def test_resolved_shares_count_each_run_rubric_and_kind_apart() -> None:
    from pytest_hybridjudge.review.labelled import resolved_shares

    sent = {
        ("run-1", "r", False): {f"c{i}" for i in range(8)},
        ("run-1", "r", True): {"c8", "c9"},
        ("run-2", "r", False): {"d0"},
        ("run-2", "s", False): {"e0"},
    }
    shares = resolved_shares(sent, {"c0", "c1", "c8", "d0", "elsewhere"})
    assert shares == {
        ("run-1", "r", False): pytest.approx(2 / 8),
        ("run-1", "r", True): pytest.approx(1 / 2),
        ("run-2", "r", False): 1.0,
    }


# --- one headline pass rate, saying how it was computed (issue 15, item 9) --------------------


def test_one_headline_pass_rate_in_terminal_json_and_markdown(tmp_path: Path) -> None:
    from pytest_hybridjudge.ci_summary import run_markdown
    from pytest_hybridjudge.summary import RunSummary
    from pytest_hybridjudge.summary_text import summary_lines

    # run 1: 200 confident passes, 10 of them audited; reviewers fail 5 of the audits
    first = [_record(f"c{i}", outcome="passed", audit=i < 10) for i in range(200)]
    _summary(tmp_path, RUN_1, first)
    second = [_record(f"c{i}", outcome="failed", resolved=True) for i in range(5)]
    second += [_record(f"c{i}", outcome="passed", resolved=True) for i in range(5, 10)]
    second += [_record(f"c{i}", outcome="passed") for i in range(10, 190)]
    second += [_record(f"c{i}", outcome="escalated") for i in range(190, 200)]
    summary = _summary(tmp_path, RUN_2, second)
    assert "judge_pass_rate" not in summary
    assert "judge_pass_rate" not in summary["rubrics"]["r"]
    rate = summary["pass_rate"]
    assert rate["estimate"] == pytest.approx(0.5)  # 1 - 5 x 20 / 200
    assert "prediction-powered" in rate["how"] and "10 reviewer labels" in rate["how"]
    lines = summary_lines(summary)
    mentions = [x for x in lines if "pass rate" in x or "of decided" in x or "judge-only" in x]
    assert len(mentions) == 1, lines
    headline = mentions[0]
    assert headline.startswith("pass rate: 50.0% [")
    assert "prediction-powered: the judges' labels on 200 cases" in headline
    assert lines[0].endswith("10 escalated, 0 skipped")
    rubric = next(x for x in lines if x.startswith("  rubric r:"))
    assert rubric.startswith("  rubric r: 50.0% [") and "%" not in rubric.split("]", 1)[1]
    markdown = "\n".join(run_markdown(RunSummary.model_validate(summary)))
    assert markdown.count("50.0% [") == 3  # the run's row, its headline, the rubric's row
    assert "prediction-powered: the judges' labels on 200 cases" in markdown


def test_a_rate_without_labels_says_it_is_the_judges_alone(tmp_path: Path) -> None:
    from pytest_hybridjudge.summary_text import summary_lines

    summary = _summary(tmp_path, RUN_1, [_record(f"c{i}", outcome="passed") for i in range(3)])
    headline = next(x for x in summary_lines(summary) if x.startswith("pass rate"))
    assert headline == (
        "pass rate: 100.0% (the judges' labels on 3 cases, not yet checked by reviewers; "
        "an interval once audits are reviewed)"
    )
