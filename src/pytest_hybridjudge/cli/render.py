"""How the review commands show an item: facts first, then the texts behind a gutter, escaped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .common import printable

if TYPE_CHECKING:
    from ..review.decisions import ItemDecision
    from ..review.manifest import ReviewItem
    from ..review.resolutions import Resolution


def cell(text: str) -> str:
    """`text` escaped and on one line, for a table cell or a fact."""
    return printable(text).replace("\n", " ").replace("\t", " ")


def who_said(decision: ItemDecision) -> str:
    """Each counted reviewer's verdict: "ann: pass, bo: fail"."""
    return ", ".join(f"{r.reviewer}: {r.verdict}" for r in decision.counted)


def decision_status(decision: ItemDecision) -> str:
    """What people now decide about an item, in words."""
    if decision.pending:
        return f"reviewers disagree ({who_said(decision)}): the item stays pending"
    score = "" if decision.score is None else f", score {decision.score}"
    return f"decision now: {decision.verdict}{score}"


def _block(text: str, indent: str = "  ") -> list[str]:
    """Text as lines behind a `| ` gutter: what is between the bars is the text, nothing else."""
    return [f"{indent}|" + (f" {line}" if line else "") for line in printable(text).split("\n")]


def _data(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _output(title: str, text: str | None, note: str = "") -> list[str]:
    """An output behind the gutter, with its size, between a header and an end line."""
    if text is None:
        return [title, "  (no output: the target produced none)"]
    count = text.count("\n") + 1
    head = f"{title}  ({note}plain text, {len(text)} chars, {count} lines) "
    body = _block(text) if text else ["  (empty string)"]
    return [head + "-" * 20, *body, f"END OF {title} " + "-" * 40]


def render_item(item: ReviewItem, resolutions: Sequence[Resolution] = ()) -> str:
    """The item as a reviewer reads it: facts first, then input, reference, output, rubric and
    each judge's verdict. Text from the run is shown behind a `| ` gutter, escaped."""
    lines = [
        f"item        {item.item_id}",
        f"run         {item.run_id}",
        f"case        {cell(item.case_id)}",
        f"source      {cell(item.source)}",
        f"target      {cell(item.target)}",
    ]
    rubric = item.rubric or "(none)"
    facts = []
    if item.rubric_version:
        facts.append(f"version {item.rubric_version[:12]}")
    if item.scale:
        facts.append(f"scale {item.scale[0]}-{item.scale[1]}")
    if item.pass_threshold is not None:
        facts.append(f"passes at {item.pass_threshold} or more")
    lines.append(f"rubric      {rubric}" + (f"  ({', '.join(facts)})" if facts else ""))
    lines.append(f"tier        {item.tier}  (expected {item.review_minutes:g} min)")
    if item.audit:
        lines.append("audit       yes: a confident case sampled to check the judges")
    if item.tags:
        lines.append(f"tags        {cell(', '.join(item.tags))}")
    lines.append("reasons" + ("" if item.reasons else "     (none recorded)"))
    lines.extend(f"  - {cell(reason)}" for reason in item.reasons)
    if item.panel is not None:
        p = item.panel
        lines.append(
            f"panel       score {_number(p.score)}, {p.votes_pass} pass / {p.votes_fail} fail, "
            f"{p.errors} errored, spread {_number(p.spread)}, confidence {_number(p.confidence)}"
        )
    if resolutions:
        lines.append("resolved by")
        for r in resolutions:
            score = "" if r.score is None else f" (score {r.score})"
            note = f": {cell(r.note)}" if r.note else ""
            when = r.resolved_at.strftime("%Y-%m-%d %H:%M")
            lines.append(f"  - {cell(r.reviewer)}: {r.verdict}{score} on {when}{note}")

    lines += ["", "INPUT", *_block(_data(item.input))]
    lines += ["", "REFERENCE"]
    lines += ["  (none)"] if item.reference is None else _block(_data(item.reference))
    lines.append("")
    base = item.baseline_output
    lines += _output("OUTPUT" if base is None else "CANDIDATE OUTPUT", item.output)
    if base is not None:
        lines += ["", *_output("BASELINE OUTPUT", base, "what it is compared with; ")]
    lines += ["", "RUBRIC AS THE JUDGES SAW IT"]
    lines += ["  (none)"] if item.rendered_rubric is None else _block(item.rendered_rubric)
    lines += ["", "JUDGES"]
    if not item.verdicts:
        lines.append("  (none)")
    for v in item.verdicts:
        head = f"  {cell(v.judge)}"
        if v.model != v.judge:
            head += f" ({cell(v.model)})"
        passed = "" if v.passed is None else (", pass" if v.passed else ", fail")
        head += f": score {_number(v.score)}{passed}, confidence {_number(v.confidence)}"
        lines.append(head)
        if v.error:
            lines.append(f"    error: {cell(v.error)}")
        if v.rationale:
            lines += _block(v.rationale, indent="    ")
    if item.verifiers:
        lines += ["", "VERIFIERS"]
        for check in item.verifiers:
            state = "passed" if check.passed else "failed"
            detail = f": {cell(check.detail)}" if check.detail else ""
            lines.append(f"  {cell(check.name)} {state}{detail}")
    return "\n".join(lines)
