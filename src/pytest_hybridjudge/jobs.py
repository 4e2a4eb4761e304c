"""What the case pipeline works on: a job, its empty record, and what it needs of a baseline.

The bottom of the pipeline: collection builds `Job`s, the scheduler runs them, the recorder
writes `new_record` for a case that never ran; none of them needs the pipeline itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .config import Target
from .gold import GoldCase
from .rubric import Rubric
from .verdict import CaseResult, Outcome


@dataclass(frozen=True)
class Job:
    """One case against one target, with its rubric already rendered at collection."""

    nodeid: str
    case: GoldCase
    target: Target
    rubric: Rubric | None
    rendered: str | None


class TargetFailed(Exception):
    """The target produced no output; the message is the reason recorded for the case."""

    def __init__(self, reason: str, outage: bool = False, expired: bool = False):
        super().__init__(reason)
        self.outage = outage  # the provider failed after its retries, not the model or the app
        self.expired = expired  # a provider batch expired the request (`--judge-batch`)


class BaselineSide(Protocol):
    """One case of an earlier run, as a pairwise rubric reads it."""

    @property
    def output(self) -> str | None:
        """What the baseline answered, if anything."""
        ...


class PairwiseBaseline(Protocol):
    """What a pairwise rubric compares with: an earlier run's cases, or a target of this run.

    The gate's `gate.run.Baseline` is one; the pipeline needs no more of it than this.
    """

    @property
    def cases(self) -> Mapping[str, BaselineSide] | None:
        """An earlier run's cases by id; None when the baseline is a target of this session."""
        ...

    @property
    def target(self) -> str | None:
        """The label of the target of this session that is the baseline."""
        ...


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
