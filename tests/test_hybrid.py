"""Confidence signals, escalation rules, tiers and audits: the pure decisions."""

from __future__ import annotations

import math

import pytest

from pytest_hybridjudge.confidence import from_logprobs, from_samples, panel_confidence
from pytest_hybridjudge.config import EscalationSpec, ReviewSpec
from pytest_hybridjudge.escalation import (
    Routing,
    audit_pick,
    choose_tier,
    decide,
    escalation_reasons,
    is_always_review,
    review_minutes,
)
from pytest_hybridjudge.verdict import PanelVerdict


def tokens(score_top: dict[str, float], chosen: str = "4") -> list[dict[str, object]]:
    """Log-probabilities of `{"score": 4, ...}` as OpenAI tokenises it."""
    return [
        {"token": '{"', "logprob": -0.01, "top": {}},
        {"token": "score", "logprob": -0.01, "top": {}},
        {"token": '":', "logprob": -0.01, "top": {}},
        {"token": chosen, "logprob": score_top[chosen], "top": score_top},
        {"token": ",", "logprob": -0.01, "top": {}},
    ]


def test_logprobs_give_the_mass_on_the_decided_side_and_the_weighted_score() -> None:
    top = {"4": math.log(0.6), "5": math.log(0.3), "3": math.log(0.1), "x": math.log(0.5)}
    belief = from_logprobs(tokens(top), 4, (1, 5), pass_threshold=4)
    assert belief is not None and belief.signal == "logprobs"
    assert belief.confidence == pytest.approx(0.9)  # P(score >= 4): the decision, not the score
    assert belief.expected_score == pytest.approx(4 * 0.6 + 5 * 0.3 + 3 * 0.1)


def test_logprobs_count_other_tokens_against_the_decision() -> None:
    top = {"2": math.log(0.2), "4": math.log(0.2), "x": math.log(0.6)}
    belief = from_logprobs(tokens(top, chosen="2"), 2, (1, 5), pass_threshold=4)
    assert belief is not None and belief.confidence == pytest.approx(0.2)  # not renormalised


def test_logprobs_ignore_tokens_off_the_scale_and_before_the_score_key() -> None:
    entries = [{"token": "4", "logprob": -5.0, "top": {"4": -5.0, "1": -0.1}}]
    entries += tokens({"4": math.log(0.5), "9": math.log(0.4), "5": math.log(0.1)})
    belief = from_logprobs(entries, 4, (1, 5), pass_threshold=4)
    assert belief is not None and belief.confidence == pytest.approx(0.6)  # "9" is off the scale


def test_logprobs_without_alternatives_are_unavailable() -> None:
    # no alternatives at all: nothing says where the rest of the mass went; fall back
    no_top = [{**e, "top": {}} for e in tokens({"4": math.log(0.3)})]
    assert from_logprobs(no_top, 4, (1, 5), 4) is None
    # a lone score among its alternatives: the rest counts against the decision
    lone = from_logprobs(tokens({"4": math.log(0.3), "x": -1.0}), 4, (1, 5), 4)
    assert lone is not None and lone.confidence == pytest.approx(0.3)


def test_logprobs_fall_back_when_the_score_token_is_missing() -> None:
    assert from_logprobs(None, 4, (1, 5), 4) is None
    assert from_logprobs(tokens({"1": -0.1, "2": -3.0}, chosen="1"), 4, (1, 5), 4) is None


def test_samples_agreement_counts_the_decided_side() -> None:
    belief = from_samples([5, 4, 2, 5], pass_threshold=4, passed=True)
    assert belief.confidence == pytest.approx(4 / 6) and belief.signal == "samples"  # (3+1)/(4+2)
    assert belief.expected_score == pytest.approx(4.0)


def test_failed_samples_count_as_not_agreeing() -> None:
    # samples = 3 with one valid reply used to give 1.0
    belief = from_samples([5, None, None], pass_threshold=4, passed=True)
    assert belief.confidence == pytest.approx(2 / 5)
    assert belief.expected_score == 5


def test_panel_confidence_is_the_probability_the_decision_is_right() -> None:
    assert panel_confidence([(0.9, True)] * 3) == pytest.approx(0.9)
    assert panel_confidence([(0.9, True), (0.9, True), (0.9, False)]) == pytest.approx(1.9 / 3)
    assert panel_confidence([]) is None


def test_a_more_confident_dissenter_lowers_the_panel_confidence() -> None:
    unsure = panel_confidence([(0.6, True), (0.6, True), (0.5, False)])
    sure = panel_confidence([(0.6, True), (0.6, True), (0.9, False)])
    assert unsure is not None and sure is not None and sure < unsure


def panel(**fields: object) -> PanelVerdict:
    base: dict[str, object] = {
        "score": 4.0,
        "passed": True,
        "votes_pass": 3,
        "votes_fail": 0,
        "confidence": 0.9,
        "expected_score": 4.0,
    }
    return PanelVerdict.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("policy", "fields", "reason"),
    [
        (EscalationSpec(max_spread=1), {"spread": 2.0}, "score spread 2 above max_spread 1"),
        (
            EscalationSpec(borderline=0.5),
            {"expected_score": 4.2},
            "score 4.20 within borderline 0.5 of pass threshold 4",
        ),
        (
            EscalationSpec(min_confidence=0.95),
            {},
            "panel confidence 0.90 below min_confidence 0.95",
        ),
    ],
)
def test_each_rule_is_its_own_reason(
    policy: EscalationSpec, fields: dict[str, object], reason: str
) -> None:
    assert escalation_reasons(panel(**fields), Routing(policy, pass_threshold=4)) == [reason]
    assert escalation_reasons(panel(), Routing(EscalationSpec(), pass_threshold=4)) == []


def test_borderline_uses_distance_not_side() -> None:
    routing = Routing(EscalationSpec(borderline=0.5), pass_threshold=4)
    assert escalation_reasons(panel(expected_score=3.6), routing)
    assert not escalation_reasons(panel(expected_score=3.4), routing)


def test_always_review_and_audit() -> None:
    always = Routing(EscalationSpec(), pass_threshold=4, always_review=True)
    assert decide([], panel(), always) == ("escalated", ["always_review"], False)
    audit = Routing(EscalationSpec(audit_rate=0.1), pass_threshold=4, audit=True)
    # an audit keeps the confident panel's outcome; it is only also sent to people
    drawn = "drawn for audit: 10% of confident cases also go to people, to check the judges"
    assert decide([], panel(), audit) == ("passed", ["panel 3 pass / 0 fail", drawn], True)
    failing = panel(passed=False, votes_pass=0, votes_fail=3, score=2.0, expected_score=2.0)
    assert decide([], failing, audit) == ("failed", ["panel 0 pass / 3 fail", drawn], True)
    split = panel(votes_pass=2, votes_fail=1)
    # an audit only samples confident cases: a split is escalated as a split, not an audit
    assert decide([], split, audit) == ("escalated", ["judges split 2 pass / 1 fail"], False)


def test_audit_sampling_is_seeded_and_near_the_rate() -> None:
    picks = [audit_pick(7, 0.2, f"case-{i}", "out") for i in range(2000)]
    assert picks == [audit_pick(7, 0.2, f"case-{i}", "out") for i in range(2000)]
    assert 0.17 < sum(picks) / len(picks) < 0.23
    assert picks != [audit_pick(8, 0.2, f"case-{i}", "out") for i in range(2000)]
    assert not any(audit_pick(7, 0.0, f"case-{i}", "out") for i in range(100))


def test_always_review_matches_tags_rubrics_and_front_matter() -> None:
    assert is_always_review(["pii"], "correctness", False, ["pii"])
    assert is_always_review([], "medical", False, ["medical"])
    assert is_always_review([], "x", True, [])
    assert not is_always_review(["geo"], "correctness", False, ["pii"])


def test_tier_precedence() -> None:
    review = ReviewSpec(tiers={"medical": "domain_expert", "policy": "senior"})
    assert choose_tier(["red_team"], "correctness", None, review) == "red_team"
    assert choose_tier(["medical", "red_team"], "correctness", None, review) == "domain_expert"
    assert choose_tier(["geo"], "correctness", "senior", review) == "senior"
    assert choose_tier(["geo"], "policy", None, review) == "senior"
    assert choose_tier([], "correctness", None, review) == "annotator"
    assert review_minutes("domain_expert", None, review) == 15
    assert review_minutes("domain_expert", 3.5, review) == 3.5


def test_alpha_matches_krippendorffs_published_example() -> None:
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units,
    missing values; the paper gives alpha 0.743 nominal and 0.815 ordinal."""
    import numpy as np

    from pytest_hybridjudge.stats import judge_alpha, krippendorff_alpha, panel_scores
    from pytest_hybridjudge.verdict import JudgeVerdict

    n = None
    coders = {
        "a": [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        "b": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        "c": [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        "d": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    }
    panels = [
        [JudgeVerdict(judge=name, model="m", score=coders[name][unit]) for name in coders]
        for unit in range(12)
    ]
    assert judge_alpha(map(panel_scores, panels)) == pytest.approx(0.815, abs=5e-4)
    data = np.array([[np.nan if v is None else v for v in row] for row in coders.values()])
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)
    unanimous = [[JudgeVerdict(judge=n, model="m", score=3) for n in "ab"] for _ in range(3)]
    assert judge_alpha(map(panel_scores, unanimous)) is None  # no variation: undefined
    errored = [
        [JudgeVerdict(judge="a", model="m", score=3), JudgeVerdict(judge="b", model="m", error="x")]
    ]
    assert judge_alpha(map(panel_scores, errored * 3)) is None


@pytest.mark.parametrize(
    ("reason", "group"),
    [
        ("1 judge returned no valid verdict", "a judge returned no valid verdict"),
        ("2 judges returned no valid verdict", "a judge returned no valid verdict"),
        (
            "3 judges returned no valid pairwise verdict",
            "a judge returned no valid pairwise verdict",
        ),
        ("judges split 2 pass / 1 fail", "judges split on pass or fail"),
        ("judges split 1 candidate / 2 baseline", "judges split on which output is better"),
        (
            "panel confidence 0.42 below min_confidence 0.7",
            "panel confidence below min_confidence 0.7",
        ),
        ("score spread 3 above max_spread 2", "score spread above max_spread 2"),
        (
            "score 3.80 within borderline 0.5 of pass threshold 4",
            "score within borderline 0.5 of pass threshold 4",
        ),
        ("reviewers disagree (ann: pass, bo: fail)", "reviewers disagree"),
        ("always_review", "always_review"),
    ],
)
def test_reasons_are_grouped_by_rule_in_words(reason: str, group: str) -> None:
    from pytest_hybridjudge.escalation import reason_group

    assert reason_group(reason) == group


def test_reasons_count_judges_in_words() -> None:
    one = panel(passed=None, votes_pass=0, errors=1, score=None, expected_score=None)
    assert escalation_reasons(one, Routing(EscalationSpec(), pass_threshold=4))[0] == (
        "1 judge returned no valid verdict"
    )
    two = panel(errors=2)
    assert escalation_reasons(two, Routing(EscalationSpec(), pass_threshold=4)) == [
        "2 judges returned no valid verdict"
    ]
