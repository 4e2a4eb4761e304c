"""End to end: a `kind: pairwise` rubric compares candidate and baseline outputs in both orders."""

from __future__ import annotations

import json

import pytest

from conftest import Project
from loopback import Call, LoopbackLLM

PAIRWISE = """
    ---
    kind: pairwise
    description: Prefer the answer that is more helpful.
    ---
    Request: {{ input }}
"""


def choice(winner: str) -> str:
    return json.dumps({"winner": winner, "rationale": "scripted", "confidence": 0.8})


def responder(call: Call) -> str:
    if not call.is_judge:
        return f"{call.model} answer to {call.last_user}"
    first = call.prompt.split("Answer A:")[1].split("Answer B:")[0]
    question = int(call.prompt.split("question ")[1].split()[0])
    if question == 2 and call.model == "judge-b":
        return choice("A")  # position bias: always the first answer
    better_is_new = question != 1
    return choice("A" if ("new answer" in first) == better_is_new else "B")


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_pairwise_in_both_orders_with_targets_in_one_session(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    project.config(
        target=[{"model": "openai/old", "name": "old"}, {"model": "openai/new", "name": "new"}],
        judges=["openai/judge-a", "openai/judge-b"],
        gate={"baseline": "old", "candidate": "new", "max_regression": 0.5},
    )
    project.rubric("preference", PAIRWISE)
    project.gold(
        "p.yaml",
        """
        rubric: preference
        cases:
          - {id: p0, input: "question 0"}
          - {id: p1, input: "question 1"}
          - {id: p2, input: "question 2"}
        """,
    )
    result = project.run("--judge", "-rs")
    lines = (project.run_dir() / "results.jsonl").read_text().splitlines()
    new = {r["case_id"]: r for r in map(json.loads, lines) if r["target"] == "new"}
    assert new["p0"]["outcome"] == "passed"
    assert new["p0"]["pairwise"]["preferred"] == "candidate"
    assert new["p0"]["pairwise"]["baseline_output"] == "old answer to question 0"
    assert new["p1"]["outcome"] == "failed"
    assert new["p2"]["outcome"] == "escalated"
    assert new["p2"]["reasons"][0] == "position-inconsistent (openai/judge-b)"
    flipped = next(j for j in new["p2"]["pairwise"]["judgments"] if j["judge"] == "openai/judge-b")
    assert (flipped["candidate_first"], flipped["baseline_first"]) == ("candidate", "baseline")
    assert flipped["preferred"] == "tie"
    assert llm.count(judge=True) == 3 * 2 * 2  # three cases, two judges, both orders
    gate = json.loads((project.run_dir() / "gate.json").read_text())
    consistency = gate["position_consistency"]
    assert consistency == {"openai/judge-a": 1.0, "openai/judge-b": pytest.approx(2 / 3)}
    assert gate["losses"] == 2 and gate["unresolved"] == ["p2"]
    result.stdout.fnmatch_lines(["*position consistency of openai/judge-b: 66.7%*"])


def test_pairwise_against_a_baseline_run(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = responder
    project.config(target={"model": "openai/old"}, judges=["openai/judge-a"])
    project.rubric("preference", PAIRWISE)
    project.gold("p.yaml", 'rubric: preference\ncases:\n  - {id: p0, input: "question 0"}\n')
    first = project.run("--judge", "-rs")
    first.stdout.fnmatch_lines(["*pairwise rubric needs a baseline*"])
    baseline = project.run_dir().name
    project.config(target={"model": "openai/new"}, judges=["openai/judge-a"])
    result = project.run("--judge", "--judge-baseline", baseline)
    result.assert_outcomes(passed=1)
    record = project.results()["p0"]
    assert record["pairwise"]["baseline_output"] == "old answer to question 0"
    assert record["pairwise"]["preferred"] == "candidate"
