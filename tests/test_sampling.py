"""Calibration on a known-probability sample: inclusion probabilities, weights, "escalate all"."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest

from helpers import (
    run_one_judge,
)
from pytest_hybridjudge.config import EscalationSpec
from pytest_hybridjudge.escalation import (
    Routing,
    decide,
    inclusion_probability,
    policy_for,
    policy_in_force,
)
from pytest_hybridjudge.review.calibration_report import rubric_report
from pytest_hybridjudge.review.labelled import LabelledCase
from pytest_hybridjudge.stats import (
    audits_needed,
    clopper_pearson_lower,
    effective_sample_size,
    fit_threshold,
    ppi_mean,
    weighted_lower_bound,
)
from pytest_hybridjudge.verdict import PanelVerdict


def panel(confidence: float = 1.0, **fields: object) -> PanelVerdict:
    base: dict[str, object] = {"score": 5.0, "passed": True, "votes_pass": 3, "votes_fail": 0}
    return PanelVerdict.model_validate({**base, "confidence": confidence, **fields})


def test_an_uncertified_rubric_escalates_even_confidence_one() -> None:
    # 60 cases at confidence 1.0 with 70% agreement: nothing can be certified at 0.9
    fit = fit_threshold([1.0] * 60, [True] * 42 + [False] * 18, 0.9, 0.1)
    assert fit.threshold is None and not fit.passed
    routing = Routing(policy_for("tone", EscalationSpec(), {"tone": None}), escalate_all=True)
    outcome, reasons, _ = decide([], panel(1.0), routing)
    assert outcome == "escalated"
    assert reasons == [
        "no calibrated threshold certified for this rubric: people decide every case"
    ]
    assert policy_in_force(routing).min_confidence is None
    assert decide([], panel(1.0), Routing(EscalationSpec(min_confidence=1.0)))[0] == "passed"


def test_inclusion_probability_is_known_only_for_confidence_and_audit_rules() -> None:
    policy = EscalationSpec(min_confidence=0.7, audit_rate=0.05)
    assert inclusion_probability(panel(0.9), Routing(policy)) == 0.05
    assert inclusion_probability(panel(0.9), Routing(policy, audit=True)) == 0.05
    assert inclusion_probability(panel(0.5), Routing(policy)) == 1.0
    assert inclusion_probability(panel(0.9), Routing(policy, escalate_all=True)) == 1.0
    assert inclusion_probability(panel(0.9), Routing(policy, always_review=True)) is None
    split = panel(0.5, votes_pass=2, votes_fail=1)
    assert inclusion_probability(split, Routing(policy)) is None


def test_weighted_bound_is_clopper_pearson_with_equal_weights() -> None:
    agree = [True] * 27 + [False] * 3
    for w in (1.0, 20.0):
        assert weighted_lower_bound(agree, [w] * 30, 0.1) == pytest.approx(
            clopper_pearson_lower(27, 30, 0.1)
        )
    ci = binomtest(27, 30).proportion_ci(0.8, "exact")
    assert clopper_pearson_lower(27, 30, 0.1) == pytest.approx(ci.low)
    assert effective_sample_size([1.0] * 10 + [20.0] * 10) == pytest.approx(210**2 / (10 + 4000))


def test_unequal_weights_shrink_the_effective_sample() -> None:
    agree = [True] * 40
    equal = fit_threshold([0.9] * 40, agree, 0.9, 0.1)
    mixed = fit_threshold([0.9] * 40, agree, 0.9, 0.1, weights=[1.0] * 38 + [100.0] * 2)
    assert equal.passed and not mixed.passed
    assert mixed.effective_n < 22 and mixed.tested == 0 and mixed.needed is not None


def test_weights_move_the_fit() -> None:
    # low-confidence escalations (weight 1) agree less than audits (weight 20) stand for
    conf = [0.95] * 60 + [0.6] * 60
    agree = [True] * 60 + [True] * 30 + [False] * 30
    unweighted = fit_threshold(conf, agree, 0.8, 0.1)
    weighted = fit_threshold(conf, agree, 0.8, 0.1, weights=[20.0] * 60 + [1.0] * 60)
    assert unweighted.threshold == 0.95
    assert weighted.threshold == 0.6  # 1200 agreeing of 1260 in weight: 0.976
    assert weighted.coverage == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights"):
        fit_threshold([0.5], [True], 0.9, 0.1, weights=[0.0])


def test_audits_needed() -> None:
    assert audits_needed(0.9, 0.1) == 22
    assert audits_needed(0.9, 0.1, 0.85) is None
    n = audits_needed(0.9, 0.1, 0.95)
    assert n is not None
    assert weighted_lower_bound([True] * 95 + [False] * 5, [n / 100] * 100, 0.1) < 0.9 or n <= 100
    assert 50 < n < 500


def case(i: int, conf: float, agrees: bool, inclusion: float | None, audit: bool) -> LabelledCase:
    return LabelledCase(
        item_id=f"c{i}",
        rubric="r",
        rubric_version="v",
        run_id="run",
        human_pass=agrees,
        panel_pass=True,
        panel_confidence=conf,
        decided=audit,
        judges={"a": True},
        inclusion=inclusion,
        audit=audit,
    )


def test_always_review_items_are_reported_but_never_fitted_on() -> None:
    # confident always_review cases that reviewers overrule would sink the fit if counted
    cases = [case(i, 0.99, False, None, False) for i in range(30)]
    cases += [case(100 + i, 0.9, True, 0.05, True) for i in range(40)]
    report = rubric_report(
        "r",
        cases,
        disagree=0,
        unjudged=0,
        target=0.9,
        delta=0.1,
        resamples=0,
        seed=0,
        judged=[0.9] * 800 + [0.5] * 200,
    )
    assert report.fit is not None and report.fit.threshold == 0.9
    assert report.sample is not None
    assert (report.sample.audits, report.sample.other_rules) == (40, 30)
    assert report.sample.weights == {20.0: 40}
    # coverage is a share of the 1,000 judged cases, not of the 70 labelled ones
    assert report.coverage == pytest.approx(0.8)


def test_fit_guarantee_on_a_stratified_sample() -> None:
    # census below 0.7 (weight 1), 10% audits above (weight 10): the guarantee still holds
    rng = np.random.default_rng(11)
    misses = fitted = 0
    grid = np.linspace(0.5, 1.0, 20001)
    for _ in range(200):
        conf = rng.uniform(0.5, 1.0, 3000)
        agree = rng.random(conf.size) < conf
        sampled = (conf < 0.7) | (rng.random(conf.size) < 0.1)
        weights = np.where(conf < 0.7, 1.0, 10.0)[sampled]
        fit = fit_threshold(conf[sampled], agree[sampled], 0.9, 0.1, weights=weights)
        if fit.threshold is not None:
            fitted += 1
            misses += float(grid[grid >= fit.threshold].mean()) < 0.9
    assert misses / 200 <= 0.1
    assert fitted / 200 >= 0.5  # not met vacuously by never choosing a threshold


def test_the_statistics_are_public_api() -> None:
    import pytest_hybridjudge as hj

    for name in ("fit_threshold", "ppi_mean", "cohen_kappa", "krippendorff_alpha", "confusion"):
        assert name in hj.__all__ and callable(getattr(hj, name))
    rate = hj.ppi_mean([1, 1, 0, 1], [1, 0], [1, 1])
    assert rate.method == "ppi" and rate.estimate == pytest.approx(0.75 + 0.5 / 2)


def test_ppi_matches_the_classic_estimator_and_covers() -> None:
    # simple random sample: the estimate is mean(judge) + mean(human - judge) on the sample
    rng = np.random.default_rng(5)
    truth, covered, trials = 0.0, 0, 400
    for _ in range(trials):
        human = rng.random(2000) < 0.7
        judge = np.where(rng.random(2000) < 0.85, human, ~human)
        truth = human.mean()
        picked = rng.random(2000) < 0.1
        rate = ppi_mean(judge, judge[picked], human[picked], [0.1] * int(picked.sum()))
        assert rate.low is not None and rate.high is not None
        covered += rate.low <= truth <= rate.high
    assert 0.92 <= covered / trials <= 0.98
    with pytest.raises(ValueError, match="inclusion"):
        ppi_mean([1.0], [1.0], [1.0], [0.0])


def test_three_samples_with_one_valid_reply_is_not_certain(tmp_path: Any) -> None:
    good = '{"score": 5, "rationale": "r", "confidence": 0.99}'
    verdict = run_one_judge(tmp_path, [good, None, None], samples=3)
    assert verdict.confidence_signal == "samples"
    assert verdict.confidence == pytest.approx(2 / 5)  # (1 + 1) / (3 + 2)


def test_logprobs_take_precedence_over_samples(tmp_path: Any) -> None:
    from pytest_hybridjudge.providers import Completion

    good = '{"score": 5, "rationale": "r", "confidence": 0.99}'
    top = {"5": math.log(0.7), "2": math.log(0.3)}
    logprobs = [
        {"token": '{"', "logprob": 0.0, "top": {}},
        {"token": "score", "logprob": 0.0, "top": {}},
        {"token": '": ', "logprob": 0.0, "top": {}},
        {"token": "5", "logprob": math.log(0.7), "top": top},
        {"token": "}", "logprob": 0.0, "top": {}},
    ]
    first = Completion(text=good, logprobs=logprobs)
    verdict = run_one_judge(tmp_path, [first, good, good], samples=3)
    assert verdict.confidence_signal == "logprobs"
    assert verdict.confidence == pytest.approx(0.7)
