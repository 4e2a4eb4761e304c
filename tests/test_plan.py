"""A case's plan is what it sends: every request the pipeline makes is one the budget priced."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from loopback import Call, LoopbackLLM, verdict
from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.calls import ModelCaller
from pytest_hybridjudge.config import HybridJudgeConfig
from pytest_hybridjudge.cost import TokenCounter
from pytest_hybridjudge.estimate import plan_calls
from pytest_hybridjudge.evaluate import Evaluator
from pytest_hybridjudge.gate.run import Baseline
from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.jobs import Job
from pytest_hybridjudge.plan import plan_case
from pytest_hybridjudge.rubric import RubricLibrary
from pytest_hybridjudge.verdict import CaseResult

CASE = GoldCase(id="capital", input="Capital of France?", reference="Paris", source="g")
PAIRWISE = "---\nkind: pairwise\ndescription: Prefer the better one.\n---\nRequest: {{ input }}\n"
WORDS = TokenCounter(approximate=True)


def invalid_first(call: Call) -> str:
    """Targets answer; every judge's first reply is invalid, so every judge request is retried."""
    if not call.is_judge:
        return "Paris"
    if not call.last_user.startswith("That reply is not a valid"):
        return "I think it is fine."
    if "winner" in (call.schema or {}).get("properties", {}):
        return json.dumps({"winner": "tie", "rationale": "as good", "confidence": 0.9})
    return verdict(5)


@pytest.mark.parametrize("rubric_name", ["correctness", "pref"])
def test_every_request_sent_is_in_the_plan(
    rubric_name: str, llm: LoopbackLLM, tmp_path: Path
) -> None:
    """A panel with samples, the retry each judge request gets, and for a pairwise rubric both
    orders and the baseline target called inside the case: the server sees exactly the plan."""
    (tmp_path / "pref.md").write_text(PAIRWISE, encoding="utf-8")
    llm.responder = invalid_first
    settings = HybridJudgeConfig.model_validate(
        {
            "target": [{"model": "openai/old", "name": "old"}, {"model": "openai/new"}],
            "judges": [{"model": "openai/judge-a", "samples": 3}, "openai/judge-b"],
            "gate": {"baseline": "old", "candidate": "openai/new"},
            "retries": 0,
        }
    )
    rubric = RubricLibrary(tmp_path).get(rubric_name)
    job = Job(
        "g.yaml::capital",
        CASE,
        settings.targets[1],
        rubric,
        rubric.render(CASE.variables(), CASE.id),
    )
    baseline = Baseline("target old", target="old")
    planned: Counter[str] = Counter()
    for calls in plan_calls(plan_case(job, settings, baseline), WORDS):
        planned[calls.model.split("/", 1)[1]] += calls.calls * (
            2 if calls.retry_prompt_tokens else 1
        )

    result = _evaluate(settings, baseline, job, tmp_path)

    assert result.outcome == "passed", result.reasons
    assert Counter(call.model for call in llm.calls) == planned
    assert planned["judge-a"] == (2 if rubric_name == "pref" else 3) * 2  # orders or samples
    assert planned["old"] == (1 if rubric_name == "pref" else 0)  # the in-session baseline


def _evaluate(
    settings: HybridJudgeConfig, baseline: Baseline, job: Job, tmp_path: Path
) -> CaseResult:
    cache = CompletionCache(tmp_path / "cache.sqlite", "off")
    caller = ModelCaller.from_config(settings, cache, tmp_path)
    evaluator = Evaluator(settings, caller, {}, baseline=baseline)

    async def go() -> CaseResult:
        try:
            return await evaluator.evaluate(job)
        finally:
            await caller.aclose()

    try:
        return asyncio.run(go())
    finally:
        cache.close()


def test_a_case_with_a_fixed_output_plans_and_sends_no_target_call(
    llm: LoopbackLLM, tmp_path: Path
) -> None:
    """`output:` in the gold file (an imported fixed output): the judges grade that text, the
    target is never called, and the budget prices no call to it."""
    llm.responder = lambda call: verdict(5) if call.is_judge else "never asked"
    settings = HybridJudgeConfig.model_validate(
        {"target": "openai/target", "judges": ["openai/judge"], "retries": 0}
    )
    case = CASE.model_copy(update={"output": "Paris, on the Seine."})
    rubric = RubricLibrary(tmp_path).get("correctness")
    job = Job(
        "g.yaml::capital",
        case,
        settings.targets[0],
        rubric,
        rubric.render(case.variables(), case.id),
    )
    planned = {
        calls.model: calls.calls for calls in plan_calls(plan_case(job, settings, None), WORDS)
    }

    result = _evaluate(settings, Baseline("none"), job, tmp_path)

    assert planned == {"openai/judge": 1}
    assert [call.model for call in llm.calls] == ["judge"]
    assert result.output == "Paris, on the Seine." and result.outcome == "passed"
    assert "Paris, on the Seine." in llm.calls[0].prompt
