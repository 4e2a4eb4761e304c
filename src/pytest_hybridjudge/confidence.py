"""How sure a judge is that its pass/fail decision is right, from the best signal: pure functions.

Every judge signal estimates one thing, P(the judge's pass/fail decision is right), so that
signals can be compared and averaged. Precedence, best first (`run_judge` applies it):

1. `logprobs`: the probability mass on scores on the decided side of the pass threshold, at the
   token of the verdict's `score` field. Mass the provider did not show (beyond the top
   alternatives) or gave to tokens that are not scores on the scale counts against the
   decision: it is never renormalised away. Unavailable when the provider returned no
   alternatives at all, or the score field's value is not one token.
2. `samples`: with `samples = N > 1`, the share of the N replies whose score lies on the decided
   side, shrunk by Laplace's rule of succession, (k + 1) / (N + 2): two of two give 0.75, not
   certainty. A failed reply counts as not agreeing.
3. `self`: the judge's own `confidence` field.

The panel's confidence is the mean over judges of each judge's probability that the *panel's*
decision is right: its confidence when it voted with the panel, 1 - its confidence when not.
It ranks cases by how sure the panel is; it is not itself P(the panel is right) (three
independent judges each right with 0.8 who agree give 0.8, while a majority of them is right
more often). `hybridjudge calibrate` measures what a threshold on it buys.
"""

from __future__ import annotations

import bisect
import math
import re
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


def score_token(logprobs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], str] | None:
    """The token holding the value of the verdict's top-level `score` field, and that value.

    The tokens are joined and read as JSON text (strings and nesting tracked), so a "score" or
    a digit inside the rationale is never taken for the field. None when there is no such field,
    or its value is not a whole number in a single token.
    """
    text, starts = "", []
    for entry in logprobs:
        starts.append(len(text))
        text += str(entry.get("token", ""))
    value = _score_value_offset(text)
    if value is None:
        return None
    match = re.match(r"-?\d+", text[value:])
    if match is None:
        return None
    index = bisect.bisect_right(starts, value) - 1
    if index < 0:
        return None
    end = starts[index] + len(str(logprobs[index].get("token", "")))
    if value + len(match.group()) > end:
        return None  # a number split over tokens: no one token's alternatives describe it
    return logprobs[index], match.group()


def _score_value_offset(text: str) -> int | None:
    """Offset of the value of the top-level `"score"` key in JSON `text`; None when absent."""
    depth, i, key_end = 0, 0, None
    while i < len(text):
        char = text[i]
        if char == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            key_end = end + 1 if depth == 1 and text[i + 1 : end] == "score" else None
            i = end + 1
            continue
        if key_end is not None and not char.isspace():
            if char != ":":
                key_end = None
            else:
                rest = text[i + 1 :]
                return i + 1 + len(rest) - len(rest.lstrip())
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        i += 1
    return None


def from_logprobs(
    logprobs: Sequence[dict[str, Any]] | None,
    score: int,
    scale: tuple[int, int],
    pass_threshold: int,
) -> ScoreBelief | None:
    """Probability mass on the decided side of `pass_threshold`, at the score field's token.

    Reads the token of the verdict's `score` field (`score_token`) and its top alternatives;
    the confidence is the summed probability of the alternatives that are scores on the scale
    on the chosen score's side, out of all the mass (1), so that mass on other tokens or beyond
    the top alternatives counts against the decision. The expected score is the
    probability-weighted mean over the valid score tokens. None (fall back to the next signal)
    when the field's token is not found or does not read as `score`, or when the provider gave
    no alternatives.
    """
    if not logprobs:
        return None
    found = score_token(logprobs)
    if found is None or int(found[1]) != score:
        return None
    entry, _ = found
    top = dict(entry.get("top") or {})
    if not top:
        return None
    top.setdefault(str(entry.get("token", "")), float(entry.get("logprob", 0.0)))
    low, high = scale
    probs: dict[int, float] = {}
    for alt, logprob in top.items():
        text = str(alt).strip().strip(',}"')
        if text.lstrip("-").isdigit() and low <= int(text) <= high:
            probs[int(text)] = probs.get(int(text), 0.0) + math.exp(float(logprob))
    total = sum(probs.values())
    if total <= 0 or score not in probs:
        return None
    passes = score >= pass_threshold
    same_side = sum(p for k, p in probs.items() if (k >= pass_threshold) == passes)
    expected = sum(k * p for k, p in probs.items()) / total
    return ScoreBelief(min(1.0, same_side), expected, "logprobs")


def from_samples(scores: Sequence[int | None], pass_threshold: int, passed: bool) -> ScoreBelief:
    """(k + 1) / (n + 2) for k of the n samples on the decided side (`passed`), Laplace's rule
    of succession (the mean of a uniform prior's posterior); a failed sample (None) counts as
    not agreeing. The expected score is the mean of the valid ones."""
    valid = [s for s in scores if s is not None]
    agree = sum(1 for s in valid if (s >= pass_threshold) == passed)
    mean = statistics.fmean(valid) if valid else None
    return ScoreBelief((agree + 1) / (len(scores) + 2), mean, "samples")


def panel_confidence(judges: Sequence[tuple[float, bool]]) -> float | None:
    """P(the panel's decision is right): the mean over judges of their confidence when they
    voted with the panel (`True`), and of 1 - their confidence when they dissented.

    None when no judge gave a confidence.
    """
    if not judges:
        return None
    return statistics.fmean(c if agrees else 1.0 - c for c, agrees in judges)
