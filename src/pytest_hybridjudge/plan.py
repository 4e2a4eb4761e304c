"""Each case's calls, built once: the pipeline sends them, the budget and the dry run price them.

A `CasePlan` holds the target's request (or the app to call), the baseline a pairwise rubric
compares with (an earlier run's output, or a target of this session to call) and the judges,
whose requests are built from the plan once the outputs they quote exist (`prompts`, `asks`).
`estimate.py` prices a plan at its token bounds; `evaluate.py` executes it. What is priced is
therefore what is sent: no second copy of the prompts to drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import CallableTarget, HybridJudgeConfig, ModelSpec, Target
from .jobs import Job, PairwiseBaseline
from .judge import Ask, judge_asks, judge_prompt
from .pairwise import pairwise_asks, pairwise_prompts
from .providers import CompletionRequest
from .targets import TargetError, target_request

APP_OUTPUT_TOKENS = 256  # assumed length of a callable target's output, which cannot be predicted


@dataclass(frozen=True)
class ModelCall:
    """A model target's one request, built from the case before anything runs."""

    label: str
    model: str  # provider/model, as priced
    provider: str
    request: CompletionRequest


@dataclass(frozen=True)
class AppCall:
    """The user's function called with the case."""

    label: str
    callable: str
    output_tokens: int = APP_OUTPUT_TOKENS  # assumed: an app's output cannot be predicted


@dataclass(frozen=True)
class FixedOutput:
    """The case carries its output (`output:` in the gold file): nothing is called."""

    label: str
    output: str


@dataclass(frozen=True)
class Unbuildable:
    """A model target whose request cannot be built for this case: the case fails, unsent."""

    label: str
    error: str


TargetCall = ModelCall | AppCall | FixedOutput | Unbuildable


@dataclass(frozen=True)
class EarlierOutput:
    """A pairwise rubric's baseline from an earlier run: its output for the case.

    `None` only in a dry run, which reads no earlier run: assumed as long as this target's."""

    output: str | None


@dataclass(frozen=True)
class Skip:
    """The pairwise case is skipped once its target answered: no judge is asked."""

    reason: str


BaselineStep = TargetCall | EarlierOutput | Skip


@dataclass(frozen=True)
class CasePlan:
    """The calls one job makes, in the order the pipeline makes them."""

    job: Job
    target: TargetCall
    baseline: BaselineStep | None  # a pairwise rubric's other side; None for other rubrics
    judges: tuple[ModelSpec, ...]  # each sent `asks(judge, prompts(...))`

    @property
    def pairwise(self) -> bool:
        """The judges compare the output with the baseline's."""
        return self.baseline is not None

    def prompts(self, output: str, baseline: str = "") -> tuple[str, ...]:
        """The prompts every judge is sent (the same for the whole panel): one for a pointwise
        rubric, both orders of the two answers for a pairwise one."""
        rubric = self.job.rubric
        assert rubric is not None
        rendered = self.job.rendered or ""
        if self.pairwise:
            return pairwise_prompts(rendered, rubric.meta.description, output, baseline)
        return (judge_prompt(rubric, rendered, output),)

    def asks(self, judge: ModelSpec, prompts: tuple[str, ...]) -> tuple[Ask, ...]:
        """The requests `judge` is sent: one per sample, or one per order for a pairwise rubric;
        each asked again once after an invalid reply."""
        if self.pairwise:
            first, second = prompts
            return pairwise_asks(judge, (first, second))
        assert self.job.rubric is not None
        return judge_asks(judge, self.job.rubric, prompts[0])


def target_call(target: Target, job: Job) -> TargetCall:
    """How `target` is asked for the case's output."""
    if job.case.output is not None:
        return FixedOutput(target.label, job.case.output)
    if isinstance(target, CallableTarget):
        return AppCall(target.label, target.callable)
    try:
        provider, request = target_request(target, job.case)
    except TargetError as exc:
        return Unbuildable(target.label, str(exc))
    return ModelCall(target.label, target.model, provider, request)


def plan_case(
    job: Job,
    settings: HybridJudgeConfig,
    baseline: PairwiseBaseline | None,
    *,
    dry_run: bool = False,
) -> CasePlan:
    """The plan of `job`. `baseline` is the one the run loaded; a dry run loads none and reads
    the gate's `baseline` target from the configuration instead."""
    rubric = job.rubric
    judges = tuple(settings.judges) if rubric is not None else ()
    step = None
    if rubric is not None and rubric.meta.kind == "pairwise":
        step = _baseline_step(job, settings, baseline, dry_run)
    return CasePlan(job, target_call(job.target, job), step, judges)


def _baseline_step(
    job: Job, settings: HybridJudgeConfig, baseline: PairwiseBaseline | None, dry_run: bool
) -> BaselineStep:
    if baseline is not None and baseline.cases is not None:
        side = baseline.cases.get(job.case.id)
        if side is None or side.output is None:
            return Skip("pairwise: the baseline run has no output for this case")
        return EarlierOutput(side.output)
    label = baseline.target if baseline is not None else None
    if dry_run and label is None:
        label = settings.gate.baseline
        if label is None:
            return EarlierOutput(None)  # an earlier run the dry run does not read
    if label is None:
        return Skip("pairwise rubric needs a baseline: --judge-baseline or gate targets")
    if label == job.target.label:
        return Skip("pairwise: this target is the baseline")
    target = next((t for t in settings.targets if t.label == label), None)
    if target is None:  # checked when the baseline is loaded; only a dry run gets here
        return EarlierOutput(None)
    return target_call(target, job)
