"""How a failed or escalated case is shown to the person reading the pytest output."""

from __future__ import annotations

from .terminal import printable
from .verdict import CaseResult


def explain_failure(result: CaseResult) -> str:
    """Score, threshold, reasons and every judge's rationale, as plain lines.

    Case ids, outputs, rationales and errors come from gold files, models and servers: the text
    is made printable (escape sequences and bidi controls shown, not obeyed) before pytest
    prints it in the FAILURES section.
    """
    lines = [f"gold case '{result.case_id}' {result.outcome} (target {result.target})"]
    if result.score is not None:
        low, high = result.scale or (None, None)
        lines.append(
            f"  score {result.score:g} on [{low}, {high}], pass threshold {result.pass_threshold}"
            f" (rubric {result.rubric} @ {result.rubric_version})"
        )
    lines += [f"  reason: {reason}" for reason in result.reasons]
    for verdict in result.verdicts:
        if verdict.error:
            lines.append(f"  judge {verdict.judge}: ERROR {verdict.error}")
        else:
            mark = "pass" if verdict.passed else "fail"
            lines.append(
                f"  judge {verdict.judge}: {verdict.score} ({mark}, confidence "
                f"{verdict.confidence:.2f}): {verdict.rationale}"
            )
    if result.output is not None:
        shown = result.output if len(result.output) <= 500 else result.output[:500] + " …"
        lines.append("  output: " + shown.replace("\n", "\n          "))
    return printable("\n".join(lines), block=True)
