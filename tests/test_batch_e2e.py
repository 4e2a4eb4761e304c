"""End to end: `pytest --judge --judge-batch` through the official SDKs against the loopback
server's batch APIs: the same outcomes as a direct run, in waves, half price."""

from __future__ import annotations

from typing import Any

from conftest import Project
from loopback import Call, LoopbackLLM, verdict
from loopback_batches import BatchDesk

CAPITALS = """
    rubric: correctness
    cases:
      - id: capital-france
        input: "What is the capital of France?"
      - id: capital-peru
        input: "What is the capital of Peru?"
      - id: refund-policy
        input: "Can I get a refund after 40 days?"
        verify: {regex: "(?i)no|not eligible"}
"""
FAST = {"poll": 0.01, "poll_max": 0.05, "gather": 1.0}


def responder(call: Call) -> str:
    if not call.is_judge:
        return "Paris" if "France" in call.last_user else "I think it is Cusco"
    return verdict(2 if "Cusco" in call.prompt else 5)


def outcomes(project: Project) -> dict[str, tuple[str, Any, list[str]]]:
    return {case: (r["outcome"], r["score"], r["reasons"]) for case, r in project.results().items()}


def test_a_batched_run_decides_every_case_as_a_direct_run_does(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    desk = BatchDesk(llm, hold=2)
    project.config(batch=FAST, cache="off")
    project.gold("capitals.yaml", CAPITALS)
    project.run("--judge").assert_outcomes(passed=1, failed=2)
    direct = outcomes(project)
    direct_calls = len(llm.calls)

    result = project.run("--judge", "--judge-batch")

    result.assert_outcomes(passed=1, failed=2)
    assert outcomes(project) == direct
    assert len(llm.calls) == 2 * direct_calls  # every request answered once more, in batches
    # wave 1: the three targets; wave 2: judges a and b (OpenAI) and c (Anthropic)
    assert desk.created == {"openai": 2, "anthropic": 1}
    calls = project.summary()["calls"]
    assert calls["batches"]["waves"] == 2
    assert calls["batches"]["results"] == {"succeeded": 3 + 2 * 3}  # refund-policy not judged
    result.stdout.fnmatch_lines(["*batch wave 2*", "*batches: 2 waves, 3 created*"])
    assert not (project.run_dir() / "batches").exists() or all(
        '"collected"' in p.read_text() for p in (project.run_dir() / "batches").iterdir()
    )


def test_requests_expired_past_their_resubmissions_escalate_their_cases(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    BatchDesk(llm, expire=1.0)
    project.config(batch={**FAST, "resubmits": 1}, cache="off")
    project.gold("capitals.yaml", CAPITALS)

    result = project.run("--judge", "--judge-batch")

    results = project.results()
    assert {r["outcome"] for r in results.values()} == {"escalated"}
    assert all(r["reasons"][0].startswith("target: batch expired") for r in results.values())
    batches = project.summary()["calls"]["batches"]
    assert batches["results"] == {"expired": 6} and batches["resubmitted"] == 3
    result.stdout.fnmatch_lines(["*batch expired*"])
