"""The case pipeline's decisions, driven directly: real SDKs against the loopback server."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import write_run
from loopback import Call, LoopbackLLM, verdict
from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.calls import ModelCaller
from pytest_hybridjudge.config import HybridJudgeConfig
from pytest_hybridjudge.cost import budget_share
from pytest_hybridjudge.evaluate import Evaluator, Job, new_record
from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.review.decisions import decisions_of
from pytest_hybridjudge.review.manifest import item_id
from pytest_hybridjudge.review.resolutions import Resolution
from pytest_hybridjudge.rubric import RubricLibrary
from pytest_hybridjudge.runs import RunStore
from pytest_hybridjudge.verdict import CaseResult

RUBRIC = RubricLibrary(None).get("correctness")
T0 = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def job(case: GoldCase, settings: HybridJudgeConfig) -> Job:
    return Job(
        f"gold/g.yaml::{case.id}",
        case,
        settings.targets[0],
        RUBRIC,
        RUBRIC.render(case.variables(), case.id),
    )


@pytest.fixture
def make(
    llm: LoopbackLLM, tmp_path: Path
) -> Iterator[Callable[..., tuple[Evaluator, HybridJudgeConfig]]]:
    caches: list[CompletionCache] = []

    def build(
        resolutions: dict[str, list[Resolution]] | None = None,
        calibration: dict[str, float] | None = None,
        apps: dict[str, Callable[..., Any]] | None = None,
        budget_share: float = 1.0,
        **table: Any,
    ) -> tuple[Evaluator, HybridJudgeConfig]:
        table.setdefault("target", {"model": "openai/target-model"})
        table.setdefault("judges", ["openai/judge-a", "openai/judge-b"])
        table.setdefault("retries", 0)
        settings = HybridJudgeConfig.model_validate(table)
        cache = CompletionCache(tmp_path / "cache.sqlite", "off")
        caches.append(cache)
        caller = ModelCaller.from_config(settings, cache, tmp_path)
        lines = [r for rs in (resolutions or {}).values() for r in rs]
        decisions = decisions_of(lines)  # what the review desk makes of them
        evaluator = Evaluator(
            settings, caller, apps or {}, decisions, calibration, budget_share=budget_share
        )
        return evaluator, settings

    yield build
    for cache in caches:
        cache.close()


def run(evaluator: Evaluator, j: Job) -> CaseResult:
    async def go() -> CaseResult:
        try:
            return await evaluator.evaluate(j)
        finally:
            await evaluator.caller.aclose()

    return asyncio.run(go())


CASE = GoldCase(id="capital-france", input="Capital of France?", reference="Paris", source="g")


def test_confident_panel_passes_and_records_usage(make: Any, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: verdict(5) if call.is_judge else "Paris"
    evaluator, settings = make()
    result = run(evaluator, job(CASE, settings))
    assert (result.outcome, result.reasons) == ("passed", ["panel 2 pass / 0 fail"])
    assert result.output == "Paris" and result.score == 5 and not result.audit
    assert result.tier == "annotator" and result.review_minutes == 2.0
    assert result.usage.calls == 3  # the target and two judges, added up


def test_a_failed_verifier_fails_without_calling_judges(make: Any, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: "Lyon"
    evaluator, settings = make()
    case = CASE.model_copy(update={"verify": {"exact": "Paris"}})
    result = run(evaluator, job(case, settings))
    assert result.outcome == "failed" and result.reasons[0].startswith("verifier exact failed")
    assert result.verdicts == [] and llm.count(judge=True) == 0


def test_an_app_that_raises_fails_the_case_with_its_error(make: Any, llm: LoopbackLLM) -> None:
    def answer(case: GoldCase) -> str:
        raise RuntimeError("database is down")

    evaluator, settings = make(apps={"app:answer": answer}, target="app:answer")
    result = run(evaluator, job(CASE, settings))
    assert result.outcome == "failed"
    assert result.reasons == ["target 'app:answer' raised RuntimeError: database is down"]
    assert result.error == result.reasons[0] and llm.count(judge=True) == 0


def test_reviewers_replace_the_judges(make: Any, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: verdict(1) if call.is_judge else "Paris"
    key = item_id(CASE.id, "Paris", RUBRIC.version, input=CASE.input, reference=CASE.reference)

    def resolution(reviewer: str, v: str) -> Resolution:
        return Resolution(
            item_id=key, case_id=CASE.id, verdict=v, reviewer=reviewer, score=5, resolved_at=T0
        )

    evaluator, settings = make(resolutions={key: [resolution("ann", "pass")]})
    result = run(evaluator, job(CASE, settings))
    assert (result.outcome, result.reasons) == ("passed", ["passed by review (ann)"])
    assert result.resolved_by == ["ann"] and llm.count(judge=True) == 0

    split = {key: [resolution("ann", "pass"), resolution("bob", "fail")]}
    evaluator, settings = make(resolutions=split)
    result = run(evaluator, job(CASE, settings))
    assert result.outcome == "escalated" and result.reasons[0].startswith("reviewers disagree")


def test_an_audit_keeps_the_panels_outcome_and_says_so(make: Any, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: verdict(5) if call.is_judge else "Paris"
    evaluator, settings = make(escalation={"audit_rate": 1.0})
    result = run(evaluator, job(CASE, settings))
    assert result.outcome == "passed" and result.audit
    assert result.reasons == [
        "panel 2 pass / 0 fail",
        "drawn for audit: 100% of confident cases also go to people, to check the judges",
    ]
    assert result.inclusion_probability == 1.0  # the audit rate: calibration is unchanged


def test_a_calibrated_threshold_replaces_min_confidence_for_its_rubric(
    make: Any, llm: LoopbackLLM
) -> None:
    def responder(call: Call) -> str:
        return verdict(5, confidence=0.6) if call.is_judge else "Paris"

    llm.responder = responder
    evaluator, settings = make(escalation={"min_confidence": 0.7})
    assert run(evaluator, job(CASE, settings)).outcome == "escalated"
    evaluator, settings = make(escalation={"min_confidence": 0.7}, calibration={"correctness": 0.5})
    assert run(evaluator, job(CASE, settings)).outcome == "passed"


def test_an_exhausted_budget_skips_the_case(make: Any, llm: LoopbackLLM) -> None:
    evaluator, settings = make(
        budget=0.0000001, prices={"openai/target-model": {"input": 1e3, "output": 1e3}}
    )
    result = run(evaluator, job(CASE, settings))
    assert result.outcome == "skipped" and result.over_budget
    assert result.reasons == ["budget exhausted: $0.0000 of $0.0000 spent or reserved"]
    assert len(llm.calls) == 0
    assert not result.reserved


def test_a_case_within_the_budget_says_it_was_reserved(make: Any, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: verdict(5) if call.is_judge else "Paris"
    evaluator, settings = make(budget=100.0)
    assert run(evaluator, job(CASE, settings)).reserved
    evaluator, settings = make()
    assert not run(evaluator, job(CASE, settings)).reserved  # no budget, nothing reserved


def test_a_worker_spends_only_its_share_of_the_budget(make: Any, llm: LoopbackLLM) -> None:
    llm.responder = lambda call: verdict(5) if call.is_judge else "Paris"
    prices = {"openai/target-model": {"input": 1.0, "output": 1.0}}
    evaluator, settings = make(budget=0.001, prices=prices)
    assert evaluator.budget.limit == pytest.approx(0.001)
    assert run(evaluator, job(CASE, settings)).reserved  # the case fits the whole budget ...
    evaluator, settings = make(
        budget=0.001, prices=prices, budget_share=budget_share({"workercount": 4})
    )
    assert evaluator.budget.limit == pytest.approx(0.00025)
    result = run(evaluator, job(CASE, settings))  # ... but not one of four workers' shares
    assert result.over_budget and result.reasons[0].endswith("of $0.0003 spent or reserved")
    assert budget_share(None) == 1.0 and budget_share({"workercount": 2}) == 0.5


def test_new_record_carries_what_the_case_and_rubric_say() -> None:
    settings = HybridJudgeConfig.model_validate({"target": {"model": "openai/t"}})
    record = new_record(job(CASE, settings), "skipped", ["why"])
    assert (record.case_id, record.source, record.target) == ("capital-france", "g", "openai/t")
    assert (record.rubric, record.pass_threshold, record.reasons) == ("correctness", 4, ["why"])
    assert record.rendered_rubric and "Capital of France?" in record.rendered_rubric


def test_a_decision_does_not_outlive_an_edit_of_the_input_or_reference(
    make: Any, llm: LoopbackLLM, tmp_path: Path
) -> None:
    """A reviewer passed "Yes" to "Is 2+2=4?". The case is edited to "Is 2+2=5?" / "No" and the
    model still says "Yes": before, the item id (case, output, rubric version) stayed the same
    and the case stayed PASSED (by review). A case of the same id in another gold file with
    another input is another item too."""
    from pytest_hybridjudge.review.manifest import ReviewItem, legacy_item_id, result_item_id
    from pytest_hybridjudge.review.store import upgrade_legacy

    llm.responder = lambda call: verdict(1) if call.is_judge else "Yes"
    before = GoldCase(id="sum", input="Is 2+2=4?", reference="Yes", source="gold/a.yaml")
    after = GoldCase(id="sum", input="Is 2+2=5?", reference="No", source="gold/a.yaml")
    other = GoldCase(id="sum", input="Is 3+3=6?", reference="Yes", source="gold/b.yaml")
    evaluator, settings = make()
    seen = run(evaluator, job(before, settings))
    assert seen.item_id == result_item_id(seen)
    passed = Resolution(
        item_id=seen.item_id or "",
        case_id="sum",
        verdict="pass",
        reviewer="ann",
        resolved_at=T0,
        run_id="20260101T000000Z-aaaaaa",
    )
    evaluator, settings = make(resolutions={passed.item_id: [passed]})
    assert run(evaluator, job(before, settings)).outcome == "passed"  # by review
    evaluator, settings = make(resolutions={passed.item_id: [passed]})
    edited = run(evaluator, job(after, settings))
    assert edited.item_id != passed.item_id and not edited.resolved_by
    assert edited.outcome == "failed"  # judged afresh: the judges' 1
    evaluator, settings = make(resolutions={passed.item_id: [passed]})
    assert not run(evaluator, job(other, settings)).resolved_by

    # A resolution of an older, schema-1 item (id without input or reference) still applies
    # where its run's manifest shows the same input and reference, and only there.
    old_id = legacy_item_id("sum", "Yes", RUBRIC.version)
    item = ReviewItem.from_result(seen, passed.run_id or "").model_copy(
        update={"item_id": old_id, "schema_version": 1}
    )
    runs = tmp_path / "runs"
    write_run(tmp_path, item.run_id, [item], runs=runs)
    legacy = passed.model_copy(update={"item_id": old_id, "schema_version": 1})
    upgraded = upgrade_legacy([legacy], RunStore(runs))
    assert [r.item_id for r in upgraded] == [old_id, seen.item_id]
    by_item: dict[str, list[Resolution]] = {}
    for r in upgraded:
        by_item.setdefault(r.item_id, []).append(r)
    evaluator, settings = make(resolutions=by_item)
    assert run(evaluator, job(before, settings)).resolved_by == ["ann"]
    evaluator, settings = make(resolutions=by_item)
    assert not run(evaluator, job(after, settings)).resolved_by
    assert upgrade_legacy([legacy], RunStore(tmp_path / "no-runs")) == [legacy]  # cannot be checked


@pytest.mark.parametrize(
    "case",
    [
        GoldCase(id="plain", input="What is 2+2?\n"),
        GoldCase(id="spaces", input="  {{ not a template }}  "),
        GoldCase(id="mapping", input={"question": "q"}, reference="r"),
    ],
)
def test_the_default_prompt_sends_what_its_template_renders(case: GoldCase) -> None:
    """`{{ input }}` skips the render for a string input; the message is the same."""
    from pytest_hybridjudge.config import TargetSpec
    from pytest_hybridjudge.sandbox import render_bounded
    from pytest_hybridjudge.targets import _prompt_template, target_messages

    spec = TargetSpec(model="openai/m")
    rendered = render_bounded(_prompt_template("{{ input }}"), case.variables())
    assert target_messages(spec, case) == (("user", rendered),)


def test_a_rerun_is_answered_from_the_cache_and_a_partly_cached_panel_sends_only_the_rest(
    llm: LoopbackLLM, tmp_path: Path
) -> None:
    llm.responder = lambda call: verdict(5) if call.is_judge else "Paris"
    judges = ["openai/judge-a", "openai/judge-b", "openai/judge-c"]
    settings = HybridJudgeConfig.model_validate(
        {"target": {"model": "openai/target-model"}, "judges": judges, "retries": 0}
    )
    path, selects = tmp_path / "cache.sqlite", []

    def once() -> tuple[CaseResult, ModelCaller]:
        cache = CompletionCache(path, "use")
        assert cache._db is not None
        cache._db.set_trace_callback(lambda sql: selects.append(sql) if "SELECT" in sql else None)
        caller = ModelCaller.from_config(settings, cache, tmp_path)
        try:
            return run(Evaluator(settings, caller, {}), job(CASE, settings)), caller
        finally:
            cache.close()

    def same(result: CaseResult) -> dict[str, Any]:
        return result.model_dump(exclude={"usage", "target_usage", "verdicts"}) | {
            "verdicts": [v.model_dump(exclude={"usage"}) for v in result.verdicts]
        }

    first, _ = once()
    assert len(llm.calls) == 4 and first.outcome == "passed"

    again, caller = once()  # every call cached: nothing sent, the same verdicts
    assert len(llm.calls) == 4 and caller.stats.cache_hits == 4
    assert same(again) == same(first) and again.usage.cache_hits == 4 and again.usage.calls == 0
    assert [v.usage.cache_hits for v in again.verdicts] == [1, 1, 1]

    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM completions WHERE model = 'judge-b'")
    selects.clear()
    partly, caller = once()  # judge-b alone is asked, and its first key looked up once
    assert [c.model for c in llm.calls[4:]] == ["judge-b"] and caller.stats.cache_hits == 3
    assert same(partly) == same(first) and partly.usage.calls == 1
    assert [v.usage.calls for v in partly.verdicts] == [0, 1, 0]
    looked_up = [key for sql in selects for key in re.findall(r"'([0-9a-f]{64})'", sql)]
    # the target, the three judges together, then judge-b's two later modes: no key twice
    assert len(looked_up) == len(set(looked_up)) == 6
    with sqlite3.connect(path) as db:  # and its answer is cached again
        assert db.execute("SELECT count(*) FROM completions").fetchone() == (4,)
