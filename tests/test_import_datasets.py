"""`hybridjudge import` of Inspect, DeepEval, LangSmith and OpenAI Evals files, field by field."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_hybridjudge.cli import main
from pytest_hybridjudge.gold import load_gold_file

FIXTURES = Path(__file__).parent / "import_fixtures"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding copies of every fixture, as the current folder."""
    shutil.copytree(FIXTURES, tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def imported(fmt: str, source: str, *args: str) -> dict[str, dict[str, Any]]:
    """Import, check the gold loader accepts the file, return its cases by id."""
    out = Path("gold") / Path(source).suffix.lstrip(".") / (Path(source).stem + ".yaml")
    assert main(["import", fmt, f"src/{source}", "--out", str(out), *args]) == 0
    load_gold_file(out)
    return {c["id"]: c for c in yaml.safe_load(out.read_text())["cases"]}


def test_inspect_jsonl_samples(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = imported("inspect", "inspect/samples.jsonl")
    assert cases["q1"] == {
        "id": "q1",
        "input": "What is the capital of France?",
        "reference": "Paris",
        "metadata": {"topic": "geography"},
    }
    assert cases["q2"]["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of Peru?"},  # content parts joined
    ]
    assert cases["q2"]["reference"] == ["Lima", "Ciudad de los Reyes"]  # several references
    assert cases["3"]["metadata"] == {"choices": ["4", "6", "7"]}
    assert cases["q4"]["reference"] == "a.txt"
    assert len(cases) == 4  # the tool-message sample is left out
    out = capsys.readouterr().out
    for key in ("sandbox", "files", "setup"):
        assert f"src/inspect/samples.jsonl:4: unsupported: `{key}` is not supported" in out
    assert "src/inspect/samples.jsonl:5: unsupported: chat role 'tool'" in out


def test_inspect_json_list_keeps_lines(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = imported("inspect", "inspect/samples.json")
    assert cases["b"]["reference"] == ["6", "six"]
    assert cases["a"]["reference"] == "4"


@pytest.mark.parametrize("name", ["unix.csv", "excel.csv"])
def test_inspect_csv_dialects(here: Path, name: str) -> None:
    cases = imported("inspect", f"inspect/{name}")
    if name == "unix.csv":
        assert cases["u2"]["input"] == 'A "quoted" question,\nover two lines'
        assert cases["u1"]["metadata"] == {"difficulty": "easy"}  # other columns kept
        assert cases["u1"]["reference"] == "Santiago"
    else:
        assert cases["e2"]["input"] == "Comma, inside"
        assert cases["e1"]["reference"] == "Tokyo"


def test_deepeval_json_goldens(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = imported("deepeval", "deepeval/goldens.json")
    assert cases["refund-window"] == {
        "id": "refund-window",
        "input": "What is our refund window?",
        "reference": "30 days",
        "metadata": {
            "context": ["Refunds within 30 days", "Store credit after"],
            "team": "support",
        },
    }
    ship = cases["goldens-2"]
    assert ship["output"] == "Yes, to 50 countries."  # actualOutput: a fixed output
    assert ship["metadata"]["retrieval_context"] == ["We ship to 50 countries"]
    assert len(cases) == 2
    assert "1 multi-turn golden(s) (scenario/turns) not imported" in capsys.readouterr().out


def test_deepeval_jsonl_and_csv_joined_lists(here: Path) -> None:
    (line,) = imported("deepeval", "deepeval/goldens.jsonl").values()
    assert line["metadata"]["retrieval_context"] == ["Refunds within 30 days", "Store credit after"]
    assert line["metadata"]["expected_tools"] == [{"name": "lookup_policy"}]
    cases = imported("deepeval", "deepeval/goldens.csv")
    refund = cases["refund"]
    assert refund["output"] == "We refund within 30 days."
    assert refund["metadata"]["context"] == ["Policy v2", "Policy v1"]  # `|`-joined
    assert refund["metadata"]["tools_called"] == [{"name": "lookup_policy"}]  # JSON
    assert refund["metadata"]["expected_tools"] == ["lookup_policy", "send_email"]  # `;`-joined
    assert refund["metadata"]["team"] == "support"
    assert refund["metadata"]["comments"] == "checked by legal"
    assert "output" not in cases["goldens-2"]


def test_langsmith_jsonl_inputs_outputs_and_field_mapping(here: Path) -> None:
    cases = imported("langsmith", "langsmith/examples.jsonl")
    first = cases["0f1c2d3e-0000-4000-8000-000000000001"]
    assert first["input"] == {"question": "What is LangSmith?", "lang": "en"}
    assert first["reference"] == "A platform for LLM apps"
    assert first["metadata"] == {"split": "test"}
    mapped = imported(
        "langsmith", "langsmith/examples.jsonl", "--field", "input=question", "--force"
    )
    assert mapped["0f1c2d3e-0000-4000-8000-000000000002"]["input"] == "Qu'est-ce que LangSmith?"
    (row,) = imported("langsmith", "langsmith/examples.csv").values()
    assert row["input"] == "What is LangSmith?"  # the one input field
    assert row["reference"] == "A platform for LLM apps"


def test_field_naming_nothing_is_an_error(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["import", "langsmith", "src/langsmith/examples.csv", "--field", "input=query"]
    assert main(args) == 2
    assert "--field input=query: no such field" in capsys.readouterr().err
    assert main(["import", "langsmith", "src/langsmith/examples.csv", "--field", "x=y"]) == 2
    assert "GOLD one of id, input" in capsys.readouterr().err


def test_openai_evals_samples(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = imported("openai-evals", "openai_evals/samples.jsonl")
    chat, colours = cases["samples-1"], cases["samples-2"]
    assert chat["messages"][1] == {"role": "system", "content": "1+1"}  # `name` dropped
    assert chat["messages"][-1] == {"role": "user", "content": "2+2"}
    assert chat["reference"] == "4"
    assert colours["reference"] == ["red", "blue", "yellow"]
    assert "example_assistant" in capsys.readouterr().out


def test_git_lfs_pointer_is_refused_with_the_reason(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["import", "openai-evals", "src/openai_evals/lfs_pointer.jsonl"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "lfs_pointer.jsonl:1: is a Git LFS pointer" in err and "git lfs pull" in err
    assert not (here / "gold").exists()


def test_a_source_with_no_usable_case_writes_nothing(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "empty.jsonl").write_text('{"input": [{"role": "tool", "content": "x"}]}\n')
    assert main(["import", "inspect", "empty.jsonl"]) == 2
    assert "no case could be imported" in capsys.readouterr().err
    assert not (here / "gold").exists()
