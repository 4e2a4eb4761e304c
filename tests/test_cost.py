"""Cost: prices, actual spend, the dry-run estimate, the budget, and review cost by tier."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from conftest import Project
from helpers import make_item, resolutions_file
from loopback import Call, LoopbackLLM, Reply, verdict
from pytest_hybridjudge.config import HybridJudgeConfig, Target
from pytest_hybridjudge.cost import Budget, BudgetExhausted, TokenCounter, call_cost, price_of
from pytest_hybridjudge.estimate import PlannedCalls, planned_calls, worst_case_cost
from pytest_hybridjudge.gate.baseline import CaseSide
from pytest_hybridjudge.gate.run import Baseline
from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.jobs import Job
from pytest_hybridjudge.judge import JUDGE_SYSTEM, correction, judge_prompt
from pytest_hybridjudge.pairwise import PAIRWISE_SYSTEM, pairwise_correction, pairwise_prompt
from pytest_hybridjudge.review.lead_times import (
    MEASURED_AFTER,
    LeadTime,
    expected_minutes,
    lead_times,
)
from pytest_hybridjudge.review.resolutions import Resolution, append_resolution
from pytest_hybridjudge.rubric import RubricLibrary

CASES = "cases:\n" + "".join(
    f"  - id: q{i}\n    input: 'Question {i}?'\n    reference: 'Answer {i}'\n" for i in range(6)
)


def test_prices_overrides_families_and_free_local_models() -> None:
    assert price_of("openai/gpt-4.1-mini", {}) == (0.40, 1.60)
    assert price_of("anthropic/claude-sonnet-4-5-20250929", {}) == (3.00, 15.00)
    assert price_of("local/smollm2", {}) == (0.0, 0.0)
    assert price_of("vllm/llama", {}) is None
    assert price_of("openai/gpt-4.1", {"openai/gpt-4.1": (1.0, 2.0)}) == (1.0, 2.0)
    assert call_cost((2.0, 8.0), 1_000_000, 500_000) == pytest.approx(6.0)
    assert call_cost(None, 10, 10) == 0.0


def test_budget_reserves_worst_case_and_settles_actual() -> None:
    async def scenario() -> None:
        budget = Budget(1.0)
        await budget.reserve(0.6)
        waiting = asyncio.ensure_future(budget.reserve(0.5))  # fits once the first settles
        await asyncio.sleep(0)
        assert not waiting.done()
        budget.settle(0.6, 0.1)
        await waiting
        assert budget.spent == pytest.approx(0.1) and budget.reserved == pytest.approx(0.5)
        with pytest.raises(BudgetExhausted, match=r"budget exhausted: \$0.6000 of \$1.0000"):
            await budget.reserve(0.95)  # could not fit even if the running case cost nothing
        await Budget(None).reserve(10**9)  # no budget, no limit

    asyncio.run(scenario())


Waiter = asyncio.Future[None]


async def _a_holds_while_b_and_c_wait() -> tuple[
    Budget, asyncio.Future[None], asyncio.Future[None]
]:
    """A budget of 1.00: case A holds 0.60, B (0.50) waits for it, C (0.30) queues behind B."""
    budget = Budget(1.0)
    await budget.reserve(0.6)
    b = asyncio.ensure_future(budget.reserve(0.5))
    await asyncio.sleep(0)
    c = asyncio.ensure_future(budget.reserve(0.3))
    await asyncio.sleep(0)
    return budget, b, c


def test_budget_serves_reservations_in_arrival_order() -> None:
    async def scenario() -> None:
        budget = Budget(1.0)
        await budget.reserve(0.6)  # A
        order: list[str] = []

        async def case(name: str, worst: float) -> None:
            await budget.reserve(worst)
            order.append(name)

        b = asyncio.ensure_future(case("B", 0.5))  # does not fit yet: waits for A
        await asyncio.sleep(0)
        c = asyncio.ensure_future(case("C", 0.3))  # would fit now, but B came first
        await asyncio.sleep(0)
        assert order == [] and budget.reserved == pytest.approx(0.6)
        budget.settle(0.6, 0.1)  # A done: room for B, then C behind it
        await asyncio.gather(b, c)
        assert order == ["B", "C"]
        assert budget.reserved == pytest.approx(0.8) and budget.spent == pytest.approx(0.1)

    asyncio.run(scenario())


def test_budget_refuses_a_waiter_that_can_no_longer_fit_and_serves_the_next() -> None:
    async def scenario() -> None:
        budget, b, c = await _a_holds_while_b_and_c_wait()
        budget.settle(0.6, 0.6)  # A spent all it reserved: B can never fit, C still can
        with pytest.raises(BudgetExhausted):
            await b
        await c
        assert budget.reserved == pytest.approx(0.3)

    asyncio.run(scenario())


def test_cancelled_waiter_does_not_block_those_behind_it() -> None:
    async def scenario() -> None:
        budget, b, c = await _a_holds_while_b_and_c_wait()
        b.cancel()  # the scheduler cancels futures at close
        await asyncio.wait_for(c, timeout=5)  # C fits beside A once B is gone
        assert budget.reserved == pytest.approx(0.9)

    asyncio.run(scenario())


def test_waiter_cancelled_after_its_grant_gives_the_reservation_back() -> None:
    async def scenario() -> None:
        budget = Budget(1.0)
        await budget.reserve(0.6)
        b = asyncio.ensure_future(budget.reserve(0.5))
        await asyncio.sleep(0)
        budget.settle(0.6, 0.0)  # B is granted ...
        b.cancel()  # ... and cancelled before it could start
        with pytest.raises(asyncio.CancelledError):
            await b
        assert budget.reserved == 0.0
        await budget.reserve(1.0)  # the whole budget is free again

    asyncio.run(scenario())


def test_summary_shows_inference_and_review_cost(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = lambda c: Reply(
        text="A" if not c.is_judge else verdict(2 if c.model == "judge-b" else 5),
        input_tokens=1000,
        output_tokens=100,
    )
    project.config(
        judges=["openai/judge-a", "openai/judge-b", "anthropic/judge-c"],
        prices={
            "openai/target-model": {"input": 1.0, "output": 2.0},
            "openai/judge-a": {"input": 10.0, "output": 20.0},
        },
        review={"rates": {"annotator": 30.0}},
    )
    project.gold("g.yaml", CASES)
    result = project.run("--judge")
    cost = project.summary()["cost"]
    assert cost["inference"]["openai/target-model"] == pytest.approx(6 * (1000 * 1 + 100 * 2) / 1e6)
    assert cost["inference"]["openai/judge-a"] == pytest.approx(6 * (1000 * 10 + 100 * 20) / 1e6)
    assert cost["inference"]["openai/judge-b"] == 0.0  # no price known: nothing counted ...
    assert cost["unpriced"] == {"anthropic/judge-c": 6, "openai/judge-b": 6}  # ... and said so
    assert cost["review"]["annotator"] == {
        "items": 6,
        "minutes": 12.0,
        "minutes_from": "configured",
        "median_seconds": None,
        "timed_reviews": 0,
        "rate_per_hour": 30.0,
        "usd": 6.0,
    }
    assert cost["total"] == pytest.approx(cost["inference_total"] + 6.0, abs=1e-3)
    result.stdout.fnmatch_lines(
        [
            "*cost: inference $0.0792 + unknown (anthropic/judge-c price unknown (6 calls), "
            "openai/judge-a $0.0720, openai/judge-b price unknown (6 calls), *",
            "*warning: no price known for anthropic/judge-c, openai/judge-b: their cost is not*",
            "*expected review $6.00 (annotator 6 x 2 min at $30/h*",
            "*total $6.08 + unknown inference*",
        ]
    )
    assert "$0.0000" not in result.stdout.str()


def test_review_cost_uses_the_measured_median_once_a_tier_has_enough_timed_reviews(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = lambda c: Reply(
        text="A" if not c.is_judge else verdict(2 if c.model == "judge-b" else 5)
    )
    project.config(
        judges=["openai/judge-a", "openai/judge-b"], review={"rates": {"annotator": 30.0}}
    )
    project.gold("g.yaml", CASES)
    # twelve earlier annotator reviews, timed by the review page: median 84 s = 1.4 min
    seconds = [60.0] * 5 + [84.0, 84.0] + [120.0] * 5
    for n, lead_time in enumerate(seconds):
        append_resolution(
            resolutions_file(project.path),
            Resolution.for_item(
                make_item(f"earlier-{n}"), verdict="pass", reviewer="ana", lead_time_s=lead_time
            ),
        )
    result = project.run("--judge")
    summary = project.summary()
    annotator = summary["cost"]["review"]["annotator"]
    assert annotator["items"] == 6 and annotator["minutes"] == pytest.approx(6 * 1.4)
    assert annotator["minutes_from"] == "measured"
    assert annotator["median_seconds"] == 84.0 and annotator["timed_reviews"] == 12
    assert annotator["usd"] == pytest.approx(6 * 1.4 / 60 * 30)
    assert summary["review"]["annotator"]["minutes_from"] == "measured"
    result.stdout.fnmatch_lines(
        [
            "*to review by tier: annotator 6 (8.4 min measured)*",
            "*expected review $4.20 (annotator 6 x 1.4 min measured (median of 12 timed "
            "reviews) at $30/h = $4.20)*",
        ]
    )


def test_too_few_timed_reviews_leave_the_configured_minutes() -> None:
    few = lead_times(
        Resolution.for_item(make_item(f"c{n}"), verdict="pass", reviewer="ana", lead_time_s=30)
        for n in range(MEASURED_AFTER - 1)
    )["annotator"]
    assert few == LeadTime(30.0, MEASURED_AFTER - 1)
    kept = expected_minutes(3, 6.0, few)
    assert kept.minutes == 6.0 and kept.source == "configured"
    enough = expected_minutes(3, 6.0, LeadTime(30.0, MEASURED_AFTER))
    assert enough.minutes == 1.5 and enough.source == "measured" and enough.per_item == 0.5
    untimed = Resolution.for_item(make_item("u"), verdict="pass", reviewer="ana")
    assert lead_times([untimed]) == {}


def test_interrupted_run_counts_every_request_and_what_it_cost(
    project: Project, llm: LoopbackLLM
) -> None:
    """After Ctrl-C the summary's calls and cost include the cases stopped mid-way."""
    q1_judged = threading.Event()

    def responder(call: Call) -> Reply:
        if call.is_judge and "Question 1?" in call.prompt:
            q1_judged.set()
            return Reply(text=verdict(5), delay=5.0)  # still in flight at Ctrl-C
        if call.is_judge:
            q1_judged.wait(10)  # q0 finishes (and Ctrl-C comes) once q1's calls are sent
        return Reply(
            text="A" if not call.is_judge else verdict(5), input_tokens=1000, output_tokens=100
        )

    llm.responder = responder
    price = {"input": 1.0, "output": 2.0}
    project.config(
        judges=["openai/judge-a"], prices={"openai/target-model": price, "openai/judge-a": price}
    )
    project.gold("g.yaml", CASES.split("  - id: q2")[0])  # q0 and q1
    project.pytester.makeconftest(
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        raise KeyboardInterrupt\n"
    )
    result = project.pytester.runpytest_subprocess("--judge", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    summary = project.summary()
    sent, recorded = summary["calls"]["requests"], summary["usage"]["calls"]
    assert (sent, recorded) == (4, 2)  # q1's target call and judge call have no record
    result.stdout.fnmatch_lines(
        [
            "*+ $0.0012 for calls of cases stopped before they finished*",
            "*provider calls: 4 (2 by cases stopped before they finished)*",
        ]
    )


def test_dry_run_calls_nothing_and_prints_the_estimate(project: Project, llm: LoopbackLLM) -> None:
    project.config(
        judges=["openai/gpt-4.1", "anthropic/claude-sonnet-4-5", "vllm/x"],
        target={"model": "openai/gpt-4.1-mini", "max_tokens": 100},
        providers={"vllm": {"base_url": "http://127.0.0.1:9/v1"}},
    )
    project.gold("g.yaml", CASES)
    result = project.run("--judge", "--judge-dry-run", "-rs")
    assert llm.calls == []
    result.assert_outcomes(skipped=6)
    result.stdout.fnmatch_lines(
        [
            "*hybridjudge dry run*",
            "*6 cases; outputs counted at their max_tokens*",
            "*anthropic/claude-sonnet-4-5*6*",
            "*openai/gpt-4.1-mini * 6 * 600 *",
            "*total*",
            "*token counts are*",
            "*no price for vllm/x*",
        ]
    )


def test_budget_skips_cases_not_reached_and_keeps_what_was_paid(
    project: Project, llm: LoopbackLLM
) -> None:
    def slow(call: Call) -> Reply:
        text = "A" if not call.is_judge else verdict(5)
        return Reply(text=text, delay=0.05, input_tokens=500, output_tokens=50)

    llm.responder = slow
    project.config(
        judges=[{"model": "openai/gpt-4.1", "max_tokens": 100}],
        target={"model": "openai/gpt-4.1", "max_tokens": 100},
        concurrency=1,
    )
    project.gold("g.yaml", CASES)
    # a case costs $0.0028 and at worst about $0.0037: $0.01 buys three whole cases
    result = project.run("--judge", "--judge-budget", "0.01")  # the default output
    records = project.results()
    assert len(records) == 6  # every case has a record
    outcomes = [r["outcome"] for r in records.values()]
    assert "passed" in outcomes and "skipped" in outcomes
    # the budget buys whole cases, in gold order: finished ones first, then only skips
    assert outcomes == sorted(outcomes, key=lambda o: o == "skipped")
    skipped = [r for r in records.values() if r["outcome"] == "skipped"]
    assert all(r["over_budget"] for r in skipped)
    assert all(r["reasons"][0].startswith("budget exhausted: $") for r in skipped)
    budget = project.summary()["budget"]
    assert budget["cases_covered"] == 6 - len(skipped) and budget["cases_skipped"] == len(skipped)
    result.stdout.fnmatch_lines(
        [f"*budget: $* of $0.0100 spent; {6 - len(skipped)} cases covered, {len(skipped)} skipped*"]
    )
    assert project.summary()["cost"]["inference_total"] <= 0.01
    project.run("--judge").assert_outcomes(passed=6)  # what was paid for comes from the cache
    assert len(llm.calls) == 12  # 6 target + 6 judge calls over both runs: none paid twice


class WordCounter(TokenCounter):
    """Counts words: like a real tokenizer, a run of one repeated letter is very few tokens."""

    def count(self, text: str) -> int:
        return len(text.split())


WORDS = WordCounter(approximate=False)
CASE = GoldCase(id="c", input="What is the capital of France?", reference="Paris")


def _job(
    settings: HybridJudgeConfig,
    rubric_name: str = "correctness",
    rubrics: Path | None = None,
    target: Target | None = None,
) -> Job:
    rubric = RubricLibrary(rubrics).get(rubric_name)
    target = target or settings.targets[0]
    rendered = rubric.render(CASE.variables(), CASE.id)
    return Job(f"g.yaml::c[{target.label}]", CASE, target, rubric, rendered)


def _plans(
    settings: HybridJudgeConfig, job: Job, baseline: Baseline | None = None
) -> dict[str, PlannedCalls]:
    return {p.model: p for p in planned_calls(job, settings, WORDS, baseline)}


def test_worst_case_counts_the_output_a_judge_reads_at_its_token_bound() -> None:
    settings = HybridJudgeConfig.model_validate(
        {"target": {"model": "openai/t", "max_tokens": 500}, "judges": ["openai/j"]}
    )
    job = _job(settings)
    judge = _plans(settings, job)["openai/j"]
    assert job.rubric is not None and job.rendered is not None
    empty = WORDS.count(JUDGE_SYSTEM) + WORDS.count(judge_prompt(job.rubric, job.rendered, ""))
    assert judge.prompt_tokens >= empty + 500  # a 500-token output, not "xxxx..." as one word


def test_worst_case_prices_the_retry_with_the_first_reply_and_the_correction() -> None:
    settings = HybridJudgeConfig.model_validate(
        {
            "target": {"model": "openai/t", "max_tokens": 10},
            "judges": [{"model": "openai/j", "max_tokens": 300, "samples": 2}],
            "prices": {"openai/j": {"input": 1.0, "output": 0.0}},
        }
    )
    job = _job(settings)
    judge = _plans(settings, job)["openai/j"]
    assert job.rubric is not None
    again = WORDS.count(correction("", job.rubric.scale))
    assert judge.retry_prompt_tokens >= judge.prompt_tokens + 300 + again
    expected = 2 * (judge.prompt_tokens + judge.retry_prompt_tokens) / 1e6  # two samples
    assert worst_case_cost(job, settings, WORDS) == pytest.approx(expected)
    assert worst_case_cost(job, settings, WORDS) > 2 * 2 * judge.prompt_tokens / 1e6


PAIRWISE_RUBRIC = (
    "---\nkind: pairwise\ndescription: Prefer the better one.\n---\nRequest: {{ input }}\n"
)


def test_worst_case_of_a_pairwise_case_counts_both_answers_both_orders_and_the_baseline(
    tmp_path: Path,
) -> None:
    (tmp_path / "pref.md").write_text(PAIRWISE_RUBRIC)
    settings = HybridJudgeConfig.model_validate(
        {
            "target": [
                {"model": "openai/old", "name": "old", "max_tokens": 200},
                {"model": "openai/new", "name": "new", "max_tokens": 300},
            ],
            "judges": ["openai/j"],
            "gate": {"baseline": "old", "candidate": "new"},
        }
    )
    new, old = settings.targets[1], settings.targets[0]
    job = _job(settings, "pref", rubrics=tmp_path, target=new)
    plans = _plans(settings, job, baseline=Baseline("target old", target="old"))
    assert plans["openai/old"].calls == 1  # the baseline target is called inside the case
    judge = plans["openai/j"]
    assert judge.calls == 2  # both orders
    assert job.rendered is not None
    empty = WORDS.count(PAIRWISE_SYSTEM) + WORDS.count(
        pairwise_prompt(job.rendered, "Prefer the better one.", "", "")
    )
    assert judge.prompt_tokens >= empty + 300 + 200
    # each order may be asked again once after an invalid reply, as a pointwise verdict is
    again = WORDS.count(pairwise_correction(""))
    assert judge.retry_prompt_tokens >= judge.prompt_tokens + judge.output_tokens + again
    assert plans == _plans(settings, job)  # the dry run finds the same baseline in the config
    # the baseline target's own case is skipped before any judge is asked
    assert set(_plans(settings, _job(settings, "pref", rubrics=tmp_path, target=old))) == {
        "openai/old"
    }
    # an earlier run's baseline: its stored output is counted; a case it lacks asks no judge
    earlier = Baseline("run", cases={"c": CaseSide("c", "passed", output="word " * 1000)})
    assert _plans(settings, job, baseline=earlier)["openai/j"].prompt_tokens >= empty + 1300
    assert set(_plans(settings, job, baseline=Baseline("run", cases={}))) == {"openai/new"}


def test_under_xdist_the_workers_share_the_budget(project: Project, llm: LoopbackLLM) -> None:
    """Each worker builds its own Budget: with the whole limit each, two spent twice the limit."""

    def paid(call: Call) -> Reply:
        text = "A" if not call.is_judge else verdict(5)
        return Reply(text=text, input_tokens=500, output_tokens=50)

    llm.responder = paid
    project.config(
        judges=[{"model": "openai/gpt-4.1", "max_tokens": 100}],
        target={"model": "openai/gpt-4.1", "max_tokens": 100},
        escalation={"audit_rate": 0},
    )
    project.gold("g.yaml", CASES)
    project.run("--judge", "--judge-budget", "0.01", "-n", "2")
    records = project.results()
    assert len(records) == 6
    assert any(r["over_budget"] for r in records.values())
    spent = sum(r["usage"]["cost"] for r in records.values())
    assert 0 < spent <= 0.01


def test_batch_calls_are_priced_at_half_and_only_for_providers_with_a_batch_api() -> None:
    from pytest_hybridjudge.config import ProviderSpec
    from pytest_hybridjudge.config_batch import batches
    from pytest_hybridjudge.cost import price_of

    assert price_of("openai/gpt-4.1", {}, batch=True) == (1.00, 4.00)
    assert price_of("openai/gpt-4.1", {}) == (2.00, 8.00)
    vllm = {"vllm": ProviderSpec(kind="openai", base_url="http://x/v1")}
    assert batches("vllm/m", True, vllm) and batches("anthropic/c", True, {})
    assert not batches("local/m", True, {}) and not batches("openai/m", False, {})
