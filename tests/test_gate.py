"""The gate's statistics and decision, as pure functions, checked against references."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_hybridjudge.config import GateSpec
from pytest_hybridjudge.errors import RecordError
from pytest_hybridjudge.gate.baseline import BaselineError, CaseSide, pair, sides
from pytest_hybridjudge.gate.decide import PairedCounts, compare, gate_verdict
from pytest_hybridjudge.runs import RunPaths, RunStore
from pytest_hybridjudge.stats import mcnemar_exact, paired_bootstrap, paired_sample_size
from pytest_hybridjudge.verdict import CaseResult


def results(*records: dict[str, Any]) -> list[CaseResult]:
    """Records as a run writes them; a test names only the fields it is about (the target is
    `t` and the outcome `passed` unless it says otherwise)."""
    return [CaseResult.model_validate({"target": "t", "outcome": "passed", **r}) for r in records]


def test_mcnemar_exact_matches_the_binomial_sum() -> None:
    # 2 wins, 10 losses: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact(2, 10) == pytest.approx(158 / 4096)
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)


def test_paired_bootstrap_matches_resampling_pair_indices() -> None:
    """The multinomial shortcut against the textbook resampling of pairs."""
    wins, losses, ties = 8, 20, 72
    low, high = paired_bootstrap(wins, losses, ties, resamples=20000, seed=1)
    diffs = np.array([1] * wins + [-1] * losses + [0] * ties)
    rng = np.random.default_rng(2)
    means = diffs[rng.integers(0, diffs.size, size=(20000, diffs.size))].mean(axis=1)
    ref_low, ref_high = np.quantile(means, [0.025, 0.975])
    assert low == pytest.approx(ref_low, abs=0.011) and high == pytest.approx(ref_high, abs=0.011)
    again = paired_bootstrap(wins, losses, ties, seed=3)
    assert again == paired_bootstrap(wins, losses, ties, seed=3)


def test_paired_bootstrap_covers_the_true_change() -> None:
    """95% interval: realised coverage near 95% over simulated paired samples."""
    rng = np.random.default_rng(0)
    p = [0.05, 0.12, 0.83]  # win, loss, tie: true change -0.07
    hits = 0
    for i in range(400):
        w, lo, t = rng.multinomial(300, p)
        low, high = paired_bootstrap(int(w), int(lo), int(t), resamples=1000, seed=i)
        hits += low <= -0.07 <= high
    assert 0.91 <= hits / 400 <= 0.98


def test_paired_sample_size_gives_the_power_it_promises() -> None:
    """Connor's n, checked by simulating the exact McNemar test at that n."""
    n = paired_sample_size(0.1, 0.2, alpha=0.05, power=0.8)
    # by hand: (1.95996 * sqrt(.2) + 0.84162 * sqrt(.19))^2 / .01
    assert n == math.ceil((1.959964 * math.sqrt(0.2) + 0.841621 * math.sqrt(0.19)) ** 2 / 0.01)
    rng = np.random.default_rng(5)
    draws = rng.multinomial(n, [0.05, 0.15, 0.80], size=2000)
    power = np.mean([mcnemar_exact(int(w), int(lo)) < 0.05 for w, lo, _ in draws])
    assert 0.74 <= power <= 0.88
    with pytest.raises(ValueError, match="nonzero change"):
        paired_sample_size(0.0, 0.2)


def test_gate_rules_in_order() -> None:
    policy = GateSpec(max_regression=0.05)
    assert gate_verdict(PairedCounts(0, 0, 100, 0), policy).result == "PASS"
    regressed = gate_verdict(PairedCounts(0, 20, 80, 0), policy)
    assert regressed.result == "REGRESSED" and "McNemar" in regressed.why
    assert gate_verdict(PairedCounts(0, 20, 80, 0), policy, method="bootstrap").result == (
        "REGRESSED"
    )
    unsure = gate_verdict(PairedCounts(5, 8, 30, 7), policy)
    assert unsure.result == "INCONCLUSIVE" and unsure.more_cases and unsure.more_cases > 0
    assert f"{unsure.more_cases} more" in unsure.why
    outage = gate_verdict(PairedCounts(0, 20, 80, 0, outages=10), policy)
    assert outage.result == "INCONCLUSIVE" and "provider outages" in outage.why
    assert gate_verdict(PairedCounts(0, 0, 100, 0), policy, critical=["c1"]).result == "REGRESSED"
    low_bar = GateSpec(min_pass_rate=0.95)
    assert gate_verdict(PairedCounts(0, 0, 90, 10), low_bar).result == "REGRESSED"
    assert gate_verdict(PairedCounts(0, 0, 0, 0), policy).result == "INCONCLUSIVE"


def test_pairing_lists_every_case_once() -> None:
    base = sides(
        results(
            {"case_id": "a", "outcome": "passed"},
            {"case_id": "b", "outcome": "passed"},
            {"case_id": "c", "outcome": "skipped", "outage": True},
            {"case_id": "d", "outcome": "skipped"},
            {"case_id": "only-base", "outcome": "passed"},
        )
    )
    cand = sides(
        results(
            {"case_id": "a", "outcome": "passed", "resolved_by": ["ann"]},
            {"case_id": "b", "outcome": "escalated", "tags": ["safety"]},
            {"case_id": "c", "outcome": "passed"},
            {"case_id": "d", "outcome": "passed"},
            {"case_id": "only-cand", "outcome": "failed"},
        )
    )
    pairing = pair(base, cand)
    assert [c.case_id for _, c in pairing.pairs] == ["a"]
    assert pairing.outages == ["c"] and pairing.not_compared == ["d"]
    assert (pairing.only_baseline, pairing.only_candidate) == (["only-base"], ["only-cand"])
    assert cand["a"] == CaseSide("a", "passed", by_review=True)
    assert pairing.unresolved == ["b"]  # escalated, nobody decided: neither win nor loss
    report = compare(pairing, GateSpec(critical=["safety"]), "base", "cand")
    assert report.critical_regressions == [] and "critical" not in report.explanation
    assert report.result == "INCONCLUSIVE" and "provider outages" in report.explanation
    assert report.unresolved == ["b"] and "only in the baseline" in report.explanation


def test_several_targets_need_a_choice() -> None:
    records = results({"case_id": "a", "target": "x"}, {"case_id": "a", "target": "y"})
    with pytest.raises(Exception, match="several targets"):
        sides(records)
    assert list(sides(records, "y")) == ["a"]


def test_junit_properties_mark_reviewer_decisions() -> None:
    from pytest_hybridjudge.ci_summary import junit_properties
    from pytest_hybridjudge.verdict import CaseResult

    result = CaseResult(
        case_id="a", target="t", outcome="passed", score=4, resolved_by=["ann"], reasons=["r"]
    )
    props = dict(junit_properties(result))
    assert props["hybridjudge.outcome"] == "passed-by-review"
    assert props["hybridjudge.decided_by"] == "review"


def test_an_audit_sample_counts_as_the_confident_panels_decision() -> None:
    """A 5% audit must not move the gate: the panel decided the case; people only check it."""
    audited = {"case_id": "a", "outcome": "escalated", "audit": True, "panel": {"passed": True}}
    failed = {**audited, "panel": {"passed": False}}
    doubted = {"case_id": "d", "outcome": "escalated", "panel": {"passed": True}}
    audited_side, failed_side, doubted_side = map(
        CaseSide.from_result, results(audited, failed, doubted)
    )
    assert audited_side.status == "passed"
    assert not audited_side.escalated
    assert failed_side.status == "not_passed"
    assert doubted_side.status == "not_passed"  # a real doubt stays not passed
    assert doubted_side.escalated


def _two_target_run(path: Path) -> Path:
    records = [
        {"case_id": "a", "target": "old", "outcome": "failed", "output": "old answer"},
        {"case_id": "a", "target": "new", "outcome": "passed", "output": "new answer"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_baseline_run_of_several_targets_uses_the_one_the_gate_names(tmp_path: Path) -> None:
    from pytest_hybridjudge.config import HybridJudgeConfig
    from pytest_hybridjudge.gate.run import load_baseline

    results = _two_target_run(tmp_path / "results.jsonl")
    targets = [{"model": "openai/o", "name": "old"}, {"model": "openai/n", "name": "new"}]
    both = HybridJudgeConfig.model_validate(
        {"target": targets, "gate": {"baseline": "old", "candidate": "new"}}
    )
    baseline = load_baseline(str(results), both, RunStore(tmp_path))
    assert baseline is not None and baseline.cases is not None
    assert baseline.cases["a"].output == "old answer"  # the gate's baseline target's records
    alone = HybridJudgeConfig.model_validate({"target": targets[1:], "gate": {"candidate": "new"}})
    baseline = load_baseline(str(results), alone, RunStore(tmp_path))
    assert baseline is not None and baseline.cases is not None
    assert baseline.cases["a"].output == "new answer"  # the candidate's earlier results
    neither = HybridJudgeConfig.model_validate({"target": {"model": "openai/x"}})
    with pytest.raises(BaselineError, match=r"several targets \(new, old\); name the one"):
        load_baseline(str(results), neither, RunStore(tmp_path))


def test_unreadable_own_results_do_not_blame_the_baseline_option(tmp_path: Path) -> None:
    from pytest_hybridjudge.config import HybridJudgeConfig
    from pytest_hybridjudge.gate.run import Baseline, gate_run

    paths = RunPaths.for_run(tmp_path, "run")
    paths.results.parent.mkdir()
    paths.results.write_text('{"case_id": "a", "target": "t", "outcome": "passed"}\nnot json\n')
    settings = HybridJudgeConfig.model_validate({"target": {"model": "openai/x"}})
    store = RunStore(tmp_path)
    with pytest.raises(RecordError) as info:
        gate_run(Baseline("base", cases={}), settings, store, paths)
    assert f"{paths.results}:2" in str(info.value) and "this run's own results" in str(info.value)
    assert "--judge-baseline" not in str(info.value)
    gone = RunPaths.for_run(tmp_path, "gone")
    with pytest.raises(RecordError, match="cannot read this run's results"):
        gate_run(Baseline("base", cases={}), settings, store, gone)


def test_current_resolutions_count_on_both_sides_so_a_a_has_no_false_losses(
    tmp_path: Path,
) -> None:
    """Reviewers failed the baseline's audited item (and another) after the baseline ran; the
    candidate produced the same outputs, so its run already took their verdict."""
    import datetime as dt

    from pytest_hybridjudge.config import HybridJudgeConfig
    from pytest_hybridjudge.gate.run import Baseline, gate_run
    from pytest_hybridjudge.review.decisions import ReviewDesk
    from pytest_hybridjudge.review.resolutions import Resolution

    def record(case: str, **extra: object) -> dict[str, object]:
        return {"case_id": case, "target": "t", "item_id": f"item-{case}", "output": case, **extra}

    audited = {"outcome": "escalated", "audit": True, "panel": {"passed": True}}
    unverified = {"outcome": "failed", "verifiers": [{"name": "regex", "passed": False}]}
    earlier = [
        record("a", **audited),
        record("b", outcome="passed"),
        record("c", **unverified),
        record("d", outcome="passed"),
        record("e", outcome="failed"),
    ]
    by_review = {"outcome": "failed", "resolved_by": ["ann"]}
    disagree = {"outcome": "escalated", "resolved_by": ["ann", "bo"]}
    now = [record("a", **by_review), record("b", **by_review), record("c", **unverified)]
    now += [record("d", **disagree), record("e", outcome="passed")]
    paths = RunPaths.for_run(tmp_path / "runs", "now")
    paths.run_dir.mkdir(parents=True)
    paths.results.write_text("".join(json.dumps(r) + "\n" for r in now))
    when = dt.datetime.now(dt.UTC)
    decisions = [("a", "fail", "ann"), ("b", "fail", "ann"), ("c", "pass", "ann")]
    decisions += [("d", "pass", "ann"), ("d", "fail", "bo")]
    lines = [
        Resolution(item_id=f"item-{c}", case_id=c, verdict=v, reviewer=who, resolved_at=when)
        for c, v, who in decisions
    ]
    resolutions = tmp_path / "resolutions.jsonl"
    resolutions.write_text("".join(r.model_dump_json() + "\n" for r in lines))
    settings = HybridJudgeConfig.model_validate({"target": {"model": "openai/t"}})
    base = Baseline("earlier", cases=sides(results(*earlier)))
    decided = ReviewDesk(resolutions).decisions
    report = gate_run(base, settings, RunStore(tmp_path / "runs"), paths, decided)
    # a, b: the reviewers' fail on both sides; c: a failed verifier decides, not a review; d:
    # the reviewers disagree, so it is escalated on both sides and left out; e: a real win
    assert (report.wins, report.losses, report.ties) == (1, 0, 3)
    assert report.unresolved == ["d"]
    assert report.losses_list == []


def test_unresolved_escalations_are_left_out_never_lost() -> None:
    """The usual CI flow: the baseline's run was reviewed (its escalations decided by people),
    the candidate's is fresh. An equally good model must not be REGRESSED by its unresolved
    escalations (issue 15, item 1: it was, with exactly those as its losses)."""
    n, escalated = 300, set(range(0, 300, 10))  # 10% escalated on the candidate's side
    base = {f"c{i}": CaseSide(f"c{i}", "passed", by_review=i in escalated) for i in range(n)}
    cand = {
        f"c{i}": CaseSide(f"c{i}", "not_passed", escalated=True, tags=("safety",))
        if i in escalated
        else CaseSide(f"c{i}", "passed")
        for i in range(n)
    }
    pairing = pair(base, cand)
    assert len(pairing.unresolved) == 30 and len(pairing.pairs) == 270
    report = compare(pairing, GateSpec(critical=["safety"]), "base", "cand")
    assert report.result == "PASS"
    assert (report.wins, report.losses, report.paired) == (0, 0, 270)
    assert report.critical_regressions == [] and len(report.unresolved) == 30
    assert report.unresolved_rule.startswith("left out")
    assert "30 cases escalated and not resolved are left out of wins and losses (on the " in (
        report.explanation
    )
    # the other way round too: the baseline's unresolved escalations are no wins
    flipped = compare(pair(cand, base), GateSpec(), "cand", "base")
    assert (flipped.wins, flipped.losses) == (0, 0)
    assert "(on the baseline's side)" in flipped.explanation


def test_gate_decides_the_exit_status() -> None:
    from pytest_hybridjudge.gate.exit_status import INCONCLUSIVE, session_exit_status

    ok, failed = pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED
    assert session_exit_status(failed, None) == failed  # no baseline: the cases decide
    assert session_exit_status(ok, None) == ok
    assert session_exit_status(failed, "PASS") == ok  # cases failed on both sides
    assert session_exit_status(ok, "REGRESSED") == failed
    assert session_exit_status(ok, "INCONCLUSIVE") == INCONCLUSIVE == 6
    assert session_exit_status(failed, "INCONCLUSIVE", "pass") == ok
    assert session_exit_status(ok, "ERROR", "pass") == INCONCLUSIVE  # no gate computed
    for own in (2, 3, 4, 5):  # interrupted, internal, usage error, nothing collected
        assert session_exit_status(own, "PASS") == own


def _results_file(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("tags", 5, "'tags'"),
        ("verifiers", ["x"], "'verifiers.0'"),
        ("panel", "yes", "'panel'"),
        ("output", {"a": 1}, "'output'"),
        ("case_id", 7, "'case_id'"),
        ("outcome", "pass", "'outcome'"),
        ("pairwise", {"judgments": [{"consistent": True}]}, "missing 'pairwise.judgments.0.judge'"),
        ("policy", {"seed": "0"}, "'policy.seed'"),
    ],
)
def test_a_baseline_field_of_the_wrong_type_names_its_line(
    tmp_path: Path, field: str, value: object, named: str
) -> None:
    from pytest_hybridjudge.runs import read_results

    good = {"case_id": "a", "target": "t", "outcome": "passed", "output": "x", "tags": ["t"]}
    path = _results_file(tmp_path / "results.jsonl", good, {**good, "case_id": "b", field: value})
    with pytest.raises(RecordError) as info:
        read_results(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: not a case result a run wrote (")
    assert named in message and message.endswith("a results.jsonl that pytest --judge wrote")


def test_a_baseline_line_is_read_with_a_bound(tmp_path: Path) -> None:
    """A line longer than the bound is refused after reading at most the bound, never whole."""
    from pytest_hybridjudge.runs import read_results
    from pytest_hybridjudge.runstore import MAX_LINE_BYTES

    path = tmp_path / "results.jsonl"
    with path.open("w") as handle:
        handle.write('{"case_id": "a", "target": "t", "outcome": "passed"}\n')
        handle.write('{"case_id": "b", "output": "')
        handle.write("x" * (3 * MAX_LINE_BYTES))
        handle.write('"}\n')
    tracemalloc.start()
    try:
        with pytest.raises(RecordError, match=rf"{path}:2: line longer than 16 MB"):
            read_results(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * MAX_LINE_BYTES  # about twice the bound at most; never the 48 MB line
