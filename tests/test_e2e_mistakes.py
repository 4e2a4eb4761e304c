"""Mistakes real users make, end to end: bad paths, duplicate ids, collection errors, own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Project
from loopback import LoopbackLLM

ONE = """
    cases:
      - id: capital-france
        input: "What is the capital of France?"
        reference: "Paris"
"""


@pytest.mark.parametrize(
    ("setup", "table", "args", "expected"),
    [
        (
            lambda root: (root / "not-a-db").write_text("hello, I am text\n"),
            {"cache_path": "not-a-db"},
            (),
            "*`cache_path` = *not-a-db is not an SQLite database; point `cache_path` at a new*",
        ),
        (
            lambda root: (root / "cachedir").mkdir(),
            {"cache_path": "cachedir"},
            (),
            "*`cache_path` = *cachedir is a folder*",
        ),
        (
            lambda root: (root / "runs-file").write_text("x"),
            {"runs_dir": "runs-file"},
            (),
            "*`runs_dir`: *runs-file is a file, not a folder*",
        ),
        (
            lambda root: (root / "out").mkdir(),
            {},
            ("--judge-report", "out"),
            "*`--judge-report` = *out is a folder*",
        ),
    ],
)
def test_a_path_the_run_cannot_write_stops_it_before_any_call(
    project: Project,
    llm: LoopbackLLM,
    setup: object,
    table: dict[str, str],
    args: tuple[str, ...],
    expected: str,
) -> None:
    setup(project.path)  # type: ignore[operator]
    project.config(**table)
    project.gold("one.yaml", ONE)
    result = project.run("--judge", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert llm.calls == []
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_runs_dir_that_cannot_be_made_is_named(project: Project, llm: LoopbackLLM) -> None:
    (project.path / "taken").write_text("a file where a folder would have to be")
    project.config(runs_dir="taken/runs")
    project.gold("one.yaml", ONE)
    result = project.run("--judge")
    result.stderr.fnmatch_lines(["*`runs_dir`: cannot write in *taken/runs (Not a directory)*"])
    assert llm.calls == []


def test_the_same_case_id_in_two_files_names_both_places(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    project.gold("a.yaml", ONE)
    project.gold(
        "b.yaml", "cases:\n  - id: other\n    input: x\n  - id: capital-france\n    input: y\n"
    )
    result = project.run("--judge")
    result.stdout.fnmatch_lines(
        [
            "*gold/b.yaml:4: case 'capital-france' case id 'capital-france' is also used at "
            "gold/a.yaml:2*rename one*",
            "*--continue-on-collection-errors*",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert llm.calls == []  # the session stops: nothing is paid for cases that will not run
    assert {r["outcome"] for r in project.results().values()} == {"skipped"}


def test_a_collection_error_names_the_flag_that_runs_the_other_files(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    project.gold("good.yaml", ONE)
    project.gold("bad.yaml", "cases:\n  - id: a\n    reference: x\n")
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*bad.yaml:2*", "*add --continue-on-collection-errors*"])
    result.assert_outcomes(errors=1)


def test_files_the_tool_writes_are_never_collected(project: Project, llm: LoopbackLLM) -> None:
    """Resolutions, calibration history and run records inside `gold/` are not gold files."""
    project.config(resolutions="gold/resolutions.jsonl", runs_dir="gold/runs")
    project.gold("one.yaml", ONE)
    (project.path / "gold" / "resolutions.jsonl").write_text("")  # empty: no decisions yet
    for name in ("calibration-history.jsonl", "runs/old/results.jsonl"):
        path = project.path / "gold" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"not": "a case"}) + "\n")
    (project.path / "gold" / "calibration.json").write_text("{}")
    result = project.run("--judge")
    result.assert_outcomes(passed=1)


def test_last_failed_works_in_the_examples_config() -> None:
    """The example project once disabled pytest's cache plugin, which silently ignored --lf."""
    text = (Path(__file__).parent.parent / "examples" / "pyproject.toml").read_text()
    assert "no:cacheprovider" not in text


def test_escalation_reasons_and_judge_errors_reach_the_terminal_summary(
    project: Project, llm: LoopbackLLM
) -> None:
    from loopback import Call, verdict

    def responder(call: Call) -> str:
        if not call.is_judge:
            return "Paris"
        if call.model == "judge-c":
            return "not json at all"
        return verdict(2 if call.model == "judge-b" else 5)

    llm.responder = responder
    project.config(escalation={"audit_rate": 0})
    project.gold(
        "g.yaml", "cases:\n" + "".join(f"  - id: c{i}\n    input: q{i}\n" for i in range(3))
    )
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*3 escalated in *"])
    result.stdout.fnmatch_lines(
        [
            "escalated because:",
            "  a judge returned no valid verdict: 3 cases",
            "  judges split on pass or fail: 3 cases",
            "judge errors (no valid verdict): anthropic/judge-c 3; see each case's reasons",
        ]
    )
    summary = project.summary()
    assert summary["judge_errors"] == {"anthropic/judge-c": 3}
    assert summary["escalation_reasons"]["judges split on pass or fail"] == 3


def test_stopping_early_keeps_the_results_already_paid_for(
    project: Project, llm: LoopbackLLM
) -> None:
    """With -x, cases that finished on the loop but never ran as items keep their real result."""
    project.config(judges=[], escalation={"audit_rate": 0})
    cases = "".join(
        f"  - id: c{i}\n    input: q{i}\n    verify: {{regex: '^Paris$'}}\n" for i in range(4)
    )
    project.gold("g.yaml", "cases:\n" + cases)
    from loopback import Reply

    # the first item waits for its (wrong) answer while the others finish on the loop
    llm.responder = lambda call: (
        Reply(text="Lyon", delay=1.0) if "q0" in call.last_user else "Paris"
    )
    result = project.run("--judge", "-x")
    result.assert_outcomes(failed=1)
    records = project.results()
    assert records["c0"]["outcome"] == "failed"
    assert [records[f"c{i}"]["outcome"] for i in (1, 2, 3)] == ["passed"] * 3  # not "skipped"
    assert all(r["outcome"] in ("passed", "failed", "skipped") for r in records.values())


def test_other_plugins_items_with_a_result_attribute_are_left_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        class Thing(pytest.Item):
            result = "not a case result"

            def runtest(self):
                pass

        def pytest_collect_file(file_path, parent):
            if file_path.name == "thing.txt":
                return ThingFile.from_parent(parent, path=file_path)

        class ThingFile(pytest.File):
            def collect(self):
                yield Thing.from_parent(self, name="thing")
        """
    )
    pytester.makefile(".txt", thing="x")
    result = pytester.runpytest("-p", "no:cacheprovider", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1)
    assert "INTERNALERROR" not in result.stdout.str()


def test_a_report_without_a_result_is_recorded_from_its_node_id(tmp_path: Path) -> None:
    """The xdist controller collects nothing; a crashed worker's report ("???") still counts."""
    from types import SimpleNamespace

    from pytest_hybridjudge.recorder import Recorder
    from pytest_hybridjudge.report import RunReport
    from pytest_hybridjudge.runs import RunPaths

    session = SimpleNamespace(jobs={}, selected=[], scheduler=None, caller=None)
    report = RunReport("r", RunPaths.for_run(tmp_path, "r"))
    recorder = Recorder(session, report)  # type: ignore[arg-type]
    crashed = pytest.TestReport(
        "gold/a.yaml::c1[prod]",
        ("gold/a.yaml", 0, "c1"),
        {"hybridjudge": 1},
        "failed",
        "worker 'gw0' crashed while running 'gold/a.yaml::c1[prod]'",
        "???",
    )
    recorder.record(crashed)
    assert report.recorded("gold/a.yaml::c1[prod]")
    [record] = list(report.tally.to_review) or [None]  # a failure is not sent to people
    assert record is None
    assert report.tally.counts["failed"] == 1


def test_under_xdist_stopping_early_still_records_every_selected_case(
    project: Project, llm: LoopbackLLM
) -> None:
    """The xdist controller collects nothing: the workers' collections tell it what was selected."""
    from loopback import Reply

    project.config(judges=[], escalation={"audit_rate": 0})
    case = "  - id: c{0}\n    input: q{0}\n    verify: {{regex: '^Paris$'}}\n"
    project.gold("g.yaml", "cases:\n" + "".join(case.format(i) for i in range(6)))
    llm.responder = lambda call: "Lyon" if "q0" in call.last_user else Reply("Paris", delay=3.0)
    project.run("--judge", "-n", "2", "-x")
    records = project.results()
    assert set(records) == {f"c{i}" for i in range(6)}  # none silently disappears
    assert records["c0"]["outcome"] == "failed"
    # each worker started its cases ahead: one that finished is recorded (from the worker's
    # part when no item reported it), one the stop cut short is skipped, saying where it was
    others = [r for r in records.values() if r["case_id"] != "c0"]
    assert all(
        r["outcome"] == "passed" or (r["outcome"] == "skipped" and r["source"] == "gold/g.yaml")
        for r in others
    )
    assert len(llm.calls) <= 6  # no case paid for twice


def test_a_dry_run_under_xdist_is_refused_rather_than_estimating_nothing(
    project: Project,
) -> None:
    project.config()
    project.gold("one.yaml", ONE)
    result = project.run("--judge-dry-run", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--judge-dry-run calls nothing and needs no workers: drop -n*"])
