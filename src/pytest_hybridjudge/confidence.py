"""How sure a judge is that its pass/fail decision is right, from the best signal: pure functions.

Every signal estimates one thing, P(the judge's pass/fail decision is right), so that signals can
be compared and averaged. Precedence, best first (`run_judge` applies it):

1. `logprobs`: the probability mass on scores on the decided side of the pass threshold,
   normalised over the valid score tokens among the score token's top alternatives. Unavailable
   when alternatives are missing (no top log-probabilities, or the chosen score is the only valid
   score token among them): one token's probability says nothing about the other side.
2. `samples`: with `samples = N > 1`, the share of the N replies whose score lies on the decided
   side; a failed reply counts as not agreeing.
3. `self`: the judge's own `confidence` field.

The panel's confidence is the mean over judges of each judge's probability that the *panel's*
decision is right: its confidence when it voted with the panel, 1 - its confidence when not.
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
    """A judge's belief: P(its pass/fail decision is right), and its mean score."""

    confidence: float
    expected_score: float | None
    signal: Signal


def from_logprobs(
    logprobs: Sequence[dict[str, Any]] | None,
    score: int,
    scale: tuple[int, int],
    pass_threshold: int,
) -> ScoreBelief | None:
    """Probability mass on the decided side of `pass_threshold`, at the score token.

    Finds the first generated token after a `score` key that reads as the chosen score, takes
    its top alternatives that are scores on the scale, normalises their probabilities, and
    returns the share on the chosen score's side and the probability-weighted score. None (fall
    back to the next signal) when the token is not found (e.g. a multi-token number), or when it
    has no alternatives that are valid scores besides the chosen one.
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
        if total <= 0 or score not in probs or len(probs) < 2:
            return None
        passes = score >= pass_threshold
        same_side = sum(p for k, p in probs.items() if (k >= pass_threshold) == passes)
        expected = sum(k * p for k, p in probs.items()) / total
        return ScoreBelief(same_side / total, expected, "logprobs")
    return None


def from_samples(scores: Sequence[int | None], pass_threshold: int, passed: bool) -> ScoreBelief:
    """Share of all samples whose score is on the decided side (`passed`); a failed sample
    (None) counts as not agreeing. The expected score is the mean of the valid ones."""
    valid = [s for s in scores if s is not None]
    agree = sum(1 for s in valid if (s >= pass_threshold) == passed)
    mean = statistics.fmean(valid) if valid else None
    return ScoreBelief(agree / len(scores) if scores else 0.0, mean, "samples")


def panel_confidence(judges: Sequence[tuple[float, bool]]) -> float | None:
    """P(the panel's decision is right): the mean over judges of their confidence when they
    voted with the panel (`True`), and of 1 - their confidence when they dissented.

    None when no judge gave a confidence.
    """
    if not judges:
        return None
    return statistics.fmean(c if agrees else 1.0 - c for c, agrees in judges)
