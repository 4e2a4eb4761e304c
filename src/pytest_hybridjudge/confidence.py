"""How sure a judge is, from the best signal its provider offers: pure functions.

Signals, best first: token log-probabilities of the score (`logprobs`), agreement across repeated
samples (`samples`), and the judge's own `confidence` field (`self`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Signal = Literal["logprobs", "samples", "self"]


@dataclass(frozen=True)
class ScoreBelief:
    """A judge's belief over the scale: its confidence in the chosen score, and the mean score."""

    confidence: float
    expected_score: float | None
    signal: Signal


def from_logprobs(
    logprobs: Sequence[dict[str, Any]] | None, score: int, scale: tuple[int, int]
) -> ScoreBelief | None:
    """Probability of the chosen score among the scale's values at the score token.

    Finds the first generated token after a `score` key that reads as the chosen score, takes its
    top alternatives that are scores on the scale, renormalises their probabilities, and returns
    the chosen score's share and the probability-weighted score. None when the token is not found
    (e.g. a multi-token number) so the caller falls back to another signal.
    """
    if not logprobs:
        return None
    low, high = scale
    seen_key = False
    for entry in logprobs:
        token = str(entry.get("token", ""))
        if "score" in token:
            seen_key = True
            continue
        if not seen_key or token.strip() != str(score):
            continue
        top = dict(entry.get("top") or {})
        top.setdefault(token, float(entry.get("logprob", 0.0)))
        probs: dict[int, float] = {}
        for alt, logprob in top.items():
            text = str(alt).strip()
            if text.lstrip("-").isdigit() and low <= int(text) <= high:
                probs[int(text)] = probs.get(int(text), 0.0) + math.exp(float(logprob))
        total = sum(probs.values())
        if total <= 0 or score not in probs:
            return None
        expected = sum(k * p for k, p in probs.items()) / total
        return ScoreBelief(probs[score] / total, expected, "logprobs")
    return None


def from_samples(scores: Sequence[int], pass_threshold: int) -> ScoreBelief:
    """Share of samples on the majority side of the pass threshold, and their mean score."""
    passes = sum(1 for s in scores if s >= pass_threshold)
    majority = max(passes, len(scores) - passes)
    return ScoreBelief(majority / len(scores), statistics.fmean(scores), "samples")


def panel_confidence(
    confidences: Sequence[float],
    votes_pass: int,
    votes_fail: int,
    spread: float,
    scale: tuple[int, int],
) -> float | None:
    """One number for the panel: mean judge confidence * majority share * (1 - relative spread / 2).

    Unanimous judges keep their mean confidence; a split vote or widely spread scores lower it.
    """
    voters = votes_pass + votes_fail
    if not confidences or voters == 0:
        return None
    majority_share = max(votes_pass, votes_fail) / voters
    width = scale[1] - scale[0]
    spread_factor = 1.0 - (spread / width / 2 if width else 0.0)
    return statistics.fmean(confidences) * majority_share * spread_factor
