"""The price of a case's plan (`plan.py`): the budget's worst case and `--judge-dry-run`'s table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import HybridJudgeConfig
from .config_batch import batches
from .cost import TokenCounter, call_cost, price_of, token_counter
from .plan import (
    AppCall,
    BaselineStep,
    CasePlan,
    EarlierOutput,
    FixedOutput,
    Skip,
    TargetCall,
    Unbuildable,
    plan_case,
)
from .providers import CompletionRequest
from .structured import schema_instruction

if TYPE_CHECKING:
    from .jobs import Job, PairwiseBaseline

MESSAGE_OVERHEAD = 4  # tokens a chat format adds around each message
MARKER_SLACK = 32  # per answer: its markers' hash tags tokenise differently for each output
PROBLEM_TOKENS = 128  # the validation problem quoted back to a judge that is asked again


@dataclass
class ModelEstimate:
    """Upper-bound usage of one model over the selected cases."""

    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float | None = 0.0


@dataclass
class RunEstimate:
    """The whole estimate, and whether its token counts are exact."""

    models: list[ModelEstimate]
    cases: int
    approximate: bool
    note: str


@dataclass(frozen=True)
class PlannedCalls:
    """Calls one case makes to one model, at their upper bound of tokens."""

    model: str
    calls: int
    prompt_tokens: int
    output_tokens: int
    judge: bool
    retry_prompt_tokens: int = 0  # asked again after an invalid reply: prompt, reply, correction


def planned_calls(
    job: Job,
    settings: HybridJudgeConfig,
    counter: TokenCounter,
    baseline: PairwiseBaseline | None = None,
) -> list[PlannedCalls]:
    """`plan_calls` of the job's plan; with no `baseline`, the one a dry run sees."""
    return plan_calls(plan_case(job, settings, baseline, dry_run=baseline is None), counter)


def plan_calls(plan: CasePlan, counter: TokenCounter) -> list[PlannedCalls]:
    """The plan's calls per model, prompt tokens counted as they would be sent, outputs at their
    `max_tokens` bound (an app's at its assumed length). Outputs a judge quotes count at that
    bound too. A call that cannot be sent ends the case: nothing after it is counted."""
    planned: list[PlannedCalls] = []
    output = _target_call(plan.target, counter, planned)
    if output is None:
        return planned
    outputs = [output]
    if plan.baseline is not None:
        baseline = _baseline_output(plan.baseline, output, counter, planned)
        if baseline is None:
            return planned  # the case is skipped before any judge is asked
        outputs.append(baseline)
    if not plan.judges:
        return planned
    quoted = sum(outputs) + MARKER_SLACK * len(outputs)
    prompts = plan.prompts(*("" for _ in outputs))
    for judge in plan.judges:
        asks = plan.asks(judge, prompts)
        first = asks[0]
        prompt = _prompt_tokens(first.request, counter) + quoted
        again = counter.count(first.correction("")) + PROBLEM_TOKENS + 2 * MESSAGE_OVERHEAD
        retry = prompt + judge.max_tokens + again  # the prompt, the invalid reply, the correction
        planned.append(PlannedCalls(judge.model, len(asks), prompt, judge.max_tokens, True, retry))
    return planned


def _prompt_tokens(request: CompletionRequest, counter: TokenCounter) -> int:
    """A request's messages, and the schema instruction a structured reply may add to them."""
    tokens = sum(counter.count(content) + MESSAGE_OVERHEAD for _, content in request.messages)
    if request.json_schema is not None:
        tokens += counter.count(schema_instruction(request.json_schema))
    return tokens


def _target_call(
    call: TargetCall, counter: TokenCounter, planned: list[PlannedCalls]
) -> int | None:
    """Add a model target's call to `planned`; the bound of the target's output, None when the
    request cannot be built (the case fails unsent)."""
    if isinstance(call, AppCall):
        return call.output_tokens
    if isinstance(call, FixedOutput):
        return counter.count(call.output)
    if isinstance(call, Unbuildable):
        return None
    prompt = _prompt_tokens(call.request, counter)
    planned.append(PlannedCalls(call.model, 1, prompt, call.request.max_tokens, judge=False))
    return call.request.max_tokens


def _baseline_output(
    step: BaselineStep, output_tokens: int, counter: TokenCounter, planned: list[PlannedCalls]
) -> int | None:
    """Tokens of the baseline's output for the case; None when the case will be skipped.

    An earlier run's output is counted; a baseline target's call is added to `planned`. An
    earlier run the dry run did not read is assumed as long as this target's output."""
    if isinstance(step, Skip):
        return None
    if isinstance(step, EarlierOutput):
        return output_tokens if step.output is None else counter.count(step.output)
    return _target_call(step, counter, planned)


def worst_case_cost(
    job: Job,
    settings: HybridJudgeConfig,
    counter: TokenCounter,
    baseline: PairwiseBaseline | None = None,
) -> float:
    """`plan_cost` of the job's plan; with no `baseline`, the one a dry run sees."""
    plan = plan_case(job, settings, baseline, dry_run=baseline is None)
    return plan_cost(plan, settings, counter)


def plan_cost(plan: CasePlan, settings: HybridJudgeConfig, counter: TokenCounter) -> float:
    """The most one case can cost: every call at its token bound, and each judge request asked
    again once after an invalid reply, with that reply and the correction in its prompt.
    Models without a price count nothing."""
    total = 0.0
    for calls in plan_calls(plan, counter):
        price = _price(calls.model, settings)
        if price is None:
            continue
        each = call_cost(price, calls.prompt_tokens, calls.output_tokens)
        if calls.retry_prompt_tokens:
            each += call_cost(price, calls.retry_prompt_tokens, calls.output_tokens)
        total += calls.calls * each
    return total


def estimate_run(jobs: Sequence[Job], settings: HybridJudgeConfig) -> RunEstimate:
    """The dry run's estimate: calls and tokens per model over the selected cases."""
    counter = token_counter()
    per_model: dict[str, ModelEstimate] = defaultdict(lambda: ModelEstimate(""))
    for job in jobs:
        for calls in planned_calls(job, settings, counter):
            entry = per_model[calls.model]
            entry.model = calls.model
            entry.calls += calls.calls
            entry.input_tokens += calls.prompt_tokens * calls.calls
            entry.output_tokens += calls.output_tokens * calls.calls
    for entry in per_model.values():
        price = _price(entry.model, settings)
        entry.usd = (
            call_cost(price, entry.input_tokens, entry.output_tokens) if price is not None else None
        )
    note = (
        f"token counts are approximate ({counter.reason}; ~4 characters a token)"
        if counter.approximate
        else "prompt tokens counted with tiktoken (o200k_base)"
    )
    return RunEstimate(
        sorted(per_model.values(), key=lambda m: m.model), len(jobs), counter.approximate, note
    )


def _price(model: str, settings: HybridJudgeConfig) -> tuple[float, float] | None:
    """The model's price per call as this run sends it (half in a provider batch)."""
    batch = batches(model, settings.batch.enabled, settings.providers)
    return price_of(model, settings.price_table, batch=batch)


def estimate_lines(estimate: RunEstimate) -> list[str]:
    """The dry run's terminal table."""
    lines = [f"{estimate.cases} cases; outputs counted at their max_tokens (an upper bound)"]
    lines.append(
        f"{'model':<36} {'calls':>7} {'input tokens':>13} {'output tokens':>14} {'USD':>10}"
    )
    total = 0.0
    unknown = []
    for m in estimate.models:
        usd = f"{m.usd:.4f}" if m.usd is not None else "no price"
        total += m.usd or 0.0
        if m.usd is None:
            unknown.append(m.model)
        lines.append(
            f"{m.model:<36} {m.calls:>7,} {m.input_tokens:>13,} {m.output_tokens:>14,} {usd:>10}"
        )
    lines.append(f"{'total':<36} {'':>7} {'':>13} {'':>14} {total:>10.4f}")
    lines.append(estimate.note)
    if unknown:
        lines.append(
            f"no price for {', '.join(unknown)}: add [tool.hybridjudge.prices] "
            '"provider/model" = { input = USD_PER_M, output = USD_PER_M }'
        )
    return lines
