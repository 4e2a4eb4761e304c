"""End to end: `pytest --judge` on a small project against the loopback server."""

from __future__ import annotations

import json

import pytest

from conftest import QUIET_PLUGINS, Project
from loopback import Call, LoopbackLLM, Reply, verdict

CAPITALS = """
    rubric: correctness
    cases:
      - id: capital-france
        input: "What is the capital of France?"
        reference: "Paris"
        tags: [geography]
      - id: capital-peru
        input: "What is the capital of Peru?"
        reference: "Lima"
        tags: [geography]
      - id: refund-policy
        messages: [{role: user, content: "Can I get a refund after 40 days?"}]
        verify: {regex: "(?i)no|not eligible"}
"""


def test_passes_fails_and_escalates(project: Project, llm: LoopbackLLM) -> None:
    def responder(call: Call) -> str:
        if not call.is_judge:
            return "Paris" if "France" in call.last_user else "I think it is Cusco"
        if "Cusco" in call.prompt:
            return verdict(2, rationale="wrong capital")
        return verdict(5, rationale="correct")

    llm.responder = responder
    project.config()
    project.gold("capitals.yaml", CAPITALS)
    result = project.run("--judge")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*judge agreement: Krippendorff's alpha (ordinal) 1.000 over 2*"])
    result.stdout.fnmatch_lines(
        ["*gold case refund-policy*", "*verifier regex failed*", "*hybridjudge*"]
    )
    results = project.results()
    assert results["capital-france"]["outcome"] == "passed"
    assert results["capital-france"]["source"] == "gold/capitals.yaml"  # portable across clones
    assert results["capital-peru"]["outcome"] == "failed"
    assert results["refund-policy"]["verdicts"] == []
    assert llm.count(judge=True) == 6


def test_without_judge_items_skip_with_reason(project: Project) -> None:
    project.config()
    project.gold("capitals.yaml", CAPITALS)
    result = project.run("-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*pass --judge*"])


def test_reports_do_not_keep_results_alive(project: Project, llm: LoopbackLLM) -> None:
    """pytest keeps every report until the end; a result left on one stays in memory."""
    project.config()
    project.gold("capitals.yaml", CAPITALS)
    recorder = project.pytester.inline_run("--judge", *QUIET_PLUGINS)
    reports = recorder.getreports("pytest_runtest_logreport")
    assert len([r for r in reports if r.when == "call"]) == 3
    assert not [r for r in reports if hasattr(r, "hybridjudge_result")]
    assert len(project.results()) == 3


def test_split_panel_escalates(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: (
        "Paris" if not call.is_judge else verdict(2 if call.model == "judge-b" else 5)
    )
    project.config()
    project.gold("capitals.yaml", CAPITALS)
    result = project.run("--judge", "-k", "france")
    result.stdout.fnmatch_lines(["*1 escalated*"])
    assert result.ret == 0
    [item] = project.manifest()
    assert item["case_id"] == "capital-france"
    assert "split 2 pass / 1 fail" in " ".join(item["reasons"])
    strict = project.run("--judge", "-k", "france", "--judge-strict")
    assert strict.ret == 1
    summary = json.loads((project.run_dir() / "summary.json").read_text())
    assert summary["outcomes"]["escalated"] == 1
    assert summary["review"] == {
        "annotator": {
            "items": 1,
            "minutes": 2.0,
            "minutes_from": "configured",
            "median_seconds": None,
            "timed_reviews": 0,
        }
    }
    assert summary["agreement"]["split_cases"] == 1


@pytest.mark.parametrize(
    ("cache", "second_calls", "hits"), [("use", 0, 9), ("refresh", 9, 0), ("off", 9, 0)]
)
def test_second_run_follows_the_cache_mode(
    project: Project, llm: LoopbackLLM, cache: str, second_calls: int, hits: int
) -> None:
    """`use` answers a rerun from the cache; `refresh` and `off` call the provider again."""
    project.config()
    project.gold("capitals.yaml", CAPITALS)
    project.run("--judge")
    first = len(llm.calls)
    assert first == 9  # 3 target calls, 3 judges on 2 cases (refund-policy fails its verifier)
    project.run("--judge", "--judge-cache", cache)
    assert len(llm.calls) - first == second_calls
    assert project.summary()["usage"]["cache_hits"] == hits


def test_under_xdist_the_controller_writes_every_record(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: (
        "Paris" if not call.is_judge else verdict(2 if call.model == "judge-b" else 5)
    )
    project.config()
    project.gold("capitals.yaml", CAPITALS)
    result = project.run("--judge", "-n", "2", "--junitxml", "junit.xml")
    result.stdout.fnmatch_lines(["*2 escalated*", "*manifest: *(2 to review)*"])
    assert set(project.results()) == {"capital-france", "capital-peru", "refund-policy"}
    records = (project.run_dir() / "results.jsonl").read_text().splitlines()
    assert len(records) == 3  # one record per case, though every phase's report carried it
    junit = (project.path / "junit.xml").read_text()
    assert "testcase" in junit and "rendered_rubric" not in junit  # the result is not leaked
    assert {item["case_id"] for item in project.manifest()} == {"capital-france", "capital-peru"}
    assert len([c for c in llm.calls if not c.is_judge]) == 3  # each case ran once, on one worker


def test_progress_line_while_calls_are_in_flight(
    project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_hybridjudge import session

    monkeypatch.setattr(session, "PROGRESS_EVERY", 1.0)
    llm.responder = lambda call: Reply(text="Paris" if not call.is_judge else verdict(5), delay=2.5)
    project.config(judges=["openai/judge-a"])
    project.gold("capitals.yaml", CAPITALS.split("      - id: capital-peru")[0])
    result = project.run("--judge")
    result.stdout.fnmatch_lines(
        [
            "*[[]hybridjudge] 1 cases started: target openai/target-model; judges openai/judge-a*",
            "*[[]hybridjudge] waiting on gold/capitals.yaml::capital-france: 0/1 cases done;"
            " 1 calls in flight*",
        ]
    )


def test_heap_is_frozen_while_cases_run_and_thawed_by_the_next_session(
    project: Project, llm: LoopbackLLM
) -> None:
    """gc.freeze() shortens a run's collections; a long-lived process must not keep it."""
    import gc

    project.config()
    project.gold("capitals.yaml", CAPITALS)
    project.pytester.makeconftest(
        """
        import gc, json, pathlib

        def pytest_runtest_call(item):
            with pathlib.Path("frozen.jsonl").open("a") as f:
                f.write(json.dumps(gc.get_freeze_count()) + "\\n")
        """
    )
    project.run("--judge")
    counts = [json.loads(line) for line in (project.path / "frozen.jsonl").read_text().split()]
    assert len(counts) == 3 and all(n > 1000 for n in counts)
    assert gc.get_freeze_count() > 0  # left for pytest's own collections at exit ...
    project.run("--collect-only")
    assert gc.get_freeze_count() == 0  # ... and thawed as soon as another session starts


def test_an_audit_keeps_the_outcome_and_goes_to_people_even_under_strict(
    project: Project, llm: LoopbackLLM
) -> None:
    """Every confident case drawn for audit: before, each showed as escalated (`?`) and failed
    the run under --judge-strict. Now it passes as the judges decided, is a review item, and is
    counted as an audit sample."""
    llm.responder = lambda call: (
        verdict(5, confidence=0.95) if call.is_judge else "Paris or Lima, whichever you asked"
    )
    project.config(escalation={"audit_rate": 1.0})
    project.gold("capitals.yaml", CAPITALS.split("      - id: refund-policy")[0])
    result = project.run("--judge", "--judge-strict", "--junitxml=out.xml")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*; 2 audit samples; 0 cases decided by earlier reviews",
            "*manifest.jsonl (2 to review: 0 escalated, 2 audit samples)",
        ]
    )
    assert all(r["outcome"] == "passed" and r["audit"] for r in project.results().values())
    assert all(r["inclusion_probability"] == 1.0 for r in project.results().values())
    assert sorted((i["case_id"], i["audit"]) for i in project.manifest()) == [
        ("capital-france", True),
        ("capital-peru", True),
    ]
    junit = (project.path / "out.xml").read_text()
    assert 'name="hybridjudge.audit" value="true"' in junit
