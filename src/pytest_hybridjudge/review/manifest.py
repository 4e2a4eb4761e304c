"""The review manifest: one versioned `ReviewItem` per escalated case, written atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..config import Tier
from ..files import write_jsonl_atomic
from ..verdict import CaseResult, JudgeVerdict, PanelVerdict, VerifierResult


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def compared(output: str | None, baseline_output: str | None) -> str | None:
    """What a pairwise item's id covers as its output: the baseline's and the candidate's."""
    return output if baseline_output is None else f"{baseline_output}\x1e{output or ''}"


def item_id(
    case_id: str,
    output: str | None,
    rubric_version: str | None,
    *,
    input: Any,
    reference: Any,
    baseline_output: str | None = None,
) -> str:
    """Stable id of a review item, covering everything the reviewer saw: the case id, its input
    (or messages) and reference, the output (for a pairwise rubric, the baseline's output too)
    and the rubric version. Edit any of them and it is a new item, judged afresh."""
    seen = json.dumps(
        [input, reference], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    parts = ("2", case_id, _digest(compared(output, baseline_output) or ""), rubric_version or "")
    return _digest("\x1f".join((*parts, _digest(seen))))[:16]


def legacy_item_id(case_id: str, output: str | None, rubric_version: str | None) -> str:
    """The id schema-1 items had (case id, output, rubric version; no input or reference):
    resolutions recorded under it apply only where `review.store.upgrade_legacy` finds the
    item's input and reference unchanged."""
    key = "\x1f".join((case_id, _digest(output or ""), rubric_version or ""))
    return _digest(key)[:16]


class ReviewItem(BaseModel):
    """Everything a reviewer needs to decide a case, with no access to the run."""

    schema_version: Literal[1, 2] = Field(
        2,
        description="Manifest record version; 2: the item id covers input and reference, "
        "1: it covered case id, output and rubric version only",
    )
    item_id: str = Field(
        description="Hash of case id, input, reference, output (pairwise: both outputs) and "
        "rubric version"
    )
    run_id: str = Field(description="The run that escalated it")
    case_id: str = Field(description="Gold case id")
    source: str = Field(description="Gold file")
    target: str = Field(description="What produced the output")
    rubric: str | None = Field(description="Rubric name")
    rubric_version: str | None = Field(description="Hash of the rubric file")
    scale: tuple[int, int] | None = Field(description="Rubric scale")
    pass_threshold: int | None = Field(description="Score at or above which the case passes")
    input: Any = Field(description="The case's input or messages")
    reference: Any = Field(None, description="The expected answer, if any")
    output: str | None = Field(description="The output to review")
    baseline_output: str | None = Field(
        None, description="Pairwise rubrics: the baseline's output the output is compared with"
    )
    rendered_rubric: str | None = Field(description="The rubric as the judges saw it")
    verdicts: list[JudgeVerdict] = Field(description="Every judge's verdict")
    panel: PanelVerdict | None = Field(description="The aggregated verdict")
    verifiers: list[VerifierResult] = Field(default_factory=list, description="Check results")
    reasons: list[str] = Field(description="Why it was escalated")
    tags: list[str] = Field(default_factory=list, description="Case tags")
    tier: Tier = Field("annotator", description="Who should review it")
    review_minutes: float = Field(2.0, description="Expected minutes one review takes")
    audit: bool = Field(False, description="A confident case sampled to audit the judges")

    @classmethod
    def from_result(cls, result: CaseResult, run_id: str) -> ReviewItem:
        """The review item for an escalated case."""
        return cls(
            item_id=result.item_id or result_item_id(result),
            run_id=run_id,
            case_id=result.case_id,
            source=result.source,
            target=result.target,
            rubric=result.rubric,
            rubric_version=result.rubric_version,
            scale=result.scale,
            pass_threshold=result.pass_threshold,
            input=result.input,
            reference=result.reference,
            output=result.output,
            baseline_output=result.pairwise.baseline_output if result.pairwise else None,
            rendered_rubric=result.rendered_rubric,
            verdicts=[v.model_copy(update={"logprobs": None}) for v in result.verdicts],
            panel=result.panel,
            verifiers=result.verifiers,
            reasons=result.reasons,
            tags=result.tags,
            tier=result.tier or "annotator",
            review_minutes=result.review_minutes or 2.0,
            audit=result.audit,
        )


def result_item_id(result: CaseResult) -> str:
    """The item id of a case's record, from what its reviewer will see."""
    return item_id(
        result.case_id,
        result.output,
        result.rubric_version,
        input=result.input,
        reference=result.reference,
        baseline_output=result.pairwise.baseline_output if result.pairwise else None,
    )


def current_item_id(item: ReviewItem) -> str:
    """The id `item` would have now (for a schema-1 item, what its id would be today)."""
    return item_id(
        item.case_id,
        item.output,
        item.rubric_version,
        input=item.input,
        reference=item.reference,
        baseline_output=item.baseline_output,
    )


def write_manifest(path: Path, items: list[ReviewItem]) -> None:
    """Write the manifest atomically: readers see the old file or the new one, never half."""
    write_jsonl_atomic(path, (item.model_dump(mode="json") for item in items))
