"""Imported gold sets run: `hybridjudge import`, then `pytest --judge` on the loopback server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import Project
from loopback import Call, LoopbackLLM, verdict
from pytest_hybridjudge.cli import main

FIXTURES = Path(__file__).parent / "import_fixtures"


def test_promptfoo_project_runs_and_fixed_outputs_call_no_model(
    project: Project, llm: LoopbackLLM
) -> None:
    shutil.copytree(FIXTURES / "promptfoo", project.path / "pf")
    assert main(["import", "promptfoo", "pf/promptfooconfig.yaml", "--out", "gold/pf.yaml"]) == 0
    answers = {"France": "Paris", "Italy": "Rome", "Peru": '{"capital": "Lima"}'}

    def responder(call: Call) -> str:
        if call.is_judge:
            return verdict(9, rationale="meets the criteria")
        return next((a for k, a in answers.items() if k in call.last_user), "Bonjour")

    llm.responder = responder
    project.config(
        target={"model": "openai/target-model", "prompt": "Answer briefly: {{ question }}"}
    )
    result = project.run("--judge", "-p", "no:randomly")
    results = project.results()
    assert len(results) == 10
    assert results["capital-of-France"]["outcome"] == "passed"
    assert results["JSON-answer"]["outcome"] == "passed"  # is_json schema, not-contains held
    assert results["capital-of-Italy"]["outcome"] == "passed"
    assert results["fixed-output"]["output"] == "4"
    assert results["fixed-output"]["outcome"] == "passed"
    assert results["capital-of-Spain"]["output"] == "Madrid"  # __providerOutput
    targets = [c.last_user for c in llm.calls if not c.is_judge]
    assert not [t for t in targets if "2 + 2" in t or "Spain" in t]  # never sent to a model
    assert "Answer briefly: What is the capital of France?" in targets
    assert results["languages-1"]["outcome"] == "passed"  # icontains-any bonjour|hallo
    assert results["quoted"]["outcome"] == "failed"  # contains-all a, b: "Bonjour" has no "a"
    result.stdout.fnmatch_lines(["*gold/pf.yaml*"])


def test_inspect_dataset_runs_with_several_references(project: Project, llm: LoopbackLLM) -> None:
    shutil.copy(FIXTURES / "inspect" / "samples.jsonl", project.path / "samples.jsonl")
    assert main(["import", "inspect", "samples.jsonl"]) == 0

    def responder(call: Call) -> str:
        if call.is_judge:
            return verdict(2 if "cannot" in call.prompt else 5)
        answers = {"Peru": "Lima", "France": "Paris", "prime": "C"}
        return next((a for k, a in answers.items() if k in call.last_user), "I cannot see files")

    llm.responder = responder
    project.config()
    project.run("--judge")
    results = project.results()
    assert set(results) == {"q1", "q2", "3", "q4"}
    assert results["q2"]["reference"] == ["Lima", "Ciudad de los Reyes"]
    assert results["q2"]["outcome"] == "passed"
    judged = [c.prompt for c in llm.calls if c.is_judge and "Capital of Peru" in c.prompt]
    assert judged and all("Ciudad de los Reyes" in p for p in judged)  # both references shown
    assert results["q1"]["outcome"] == "passed"
    assert results["q4"]["outcome"] == "failed"
    chat = next(c for c in llm.calls if not c.is_judge and "Peru" in c.last_user)
    assert chat.system == "Answer in one word."


def test_deepeval_dataset_runs_actual_outputs_without_the_target(
    project: Project, llm: LoopbackLLM
) -> None:
    shutil.copy(FIXTURES / "deepeval" / "goldens.csv", project.path / "goldens.csv")
    assert main(["import", "deepeval", "goldens.csv"]) == 0
    llm.responder = lambda call: verdict(5) if call.is_judge else "Yes, we do."
    project.config()
    project.run("--judge")
    results = project.results()
    assert results["refund"]["output"] == "We refund within 30 days."
    assert results["goldens-2"]["output"] == "Yes, we do."
    targets = [c for c in llm.calls if not c.is_judge]
    assert [c.last_user for c in targets] == ["Do you ship abroad?"]
    assert {r["outcome"] for r in results.values()} == {"passed"}


def test_deepeval_file_written_by_deepeval_itself(project: Project, llm: LoopbackLLM) -> None:
    dataset = pytest.importorskip("deepeval.dataset")
    goldens = [
        dataset.Golden(input="Refund window?", expected_output="30 days", context=["a", "b"]),
        dataset.Golden(input="Ship abroad?", actual_output="Yes"),
    ]
    for kind in ("json", "jsonl", "csv"):
        saved = dataset.EvaluationDataset(goldens=goldens).save_as(
            file_type=kind, directory=str(project.path / "de"), file_name=f"set-{kind}"
        )
        assert main(["import", "deepeval", saved, "--out", f"gold/{kind}.yaml"]) == 0
        text = (project.path / "gold" / f"{kind}.yaml").read_text()
        assert "30 days" in text and "output: 'Yes'" in text.replace('"', "'")


def test_inspect_file_read_by_inspect_itself(project: Project) -> None:
    """The fixture is what Inspect reads: its own reader agrees with our import."""
    sources = pytest.importorskip("inspect_ai.dataset")
    samples = list(sources.json_dataset(str(FIXTURES / "inspect" / "samples.json")))
    assert [s.target for s in samples] == ["4", ["6", "six"]]
