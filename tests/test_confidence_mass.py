"""Logprob and sample confidence: missing mass counts against the decision, the score field's
own token is read, and a few samples are shrunk (issue 15, item 5)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_hybridjudge.confidence import from_logprobs, from_samples


def verdict_tokens(
    score: str, top: dict[str, float], rationale: str = "fine"
) -> list[dict[str, Any]]:
    """`{"score": <score>, "rationale": "<rationale>"}` as OpenAI tokenises it."""
    entries: list[dict[str, Any]] = [
        {"token": '{"', "logprob": -0.01, "top": {}},
        {"token": "score", "logprob": -0.01, "top": {}},
        {"token": '":', "logprob": -0.01, "top": {}},
        {"token": " ", "logprob": -0.01, "top": {}},
        {"token": score, "logprob": top.get(score, -0.01), "top": top},
        {"token": ',"', "logprob": -0.01, "top": {}},
        {"token": "rationale", "logprob": -0.01, "top": {}},
        {"token": '":"', "logprob": -0.01, "top": {}},
    ]
    for word in rationale.split(" "):
        entries.append({"token": word, "logprob": math.log(0.99), "top": {word: math.log(0.99)}})
    entries.append({"token": '"}', "logprob": -0.01, "top": {}})
    return entries


def test_half_the_mass_on_other_tokens_is_not_certainty() -> None:
    top = {"4": math.log(0.45), "5": math.log(0.05), "the": math.log(0.5)}
    belief = from_logprobs(verdict_tokens("4", top), 4, (1, 5), 4)
    assert belief is not None and belief.confidence == pytest.approx(0.5)  # was 1.0


def test_mass_beyond_the_top_alternatives_counts_against() -> None:
    # 60% on the listed scores, 40% on scores the top 5 did not show
    top = {"4": math.log(0.5), "5": math.log(0.1), "a": math.log(1e-3), "b": math.log(1e-4)}
    belief = from_logprobs(verdict_tokens("4", top), 4, (1, 5), 4)
    assert belief is not None and belief.confidence == pytest.approx(0.6)


def test_a_chosen_score_at_five_percent_is_not_confident() -> None:
    top = {"4": math.log(0.05), "5": math.log(0.01), "x": math.log(0.5), "y": math.log(0.4)}
    belief = from_logprobs(verdict_tokens("4", top), 4, (1, 5), 4)
    assert belief is not None and belief.confidence == pytest.approx(0.06)
    assert belief.expected_score == pytest.approx((4 * 0.05 + 5 * 0.01) / 0.06)


def test_the_score_fields_own_token_is_read_never_one_in_the_rationale() -> None:
    # the verdict says 5; a "4" in the rationale at 0.99 must not stand for a score of 4
    entries = verdict_tokens("5", {"5": math.log(0.6), "2": math.log(0.4)}, rationale="a 4 here")
    assert from_logprobs(entries, 4, (1, 5), 4) is None
    belief = from_logprobs(entries, 5, (1, 5), 4)
    assert belief is not None and belief.confidence == pytest.approx(0.6)
    # a rationale written before the score, mentioning "score": 4, is not the field either
    text = [{"token": t, "logprob": -0.01, "top": {}} for t in ('{"', "rationale", '":"')]
    text += [{"token": t, "logprob": -0.01, "top": {t: -0.01}} for t in ('score\\":', "4", '","')]
    text += [{"token": "score", "logprob": -0.01, "top": {}}, {"token": '":', "logprob": -0.01}]
    text += [{"token": "2", "logprob": math.log(0.7), "top": {"2": math.log(0.7), "5": -1.2}}]
    text += [{"token": "}", "logprob": -0.01, "top": {}}]
    belief = from_logprobs(text, 2, (1, 5), 4)
    assert belief is not None and belief.confidence == pytest.approx(0.7)
    assert from_logprobs(text, 4, (1, 5), 4) is None


def test_logprobs_come_from_a_sample_with_the_median_score(tmp_path: Any) -> None:
    from helpers import run_one_judge
    from pytest_hybridjudge.providers import Completion

    five = '{"score": 5, "rationale": "a 4 here", "confidence": 0.9}'
    four = '{"score": 4, "rationale": "ok", "confidence": 0.9}'
    first = Completion(
        text=five,
        logprobs=verdict_tokens("5", {"5": math.log(0.9)}, rationale="a 4 here"),
    )
    second = Completion(
        text=four, logprobs=verdict_tokens("4", {"4": math.log(0.6), "2": math.log(0.4)})
    )
    verdict = run_one_judge(tmp_path, [first, second, four], samples=3)
    assert verdict.score == 4 and verdict.confidence_signal == "logprobs"
    assert verdict.confidence == pytest.approx(0.6)  # was 0.99, from the rationale's "4"


def test_two_of_two_samples_are_shrunk() -> None:
    belief = from_samples([5, 5], pass_threshold=4, passed=True)
    assert belief.confidence == pytest.approx(3 / 4)  # (k + 1) / (n + 2), not 1.0
    assert from_samples([5] * 10, 4, True).confidence == pytest.approx(11 / 12)
    assert from_samples([5, None, None], 4, True).confidence == pytest.approx(2 / 5)


@pytest.mark.parametrize(("agree", "n"), [(0, 1), (2, 2), (3, 5), (10, 10)])
def test_sample_shrinkage_is_the_posterior_mean_under_a_uniform_prior(agree: int, n: int) -> None:
    from scipy.stats import beta

    scores = [5] * agree + [2] * (n - agree)
    belief = from_samples(scores, pass_threshold=4, passed=True)
    assert belief.confidence == pytest.approx(beta(agree + 1, n - agree + 1).mean())
