"""`hybridjudge calibrate`: how far the judges agree with reviewers, and a threshold to trust.

Reads the reviewers' resolutions and the verdicts the runs stored (every `results.jsonl` under
`runs_dir`), then reports per rubric and per judge: accuracy, Cohen's kappa, Krippendorff's
alpha with a bootstrap interval, confusion counts, and the panel's agreement on the cases it
decided versus those it escalated. With `--target`, fits the panel-confidence threshold with a
guarantee (`calibration.fit_threshold`); `--write` stores it in `calibration.json` beside the
resolutions file. Every calibration appends one line per rubric to `calibration-history.jsonl`.

The statistics are pure functions in `..calibration`; this module gathers the data and writes
the files. Heavy imports happen inside `run_calibrate`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..calibration import Agreement, Fit
    from ..verdict import CaseResult
    from .resolutions import Resolution

RESULTS_NAME = "results.jsonl"
EXIT_ERROR = 2
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
    calibrate.add_argument(
        "--root",
        metavar="DIR",
        help="Project folder (default: nearest folder up with pyproject.toml or hybridjudge.toml)",
    )
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


# --- gathering the data --------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledCase:
    """One reviewed item with the judges' verdicts on it, as the newest judged run stored it."""

    item_id: str
    rubric: str
    rubric_version: str | None
    run_id: str
    human_pass: bool
    panel_pass: bool | None
    panel_confidence: float | None
    decided: bool
    """The panel decided it itself (outcome passed/failed, or a confident case audited)."""
    judges: dict[str, bool]
    """Judge label -> its pass/fail, for judges that returned a valid verdict."""


@dataclass
class Dataset:
    """The labelled cases, and what could not be used."""

    cases: list[LabelledCase] = field(default_factory=list)
    disagree: dict[str, int] = field(default_factory=dict)
    """Rubric -> items left out because reviewers disagree."""
    unjudged: dict[str, int] = field(default_factory=dict)
    """Rubric -> resolved items with no stored judge verdicts (decided by review only, or
    their runs were deleted)."""


def results_path(runs_dir: Path, run_id: str) -> Path:
    """Where run `run_id` wrote its results: `results.jsonl`, or what its summary recorded."""
    from .jsonl import recorded_path

    return recorded_path(runs_dir, run_id, "results", RESULTS_NAME)


def read_results(path: Path) -> list[CaseResult]:
    """The case results in one `results.jsonl`; a bad line raises `CalibrationError` naming it."""
    from ..calibration import CalibrationError
    from ..verdict import CaseResult
    from .jsonl import parse_jsonl

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot read ({exc})") from None
    fix = "results are written by `pytest --judge`: run it again, or fix or delete that line"
    return parse_jsonl(text, path, CaseResult, CalibrationError, "a case result", fix)


def judged_results(runs_dir: Path) -> dict[str, tuple[str, CaseResult]]:
    """Item id -> (run id, record) for the newest record of each item that has judge verdicts.

    Runs are read oldest first; records decided by review (no verdicts) never replace one that
    has them. Runs without a results file (interrupted) are passed over.
    """
    from .store import run_ids

    found: dict[str, tuple[str, CaseResult]] = {}
    for run_id in run_ids(runs_dir):
        path = results_path(runs_dir, run_id)
        if not path.is_file():
            continue
        for record in read_results(path):
            if record.item_id and record.verdicts:
                found[record.item_id] = (run_id, record)
    return found


def labelled_cases(
    judged: Mapping[str, tuple[str, CaseResult]], resolutions: Iterable[Resolution]
) -> Dataset:
    """Pair each resolved item's human decision with the judges' stored verdicts. Pure."""
    from .resolutions import human_decision, resolutions_by_item

    dataset = Dataset()
    for item, decided in resolutions_by_item(resolutions).items():
        stored = judged.get(item)
        rubric = (stored[1].rubric if stored else None) or decided[-1].rubric or "(none)"
        decision, _ = human_decision(decided)
        if decision == "disagree":
            dataset.disagree[rubric] = dataset.disagree.get(rubric, 0) + 1
            continue
        if stored is None:
            dataset.unjudged[rubric] = dataset.unjudged.get(rubric, 0) + 1
            continue
        run_id, record = stored
        panel = record.panel
        dataset.cases.append(
            LabelledCase(
                item_id=item,
                rubric=rubric,
                rubric_version=record.rubric_version,
                run_id=run_id,
                human_pass=decision == "pass",
                panel_pass=panel.passed if panel else None,
                panel_confidence=panel.confidence if panel else None,
                decided=record.outcome in ("passed", "failed") or record.audit,
                judges={
                    v.judge: v.passed
                    for v in record.verdicts
                    if v.passed is not None and v.error is None
                },
            )
        )
    return dataset


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricReport:
    """Everything `calibrate` says about one rubric."""

    rubric: str
    versions: list[str | None]
    """Rubric versions among the labelled cases, newest first."""
    items: int
    """Labelled cases (reviewers agreed, judge verdicts stored)."""
    disagree: int
    unjudged: int
    panel: Agreement
    judges: dict[str, Agreement]
    decided: Agreement
    """The panel on the cases it decided itself (passed/failed, audits)."""
    escalated: Agreement
    """The panel on the cases it escalated."""
    fit: Fit | None
    """The threshold, when `--target` was given and some case has a panel confidence."""


def rubric_report(
    rubric: str,
    cases: list[LabelledCase],
    *,
    disagree: int,
    unjudged: int,
    target: float | None,
    delta: float,
    resamples: int,
    seed: int,
) -> RubricReport:
    """The statistics of one rubric's labelled cases. Pure."""
    from ..calibration import agreement, fit_threshold

    def panel_on(subset: list[LabelledCase], boot: int) -> Agreement:
        pairs = [(c.panel_pass, c.human_pass) for c in subset if c.panel_pass is not None]
        return agreement([p for p, _ in pairs], [h for _, h in pairs], resamples=boot, seed=seed)

    names = sorted({name for c in cases for name in c.judges})
    judges = {}
    for name in names:
        pairs = [(c.judges[name], c.human_pass) for c in cases if name in c.judges]
        judges[name] = agreement(
            [j for j, _ in pairs], [h for _, h in pairs], resamples=resamples, seed=seed
        )
    fit = None
    scored = [c for c in cases if c.panel_confidence is not None and c.panel_pass is not None]
    if target is not None and scored:
        fit = fit_threshold(
            [c.panel_confidence for c in scored if c.panel_confidence is not None],
            [c.panel_pass == c.human_pass for c in scored],
            target,
            delta,
        )
    newest_first = sorted(cases, key=lambda c: c.run_id, reverse=True)
    versions = list(dict.fromkeys(c.rubric_version for c in newest_first))
    return RubricReport(
        rubric=rubric,
        versions=versions,
        items=len(cases),
        disagree=disagree,
        unjudged=unjudged,
        panel=panel_on(cases, resamples),
        judges=judges,
        decided=panel_on([c for c in cases if c.decided], 0),
        escalated=panel_on([c for c in cases if not c.decided], 0),
        fit=fit,
    )


def _agreement_json(a: Agreement) -> dict[str, Any]:
    c = a.counts
    return {
        "n": a.n,
        "accuracy": a.accuracy,
        "kappa": a.kappa,
        "alpha": a.alpha,
        "alpha_ci": list(a.alpha_ci) if a.alpha_ci else None,
        **{"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn},
    }


def _fit_json(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "min_confidence": fit.threshold,
        "passed": fit.passed,
        "coverage": fit.coverage,
        "n": fit.n,
        "n_selected": fit.n_selected,
        "agreement": fit.agreement,
        "lower_bound": fit.lower_bound,
        "target": fit.target,
        "delta": fit.delta,
        "tested": fit.tested,
    }


def report_json(report: RubricReport) -> dict[str, Any]:
    """One rubric's report as plain JSON data."""
    return {
        "rubric_versions": report.versions,
        "items": report.items,
        "reviewers_disagree": report.disagree,
        "without_verdicts": report.unjudged,
        "panel": _agreement_json(report.panel),
        "judges": {name: _agreement_json(a) for name, a in report.judges.items()},
        "decided": {"n": report.decided.n, "agreement": report.decided.accuracy},
        "escalated": {"n": report.escalated.n, "agreement": report.escalated.accuracy},
        "threshold": _fit_json(report.fit),
    }


def history_record(report: RubricReport, now: dt.datetime, written: bool) -> dict[str, Any]:
    """The line `calibrate` appends to the history for one rubric."""
    fit = report.fit
    return {
        "schema_version": 1,
        "calibrated_at": now.isoformat(),
        "rubric": report.rubric,
        "rubric_versions": report.versions,
        "n": report.items,
        "reviewers_disagree": report.disagree,
        "accuracy": report.panel.accuracy,
        "kappa": report.panel.kappa,
        "alpha": report.panel.alpha,
        "alpha_ci": list(report.panel.alpha_ci) if report.panel.alpha_ci else None,
        "threshold": fit.threshold if fit else None,
        "threshold_passed": fit.passed if fit else None,
        "coverage": fit.coverage if fit else None,
        "lower_bound": fit.lower_bound if fit else None,
        "target": fit.target if fit else None,
        "delta": fit.delta if fit else None,
        "written": written,
        "judges": {
            name: {"n": a.n, "accuracy": a.accuracy, "kappa": a.kappa, "alpha": a.alpha}
            for name, a in report.judges.items()
        },
    }


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def render_report(report: RubricReport, level: float = 0.95) -> list[str]:
    """One rubric's report as table lines for the terminal."""
    from ..calibration import min_cases
    from .cli import printable

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
        head = f"  threshold for agreement >= {fit.target:g} with probability >= {1 - fit.delta:g}"
        if fit.passed:
            lines.append(
                f"{head}: min_confidence {fit.threshold:.4g} lets the panel decide "
                f"{_pct(fit.coverage)} of calibration cases ({fit.n_selected} of {fit.n}), "
                f"agreement {_num(fit.agreement)}, lower bound {_num(fit.lower_bound)}"
            )
        elif fit.tested == 0:
            lines.append(
                f"{head}: no threshold qualifies: {fit.n} case(s) with a panel confidence, "
                f"at least {min_cases(fit.target, fit.delta)} needed even if all agreed; "
                "min_confidence 1.0 escalates everything"
            )
        else:
            lines.append(
                f"{head}: no threshold qualifies: agreement among the most confident cases is "
                "too low to certify the target; min_confidence 1.0 escalates everything"
            )
    return lines


# --- files ---------------------------------------------------------------------------------


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append compact JSON lines to `path` under an exclusive lock; earlier bytes never change."""
    lines = "".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records
    ).encode("utf-8")
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # edited by hand: do not glue onto its last line
                    lines = b"\n" + lines
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            if sys.platform != "win32":
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_thresholds(path: Path, reports: Iterable[RubricReport], now: dt.datetime) -> list[str]:
    """Merge the fitted thresholds into the calibration file, atomically; the rubrics written.

    Rubrics without a fit (no panel confidences) are left as they were. An unreadable existing
    file raises `CalibrationError` and is not overwritten.
    """
    from ..calibration import RubricCalibration, read_calibration
    from ..files import write_json_atomic

    existing = read_calibration(path)
    rubrics = dict(existing.rubrics)
    written = []
    for report in reports:
        fit = report.fit
        if fit is None:
            continue
        rubrics[report.rubric] = RubricCalibration(
            min_confidence=fit.threshold,
            target=fit.target,
            delta=fit.delta,
            coverage=fit.coverage,
            n=fit.n,
            lower_bound=fit.lower_bound,
            rubric_version=report.versions[0] if report.versions else None,
            fitted_at=now,
        )
        written.append(report.rubric)
    updated = existing.model_copy(update={"rubrics": dict(sorted(rubrics.items()))})
    write_json_atomic(path, updated.model_dump(mode="json"))
    return written


# --- the command ---------------------------------------------------------------------------


def run_calibrate(args: argparse.Namespace) -> int:
    """Run `hybridjudge calibrate`; clear errors go to stderr with exit code 2, no traceback."""
    from ..config import ConfigError
    from .resolutions import ReviewError

    try:
        return _calibrate(args)
    except (ReviewError, ConfigError) as exc:
        print(f"hybridjudge calibrate: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


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
    from ..config import load_config
    from .cli import find_project_root
    from .resolutions import load_resolutions

    _check_args(args)
    if args.root is not None:
        root = Path(args.root).resolve()
        if not root.is_dir():
            raise CalibrationError(f"--root {args.root}: no such folder")
    else:
        root = find_project_root(Path.cwd())
    config = load_config(root)
    runs_dir, resolutions_file = _under(root, config.runs_dir), _under(root, config.resolutions)
    calibration_file, history_file = calibration_paths(resolutions_file)

    def shown(path: Path) -> str:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)

    resolutions = load_resolutions(resolutions_file)
    if not resolutions:
        print(
            f"nothing to calibrate: no resolutions in {shown(resolutions_file)}; "
            "resolve escalated items with `hybridjudge review` first",
            file=sys.stderr,
        )
        return 1
    dataset = labelled_cases(judged_results(runs_dir), resolutions)
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
                    "runs_dir": str(runs_dir),
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
            print()
        print("\n".join(render_report(report)))
    if args.target is not None:
        print(
            "\nthe guarantee holds for cases like the labelled ones: audits are a random sample "
            "of confident cases, escalations are not"
        )
    print()
    if written:
        fits = {r.rubric: r.fit for r in reports if r.fit is not None}
        values = ", ".join(
            f"{name} {fits[name].threshold:.4g}"
            + ("" if fits[name].passed else " (no threshold qualified: escalates everything)")
            for name in written
        )
        print(f"wrote min_confidence {values} to {shown(calibration_file)}")
    print(f"appended {len(reports)} line(s) to {shown(history_file)}")
    return 0


def _under(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path
