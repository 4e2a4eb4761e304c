"""The pre-flight estimate of `--judge-dry-run`: calls, tokens and dollars per model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import HybridJudgeConfig, Target, TargetSpec
from .cost import TokenCounter, call_cost, price_of, token_counter
from .gold import GoldCase
from .judge import JUDGE_SYSTEM, correction, judge_prompt
from .pairwise import CHOICE_SCHEMA, PAIRWISE_SYSTEM, pairwise_prompt
from .structured import schema_instruction
from .targets import TargetError, target_messages
from .verdict import verdict_schema

if TYPE_CHECKING:
    from .comparison import Baseline
    from .evaluate import Job

APP_OUTPUT_TOKENS = 256  # assumed length of a callable target's output, which cannot be predicted
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
    job: Job, settings: HybridJudgeConfig, counter: TokenCounter, baseline: Baseline | None = None
) -> list[PlannedCalls]:
    """Count prompt tokens as they would be sent; outputs at their `max_tokens` bound (an app's
    at APP_OUTPUT_TOKENS, an assumption). Outputs quoted to a judge count at that bound too."""
    planned: list[PlannedCalls] = []
    output_tokens = _target_call(job.target, job.case, counter, planned)
    rubric = job.rubric
    if rubric is None or not settings.judges:
        return planned
    if rubric.meta.kind == "pairwise":
        return planned + _pairwise_calls(job, settings, counter, output_tokens, baseline)
    schema = counter.count(schema_instruction(verdict_schema(rubric.scale)))
    text = counter.count(judge_prompt(rubric, job.rendered or "", ""))
    answer = text + output_tokens + MARKER_SLACK + schema + 2 * MESSAGE_OVERHEAD
    fix = counter.count(correction("", rubric.scale)) + PROBLEM_TOKENS + 2 * MESSAGE_OVERHEAD
    for judge in settings.judges:
        prompt = counter.count(judge.system or JUDGE_SYSTEM) + answer
        retry = prompt + judge.max_tokens + fix
        planned.append(
            PlannedCalls(judge.model, judge.samples, prompt, judge.max_tokens, True, retry)
        )
    return planned


def _target_call(
    target: Target, case: GoldCase, counter: TokenCounter, planned: list[PlannedCalls]
) -> int:
    """Add a model target's call to `planned`; return the bound of the target's output."""
    if not isinstance(target, TargetSpec):
        return APP_OUTPUT_TOKENS
    try:
        messages = target_messages(target, case)
    except TargetError:
        messages = ()
    prompt = sum(counter.count(c) + MESSAGE_OVERHEAD for _, c in messages)
    planned.append(PlannedCalls(target.model, 1, prompt, target.max_tokens, judge=False))
    return target.max_tokens


def _pairwise_calls(
    job: Job,
    settings: HybridJudgeConfig,
    counter: TokenCounter,
    output_tokens: int,
    baseline: Baseline | None,
) -> list[PlannedCalls]:
    """Each judge sees both answers and is asked in both orders (never again on a bad reply);
    a baseline that is a target of this session is called inside the case too."""
    planned: list[PlannedCalls] = []
    base_tokens = _baseline_output(job, settings, counter, output_tokens, baseline, planned)
    if base_tokens is None:
        return planned  # the case is skipped before any judge is asked
    assert job.rubric is not None
    text = pairwise_prompt(job.rendered or "", job.rubric.meta.description, "", "")
    answers = (
        counter.count(text)
        + output_tokens
        + base_tokens
        + 2 * MARKER_SLACK
        + counter.count(schema_instruction(CHOICE_SCHEMA))
        + 2 * MESSAGE_OVERHEAD
    )
    for judge in settings.judges:
        prompt = counter.count(judge.system or PAIRWISE_SYSTEM) + answers
        planned.append(PlannedCalls(judge.model, 2, prompt, judge.max_tokens, True))
    return planned


def _baseline_output(
    job: Job,
    settings: HybridJudgeConfig,
    counter: TokenCounter,
    output_tokens: int,
    baseline: Baseline | None,
    planned: list[PlannedCalls],
) -> int | None:
    """Tokens of the baseline's output for the case; None when the case will be skipped.

    An earlier run's output is counted; a baseline target's call is added to `planned`. With no
    baseline loaded (the dry run) and no gate target, it is assumed as long as this target's."""
    if baseline is not None and baseline.cases is not None:
        side = baseline.cases.get(job.case.id)
        return None if side is None or side.output is None else counter.count(side.output)
    label = baseline.target if baseline is not None else settings.gate.baseline
    if label == job.target.label:
        return None  # this target is the baseline
    target = next((t for t in settings.targets if t.label == label), None)
    if target is None:
        return output_tokens
    return _target_call(target, job.case, counter, planned)


def worst_case_cost(
    job: Job, settings: HybridJudgeConfig, counter: TokenCounter, baseline: Baseline | None = None
) -> float:
    """The most one case can cost: every call at its token bound, and each judge sample asked
    again once after an invalid reply, with that reply and the correction in its prompt.
    Models without a price count nothing."""
    total = 0.0
    for plan in planned_calls(job, settings, counter, baseline):
        price = price_of(plan.model, settings.price_table)
        if price is None:
            continue
        each = call_cost(price, plan.prompt_tokens, plan.output_tokens)
        if plan.retry_prompt_tokens:
            each += call_cost(price, plan.retry_prompt_tokens, plan.output_tokens)
        total += plan.calls * each
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
