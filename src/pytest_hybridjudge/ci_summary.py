"""A Markdown summary of the gate and the run, for CI: `$GITHUB_STEP_SUMMARY` and the run folder.

GitHub Actions renders what a step appends to the file `$GITHUB_STEP_SUMMARY` on the job's
page; the same text is also kept as `summary.md` in the run folder (uploaded with it).

Case ids, target and judge labels and rubric names come from files anyone can edit: each is
written as a code span (`md_code`) or as escaped text (`md_text`), so none can close its span,
show an image from another host, link, or inject HTML.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_text_atomic
from .summary import RunSummary
from .terminal import printable
from .verdict import CaseResult, decided_by

if TYPE_CHECKING:  # the gate's statistics are imported only when a run has a gate
    from .gate.decide import GateReport

MARKDOWN_NAME = "summary.md"
ICONS = {"PASS": "✅", "REGRESSED": "❌", "INCONCLUSIVE": "⚠️"}


# Characters with a meaning in (GitHub-flavoured) Markdown inside a line: escapes, code spans,
# emphasis, links and images, HTML and entities, table cells, and e-mail autolinks.
_ACTIVE = re.compile(r"[\\`*_~\[\]()<>&|!@#]|(?<=[wW]{3})\.|:(?=//)")
_TICKS = re.compile(r"`+")


def md_text(text: str) -> str:
    """`text` as literal Markdown text on one line: every character with a meaning is escaped
    (`www.` and `://` too, so no autolink forms) and control characters are shown (`\\x1b`)."""
    return _ACTIVE.sub(lambda m: "\\" + m.group(), printable(text))


def md_code(text: str, *, in_table: bool = False) -> str:
    """`text` as one code span on one line: fenced by more backticks than it holds in a row, so
    it cannot close the span early; `|` escaped inside a table (GitHub splits cells first)."""
    text = printable(text)
    fence = "`" * (max((len(run) for run in _TICKS.findall(text)), default=0) + 1)
    if not text or text[0] in "` " or text[-1] in "` ":
        text = f" {text} "  # Markdown strips one space on each side
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def _cell(text: str) -> str:
    """The tool's own text (numbers, notes) safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _ids(ids: list[str], limit: int = 30) -> str:
    shown = ", ".join(md_code(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def gate_markdown(gate: GateReport) -> list[str]:
    """The gate's section."""
    from .gate.decide import ppi_text

    pct = _pct
    interval = f"[{gate.interval[0]:+.1%}, {gate.interval[1]:+.1%}]" if gate.interval else "n/a"
    change = f"{gate.change:+.1%}" if gate.change is not None else "n/a"
    lines = [
        f"## {ICONS[gate.result]} Gate: {gate.result}",
        "",
        md_text(gate.explanation),  # names critical cases
        "",
        "| | |",
        "|---|---|",
        f"| baseline | {md_text(gate.baseline)} ({pct(gate.baseline_pass_rate)}) |",
        f"| candidate | {md_text(gate.candidate)} ({pct(gate.candidate_pass_rate)}) |",
        f"| paired cases | {gate.paired} |",
        f"| wins / losses / ties | {gate.wins} / {gate.losses} / {gate.ties} |",
        f"| change in pass rate | {change} (95% paired bootstrap {interval}) |",
        f"| exact McNemar p | {gate.mcnemar_p:.3g} |",
        f"| PPI estimate of the change | {_cell(ppi_text(gate))} |",
        f"| provider outages | {len(gate.outages)} ({gate.outage_rate:.1%}) |",
    ]
    if gate.more_cases_needed is not None:
        lines.append(f"| more cases for 80% power | {gate.more_cases_needed} |")
    lines.append("")
    for title, ids in (
        ("Critical cases that regressed", gate.critical_regressions),
        ("Cases the candidate lost", gate.losses_list),
        ("Escalated, unresolved (left out)", gate.unresolved),
        ("Only in the baseline", gate.only_baseline),
        ("Only in the candidate", gate.only_candidate),
        ("Provider outages (left out)", gate.outages),
        ("Not compared (skipped)", gate.not_compared),
    ):
        if ids:
            lines += [f"**{title}:** {_ids(ids)}", ""]
    if gate.position_consistency:
        lines += ["| judge | position consistency |", "|---|---|"]
        lines += [f"| {md_text(j)} | {s:.1%} |" for j, s in gate.position_consistency.items()]
        lines.append("")
    return lines


def run_markdown(summary: RunSummary) -> list[str]:
    """The run's section: outcomes, pass rate per rubric, cost."""
    from .summary_text import pass_rate_text

    o = summary.outcomes
    lines = [
        f"## Run {md_code(summary.run_id)}",
        "",
        "| cases | passed | failed | escalated | skipped | pass rate |",
        "|---|---|---|---|---|---|",
        f"| {summary.cases} | {o.passed} | {o.failed} | {o.escalated} | {o.skipped} | "
        f"{_cell(pass_rate_text(summary.pass_rate))} |",
        "",
        f"Pass rate: {_cell(pass_rate_text(summary.pass_rate, how=True))}.",
        "",
    ]
    if summary.rubrics:
        lines += ["| rubric | passed | failed | escalated | pass rate |", "|---|---|---|---|---|"]
        for name, r in summary.rubrics.items():
            rate = _cell(pass_rate_text(r.pass_rate))
            lines.append(f"| {md_text(name)} | {r.passed} | {r.failed} | {r.escalated} | {rate} |")
        lines.append("")
    cost = summary.cost
    lines.append(
        f"Cost: inference ${cost.inference_total:.4f}, expected review ${cost.review_total:.2f}, "
        f"total ${cost.total:.2f}."
    )
    return lines


def ci_markdown(summary: Mapping[str, Any] | RunSummary, gate: GateReport | None) -> str:
    """The whole Markdown summary."""
    run = summary if isinstance(summary, RunSummary) else RunSummary.model_validate(summary)
    lines = ["# hybridjudge", ""]
    if gate is not None:
        lines += gate_markdown(gate)
    lines += run_markdown(run)
    return "\n".join(lines) + "\n"


def write_ci_summary(
    summary: Mapping[str, Any] | None, gate: GateReport | None, run_dir: Path
) -> Path | None:
    """Write `summary.md` to the run folder, and append it to `$GITHUB_STEP_SUMMARY` when set."""
    if summary is None:
        return None
    text = ci_markdown(summary, gate)
    path = run_dir / MARKDOWN_NAME
    write_text_atomic(path, text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write(text)
        return Path(step_summary)
    return path


def junit_properties(result: CaseResult) -> list[tuple[str, object]]:
    """A case's properties in the junit XML: outcome (escalated and by-review cases apart from
    plain passes), who decided it, score and reasons."""
    outcome = f"{result.outcome}-by-review" if result.resolved_by else result.outcome
    properties: list[tuple[str, object]] = [
        ("hybridjudge.outcome", outcome),
        ("hybridjudge.decided_by", decided_by(result)),
        ("hybridjudge.score", "" if result.score is None else f"{result.score:g}"),
        ("hybridjudge.reasons", "; ".join(result.reasons)),
    ]
    if result.outage:
        properties.append(("hybridjudge.outage", "true"))
    if result.audit:  # also on the review manifest; the outcome is still the panel's
        properties.append(("hybridjudge.audit", "true"))
    return properties
