"""`hybridjudge import promptfoo`: a project written as promptfoo's docs show, corners included."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_hybridjudge.cli import main
from pytest_hybridjudge.gold import load_gold_file
from pytest_hybridjudge.importers.promptfoo_asserts import from_shorthand, template_problems
from pytest_hybridjudge.rubric import RubricLibrary

FIXTURES = Path(__file__).parent / "import_fixtures"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the promptfoo fixture, a `victim` folder code in it would delete, cwd there."""
    shutil.copytree(FIXTURES / "promptfoo", tmp_path / "pf")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "file").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_import(*args: str) -> int:
    return main(["import", "promptfoo", "pf/promptfooconfig.yaml", "--out", "gold/pf.yaml", *args])


def cases(root: Path) -> dict[str, Any]:
    data = yaml.safe_load((root / "gold" / "pf.yaml").read_text())
    return {c["id"]: c for c in data["cases"]}


def test_writes_a_gold_file_the_loader_accepts_with_its_rubrics(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_import() == 0
    loaded = load_gold_file(project / "gold" / "pf.yaml")
    assert len(loaded) == 10
    library = RubricLibrary(project / "rubrics")
    for case in loaded:  # every rubric exists and renders with the case's variables
        library.get(case.rubric or "correctness").render(case.variables(), case.id)
    out = capsys.readouterr().out
    assert "imported 10 case(s)" in out
    assert "wrote gold/pf.yaml" in out


def test_default_test_is_merged_and_assertions_map_to_verifiers(project: Path) -> None:
    run_import()
    france = cases(project)["capital-of-France"]
    assert france["input"] == {"tone": "plain", "question": "What is the capital of France?"}
    assert france["reference"] == "Paris"
    assert france["verify"] == {
        "exact": "Paris",
        "contains_case": "Par",  # promptfoo's contains is case-sensitive
        "starts_with": "P",
        "regex": "^P",
        "all": [{"regex": "s$"}],  # a second regex
        "not": {"contains": "as an ai language model"},  # defaultTest's not-icontains
    }
    kept = france["metadata"]["assertions"]
    assert {"type": "contains", "weight": 2} in kept
    assert {"type": "llm-rubric", "metric": "tone", "threshold": 0.8} in kept
    peru = cases(project)["JSON-answer"]["verify"]
    assert peru["is_json"] == {"type": "object", "required": ["capital"]}
    assert peru["contains_json"] is True
    assert peru["not"] == [
        {"contains": "as an ai language model"},
        {"contains_case": "Lima, Peru"},
        {"regex": "(?i)sorry"},
    ]


def test_graded_assertions_become_a_rubric_with_the_threshold(project: Path) -> None:
    run_import()
    peru = cases(project)["JSON-answer"]
    text = (project / "rubrics" / f"{peru['rubric']}.md").read_text()
    assert "pass_threshold: 8" in text  # llm-rubric threshold 0.8 on a 0..10 scale
    assert "Answers in a {{ tone }} tone" in text  # Nunjucks variables pass through
    assert "factually consistent with: The capital of Peru is Lima" in text
    rubric = RubricLibrary(project / "rubrics").get(peru["rubric"])
    (case,) = [c for c in load_gold_file(project / "gold" / "pf.yaml") if c.id == "JSON-answer"]
    assert "Answers in a plain tone" in rubric.render(case.variables())


def test_csv_special_columns_and_the_shorthand(project: Path) -> None:
    run_import()
    italy, spain = cases(project)["capital-of-Italy"], cases(project)["capital-of-Spain"]
    assert italy["verify"]["exact"] == "Rome"  # no prefix: equals
    assert italy["verify"]["contains"] == "rome"  # icontains
    assert italy["metadata"]["threshold"] == 0.5  # __threshold
    assert {"type": "equals", "metric": "accuracy"} in italy["metadata"]["assertions"]
    assert {"type": "llm-rubric", "metric": "accuracy", "threshold": 0.6} in italy["metadata"][
        "assertions"
    ]
    rubric = (project / "rubrics" / f"{italy['rubric']}.md").read_text()
    assert "names {{ question }}'s answer" in rubric
    assert spain["output"] == "Madrid"  # __providerOutput: judged without calling a model
    assert "says Madrid" in (project / "rubrics" / f"{spain['rubric']}.md").read_text()  # grade:
    assert spain["verify"]["not"] == [
        {"contains": "as an ai language model"},
        {"contains_case": "Barcelona"},
    ]
    quoted = cases(project)["quoted"]
    assert quoted["input"]["question"] == "Quote, comma"
    assert quoted["verify"]["contains_case"] == ["a", "b"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Paris", {"type": "equals", "value": "Paris"}),
        ("contains:Par", {"type": "contains", "value": "Par"}),
        ("not-icontains: sorry", {"type": "not-icontains", "value": "sorry"}),
        ("similar(0.8):Hello", {"type": "similar", "value": "Hello", "threshold": 0.8}),
        ("is-json", {"type": "is-json"}),
        ("contains-any:a, b", {"type": "contains-any", "value": ["a", "b"]}),
        ("grade:is polite", {"type": "llm-rubric", "value": "is polite"}),
        ("fn:output.length < 5", {"type": "javascript", "value": "output.length < 5"}),
        ("python: 1", {"type": "python", "value": "1"}),
        ("file://check.py", {"type": "file", "value": "file://check.py"}),
        ("containsX:y", {"type": "equals", "value": "containsX:y"}),
    ],
)
def test_expected_shorthand(cell: str, expected: dict[str, Any]) -> None:
    assert from_shorthand(cell) == expected


def test_executable_assertions_run_nothing_and_are_reported_with_file_and_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_import() == 0
    assert (project / "victim" / "file").read_text() == "keep me"
    out = capsys.readouterr().out
    assert "pf/promptfooconfig.yaml:54: warning: assertion `python` runs" in out
    assert "pf/promptfooconfig.yaml:56: warning: assertion `javascript` runs" in out
    assert "pf/promptfooconfig.yaml:58: warning: assertion `python` runs" in out  # file://…py
    assert "pf/tests/capitals.csv:3: warning: assertion `python` runs" in out
    assert "pf/promptfooconfig.yaml:60: unsupported: assertion `similar` not mapped" in out
    assert "pf/tests/extra.yaml:9: unsupported: assertion `assert-set`" in out
    gold = (project / "gold" / "pf.yaml").read_text()
    assert "python" not in gold and "rmtree" not in gold and "javascript" not in gold
    assert "evil_assert" not in "".join(__import__("sys").modules)


def test_prompts_reported_nunjucks_only_filters_and_hints(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_import()
    out = capsys.readouterr().out
    assert "pf/promptfooconfig.yaml:5: warning: prompt 2 would not render the same" in out
    assert "Nunjucks-only filter `dump`" in out and "`.toUpperCase()`" in out
    assert 'prompt = "Answer briefly: {{ question }}"' in out  # the one that renders the same
    assert 'model = "openai/gpt-4.1-mini"' in out
    assert 'model = "anthropic/claude-sonnet-4-5"' in out


def test_template_problems() -> None:
    assert template_problems("{{ q | upper }} {{ q }}") == []
    assert template_problems("{{ q | nl2br }}") == ["Nunjucks-only filter `nl2br`"]
    assert template_problems("{{ q ") and template_problems("{{ q ")[0].startswith("line 1")


def test_array_vars_expand_and_file_vars_are_read(project: Path) -> None:
    run_import()
    first, second = cases(project)["languages-1"], cases(project)["languages-2"]
    assert first["input"]["question"] == "Say hi in French"
    assert second["input"]["question"] == "Say hi in German"
    assert first["input"]["context"] == "Greetings are short.\n"
    assert first["verify"]["regex"] == "(?i)(?:bonjour|hallo)"


def test_same_source_same_bytes_and_no_overwrite_without_force(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_import() == 0
    first = (project / "gold" / "pf.yaml").read_bytes()
    assert run_import() == 0
    assert (project / "gold" / "pf.yaml").read_bytes() == first
    assert "unchanged gold/pf.yaml" in capsys.readouterr().out
    (project / "gold" / "pf.yaml").write_text("cases: []\n")
    assert run_import() == 2
    assert "already exist" in capsys.readouterr().err
    assert (project / "gold" / "pf.yaml").read_text() == "cases: []\n"
    assert run_import("--force") == 0
    assert (project / "gold" / "pf.yaml").read_bytes() == first


def test_missing_test_file_names_the_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "pf" / "promptfooconfig.yaml"
    config.write_text(config.read_text().replace("tests/extra.yaml", "tests/nope.yaml"))
    assert run_import() == 2
    err = capsys.readouterr().err
    assert "pf/promptfooconfig.yaml:78: no test file matches 'tests/nope.yaml'" in err
    assert not (project / "gold").exists()
