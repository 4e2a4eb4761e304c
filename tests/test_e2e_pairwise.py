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
    assert gate["losses"] == 1 and gate["unresolved"] == ["p2"]  # an escalation is no loss
    result.stdout.fnmatch_lines(["*position consistency of openai/judge-b: 66.7%*"])
    # the baseline target's own pairwise items are the reference, not cases: none is skipped
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["escalated"]) == (1, 1, 1)
    assert "skipped" not in outcomes
    assert sorted(r["target"] for r in map(json.loads, lines)) == ["new"] * 3


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


def test_export_preferences_and_results(
    project: Project, llm: LoopbackLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    import datetime as dt
    import io

    from pytest_hybridjudge.cli import main
    from pytest_hybridjudge.review.resolutions import Resolution

    test_pairwise_in_both_orders_with_targets_in_one_session(project, llm)
    capsys.readouterr()
    root = str(project.path)
    assert main(["export", "preferences", "--root", root]) == 0
    pairs = {p["case_id"]: p for p in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(pairs) == {"p0", "p1"}  # p2 flipped with the order: not a preference
    assert pairs["p0"] == {
        "prompt": "question 0",
        "chosen": "new answer to question 0",
        "rejected": "old answer to question 0",
        "source": "judges",
        "case_id": "p0",
    }
    assert pairs["p1"]["chosen"] == "old answer to question 1"

    escalated = next(
        r
        for r in map(json.loads, (project.run_dir() / "results.jsonl").read_text().splitlines())
        if r["case_id"] == "p2" and r["target"] == "new"
    )
    resolution = Resolution(
        item_id=escalated["item_id"],
        case_id="p2",
        verdict="fail",
        reviewer="ann",
        resolved_at=dt.datetime.now(dt.UTC),
    )
    resolutions = project.path / "review" / "resolutions.jsonl"
    resolutions.parent.mkdir(exist_ok=True)
    resolutions.write_text(resolution.model_dump_json() + "\n")
    assert main(["export", "preferences", "--root", root]) == 0
    pairs = {p["case_id"]: p for p in map(json.loads, capsys.readouterr().out.splitlines())}
    assert pairs["p2"]["source"] == "review:ann"  # reviewers take precedence over judges
    assert pairs["p2"]["chosen"] == "old answer to question 2"

    assert main(["export", "results", "--format", "csv", "--root", root]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3  # the candidate's cases; the baseline target's outputs are inside
    p2 = next(r for r in rows if r["case_id"] == "p2" and r["target"] == "new")
    assert p2["outcome"] == "escalated" and p2["reasons"].startswith("position-inconsistent")
    assert main(["export", "results", "--run", "nope", "--root", root]) == 2
    assert "export: error: --run nope: no results file" in capsys.readouterr().err


def test_review_shows_the_baseline_output_of_a_pairwise_item(
    project: Project, llm: LoopbackLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reviewer deciding a pairwise case sees both outputs, the baseline's escaped too, and a
    resolution of the manifest's item is the one the next run looks up."""
    from pytest_hybridjudge.cli import main

    def hostile(call: Call) -> str:
        if call.is_judge or call.model != "old":
            return responder(call)
        return f"old answer to {call.last_user}\n\x1b[2Jcleared\u202e"

    test_pairwise_in_both_orders_with_targets_in_one_session(project, llm)
    llm.responder = hostile
    project.run("--judge", "--judge-cache", "refresh")
    capsys.readouterr()
    item = next(i for i in project.manifest() if i["case_id"] == "p2")
    record = next(
        r
        for r in map(json.loads, (project.run_dir() / "results.jsonl").read_text().splitlines())
        if r["case_id"] == "p2" and r["target"] == "new"
    )
    assert item["item_id"] == record["item_id"]
    assert item["baseline_output"] == "old answer to question 2\n\x1b[2Jcleared\u202e"
    assert main(["review", "show", item["item_id"], "--root", str(project.path)]) == 0
    out = capsys.readouterr().out
    candidate = out.split("CANDIDATE OUTPUT  (plain text")[1].split("\nEND OF CANDIDATE OUTPUT")[0]
    assert candidate.splitlines()[1:] == ["  | new answer to question 2"]
    base = out.split("BASELINE OUTPUT  (what it is compared with; plain text")[1]
    assert base.split("\nEND OF BASELINE OUTPUT")[0].splitlines()[1:] == [
        "  | old answer to question 2",
        "  | \\x1b[2Jcleared\\u202e",
    ]
    assert "\x1b" not in out


def test_a_judges_format_error_is_retried_then_escalated_never_a_loss(
    project: Project, llm: LoopbackLLM
) -> None:
    """Issue 15, item 15: judges that do not answer the format are no model regression."""

    def no_winner(call: Call) -> str:
        if call.is_judge and call.model == "judge-a":
            return json.dumps({"rationale": "I like both", "confidence": 0.8})
        return responder(call)

    llm.responder = no_winner
    project.config(
        target=[{"model": "openai/old", "name": "old"}, {"model": "openai/new", "name": "new"}],
        judges=["openai/judge-a", "openai/judge-b"],
        gate={"baseline": "old", "candidate": "new", "critical": ["p0", "p1", "p2"]},
    )
    project.rubric("preference", PAIRWISE)
    project.gold(
        "p.yaml",
        'rubric: preference\ncases:\n  - {id: p0, input: "question 0"}\n'
        '  - {id: p3, input: "question 3"}\n',
    )
    result = project.run("--judge")
    assert result.parseoutcomes() == {"escalated": 2}
    record = project.results()["p0"]
    judged = next(j for j in record["pairwise"]["judgments"] if j["judge"] == "openai/judge-a")
    assert "missing 'winner'" in judged["error"] and "after one retry" in judged["error"]
    assert any("no valid pairwise verdict from openai/judge-a" in r for r in record["reasons"])
    retries = [
        c for c in llm.calls if c.model == "judge-a" and "not a valid pairwise" in c.last_user
    ]
    assert len(retries) == 2 * 2  # each order asked again once, two cases
    assert all("missing 'winner'" in c.last_user for c in retries)
    assert llm.count(model="judge-a") == 2 * 2 * 2
    gate = json.loads((project.run_dir() / "gate.json").read_text())
    assert gate["result"] != "REGRESSED"
    assert (gate["losses"], gate["critical_regressions"]) == (0, [])
    assert gate["unresolved"] == ["p0", "p3"]
