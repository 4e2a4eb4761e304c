"""Calibration against reviewers: statistics, the threshold's guarantee, `hybridjudge calibrate`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest

from pytest_hybridjudge.calibration import CalibrationError, load_calibration
from pytest_hybridjudge.cli import main
from pytest_hybridjudge.config import ConfigError
from pytest_hybridjudge.review.resolutions import Resolution, append_resolution
from pytest_hybridjudge.stats import (
    Confusion,
    alpha_interval,
    clopper_pearson_lower,
    cohen_kappa,
    confusion,
    fit_threshold,
    min_cases,
    nominal_alpha,
)
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict, PolicyInForce


def labels(tp: int, fp: int, fn: int, tn: int) -> tuple[list[bool], list[bool]]:
    """Judge and reviewer labels with the given confusion counts (True = pass)."""
    judge = [True] * tp + [True] * fp + [False] * fn + [False] * tn
    human = [True] * tp + [False] * fp + [True] * fn + [False] * tn
    return judge, human


# --- statistics against reference values ------------------------------------------------------


def test_confusion_counts_pass_as_positive() -> None:
    judge = [True, True, False, False, True]
    human = [True, False, True, False, True]
    assert confusion(judge, human) == Confusion(tp=2, fp=1, fn=1, tn=1)
    assert confusion(judge, human).accuracy == pytest.approx(3 / 5)
    assert confusion([], []).accuracy is None
    with pytest.raises(ValueError, match="2 verdicts but 1"):
        confusion([True, False], [True])


@pytest.mark.parametrize(
    ("counts", "kappa"),
    [
        # Wikipedia, "Cohen's kappa", simple example: p_o = 0.7, p_e = 0.5.
        ((20, 5, 10, 15), 0.4),
        # Wikipedia, same agreement (0.6) but different marginals: p_e = 0.54 and 0.46.
        ((45, 15, 25, 15), 0.06 / 0.46),
        ((25, 35, 5, 35), 0.14 / 0.54),
        ((10, 0, 0, 10), 1.0),
        ((0, 10, 10, 0), -1.0),
    ],
)
def test_cohen_kappa_textbook_values(counts: tuple[int, int, int, int], kappa: float) -> None:
    assert cohen_kappa(Confusion(*counts)) == pytest.approx(kappa)
    assert cohen_kappa(confusion(*labels(*counts))) == pytest.approx(kappa)


def test_cohen_kappa_undefined_without_variation() -> None:
    assert cohen_kappa(Confusion(5, 0, 0, 0)) is None
    assert cohen_kappa(Confusion(0, 0, 0, 0)) is None


def hand_alpha(tp: int, fp: int, fn: int, tn: int) -> float:
    """Nominal alpha of two raters, no missing values, from the coincidence matrix by hand:
    1 - (N - 1) * o_01 / (n_0 * n_1), with N = 2n values and o_01 the disagreeing units."""
    ones = 2 * tp + fp + fn
    zeros = 2 * tn + fp + fn
    values = ones + zeros
    return 1 - (values - 1) * (fp + fn) / (zeros * ones)


@pytest.mark.parametrize(
    ("counts", "alpha"),
    [
        ((20, 5, 10, 15), 0.4),  # 1 - 99 * 15 / (45 * 55)
        ((45, 15, 25, 15), 1 - 199 * 40 / (70 * 130)),
        ((25, 35, 5, 35), hand_alpha(25, 35, 5, 35)),
        ((10, 0, 0, 10), 1.0),
    ],
)
def test_nominal_alpha_matches_the_coincidence_matrix(
    counts: tuple[int, int, int, int], alpha: float
) -> None:
    assert hand_alpha(*counts) == pytest.approx(alpha)
    assert nominal_alpha(*labels(*counts)) == pytest.approx(alpha)


def test_nominal_alpha_undefined_cases() -> None:
    assert nominal_alpha([True] * 5, [True] * 5) is None
    assert nominal_alpha([True], [False]) is None


def test_alpha_interval_is_seeded_and_brackets_the_estimate() -> None:
    judge, human = labels(20, 5, 10, 15)
    first = alpha_interval(judge, human, resamples=300, seed=7)
    assert first == alpha_interval(judge, human, resamples=300, seed=7)
    assert first is not None
    low, high = first
    assert low < 0.4 < high
    assert low >= -1 and high <= 1
    assert alpha_interval(judge, human, resamples=300, seed=8) != first


def test_alpha_interval_none_when_resamples_often_lack_variation() -> None:
    # One disagreement in 40 cases: about a third of the resamples have no variation at all.
    judge, human = [True] * 40, [True] * 39 + [False]
    assert alpha_interval(judge, human, resamples=200) is None
    assert alpha_interval([True], [True]) is None


def test_clopper_pearson_lower_reference_values() -> None:
    # All n agree: the bound solves p ** n = delta.
    assert clopper_pearson_lower(10, 10, 0.05) == pytest.approx(0.05**0.1)
    # Textbook 95% two-sided exact interval for 8/10 is (0.4439, 0.9748).
    assert clopper_pearson_lower(8, 10, 0.025) == pytest.approx(0.4439, abs=1e-4)
    assert clopper_pearson_lower(0, 10, 0.1) == 0.0
    for k, n in [(1, 3), (17, 20), (90, 100), (412, 450)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.8, method="exact")
        assert clopper_pearson_lower(k, n, 0.1) == pytest.approx(ci.low)


def test_min_cases() -> None:
    assert min_cases(0.9, 0.1) == 22  # 0.9 ** 22 = 0.098 <= 0.1 < 0.9 ** 21 = 0.109
    assert 0.1 ** (1 / 22) >= 0.9 > 0.1 ** (1 / 21)
    assert min_cases(0.5, 0.5) == 1


# --- fitting the threshold ----------------------------------------------------------------------


def reference_fit(
    conf: Sequence[float], agree: Sequence[bool], target: float, delta: float
) -> float | None:
    """Straightforward fixed-sequence testing with scipy's exact binomial interval."""
    chosen = None
    for t in sorted(set(conf), reverse=True):
        selected = [a for c, a in zip(conf, agree, strict=True) if c >= t]
        if delta ** (1 / len(selected)) < target:
            continue  # could not pass even if every case agreed
        ci = binomtest(sum(selected), len(selected)).proportion_ci(1 - 2 * delta, "exact")
        if ci.low < target:
            break
        chosen = t
    return chosen


def test_fit_threshold_matches_a_straightforward_reference() -> None:
    rng = np.random.default_rng(3)
    for _ in range(25):
        n = int(rng.integers(20, 120))
        conf = np.round(rng.uniform(0.5, 1.0, n), 2)  # rounding makes ties
        agree = rng.random(n) < 0.5 + 0.5 * conf
        fit = fit_threshold(conf.tolist(), agree.tolist(), 0.85, 0.1)
        assert fit.threshold == reference_fit(conf.tolist(), agree.tolist(), 0.85, 0.1)


def test_fit_threshold_picks_the_last_candidate_that_passes() -> None:
    conf = [0.99 - i / 100 for i in range(40)]
    agree = [True] * 30 + [False] * 10
    fit = fit_threshold(conf, agree, 0.9, 0.1)
    assert fit.passed
    assert fit.threshold == pytest.approx(0.70)
    assert (fit.n, fit.n_selected, fit.coverage, fit.agreement) == (40, 30, 0.75, 1.0)
    assert fit.lower_bound == pytest.approx(0.1 ** (1 / 30))  # 0.926
    assert fit.tested == 10  # 22..30 selected pass, 31 fails


def test_fit_threshold_stops_at_the_first_failure() -> None:
    # The most confident cases disagree too often; the pooled data alone would pass.
    conf = [0.99] * 22 + [0.9] * 300
    agree = [False, False, False] + [True] * 19 + [True] * 300
    fit = fit_threshold(conf, agree, 0.9, 0.1)
    assert not fit.passed
    assert fit.threshold is None
    assert fit.n_selected == 0 and fit.coverage == 0.0
    assert fit.tested == 1


def test_fit_threshold_too_few_cases_is_no_threshold() -> None:
    fit = fit_threshold([0.95] * 21, [True] * 21, 0.9, 0.1)
    assert (fit.passed, fit.threshold, fit.tested) == (False, None, 0)
    assert fit.needed == 1  # 22 needed even if all agree
    empty = fit_threshold([], [], 0.9, 0.1)
    assert (empty.passed, empty.n, empty.agreement, empty.lower_bound) == (False, 0, None, None)


def test_fit_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="target"):
        fit_threshold([0.5], [True], 1.0, 0.1)
    with pytest.raises(ValueError, match="delta"):
        fit_threshold([0.5], [True], 0.9, 0.0)
    with pytest.raises(ValueError, match="from 0 to 1"):
        fit_threshold([1.5], [True], 0.9, 0.1)
    with pytest.raises(ValueError, match="2 confidences but 1"):
        fit_threshold([0.5, 0.6], [True], 0.9, 0.1)


# --- the guarantee, by simulation ---------------------------------------------------------------
#
# Panel confidence c ~ Uniform(0.5, 1); the panel agrees with reviewers with a known probability
# f(c). The guarantee is about the *true* agreement among the cases at or above the threshold,
# E[f(C) | C >= t], which we can compute exactly on a fine grid, so no held-out noise enters.
# A trial with no qualifying threshold escalates everything and cannot miss the target; the
# tests also require a threshold in most trials, so that the guarantee is not met vacuously.

TARGET, DELTA, TRIALS = 0.9, 0.1, 200
GRID = np.linspace(0.5, 1.0, 20001)


def calibrated(c: Any) -> Any:
    """The panel's confidence is its probability of agreeing: the boundary is t = 0.8."""
    return c


def logistic(c: Any) -> Any:
    """Confidence ranks cases well but overstates agreement in the middle."""
    return 1 / (1 + np.exp(-15 * (c - 0.65)))


def true_agreement(f: Callable[[Any], Any], threshold: float) -> float:
    """E[f(C) | C >= threshold] for C ~ Uniform(0.5, 1)."""
    grid = GRID
    return float(f(grid[grid >= threshold]).mean())


def naive_threshold(conf: Any, agree: Any, target: float) -> float:
    """The lowest threshold whose *observed* agreement reaches the target (no guarantee)."""
    order = np.argsort(-conf)
    running = np.cumsum(agree[order]) / np.arange(1, conf.size + 1)
    ok = np.flatnonzero(running >= target)
    return float(conf[order][ok[-1]]) if ok.size else 1.0


@pytest.mark.parametrize("f", [calibrated, logistic])
def test_guarantee_holds_against_the_true_agreement(f: Callable[[Any], Any]) -> None:
    rng = np.random.default_rng(2024)
    misses = naive_misses = fitted = 0
    for _ in range(TRIALS):
        conf = rng.uniform(0.5, 1.0, 1000)
        agree = rng.random(conf.size) < f(conf)
        fit = fit_threshold(conf.tolist(), agree.tolist(), TARGET, DELTA)
        if fit.passed:
            fitted += 1
            misses += true_agreement(f, fit.threshold) < TARGET
        naive_misses += true_agreement(f, naive_threshold(conf, agree, TARGET)) < TARGET
    assert misses / TRIALS <= DELTA
    assert fitted / TRIALS >= 0.7  # the guarantee is not met by never choosing a threshold
    assert naive_misses / TRIALS > 0.3  # and the simulation can see a rule without one fail


def test_guarantee_holds_on_held_out_splits() -> None:
    # One pool, many random splits: fit on 600 cases, check the other 19,400. The held-out
    # agreement among selected cases has a standard error of about 0.005 (>= 3,000 selected),
    # so it may fall short of the target by sampling noise alone: allow 0.01 for that.
    rng = np.random.default_rng(7)
    pool = 20000
    conf = rng.uniform(0.5, 1.0, pool)
    agree = rng.random(pool) < calibrated(conf)
    met = fitted = 0
    for _ in range(TRIALS):
        order = rng.permutation(pool)
        cal, test = order[:600], order[600:]
        fit = fit_threshold(conf[cal].tolist(), agree[cal].tolist(), TARGET, DELTA)
        if not fit.passed:
            met += 1
            continue
        fitted += 1
        selected = conf[test] >= fit.threshold
        met += agree[test][selected].mean() >= TARGET - 0.01
    assert met / TRIALS >= 1 - DELTA
    assert fitted / TRIALS >= 0.7


# --- the calibration file -----------------------------------------------------------------------


def test_load_calibration_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_calibration(tmp_path / "gold" / "calibration.json") == {}


def test_load_calibration_reads_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "rubrics": {
                    "correctness": {"min_confidence": 0.72, "target": 0.9, "delta": 0.1},
                    "tone": {"min_confidence": 1.0},
                },
            }
        ),
        encoding="utf-8",
    )
    assert load_calibration(path) == {"correctness": 0.72, "tone": 1.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"rubrics": {\n  "x": }', r"calibration\.json:2: not valid JSON"),
        ('{"rubrics": {"x": {"min_confidence": 1.5}}}', r"'rubrics\.x\.min_confidence'"),
        ('{"rubrics": {"x": {"min_confidence": "high"}}}', r"'rubrics\.x\.min_confidence'"),
        ('{"rubrics": {"x": {}}}', r"missing 'rubrics\.x\.min_confidence'"),
        ('{"rubrics": {"x": {"min_confidnce": 0.7}}}', r"'rubrics\.x\.min_confidnce'"),
        ('{"schema_version": 2, "rubrics": {}}', r"'schema_version'"),
        ("[]", r"calibration\.json: not a valid calibration file"),
    ],
)
def test_load_calibration_names_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalibrationError, match=message) as info:
        load_calibration(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConfigError)


# --- `hybridjudge calibrate` end to end ---------------------------------------------------------

RUN_OLD = "20260101T090000Z-aaaaaa"
RUN_NEW = "20260102T090000Z-bbbbbb"
RUN_NEWEST = "20260103T090000Z-cccccc"
T0 = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)


def record(
    ident: str,
    *,
    rubric: str,
    conf: float | None,
    panel: bool | None,
    judges: dict[str, bool | None],
    outcome: str = "escalated",
    audit: bool = False,
    version: str = "rv1",
    resolved_by: Sequence[str] = (),
    inclusion: float | None = 1.0,
    audit_rate: float = 0.05,
) -> dict[str, Any]:
    """A results.jsonl line as a run writes it; `judges` None = the judge errored.

    `inclusion` is its recorded inclusion probability (1: escalated for low confidence)."""
    verdicts = [
        JudgeVerdict(
            judge=name,
            model=name,
            score=None if passed is None else (5 if passed else 2),
            passed=passed,
            confidence=None if passed is None else conf,
            error="timed out" if passed is None else None,
        )
        for name, passed in judges.items()
    ]
    result = CaseResult(
        case_id=f"case-{ident}",
        nodeid=f"gold/g.yaml::case-{ident}",
        target="openai/gpt-4.1-mini",
        rubric=rubric,
        rubric_version=version,
        outcome=outcome,  # type: ignore[arg-type]
        output=f"answer {ident}",
        verdicts=verdicts,
        panel=PanelVerdict(passed=panel, confidence=conf) if verdicts else None,
        audit=audit,
        item_id=ident,
        resolved_by=list(resolved_by),
        policy=PolicyInForce(min_confidence=0.7, audit_rate=audit_rate, seed=0),
        inclusion_probability=inclusion if verdicts else None,
    )
    return result.model_dump(mode="json")


def write_results(root: Path, run_id: str, records: Sequence[dict[str, Any]]) -> None:
    path = root / ".hybridjudge" / "runs" / run_id / "results.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def resolve(root: Path, ident: str, verdict: str, reviewer: str = "ann", rubric: str = "") -> None:
    append_resolution(
        root / "review" / "resolutions.jsonl",
        Resolution(
            item_id=ident,
            case_id=f"case-{ident}",
            verdict=verdict,  # type: ignore[arg-type]
            reviewer=reviewer,
            resolved_at=T0,
            rubric=rubric or None,
        ),
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two runs and resolutions; the expected numbers are worked out in the tests.

    correctness: 40 items c00..c39, confidence 0.99 down to 0.60. Reviewers pass the even ones.
    The panel agrees with them on c00..c29 and contradicts them on c30..c39. Judge `a` votes as
    the panel; judge `b` always passes, except on c39 where it errored. c00..c09 were audits,
    c10..c14 decided by the panel, the rest escalated. c05's newest run is a by-review record
    (no verdicts); the newest run judged c25 again (same rubric version and judges: the fit
    pools the three runs), now contradicting reviewers.
    tone: 3 items, one where reviewers disagree; one resolved item has no stored verdicts.
    """
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[tool.hybridjudge]\n", encoding="utf-8"
    )
    old, new, newest = [], [], []
    for i in range(40):
        ident = f"c{i:02d}"
        human = i % 2 == 0
        panel = human if i < 30 else not human
        judges: dict[str, bool | None] = {"a": panel, "b": None if i == 39 else True}
        outcome = "passed" if 10 <= i < 15 and panel else "failed" if 10 <= i < 15 else "escalated"
        line = record(
            ident,
            rubric="correctness",
            conf=round(0.99 - i / 100, 2),
            panel=panel,
            judges=judges,
            outcome=outcome,
            audit=i < 10,
        )
        (old if i in (5, 25) else new).append(line)
        resolve(tmp_path, ident, "pass" if human else "fail")
    new.append(
        record("c05", rubric="correctness", conf=None, panel=None, judges={}, outcome="passed")
    )
    newest.append(
        record(
            "c25",
            rubric="correctness",
            conf=0.74,
            panel=True,
            judges={"a": True, "b": True},
        )
    )
    for ident, human, panel in (("t1", "pass", True), ("t2", "fail", True)):
        new.append(
            record(ident, rubric="tone", conf=0.5, panel=panel, judges={"a": panel, "b": panel})
        )
        resolve(tmp_path, ident, human)
    new.append(record("t3", rubric="tone", conf=0.4, panel=True, judges={"a": True, "b": True}))
    resolve(tmp_path, "t3", "pass", reviewer="ann")
    resolve(tmp_path, "t3", "fail", reviewer="bob")
    resolve(tmp_path, "t4", "pass", rubric="tone")  # its run is gone
    write_results(tmp_path, RUN_OLD, old)
    write_results(tmp_path, RUN_NEW, new)
    write_results(tmp_path, RUN_NEWEST, newest)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["calibrate", "--json", "--resamples", "50", *args]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def history(root: Path) -> list[dict[str, Any]]:
    path = root / "review" / "calibration-history.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_calibrate_reports_agreement_per_rubric_and_judge(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_json(capsys)
    correctness = data["rubrics"]["correctness"]
    assert correctness["items"] == 40
    assert correctness["rubric_versions"] == ["rv1"]
    # Panel: c00..c29 agree except c25 (newest run contradicts); c30..c39 contradict.
    # Even = pass: agreeing evens are TP, agreeing odds TN; contradicting evens FN, odds FP.
    panel = correctness["panel"]
    assert (panel["tp"], panel["fp"], panel["fn"], panel["tn"]) == (15, 6, 5, 14)
    assert panel["n"] == 40 and panel["accuracy"] == pytest.approx(29 / 40)
    p_o, p_e = 29 / 40, (21 / 40) * (20 / 40) + (19 / 40) * (20 / 40)
    assert panel["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e))
    assert panel["alpha"] == pytest.approx(hand_alpha(15, 6, 5, 14))
    assert panel["alpha_ci"][0] < panel["alpha"] < panel["alpha_ci"][1]
    assert correctness["judges"]["a"]["tp"] == 15
    judge_b = correctness["judges"]["b"]  # always pass; errored on c39 (odd: a fail)
    assert (judge_b["n"], judge_b["tp"], judge_b["fp"], judge_b["fn"], judge_b["tn"]) == (
        39,
        20,
        19,
        0,
        0,
    )
    assert judge_b["kappa"] == pytest.approx(0.0)
    # Decided: audits c00..c09 (c05 from its older, judged run) and c10..c14.
    assert correctness["decided"] == {"n": 15, "agreement": 1.0}
    assert correctness["escalated"]["n"] == 25
    assert correctness["escalated"]["agreement"] == pytest.approx(14 / 25)
    assert correctness["threshold"] is None
    tone = data["rubrics"]["tone"]
    assert (tone["items"], tone["reviewers_disagree"], tone["without_verdicts"]) == (2, 1, 1)
    assert tone["panel"]["accuracy"] == 0.5
    assert data["written"] == []


def test_calibrate_fits_and_writes_thresholds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibration = project / "review" / "calibration.json"
    calibration.write_text(
        json.dumps({"schema_version": 1, "rubrics": {"other": {"min_confidence": 0.6}}}),
        encoding="utf-8",
    )
    data = run_json(capsys, "--target", "0.9", "--delta", "0.1", "--write")
    fit = data["rubrics"]["correctness"]["threshold"]
    # By confidence, the top 25 (0.99..0.75) agree: 0.1 ** (1 / 22..25) >= 0.9, the first
    # candidate tested selects 22 cases. c25 (0.74) disagrees: 25 of 26 gives 0.858 < 0.9.
    assert fit["passed"] is True
    assert fit["min_confidence"] == pytest.approx(0.75)
    assert (fit["n_selected"], fit["n"], fit["tested"]) == (25, 40, 5)
    assert fit["coverage"] == pytest.approx(0.625)
    assert data["rubrics"]["correctness"]["judged"] == 40
    assert data["rubrics"]["correctness"]["coverage_of_judged"] == pytest.approx(25 / 40)
    assert fit["lower_bound"] == pytest.approx(0.1 ** (1 / 25))
    assert clopper_pearson_lower(25, 26, 0.1) < 0.9
    tone = data["rubrics"]["tone"]["threshold"]
    assert (tone["passed"], tone["min_confidence"], tone["tested"]) == (False, None, 0)
    assert data["written"] == ["correctness", "tone"]

    stored = json.loads(calibration.read_text(encoding="utf-8"))
    assert stored["schema_version"] == 1
    assert set(stored["rubrics"]) == {"correctness", "other", "tone"}
    entry = stored["rubrics"]["correctness"]
    assert entry["min_confidence"] == pytest.approx(0.75)
    assert (entry["target"], entry["delta"], entry["n"], entry["rubric_version"]) == (
        0.9,
        0.1,
        40,
        "rv1",
    )
    assert entry["coverage"] == pytest.approx(0.625)
    assert dt.datetime.fromisoformat(entry["fitted_at"]).tzinfo is not None
    assert load_calibration(calibration) == {
        "correctness": pytest.approx(0.75),
        "other": 0.6,
        "tone": None,
    }


def test_every_calibration_appends_one_history_line_per_rubric(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys)
    assert [h["rubric"] for h in history(project)] == ["correctness", "tone"]
    run_json(capsys, "--target", "0.9", "--write")
    stored = (project / "review" / "calibration.json").read_text(encoding="utf-8")
    run_json(capsys, "--target", "0.8", "--rubric", "correctness")
    lines = history(project)
    assert [h["rubric"] for h in lines] == ["correctness", "tone"] * 2 + ["correctness"]
    first, fitted, last = lines[0], lines[2], lines[4]
    assert first["threshold"] is None and first["target"] is None and not first["written"]
    assert first["n"] == 40 and first["accuracy"] == pytest.approx(29 / 40)
    assert first["rubric_versions"] == ["rv1"]
    assert {"kappa", "alpha", "coverage", "delta", "calibrated_at", "judges"} <= set(first)
    assert fitted["written"] and fitted["threshold"] == pytest.approx(0.75)
    assert (fitted["target"], fitted["delta"]) == (0.9, 0.1)
    assert fitted["coverage"] == pytest.approx(0.625)
    assert last["target"] == 0.8 and not last["written"]
    assert (project / "review" / "calibration.json").read_text(encoding="utf-8") == stored


def test_calibrate_table(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--target", "0.9", "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "rubric correctness (version rv1): 40 labelled" in out
    assert "JUDGE" in out and "KAPPA" in out and "ALPHA 95% CI" in out
    panel_row = next(line for line in out.splitlines() if line.strip().startswith("panel "))
    assert panel_row.split()[1:3] == ["40", "0.725"]
    assert "panel on cases decided by the panel (passed/failed, audits): 15, agreement 1.000" in out
    assert (
        "min_confidence 0.75 lets the panel decide 62% of 40 judged cases (25 of 40 calibration "
        "cases)"
    ) in out
    assert (
        "fitted on 10 audits and 30 low-confidence escalations pooled from 3 runs of rubric "
        "version rv1 judged by a, b"
    ) in out
    assert "1 left out (reviewers disagree); 1 without stored judge verdicts" in out
    assert "no threshold qualifies (effective n 2.0 is below the 22 needed even if all" in out
    assert (
        "about 20 more audits would certify the target (at audit_rate 0.05, about 400 more "
        "confident cases judged"
    ) in out
    assert "appended 2 line(s) to review/calibration-history.jsonl" in out
    assert not (project / "review" / "calibration.json").exists()
    assert main(["calibrate", "--target", "0.9", "--write", "--resamples", "0"]) == 0
    assert (
        "wrote min_confidence correctness 0.75, tone null (no threshold qualified: escalates "
        "everything) to review/calibration.json"
    ) in capsys.readouterr().out


def test_calibrate_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--write"]) == 2
    assert "--write stores a fitted threshold: give --target too" in capsys.readouterr().err
    assert main(["calibrate", "--target", "1.5"]) == 2
    assert "--target 1.5" in capsys.readouterr().err
    assert main(["calibrate", "--rubric", "nope"]) == 2
    assert "no resolved items on rubric 'nope'; rubrics: correctness, tone" in (
        capsys.readouterr().err
    )
    calibration = project / "review" / "calibration.json"
    calibration.write_text("{oops", encoding="utf-8")
    assert main(["calibrate", "--target", "0.9", "--write", "--resamples", "0"]) == 2
    err = capsys.readouterr().err
    assert "calibration.json:1: not valid JSON" in err
    assert calibration.read_text(encoding="utf-8") == "{oops"
    results = project / ".hybridjudge" / "runs" / RUN_NEW / "results.jsonl"
    results.write_text(results.read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    assert main(["calibrate"]) == 2
    assert f"results.jsonl:{len(results.read_text().splitlines())}: not valid JSON" in (
        capsys.readouterr().err
    )


def test_calibrate_without_resolutions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.hybridjudge]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate"]) == 1
    assert not (tmp_path / "gold").exists()


def test_one_alpha_serves_ordinal_and_nominal_and_is_exported() -> None:
    import krippendorff

    import pytest_hybridjudge as hj

    data = [[1, 2, 3, 3, np.nan], [1, 2, 4, 3, 2], [2, 2, 3, np.nan, 1]]
    for level in ("ordinal", "nominal"):
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert hj.krippendorff_alpha(data, level) == pytest.approx(expected)
    assert hj.krippendorff_alpha([[2, 2, np.nan], [2, np.nan, 2]], "ordinal") is None
    assert hj.cohen_kappa is cohen_kappa and hj.fit_threshold is fit_threshold
    assert hj.load_calibration is load_calibration
