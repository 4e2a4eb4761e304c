"""Collection and selection: bad gold files, tags as markers, -k, --lf, JSONL, targets, paths."""

from __future__ import annotations

import json

import pytest

from conftest import Project
from loopback import LoopbackLLM, Reply, default_responder

GOOD = """
    cases:
      - id: capital-france
        input: "What is the capital of France?"
        reference: "Paris"
        tags: [geography]
      - id: two-plus-two
        input: "What is 2 + 2?"
        reference: "4"
        tags: [math]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cases:\n  - id: a\n    input: x\n  - id: a\n    input: y\n",
            "*bad.yaml:4: case 'a' duplicate id (first at line 2)*",
        ),
        ("cases:\n  - id: a\n    reference: x\n", "*bad.yaml:2: case 'a' *needs `input`*"),
        (
            "cases:\n  - id: a\n    input: [unclosed\n",
            "*bad.yaml:3: not valid YAML: the `[` list that starts on this line is never closed*",
        ),
        (
            "cases:\n  - id: a\n    input: x\n    rubric: nope\n",
            "*bad.yaml:2: case 'a' unknown rubric 'nope'*correctness*",
        ),
        (
            "cases:\n  - id: a\n    input: x\n    verify: {regex: '('}\n",
            "*bad.yaml:2: case 'a' verify.regex*",
        ),
        ("cases:\n  - id: a\n    input: x\n    colour: red\n", "*unknown key 'colour'*"),
    ],
)
def test_bad_gold_file_is_a_collection_error_and_others_still_run(
    project: Project, llm: LoopbackLLM, text: str, expected: str
) -> None:
    project.config()
    project.gold("good.yaml", GOOD)
    (project.path / "gold" / "bad.yaml").write_text(text)
    result = project.run("--judge", "--continue-on-collection-errors")
    result.stdout.fnmatch_lines([expected])
    result.assert_outcomes(passed=2, errors=1)
    assert "Traceback" not in result.stdout.str()


def test_rubric_undefined_variable_names_file_line_and_case(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    project.rubric("tone", "---\nscale: [1, 3]\npass_threshold: 2\n---\nLine one\n{{ persona }}\n")
    project.gold("g.yaml", "cases:\n  - id: a\n    input: x\n    rubric: tone\n")
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*rubrics/tone.md:6: 'persona' is undefined (case 'a')*"])


def test_tags_are_markers_and_k_selects(project: Project, llm: LoopbackLLM) -> None:
    project.config()
    project.gold("g.yaml", GOOD)
    project.run("--judge", "-m", "math").assert_outcomes(passed=1)
    assert "What is 2 + 2?" in llm.calls[0].last_user
    project.run("--judge", "-k", "france", "--strict-markers").assert_outcomes(passed=1)
    assert project.results().keys() == {"capital-france"}


def test_collect_only_lists_cases_without_calls_keys_or_a_run(
    project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    project.config()
    project.gold("g.yaml", GOOD)
    result = project.run("--judge", "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["gold/g.yaml::capital-france", "gold/g.yaml::two-plus-two"])
    assert llm.calls == []
    assert not (project.path / ".hybridjudge" / "runs").exists()


def test_last_failed_reruns_only_failures(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = lambda c: (
        "wrong"
        if not c.is_judge
        else json.dumps(
            {"score": 1 if "2 + 2" in c.prompt else 5, "rationale": "r", "confidence": 0.9}
        )
    )
    project.config()
    project.gold("g.yaml", GOOD)
    project.pytester.runpytest("--judge").assert_outcomes(passed=1, failed=1)
    result = project.pytester.runpytest("--judge", "--lf")
    result.assert_outcomes(failed=1)
    assert project.results().keys() == {"two-plus-two"}


def test_jsonl_gold_and_callable_targets(project: Project, llm: LoopbackLLM) -> None:
    project.pytester.makepyfile(
        myapp="""
        import asyncio

        def answer(case):
            return "sync:" + case.input

        async def answer_async(case):
            await asyncio.sleep(0)
            return "async:" + case.input
        """
    )
    project.config(target=["myapp:answer", {"callable": "myapp:answer_async", "name": "async"}])
    lines = [
        {"id": "a", "input": "hello", "verify": {"contains": "hello"}},
        {"id": "b", "input": "hi"},
    ]
    (project.path / "gold").mkdir()
    (project.path / "gold" / "set.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    result = project.run("--judge", "-v")
    result.stdout.fnmatch_lines(
        ["*set.jsonl::a?myapp:answer? PASSED*", "*set.jsonl::a?async? PASSED*"]
    )
    result.assert_outcomes(passed=4)
    outputs = {c.last_user for c in llm.calls if c.is_judge}
    assert any("sync:hi" in p for p in (c.prompt for c in llm.calls)) and outputs


def test_bad_jsonl_line_names_the_line(project: Project, llm: LoopbackLLM) -> None:
    project.config()
    (project.path / "gold").mkdir()
    (project.path / "gold" / "set.jsonl").write_text('{"id": "a", "input": "x"}\n{oops\n')
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*set.jsonl:2:*not valid JSON*"])


def test_app_that_raises_fails_its_case_only(project: Project, llm: LoopbackLLM) -> None:
    project.pytester.makepyfile(
        app="""
        def answer(case):
            if case.id == "two-plus-two":
                raise ValueError("boom")
            return "Paris"
        """
    )
    project.config(target="app:answer")
    project.gold("g.yaml", GOOD)
    result = project.run("--judge")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*target 'app:answer' raised ValueError: boom*"])
    assert project.results()["two-plus-two"]["outcome"] == "failed"


def test_config_errors_name_the_key(project: Project) -> None:
    (project.path / "pyproject.toml").write_text(
        '[tool.hybridjudge]\ntarget = "openai/x"\nconcurency = 3\ntimeout = -1\n'
    )
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pyproject.toml ?tool.hybridjudge?: invalid configuration*"])
    result.stderr.fnmatch_lines(["*unknown key 'concurency': did you mean 'concurrency'?*"])
    result.stderr.fnmatch_lines(["*'timeout': Input should be greater than 0*"])


def test_no_target_is_a_usage_error(project: Project) -> None:
    (project.path / "pyproject.toml").write_text('[tool.hybridjudge]\njudges = ["openai/x"]\n')
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no target configured*"])


def test_report_and_manifest_paths_and_cache_modes(project: Project, llm: LoopbackLLM) -> None:
    project.config()
    project.gold("g.yaml", GOOD)
    project.run("--judge", "--judge-report", "out/r.jsonl", "--judge-manifest", "out/m.jsonl")
    assert len((project.path / "out" / "r.jsonl").read_text().splitlines()) == 2
    assert (project.path / "out" / "m.jsonl").read_text() == ""
    calls = len(llm.calls)
    project.run("--judge", "--judge-cache", "refresh")
    assert len(llm.calls) == 2 * calls
    project.run("--judge", "--judge-cache", "off")
    assert len(llm.calls) == 3 * calls
    project.run("--judge")
    assert len(llm.calls) == 3 * calls


def test_every_selected_case_gets_a_record(project: Project, llm: LoopbackLLM) -> None:
    project.config()
    project.gold("g.yaml", GOOD)
    project.pytester.makeconftest(
        "import pytest\n"
        "def pytest_collection_modifyitems(items):\n"
        "    items[0].add_marker(pytest.mark.skip(reason='not today'))\n"
    )
    project.run("--judge").assert_outcomes(passed=1, skipped=1)
    results = project.results()
    assert results["capital-france"]["outcome"] == "skipped"
    assert results["capital-france"]["reasons"] == ["not today"]


def test_interrupted_run_records_every_case_and_writes_valid_files(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    project.gold("g.yaml", GOOD)
    # two-plus-two is still being answered when the first item's report interrupts the run
    llm.responder = lambda call: (
        Reply(text="4", delay=5.0) if "2 + 2" in call.last_user else default_responder(call)
    )
    project.pytester.makeconftest(
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        raise KeyboardInterrupt\n"
    )
    # in a subprocess: pytester's in-process runs re-raise KeyboardInterrupt into this test
    result = project.pytester.runpytest_subprocess("--judge", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    results = project.results()
    assert set(results) == {"capital-france", "two-plus-two"}
    assert results["capital-france"]["outcome"] == "passed"
    assert results["two-plus-two"]["outcome"] == "skipped"
    assert results["two-plus-two"]["reasons"] == ["run interrupted before this case finished"]
    assert project.manifest() == []
    assert not list((project.path / ".hybridjudge").rglob("*.tmp"))
