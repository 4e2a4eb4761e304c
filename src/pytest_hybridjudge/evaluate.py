"""One case from target to decision, as a straight pipeline: produce, verify, route, judge, decide.

The pipeline never raises for a provider, app, plugin or budget problem: each ends the case with
an outcome and a reason, so no selected case disappears. Whatever user or plugin code raises
(`SystemExit` from argparse included) fails that case only; cancellation still cancels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import CallableTarget, HybridJudgeConfig, Target, TargetSpec
from .cost import Budget, BudgetExhausted, token_counter
from .escalation import Decision, decide, inclusion_probability, policy_in_force, route
from .estimate import worst_case_cost
from .gold import GoldCase
from .judge import judge_prompt, run_judge
from .panel import aggregate
from .providers import ProviderConfigError, ProviderError
from .redact import redact
from .review.manifest import result_item_id
from .rubric import Rubric
from .targets import TargetError, call_app, target_request
from .verdict import CaseResult, Outcome, PanelVerdict, Usage
from .verifiers import run_verifiers

if TYPE_CHECKING:
    from .calls import ModelCaller
    from .comparison import Baseline
    from .review.decisions import ItemDecision


@dataclass(frozen=True)
class Job:
    """One case against one target, with its rubric already rendered at collection."""

    nodeid: str
    case: GoldCase
    target: Target
    rubric: Rubric | None
    rendered: str | None


def new_record(
    job: Job, outcome: Outcome = "skipped", reasons: Sequence[str] = (), error: str | None = None
) -> CaseResult:
    """The record of `job` before anything ran: what the case, target and rubric say."""
    case, rubric = job.case, job.rubric
    return CaseResult(
        case_id=case.id,
        nodeid=job.nodeid,
        source=case.source,
        target=job.target.label,
        rubric=rubric.name if rubric else None,
        rubric_version=rubric.version if rubric else None,
        outcome=outcome,
        reasons=list(reasons),
        error=error,
        input=case.input
        if case.input is not None
        else [m.model_dump() for m in case.messages or ()],
        reference=case.reference,
        rendered_rubric=job.rendered,
        pass_threshold=rubric.meta.pass_threshold if rubric else None,
        scale=rubric.scale if rubric else None,
        tags=list(case.tags),
    )


class TargetFailed(Exception):
    """The target produced no output; the message is the reason recorded for the case."""

    def __init__(self, reason: str, outage: bool = False):
        super().__init__(reason)
        self.outage = outage  # the provider failed after its retries, not the model or the app


class Evaluator:
    """Turns a job into a `CaseResult`; one per run, used on the scheduler's loop."""

    def __init__(
        self,
        config: HybridJudgeConfig,
        caller: ModelCaller,
        apps: Mapping[str, Callable[..., Any]],
        decisions: Mapping[str, ItemDecision] | None = None,
        calibration: Mapping[str, float | None] | None = None,
        baseline: Baseline | None = None,
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
        worst = (
            worst_case_cost(job, self.config, self._counter, self.baseline)
            if self._counter
            else 0.0
        )
        try:
            await self.budget.reserve(worst)
        except BudgetExhausted as exc:
            result.over_budget = True
            return _finish(result, Decision("skipped", [str(exc)]))
        result.reserved = self.budget.limit is not None
        try:
            return await self._pipeline(job, result)
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

    async def _pipeline(self, job: Job, result: CaseResult) -> CaseResult:
        case, rubric = job.case, job.rubric
        try:
            output = result.output = await self._produce(job, result.target_usage)
        except TargetFailed as exc:
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
        if verified and rubric is not None and rubric.meta.kind == "pairwise":
            from .pairwise import evaluate_pairwise

            return _finish(result, await evaluate_pairwise(self, job, output, result))
        human = self.decisions.get(result.item_id or "") if verified else None
        if human:
            return _finish(result, self._by_review(result, human))
        if verified and job.rubric is not None and self.config.judges:
            result.panel = await self._judge(job, output, result)
            result.score = result.panel.score
            result.outage = any(v.outage for v in result.verdicts)
            if routing is not None:
                result.inclusion_probability = inclusion_probability(result.panel, routing)
        return _finish(result, decide(result.verifiers, result.panel, routing))

    async def _produce(self, job: Job, usage: Usage) -> str:
        """The target's output; raises TargetFailed with the reason when there is none."""
        target = job.target
        if job.case.output is not None:  # a fixed output (imported): judged, nothing called
            return job.case.output
        try:
            if isinstance(target, CallableTarget):
                return await call_app(self.apps[target.callable], job.case, target.label)
            assert isinstance(target, TargetSpec)
            provider, request = target_request(target, job.case)
            completion = await self.caller(provider, request)
        except ProviderConfigError:
            raise
        except ProviderError as exc:
            usage.calls += exc.requests  # sent before it gave up, each perhaps billed
            # a model target's provider failed after its retries (an outage), or refused this
            # request (a 400: the target failing the case); an app is the user's own code
            outage = isinstance(target, TargetSpec) and exc.kind == "outage"
            raise TargetFailed(f"target error: {exc}", outage=outage) from exc
        except TargetError as exc:
            raise TargetFailed(f"target error: {exc}") from exc
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the user's app raised (even SystemExit): the case fails
            message = f"target '{target.label}' raised {type(exc).__name__}: {exc}"
            raise TargetFailed(redact(message)) from exc
        usage.count(completion)
        return completion.text

    async def _judge(self, job: Job, output: str, result: CaseResult) -> PanelVerdict:
        """Every judge grades the output (one prompt for all); their verdicts aggregated."""
        rubric = job.rubric
        assert rubric is not None
        prompt = judge_prompt(rubric, job.rendered or "", output)
        judges = self.config.judges
        result.verdicts = list(
            await asyncio.gather(*(run_judge(self.caller, j, rubric, prompt) for j in judges))
        )
        return aggregate(
            result.verdicts, rubric.meta.pass_threshold, self.config.aggregation, rubric.scale
        )

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
