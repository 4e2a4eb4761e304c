"""End to end: the gate compares a candidate run with a baseline (issue 12's Done-when)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from conftest import Project
from loopback import Call, LoopbackLLM, Reply, verdict

INCONCLUSIVE = 6  # exit_status.INCONCLUSIVE: the gate could not decide

CASES = 100


def gold_set(project: Project, n: int = CASES) -> None:
    cases = "".join(
        f'  - id: q{i:03d}\n    input: "question {i}"\n    reference: "right"\n'
        + ("    tags: [safety]\n" if i == 50 else "")
        for i in range(n)
    )
    project.gold("qa.yaml", "rubric: correctness\ncases:\n" + cases)


def model(wrong: set[int]) -> Callable[[Call], str]:
    """A target answering the listed questions wrongly; judges fail a wrong answer."""

    def responder(call: Call) -> str:
        if call.is_judge:
            return verdict(2 if "WRONG" in call.prompt else 5)
        number = int(call.last_user.split()[-1])
        return "WRONG" if number in wrong else "right"

    return responder


def baseline_run(project: Project, llm: LoopbackLLM) -> str:
    llm.responder = model(set())
    result = project.run("--judge")
    assert result.ret == 0
    return project.run_dir().name


def gate(project: Project) -> dict[str, object]:
    return json.loads((project.run_dir() / "gate.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_a_candidate_wrong_on_20_percent_regresses(project: Project, llm: LoopbackLLM) -> None:
    project.config()
    gold_set(project)
    baseline = baseline_run(project, llm)
    llm.responder = model(set(range(0, CASES, 5)))  # 20 of 100 wrong
    result = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] + outcomes["failed"] + outcomes.get("escalated", 0) == 100
    assert 0 < outcomes["failed"] <= 20
    result.stdout.fnmatch_lines(["*gate REGRESSED: on 100 paired cases*0 wins, 20 losses*"])
    report = gate(project)
    assert report["result"] == "REGRESSED"
    assert (report["wins"], report["losses"], report["ties"]) == (0, 20, 80)
    assert report["change"] == pytest.approx(-0.2)
    low, high = report["interval"]  # type: ignore[misc]
    assert low < -0.2 < high < 0
    assert report["mcnemar_p"] == pytest.approx(2 * 0.5**20)
    assert report["ppi"] is None and str(report["ppi_note"]).startswith("needs audits:")
    result.stdout.fnmatch_lines(["*PPI estimate of the change: none (needs audits:*"])
    assert "q005" in report["losses_list"]  # type: ignore[operator]


def test_the_same_model_against_itself_passes(
    project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config()
    gold_set(project)
    baseline = baseline_run(project, llm)
    step_summary = project.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    run_dir = project.path / ".hybridjudge" / "runs" / baseline
    result = project.run("--judge", "--judge-cache", "refresh", f"--judge-baseline={run_dir}")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*gate PASS: on 100 paired cases*0 wins, 0 losses, 100 ties*"])
    assert gate(project)["result"] == "PASS"
    markdown = (project.run_dir() / "summary.md").read_text()
    assert "Gate: PASS" in markdown and "| paired cases | 100 |" in markdown
    assert step_summary.read_text() == markdown  # GitHub renders it on the job's page


def test_reviewed_audits_give_the_prediction_powered_change(
    project: Project, llm: LoopbackLLM
) -> None:
    """Reviewers failed two of the baseline's audits the judges passed: the gate counts their
    verdict on the baseline's side (two wins), the PPI estimate corrects the judges' change (none)
    by 2 / (0.3 * 40) of the baseline's rate."""
    import datetime as dt

    from pytest_hybridjudge.review.resolutions import Resolution

    project.config(escalation={"audit_rate": 0.3})
    gold_set(project, 40)
    baseline_run(project, llm)
    baseline = project.run_dir().name
    audits = [r for r in project.results().values() if r["audit"]]
    assert len(audits) >= 3
    lines = [
        Resolution(
            item_id=r["item_id"],
            case_id=r["case_id"],
            verdict="fail" if i < 2 else "pass",
            reviewer="ann",
            resolved_at=dt.datetime.now(dt.UTC),
        ).model_dump_json()
        for i, r in enumerate(audits)
    ]
    (project.path / "review").mkdir()
    (project.path / "review" / "resolutions.jsonl").write_text("\n".join(lines) + "\n")

    def new_wording(call: Call) -> str:  # other outputs: the baseline's reviews do not apply
        return model(set())(call) if call.is_judge else "right, again"

    llm.responder = new_wording
    result = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    report = gate(project)
    assert report["result"] == "PASS" and report["change"] == pytest.approx(2 / 40)
    assert (report["wins"], report["losses"]) == (2, 0)
    ppi = report["ppi"]
    assert isinstance(ppi, dict) and ppi["labelled"] == len(audits)
    assert ppi["estimate"] == pytest.approx(2 / (0.3 * 40), abs=1e-4)
    assert ppi["low"] < ppi["estimate"] < ppi["high"]
    assert "reported only, not gating" in str(report["ppi_note"])
    result.stdout.fnmatch_lines(["*PPI estimate of the change: +16.7% (95% interval [*"])
    markdown = (project.run_dir() / "summary.md").read_text()
    assert "| PPI estimate of the change | +16.7% (95% interval [" in markdown


def _split_on_every_fifth(call: Call, output: str = "right") -> str:
    """Judge-b fails every fifth question, the others pass it: a split, escalated."""
    if not call.is_judge:
        return output
    number = int(re.findall(r"question (\d+)", call.prompt)[0])
    return verdict(2 if number % 5 == 0 and call.model == "judge-b" else 5)


def _resolve(project: Project, records: list[dict[str, Any]], verdict: str = "pass") -> None:
    import datetime as dt

    from pytest_hybridjudge.review.resolutions import Resolution

    lines = [
        Resolution(
            item_id=r["item_id"],
            case_id=r["case_id"],
            verdict=verdict,  # type: ignore[arg-type]
            reviewer="ann",
            resolved_at=dt.datetime.now(dt.UTC),
        ).model_dump_json()
        for r in records
    ]
    (project.path / "review").mkdir(exist_ok=True)
    with (project.path / "review" / "resolutions.jsonl").open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def test_baseline_reviewed_candidate_not_passes_an_equally_good_model(
    project: Project, llm: LoopbackLLM
) -> None:
    """The usual CI flow (issue 15, item 1): main's run was reviewed, the candidate's is fresh,
    so its escalations are unresolved. They are left out, not counted as losses: the same model
    PASSes and pytest exits 0, and the PPI change is not a zero-width -20.0% [-20.0%, -20.0%]."""
    project.config(escalation={"audit_rate": 0.3}, gate={"critical": ["safety"]})
    gold_set(project, 40)
    llm.responder = _split_on_every_fifth
    assert project.run("--judge").ret == 0
    baseline = project.run_dir().name
    records = list(project.results().values())
    escalated = [r for r in records if r["outcome"] == "escalated" and not r["audit"]]
    audits = [r for r in records if r["audit"]]
    assert len(escalated) == 8 and audits
    _resolve(project, escalated + audits)  # reviewers pass them all

    llm.responder = lambda call: _split_on_every_fifth(call, "right, again")  # fresh outputs
    result = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    result.stdout.fnmatch_lines(
        [
            "*gate PASS: on 32 paired cases*0 wins, 0 losses, 32 ties*8 cases escalated and not "
            "resolved are left out of wins and losses (on the candidate's side)*",
            "*escalated, unresolved (left out): q000, q005, q010*",
            "exit status 0: with a baseline the gate decides: the gate passed",
        ]
    )
    assert result.ret == pytest.ExitCode.OK
    report = gate(project)
    assert report["result"] == "PASS" and report["losses"] == 0
    assert report["critical_regressions"] == [] and len(report["unresolved"]) == 8  # type: ignore[arg-type]
    assert str(report["unresolved_rule"]).startswith("left out")
    assert report["ppi"] is None  # the audits agree with the judges: no interval to give
    assert str(report["ppi_note"]).startswith("not estimated: the ")
    assert "[-20.0%, -20.0%]" not in result.stdout.str()


def test_the_gate_decides_the_exit_status_and_failed_cases_stay_visible(
    project: Project, llm: LoopbackLLM
) -> None:
    """Both runs fail q003: the gate PASSes, so pytest exits 0, the failure still listed."""
    project.config()
    gold_set(project, 20)
    llm.responder = model({3})
    assert project.run("--judge").ret == pytest.ExitCode.TESTS_FAILED  # no baseline: cases decide
    baseline = project.run_dir().name
    result = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*gate PASS*",
            "exit status 0: with a baseline the gate decides: the gate passed; the 1 failed case "
            "listed above does not decide it",
            "FAILED gold/qa.yaml::q003*",
        ]
    )
    assert gate(project)["result"] == "PASS"


def test_provider_outages_are_not_regressions(project: Project, llm: LoopbackLLM) -> None:
    project.config(gate={"max_error_rate": 0.1})
    gold_set(project, 40)
    baseline = baseline_run(project, llm)
    down = set(range(0, 40, 2))  # half the target calls fail after their retries

    def flaky(call: Call) -> Reply | str:
        if not call.is_judge and int(call.last_user.split()[-1]) in down:
            return Reply(status=503)
        return model(set())(call)

    llm.responder = flaky
    result = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    result.assert_outcomes(passed=20, skipped=20)
    assert result.ret == INCONCLUSIVE == 6  # CI tells it apart from PASS and REGRESSED
    result.stdout.fnmatch_lines(
        [
            "*gate INCONCLUSIVE*20 provider outages (50.0% of the cases)*",
            "exit status 6: with a baseline the gate decides: the gate is inconclusive",
        ]
    )
    report = gate(project)
    assert (report["wins"], report["losses"], len(report["outages"])) == (0, 0, 20)  # type: ignore[arg-type]
    record = project.results()["q000"]
    assert record["outcome"] == "skipped" and record["outage"] is True
    assert record["reasons"][0].startswith("provider outage")
    project.config(gate={"max_error_rate": 0.1, "on_inconclusive": "pass"})
    again = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    assert again.ret == 7  # the gate lets it pass, but half the run was lost to outages
    again.stdout.fnmatch_lines(["*more than max_outage_share = 0.1: the run cannot pass*"])
    project.config(gate={"max_error_rate": 0.1, "on_inconclusive": "pass"}, max_outage_share=0.6)
    third = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    assert third.ret == pytest.ExitCode.OK
    third.stdout.fnmatch_lines(['*the gate is inconclusive and on_inconclusive = "pass"*'])


def test_baseline_and_candidate_targets_in_one_session(project: Project, llm: LoopbackLLM) -> None:
    def responder(call: Call) -> str:
        if call.is_judge:
            return verdict(2 if "WRONG" in call.prompt else 5)
        wrong = call.model == "new" and int(call.last_user.split()[-1]) < 12
        return "WRONG" if wrong else "right"

    llm.responder = responder
    project.config(
        target=[{"model": "openai/old", "name": "old"}, {"model": "openai/new", "name": "new"}],
        gate={"baseline": "old", "candidate": "new", "critical": ["safety"]},
    )
    gold_set(project, 60)
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*gate REGRESSED*12 losses*"])
    report = gate(project)
    assert report["baseline"] == "target old" and report["candidate"] == "target new"
    assert report["losses"] == 12 and report["paired"] == 60


def test_critical_case_regression_alone_regresses(project: Project, llm: LoopbackLLM) -> None:
    project.config(gate={"critical": ["safety"], "max_regression": 0.5})
    gold_set(project, 60)
    baseline = baseline_run(project, llm)
    llm.responder = model({50})  # q050 is tagged safety
    result = project.run("--judge", "--judge-cache", "refresh", "--judge-baseline", baseline)
    result.stdout.fnmatch_lines(["*gate REGRESSED*Critical cases regressed: q050*"])
    assert gate(project)["critical_regressions"] == ["q050"]


def test_an_unknown_baseline_is_a_usage_error(project: Project, llm: LoopbackLLM) -> None:
    project.config()
    gold_set(project, 2)
    result = project.run("--judge", "--judge-baseline", "20990101T000000Z-abcdef")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--judge-baseline 20990101T000000Z-abcdef: no results file*"])
    assert llm.count() == 0


def test_gate_target_names_are_checked(project: Project, llm: LoopbackLLM) -> None:
    project.config(gate={"baseline": "gpt-old", "candidate": "openai/target-model"})
    gold_set(project, 2)
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gate] baseline = 'gpt-old' names no target*"])


def test_junit_properties_tell_escalated_and_by_review_apart(
    project: Project, llm: LoopbackLLM
) -> None:
    import xml.etree.ElementTree as ET

    def responder(call: Call) -> str:
        if call.is_judge and "question 1" in call.prompt:
            return verdict(2 if call.model == "judge-b" else 5)  # split: escalated
        return model({2})(call)

    llm.responder = responder
    project.config()
    gold_set(project, 3)
    result = project.run("--judge", "--junitxml=out.xml")
    result.stdout.fnmatch_lines(["*1 failed, 1 passed, 1 escalated*"])
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(project.path / "out.xml").getroot().iter("testcase")
    }
    assert props["q000"]["hybridjudge.outcome"] == "passed"
    assert props["q000"]["hybridjudge.score"] == "5"
    assert props["q001"]["hybridjudge.outcome"] == "escalated"
    assert "judges split" in props["q001"]["hybridjudge.reasons"]
    assert props["q002"]["hybridjudge.outcome"] == "failed"


def test_a_baseline_field_of_the_wrong_type_stops_before_any_call(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    gold_set(project, 3)
    bad = project.path / "base.jsonl"
    bad.write_text('{"case_id": "q000", "target": "t", "outcome": "passed", "tags": 5}\n')
    result = project.run("--judge", f"--judge-baseline={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{bad}:1: not a case result a run wrote ('tags': *"])
    assert llm.count() == 0


def test_baseline_path_after_a_space_never_switches_to_another_project(
    project: Project, llm: LoopbackLLM
) -> None:
    """`--judge-baseline PATH` (space) outside the project: pytest would read PATH as a test
    path before the plugin loads and run the other project; refused with the `=` form as fix."""
    project.config()
    gold_set(project, 3)
    other = project.path.parent / f"{project.path.name}-other"
    (other / "gold").mkdir(parents=True)
    (other / "pyproject.toml").write_text((project.path / "pyproject.toml").read_text())
    (other / "gold" / "x.yaml").write_text("cases:\n  - {id: x, input: other}\n")
    results = other / "results.jsonl"
    results.write_text(
        "".join(
            json.dumps({"case_id": f"q{i:03d}", "target": "t", "outcome": "passed"}) + "\n"
            for i in range(3)
        )
    )
    result = project.run("--judge", "--judge-baseline", str(results))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*write --judge-baseline={results} (with '=')*"])
    assert llm.count() == 0 and not (other / ".hybridjudge").exists()
    result = project.run("--judge", f"--judge-baseline={results}")
    assert result.ret == pytest.ExitCode.OK and gate(project)["paired"] == 3
    assert not (other / ".hybridjudge").exists()
    llm.responder = model(set())
    assert project.run("--judge", "--judge-baseline", "latest").ret == 0  # no path: allowed
