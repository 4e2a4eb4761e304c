"""One case from target to decision, as a straight pipeline: produce, verify, route, judge, decide.

The pipeline never raises for a provider, app, plugin or budget problem: each ends the case with
an outcome and a reason, so no selected case disappears. Whatever user or plugin code raises
(`SystemExit` from argparse included) fails that case only; cancellation still cancels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .answered import look_up_together
from .batches import site
from .batches.site import BATCH_EXPIRED
from .config import HybridJudgeConfig
from .cost import Budget, BudgetExhausted, token_counter
from .escalation import Decision, decide, inclusion_probability, policy_in_force, route
from .estimate import plan_cost
from .gold import GoldCase
from .jobs import Job, PairwiseBaseline, TargetFailed, new_record
from .judge import run_judge
from .pairwise import decide_pairwise, judge_pair
from .panel import aggregate
from .plan import (
    AppCall,
    CasePlan,
    EarlierOutput,
    FixedOutput,
    ModelCall,
    Skip,
    TargetCall,
    plan_case,
)
from .providers import ProviderConfigError, ProviderError
from .redact import redact
from .review.manifest import result_item_id
from .targets import TargetError, call_app
from .verdict import CaseResult, JudgeVerdict, Outcome, PairwiseResult, PanelVerdict, Usage
from .verifiers import run_verifiers

if TYPE_CHECKING:
    from .calls import ModelCaller
    from .review.decisions import ItemDecision

__all__ = ["Evaluator", "Job", "TargetFailed", "new_record"]  # the last three live in `jobs`


class Evaluator:
    """Turns a job into a `CaseResult`; one per run, used on the scheduler's loop."""

    def __init__(
        self,
        config: HybridJudgeConfig,
        caller: ModelCaller,
        apps: Mapping[str, Callable[..., Any]],
        decisions: Mapping[str, ItemDecision] | None = None,
        calibration: Mapping[str, float | None] | None = None,
        baseline: PairwiseBaseline | None = None,
        budget_share: float = 1.0,
    ):
        """`budget_share`: this process's part of `budget` (see `cost.budget_share`)."""
        self.config, self.caller, self.apps = config, caller, apps
        self.decisions = decisions or {}  # what reviewers decided, by item id
        self.calibration = calibration or {}
        self.budget = Budget(config.budget * budget_share if config.budget is not None else None)
        self._counter = token_counter() if config.budget is not None else None
        self.baseline = baseline  # pairwise rubrics compare with its outputs

    async def evaluate(self, job: Job) -> CaseResult:
        """Run one job to its outcome; never raises for provider, app or budget failures.

        Under a budget the case first reserves its worst-case cost (cases start in gold order),
        so the budget buys whole cases; a case that cannot fit is skipped and says why.
        """
        result = new_record(job)
        site.enter(case=job.nodeid)  # what a batched call's custom_id is made of
        plan = plan_case(job, self.config, self.baseline)
        worst = plan_cost(plan, self.config, self._counter) if self._counter else 0.0
        try:
            await self.budget.reserve(worst)
        except BudgetExhausted as exc:
            result.over_budget = True
            return _finish(result, Decision("skipped", [str(exc)]))
        result.reserved = self.budget.limit is not None
        try:
            return await self._pipeline(plan, result)
        except ProviderConfigError as exc:  # the run stops on it (see `health`)
            result.target_usage.calls += exc.requests
            result.config_error = str(exc)
            reason = f"not judged: provider configuration error: {exc}"
            return _finish(result, Decision("skipped", [reason]), error=str(exc))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # user or plugin code; nothing it raises stops the run
            reason = redact(f"case stopped by {type(exc).__name__}: {exc}")
            return _finish(result, Decision("failed", [reason]), error=reason)
        finally:
            self.budget.settle(worst, result.usage.cost)

    async def _pipeline(self, plan: CasePlan, result: CaseResult) -> CaseResult:
        job = plan.job
        case, rubric = job.case, job.rubric
        try:
            site.enter(role="target")
            output = result.output = await self._produce(plan.target, case, result.target_usage)
        except TargetFailed as exc:
            if exc.expired:  # nothing was judged: people decide, or a rerun
                return _finish(result, Decision("escalated", [str(exc)]), error=str(exc))
            if exc.outage:
                result.outage = True
                reason = f"provider outage (not a model failure): {exc}"
                return _finish(result, Decision("skipped", [reason]), error=str(exc))
            return _finish(result, Decision("failed", [str(exc)]), error=str(exc))
        result.verifiers = run_verifiers(case, output)
        result.item_id = result_item_id(result)
        routing = route(case, rubric, output, self.config, self.calibration) if rubric else None
        if routing is not None:
            result.tier, result.review_minutes = routing.tier, routing.review_minutes
            result.policy = policy_in_force(routing)
        verified = all(v.passed for v in result.verifiers)
        if verified and plan.pairwise:
            return _finish(result, await self._pairwise(plan, output, result))
        human = self.decisions.get(result.item_id or "") if verified else None
        if human:
            return _finish(result, self._by_review(result, human))
        if verified and plan.judges:
            result.panel = await self._judge(plan, output, result)
            result.score = result.panel.score
            result.outage = any(v.outage for v in result.verdicts)
            if routing is not None:
                result.inclusion_probability = inclusion_probability(result.panel, routing)
        decision = decide(result.verifiers, result.panel, routing)
        return _finish(result, escalate_expired(decision, result.verdicts))

    async def _produce(self, call: TargetCall, case: GoldCase, usage: Usage) -> str:
        """The target's output; raises TargetFailed with the reason when there is none."""
        if isinstance(call, FixedOutput):  # judged as it is, nothing called
            return call.output
        try:
            if isinstance(call, AppCall):
                return await call_app(self.apps[call.callable], case, call.label)
            if not isinstance(call, ModelCall):
                raise TargetError(call.error)
            completion = await self.caller(call.provider, call.request)
        except ProviderConfigError:
            raise
        except ProviderError as exc:
            usage.calls += exc.requests  # sent before it gave up, each perhaps billed
            # a model target's provider failed after its retries (an outage), or refused this
            # request (a 400: the target failing the case); an app is the user's own code
            outage = isinstance(call, ModelCall) and exc.kind == "outage"
            if exc.kind == "expired":
                raise TargetFailed(f"target: {exc}", expired=True) from exc
            raise TargetFailed(f"target error: {exc}", outage=outage) from exc
        except TargetError as exc:
            raise TargetFailed(f"target error: {exc}") from exc
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the user's app raised (even SystemExit): the case fails
            message = f"target '{call.label}' raised {type(exc).__name__}: {exc}"
            raise TargetFailed(redact(message)) from exc
        usage.count(completion)
        return completion.text

    async def _judge(self, plan: CasePlan, output: str, result: CaseResult) -> PanelVerdict:
        """Every judge grades the output (one prompt for all); their verdicts aggregated."""
        rubric = plan.job.rubric
        assert rubric is not None
        prompts = plan.prompts(output)
        asks = [plan.asks(judge, prompts) for judge in plan.judges]
        # the panel's first requests looked up together; when the cache answers them all (a
        # rerun), the judges run one after the other on this task: nothing would wait on a
        # provider, and a task per judge costs more than its verdict
        call = await look_up_together(
            self.caller, [(a.provider, a.request) for group in asks for a in group]
        )
        if call.complete:
            result.verdicts = [
                await run_judge(call, judge, rubric, group)
                for judge, group in zip(plan.judges, asks, strict=True)
            ]
        else:
            result.verdicts = list(
                await asyncio.gather(
                    *(
                        run_judge(call, judge, rubric, group)
                        for judge, group in zip(plan.judges, asks, strict=True)
                    )
                )
            )
        return aggregate(
            result.verdicts, rubric.meta.pass_threshold, self.config.aggregation, rubric.scale
        )

    async def _pairwise(self, plan: CasePlan, output: str, result: CaseResult) -> Decision:
        """A pairwise case: the baseline's output, a reviewer's decision if any, else the judges
        asked in both orders (see `pairwise`)."""
        step = plan.baseline
        if isinstance(step, Skip):
            return Decision("skipped", [step.reason])
        if isinstance(step, EarlierOutput):
            assert step.output is not None  # unread only in a dry run
            base_output = step.output
        else:
            assert step is not None
            try:
                site.enter(role="baseline")
                base_output = await self._produce(step, plan.job.case, result.target_usage)
            except TargetFailed as exc:
                return Decision("skipped", [f"pairwise: the baseline target failed: {exc}"])
        result.pairwise = PairwiseResult(baseline_output=base_output)
        result.item_id = result_item_id(result)  # covers both outputs, as the reviewer sees them
        human = self.decisions.get(result.item_id)
        if human:
            return self._by_review(result, human)
        prompts = plan.prompts(output, base_output)
        result.pairwise.judgments = list(
            await asyncio.gather(
                *(judge_pair(self.caller, j, plan.asks(j, prompts)) for j in plan.judges)
            )
        )
        decision, result.pairwise.preferred = decide_pairwise(result.pairwise.judgments)
        return decision

    @staticmethod
    def _by_review(result: CaseResult, human: ItemDecision) -> Decision:
        """Reviewers' decision replaces the judges: no judge calls are made."""
        result.resolved_by = sorted({r.reviewer for r in human.resolutions})
        if human.pending:
            verdicts = "; ".join(f"{r.reviewer}: {r.verdict}" for r in human.resolutions)
            return Decision("escalated", [f"reviewers disagree ({verdicts})"])
        result.score = human.score
        outcome: Outcome = "passed" if human.verdict == "pass" else "failed"
        return Decision(outcome, [f"{outcome} by review ({', '.join(result.resolved_by)})"])


def escalate_expired(decision: Decision, verdicts: list[JudgeVerdict]) -> Decision:
    """A judge call a provider batch expired past its resubmissions escalates the case with
    reason `batch expired`, whatever the other judges said (`--judge-batch`)."""
    expired = [v.judge for v in verdicts if v.error and v.error.startswith(BATCH_EXPIRED)]
    if not expired:
        return decision
    reason = f"{BATCH_EXPIRED} ({', '.join(expired)})"
    if decision.outcome == "escalated":
        return decision._replace(reasons=[reason, *decision.reasons])
    return Decision("escalated", [reason, *decision.reasons], decision.audit)


def _finish(result: CaseResult, decision: Decision, error: str | None = None) -> CaseResult:
    """Record the decision and the case's total usage (target and judges)."""
    result.outcome, result.reasons, result.error = decision.outcome, decision.reasons, error
    result.audit = decision.audit
    result.usage = Usage()
    result.usage.add(result.target_usage)
    for verdict in result.verdicts:
        result.usage.add(verdict.usage)
    for judgment in result.pairwise.judgments if result.pairwise else ():
        result.usage.add(judgment.usage)
    return result
