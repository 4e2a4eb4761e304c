"""The pre-flight estimate of `--judge-dry-run`: calls, tokens and dollars per model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import HybridJudgeConfig, TargetSpec
from .cost import TokenCounter, call_cost, price_of, token_counter
from .judge import JUDGE_SYSTEM, judge_prompt
from .targets import TargetError, target_messages

if TYPE_CHECKING:
    from .evaluate import Job

APP_OUTPUT_TOKENS = 256  # assumed length of a callable target's output, which cannot be predicted
MESSAGE_OVERHEAD = 4  # tokens a chat format adds around each message


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


def planned_calls(
    job: Job, settings: HybridJudgeConfig, counter: TokenCounter
) -> list[PlannedCalls]:
    """Count prompt tokens exactly as they would be sent; outputs at their `max_tokens` bound."""
    planned = []
    target = job.target
    output_tokens = APP_OUTPUT_TOKENS
    if isinstance(target, TargetSpec):
        try:
            messages = target_messages(target, job.case)
        except TargetError:
            messages = ()
        prompt = sum(counter.count(c) + MESSAGE_OVERHEAD for _, c in messages)
        planned.append(PlannedCalls(target.model, 1, prompt, target.max_tokens, judge=False))
        output_tokens = target.max_tokens
    if job.rubric is None:
        return planned
    placeholder = "x" * 4 * output_tokens  # an output of the assumed length
    for judge in settings.judges:
        text = judge_prompt(job.rubric, job.rendered or "", placeholder)
        prompt = counter.count(judge.system or JUDGE_SYSTEM) + counter.count(text)
        planned.append(
            PlannedCalls(
                judge.model, judge.samples, prompt + 2 * MESSAGE_OVERHEAD, judge.max_tokens, True
            )
        )
    return planned


def worst_case_cost(job: Job, settings: HybridJudgeConfig, counter: TokenCounter) -> float:
    """The most one case can cost: every call at its token bound, and each judge sample asked
    twice (an invalid reply is asked again once). Models without a price count nothing."""
    total = 0.0
    for plan in planned_calls(job, settings, counter):
        price = price_of(plan.model, settings.price_table)
        if price is not None:
            calls = plan.calls * (2 if plan.judge else 1)
            total += calls * call_cost(price, plan.prompt_tokens, plan.output_tokens)
    return total


def estimate_run(jobs: Sequence[Job], settings: HybridJudgeConfig) -> RunEstimate:
    """The dry run's estimate: calls and tokens per model over the selected cases."""
    counter = token_counter()
    per_model: dict[str, ModelEstimate] = defaultdict(lambda: ModelEstimate(""))
    for job in jobs:
        for plan in planned_calls(job, settings, counter):
            entry = per_model[plan.model]
            entry.model = plan.model
            entry.calls += plan.calls
            entry.input_tokens += plan.prompt_tokens * plan.calls
            entry.output_tokens += plan.output_tokens * plan.calls
    prices = settings.price_table
    for entry in per_model.values():
        price = price_of(entry.model, prices)
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
