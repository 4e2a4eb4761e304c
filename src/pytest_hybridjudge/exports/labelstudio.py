"""Pending review items as Label Studio tasks, with the labelling config they are shown in.

Each task's `data` holds what a reviewer needs (input, reference, output, the baseline's output
for a pairwise rubric, the rubric as the judges saw it) and the `item_id` the decisions come
back under (`hybridjudge review import labelstudio`). The judges' verdicts are the task's
`predictions` (one per judge, `model_version` its name, `score` its confidence) — except on
random-audit items, exported without predictions or the judges' reasons: the labels that
calibrate the judges must not be anchored on them (such a task carries `blind: true`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from ..review.manifest import ReviewItem
from ..verdict import JudgeVerdict

TO_NAME = "output"
"""The object tag the controls label: the output under review."""
VERDICT, SCORE, NOTE = "verdict", "score", "note"
"""The config's control names (`from_name`), which `review import labelstudio` reads by default."""
FIELDS = (
    "item_id",
    "case_id",
    "rubric",
    "tier",
    "input",
    "reference",
    "baseline_output",
    "output",
    "rendered_rubric",
    "judges",
    "reasons",
    "scale",
    "blind",
    "run_id",
)


def text_of(value: Any) -> str:
    """A case's input, messages or reference as text a reviewer reads: strings as they are,
    chat messages as `role: content` paragraphs, anything else as indented JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        return "\n\n".join(f"{m['role']}: {text_of(m.get('content'))}" for m in value)
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def task(item: ReviewItem) -> dict[str, Any]:
    """One Label Studio task for `item` (predictions left out for a random-audit item)."""
    blind = item.audit
    data = {
        "item_id": item.item_id,
        "case_id": item.case_id,
        "rubric": item.rubric or "",
        "tier": item.tier,
        "input": text_of(item.input),
        "reference": text_of(item.reference),
        "baseline_output": item.baseline_output or "",
        "output": item.output or "",
        "rendered_rubric": item.rendered_rubric or "",
        "judges": "" if blind else judges_text(item.verdicts),
        "reasons": "" if blind else "; ".join(item.reasons),
        "scale": f"{item.scale[0]}-{item.scale[1]}" if item.scale else "",
        "blind": blind,
        "run_id": item.run_id,
    }
    exported: dict[str, Any] = {"data": data}
    if not blind:
        exported["predictions"] = [p for v in item.verdicts if (p := prediction(v)) is not None]
    return exported


def prediction(verdict: JudgeVerdict) -> dict[str, Any] | None:
    """A judge's verdict as a Label Studio prediction; None for a judge that gave none."""
    if verdict.score is None or verdict.passed is None:
        return None
    result = [
        _region(VERDICT, "choices", {"choices": ["pass" if verdict.passed else "fail"]}),
        _region(SCORE, "number", {"number": verdict.score}),
    ]
    found: dict[str, Any] = {"model_version": verdict.judge, "result": result}
    if verdict.confidence is not None:
        found["score"] = verdict.confidence
    return found


def _region(name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": name, "from_name": name, "to_name": TO_NAME, "type": kind, "value": value}


def judges_text(verdicts: Sequence[JudgeVerdict]) -> str:
    """The judges' verdicts in a line each: `judge: score (pass) — rationale`."""
    lines = []
    for v in verdicts:
        if v.score is None:
            lines.append(f"{v.judge}: no verdict ({v.error or 'unknown error'})")
        else:
            mark = "pass" if v.passed else "fail"
            lines.append(f"{v.judge}: {v.score} ({mark}) — {v.rationale}".rstrip(" —"))
    return "\n".join(lines)


def tasks(items: Sequence[ReviewItem]) -> list[dict[str, Any]]:
    """The tasks of `items`, in order."""
    return [task(item) for item in items]


def labelling_config(items: Sequence[ReviewItem]) -> str:
    """The Label Studio labelling config (XML) the tasks of `items` are shown in: the item's
    texts, a required pass/fail choice, a score on the widest scale among the items (each
    decision is checked against its own item's scale on import) and a note."""
    scales = [item.scale for item in items if item.scale is not None]
    low = min((s[0] for s in scales), default=None)
    high = max((s[1] for s in scales), default=None)
    score = (
        f'  <Header value="Score ({low}-{high}; this item: $scale)" size="5"/>\n'
        f'  <Number name="{SCORE}" toName="{TO_NAME}" min="{low}" max="{high}"/>\n'
        if scales
        else ""
    )
    texts = "".join(
        f'  <Header value={quoteattr(title)} size="5"/>\n  <Text name="{name}" value="${name}"/>\n'
        for name, title in (
            ("input", "Input"),
            ("reference", "Reference"),
            (
                "baseline_output",
                "Baseline output (pairwise: pass = the output is at least as good)",
            ),
            ("output", "Output to review"),
            ("rendered_rubric", "Rubric"),
            ("judges", "Judges (empty on a blind audit item)"),
            ("reasons", "Why it was escalated"),
        )
    )
    return (
        "<View>\n"
        '  <Header value="$case_id ($rubric, $tier)"/>\n'
        f"{texts}"
        '  <Header value="Verdict" size="5"/>\n'
        f'  <Choices name="{VERDICT}" toName="{TO_NAME}" choice="single-radio" required="true">\n'
        '    <Choice value="pass"/>\n'
        '    <Choice value="fail"/>\n'
        "  </Choices>\n"
        f"{score}"
        '  <Header value="Note" size="5"/>\n'
        f'  <TextArea name="{NOTE}" toName="{TO_NAME}" maxSubmissions="1" editable="true"/>\n'
        "</View>\n"
    )
