"""The calibration report: the judges' stored verdicts against reviewers' decisions.

Takes the verdicts the runs stored (the run store's judged history,
`runs.RunStore.judged_history`); `labelled.labelled_cases` pairs them with the reviewers'
decisions. Computes per rubric and per judge: accuracy, Cohen's kappa, Krippendorff's alpha with
a bootstrap interval, confusion counts, the panel's agreement on the cases it decided versus those
it escalated, and with a target the panel-confidence threshold with a guarantee
(`stats.fit_threshold`). `write_thresholds` stores thresholds in `calibration.json`;
`history_record` is one line of `calibration-history.jsonl`. `hybridjudge calibrate`
(`cli/calibrate.py`) is the command around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .labelled import LabelledCase, PanelKey

if TYPE_CHECKING:
    from ..stats import Agreement, Fit


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
    sample: FitSample | None = None
    """What the fit used and left out, when there is a fit."""
    judged: int = 0
    """Judged cases of the rubric (labelled or not)."""
    coverage: float | None = None
    """Share of the judged cases the panel decides at the fitted threshold (confidence at or
    above it, and no other rule escalating them); None without a threshold."""


@dataclass(frozen=True)
class FitSample:
    """The labelled cases behind a fit: those used, with their weights, and those left out."""

    audits: int
    """Audits used (weight 1 / audit rate each)."""
    low_confidence: int
    """Cases escalated for low confidence alone, used with weight 1."""
    weights: dict[float, int]
    """Weight -> cases used with it."""
    effective_n: float
    """Kish effective sample size of the cases used."""
    other_rules: int
    """Left out: sent to people by split, errors, spread, borderline or always_review."""
    unknown: int
    """Left out: older runs that did not record their sampling probabilities."""
    runs: int = 1
    """Runs whose labelled cases were pooled (same rubric version and judges)."""
    other_versions: int = 0
    """Left out: labelled cases from other rubric versions or panels of judges."""
    panel_key: PanelKey = (None, ())
    """The rubric version and judges fitted for: those of the newest labelled run."""
    audit_rate: float | None = None
    """The audit rate of the newest run fitted on (to turn more audits into more cases)."""


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
    judged: list[float | None] | None = None,
    judged_groups: list[PanelKey] | None = None,
) -> RubricReport:
    """The statistics of one rubric's labelled cases. Pure.

    `judged` holds the panel confidence of every judged case of the rubric (`Dataset.judged`),
    for coverage as a share of judged cases. The threshold is fitted on the cases whose
    inclusion probability is known (audits, low-confidence escalations), weighted by its
    inverse; the rest are counted in `sample` and left out. It pools the labelled cases of every
    run with the rubric version and judges of the newest one (each weighted by its own run's
    probabilities); cases of other versions or panels are counted and left out, and so are
    their judged cases in coverage (`judged_groups`, parallel to `judged`).
    """
    judged = judged or []
    from ..stats import agreement, fit_threshold

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
    fit = sample = coverage = None
    scored = [c for c in cases if c.panel_confidence is not None and c.panel_pass is not None]
    known = [c for c in scored if c.weight is not None]
    newest = max(known, key=lambda c: c.run_id) if known else None
    key = newest.panel_key if newest else (None, ())
    used = [c for c in known if c.panel_key == key]
    if judged_groups is not None and newest is not None:
        judged = [x for x, g in zip(judged, judged_groups, strict=True) if g == key]
    if target is not None and scored:
        fit = fit_threshold(
            [c.panel_confidence for c in used if c.panel_confidence is not None],
            [c.panel_pass == c.human_pass for c in used],
            target,
            delta,
            weights=[c.weight for c in used if c.weight is not None],
        )
        weights: dict[float, int] = {}
        for c in used:
            assert c.weight is not None
            weights[round(c.weight, 6)] = weights.get(round(c.weight, 6), 0) + 1
        sample = FitSample(
            audits=sum(1 for c in used if c.audit),
            low_confidence=sum(1 for c in used if not c.audit),
            weights=dict(sorted(weights.items())),
            effective_n=fit.effective_n,
            other_rules=sum(1 for c in scored if c.weight is None and not c.legacy),
            unknown=sum(1 for c in scored if c.weight is None and c.legacy),
            runs=len({c.run_id for c in used}),
            other_versions=len(known) - len(used),
            panel_key=key,
            audit_rate=newest.audit_rate if newest else None,
        )
        if fit.threshold is not None and judged:
            confident = [x for x in judged if x is not None and x >= fit.threshold]
            coverage = len(confident) / len(judged)
        elif judged:
            coverage = 0.0
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
        sample=sample,
        judged=len(judged),
        coverage=coverage,
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
        "effective_n": fit.effective_n,
        "more_needed": fit.needed,
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
        "judged": report.judged,
        "coverage_of_judged": report.coverage,
        "fitted_on": None
        if report.sample is None
        else {
            "audits": report.sample.audits,
            "low_confidence_escalations": report.sample.low_confidence,
            "weights": {f"{w:g}": k for w, k in report.sample.weights.items()},
            "effective_n": report.sample.effective_n,
            "left_out_other_rules": report.sample.other_rules,
            "left_out_unrecorded_sampling": report.sample.unknown,
            "runs_pooled": report.sample.runs,
            "rubric_version": report.sample.panel_key[0],
            "judges": list(report.sample.panel_key[1]),
            "left_out_other_versions_or_judges": report.sample.other_versions,
            "audit_rate": report.sample.audit_rate,
        },
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
        "coverage": report.coverage if fit else None,
        "lower_bound": fit.lower_bound if fit else None,
        "target": fit.target if fit else None,
        "delta": fit.delta if fit else None,
        "written": written,
        "judges": {
            name: {"n": a.n, "accuracy": a.accuracy, "kappa": a.kappa, "alpha": a.alpha}
            for name, a in report.judges.items()
        },
    }


# --- the calibration file ------------------------------------------------------------------


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
            coverage=report.coverage,
            n=fit.n,
            lower_bound=fit.lower_bound,
            rubric_version=report.versions[0] if report.versions else None,
            fitted_at=now,
        )
        written.append(report.rubric)
    updated = existing.model_copy(update={"rubrics": dict(sorted(rubrics.items()))})
    write_json_atomic(path, updated.model_dump(mode="json"))
    return written
