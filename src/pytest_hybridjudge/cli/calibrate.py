"""`hybridjudge calibrate`: how far the judges agree with reviewers, and a threshold to trust.

The data and statistics are in `review.calibration_report` and `stats`; this module parses the
command line, prints the report and says which files it wrote. Heavy imports happen inside
`run_calibrate`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from typing import TYPE_CHECKING

from .common import Project, add_root_option, fail, printable, say

if TYPE_CHECKING:
    from ..review.calibration_report import RubricReport
    from ..stats import Fit

PANEL = "panel"


def add_calibrate_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `calibrate` on `subparsers`."""
    calibrate = subparsers.add_parser(
        "calibrate",
        help="Measure the judges against reviewers' decisions and fit a confidence threshold",
        description="Compare the judges' stored verdicts with reviewers' resolutions (audits "
        "included), per rubric and per judge. With --target, choose the panel-confidence "
        "threshold whose agreement with reviewers is at least the target with probability at "
        "least 1 - delta; --write stores it beside the resolutions file.",
    )
    add_root_option(calibrate)
    calibrate.add_argument("--rubric", help="Only this rubric")
    calibrate.add_argument(
        "--target", type=float, help="Agreement the panel must reach on the cases it decides"
    )
    calibrate.add_argument(
        "--delta",
        type=float,
        default=0.1,
        help="Allowed probability of missing the target (default: 0.1)",
    )
    calibrate.add_argument(
        "--write", action="store_true", help="Store the fitted thresholds in calibration.json"
    )
    calibrate.add_argument(
        "--resamples",
        type=int,
        default=1000,
        help="Bootstrap resamples for alpha's interval (default: 1000)",
    )
    calibrate.add_argument("--seed", type=int, default=0, help="Bootstrap seed (default: 0)")
    calibrate.add_argument("--json", action="store_true", help="Print the report as JSON")
    return calibrate


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def _count(n: int, noun: str) -> str:
    """`1 audit`, `2 audits`: a count with its noun in the right number."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def render_report(report: RubricReport, level: float = 0.95) -> list[str]:
    """One rubric's report as table lines for the terminal."""

    versions = ", ".join((v or "-")[:8] for v in report.versions)
    left_out = []
    if report.disagree:
        left_out.append(f"{report.disagree} left out (reviewers disagree)")
    if report.unjudged:
        left_out.append(f"{report.unjudged} without stored judge verdicts")
    lines = [
        f"rubric {printable(report.rubric)} (version {versions}): {report.items} labelled"
        + (f"; {'; '.join(left_out)}" if left_out else "")
    ]
    if len(report.versions) > 1:
        lines.append(f"  note: pooled over {len(report.versions)} rubric versions")
    alpha_head = f"ALPHA {level:.0%} CI"
    rows = [("JUDGE", "N", "ACC", "KAPPA", "ALPHA", alpha_head, "TP", "FP", "FN", "TN")]
    for name, a in [(PANEL, report.panel), *report.judges.items()]:
        c = a.counts
        rows.append(
            (
                printable(name),
                str(a.n),
                _num(a.accuracy),
                _num(a.kappa),
                _num(a.alpha),
                _ci(a.alpha_ci),
                str(c.tp),
                str(c.fp),
                str(c.fn),
                str(c.tn),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(w) if i in (0, 5) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    for label, a in (
        ("decided by the panel (passed/failed, audits)", report.decided),
        ("escalated by the panel", report.escalated),
    ):
        lines.append(f"  panel on cases {label}: {a.n}, agreement {_num(a.accuracy)}")
    fit = report.fit
    if fit is not None:
        lines += _fit_lines(report, fit)
    return lines


def _fit_lines(report: RubricReport, fit: Fit) -> list[str]:
    """What the fit used and why, and what it found."""
    from ..stats import min_cases

    sample = report.sample
    lines = []
    if sample is not None:
        weights = ", ".join(f"{k} at weight {w:g}" for w, k in sample.weights.items()) or "none"
        version, judges = sample.panel_key
        runs = f"{sample.runs} run{'' if sample.runs == 1 else 's'}"
        lines.append(
            f"  fitted on {_count(sample.audits, 'audit')} and "
            f"{_count(sample.low_confidence, 'low-confidence escalation')} pooled from {runs} "
            f"of rubric version {(version or '-')[:8]} judged by {', '.join(judges) or '-'}: "
            "cases whose chance of review is known, each weighted by 1 / that chance "
            f"({weights}; effective n {sample.effective_n:.1f})"
        )
        if sample.other_versions:
            lines.append(
                f"  left out of the fit: {_count(sample.other_versions, 'labelled case')} from "
                "other rubric versions or judges (their agreement says little about these)"
            )
        if sample.other_rules or sample.unknown:
            lines.append(
                f"  left out of the fit: {sample.other_rules} sent to people by other rules "
                "(split, errors, spread, borderline, always_review: chosen for what they are, "
                f"not a random sample), {sample.unknown} from runs that did not record sampling"
            )
    head = f"  threshold for agreement >= {fit.target:g} with probability >= {1 - fit.delta:g}"
    if fit.threshold is not None:
        coverage = "-" if report.coverage is None else _pct(report.coverage)
        lines.append(
            f"{head}: min_confidence {fit.threshold:.4g} lets the panel decide {coverage} of "
            f"{report.judged} judged cases ({fit.n_selected} of {fit.n} calibration cases), "
            f"weighted agreement {_num(fit.agreement)}, lower bound {_num(fit.lower_bound)}"
        )
        return lines
    why = (
        f"effective n {fit.effective_n:.1f} is below the {min_cases(fit.target, fit.delta)} "
        "needed even if all agreed"
        if fit.tested == 0
        else "agreement among the most confident cases is too low to certify the target"
    )
    rate = sample.audit_rate if sample is not None else None
    more = (
        f"about {_count(fit.needed, 'more audit')} would certify the target"
        + (
            f" (at audit_rate {rate:g}, about {math.ceil(fit.needed / rate):,} more confident "
            "cases judged, in one run or pooled over runs of this rubric version and judges)"
            if rate
            else ""
        )
        if fit.needed is not None
        else "more audits like these would not help: the judges agree too rarely"
    )
    lines.append(
        f"{head}: no threshold qualifies ({why}); {more}; until then every case of this "
        "rubric is escalated"
    )
    return lines


# --- the command ----------------------------------------------------------------------------


def run_calibrate(args: argparse.Namespace) -> int:
    """Run `hybridjudge calibrate`; clear errors go to stderr with exit code 2, no traceback."""
    from ..errors import HybridJudgeError

    try:
        return _calibrate(args)
    except HybridJudgeError as exc:
        return fail("calibrate", exc)


def _check_args(args: argparse.Namespace) -> None:
    from ..calibration import CalibrationError

    if args.target is not None and not 0 < args.target < 1:
        raise CalibrationError(f"--target {args.target}: give an agreement between 0 and 1")
    if not 0 < args.delta < 1:
        raise CalibrationError(f"--delta {args.delta}: give a probability between 0 and 1")
    if args.write and args.target is None:
        raise CalibrationError("--write stores a fitted threshold: give --target too")
    if args.resamples < 0:
        raise CalibrationError(f"--resamples {args.resamples}: give 0 or more")


def _calibrate(args: argparse.Namespace) -> int:
    from ..calibration import CalibrationError, calibration_paths
    from ..files import append_jsonl
    from ..review.calibration_report import (
        history_record,
        report_json,
        rubric_report,
        write_thresholds,
    )
    from ..review.labelled import LabelledCase, labelled_cases

    _check_args(args)
    project = Project.from_args(args)
    store, resolutions_file = project.store, project.resolutions
    calibration_file, history_file = calibration_paths(resolutions_file)
    shown = project.shown

    resolutions = project.desk.recorded
    if not resolutions:
        say(
            f"nothing to calibrate: no resolutions in {shown(resolutions_file)}; "
            "resolve escalated items with `hybridjudge review` first",
            file=sys.stderr,
        )
        return 1
    history = store.judged_history()
    dataset = labelled_cases(history.judged, resolutions, history.sent)
    by_rubric: dict[str, list[LabelledCase]] = {}
    for case in dataset.cases:
        by_rubric.setdefault(case.rubric, []).append(case)
    names = sorted({*by_rubric, *dataset.disagree, *dataset.unjudged})
    if args.rubric is not None:
        if args.rubric not in names:
            known = ", ".join(names) or "none"
            raise CalibrationError(f"no resolved items on rubric {args.rubric!r}; rubrics: {known}")
        names = [args.rubric]
    reports = [
        rubric_report(
            name,
            by_rubric.get(name, []),
            disagree=dataset.disagree.get(name, 0),
            unjudged=dataset.unjudged.get(name, 0),
            target=args.target,
            delta=args.delta,
            resamples=args.resamples,
            seed=args.seed,
            judged=dataset.judged.get(name, []),
            judged_groups=dataset.judged_groups.get(name, []),
        )
        for name in names
    ]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    written = write_thresholds(calibration_file, reports, now) if args.write else []
    append_jsonl(history_file, (history_record(r, now, r.rubric in written) for r in reports))
    if args.json:
        print(
            json.dumps(
                {
                    "calibrated_at": now.isoformat(),
                    "resolutions": str(resolutions_file),
                    "runs_dir": str(store.folder),
                    "rubrics": {r.rubric: report_json(r) for r in reports},
                    "calibration": str(calibration_file) if args.write else None,
                    "written": written,
                    "history": str(history_file),
                },
                indent=2,
            )
        )
        return 0
    for index, report in enumerate(reports):
        if index:
            say()
        say("\n".join(render_report(report)))
    if args.target is not None:
        say(
            "\nthe guarantee rests on the sample of known probability, in two phases: a run sends "
            "cases to people (audits are a seeded random sample of confident cases, probability "
            "audit_rate; low-confidence escalations all go, probability 1), then reviewers "
            "resolve some of them; the resolved ones of a run, rubric and kind are taken as a "
            "random share of those sent, so each is weighted by 1 / (its probability x that "
            "share). Runs with the rubric version and judges of the newest are pooled; cases "
            "chosen by other rules are not a random sample and are left out"
        )
    say()
    if written:
        fits = {r.rubric: r.fit for r in reports if r.fit is not None}
        values = ", ".join(
            f"{name} {threshold:.4g}"
            if (threshold := fits[name].threshold) is not None
            else f"{name} null (no threshold qualified: escalates everything)"
            for name in written
        )
        say(f"wrote min_confidence {values} to {shown(calibration_file)}")
    say(f"appended {len(reports)} line(s) to {shown(history_file)}")
    return 0
