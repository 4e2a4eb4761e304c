"""Proof by simulation: the calibrated threshold and the pass-rate interval keep their promises.

Not a timed test. Each repetition simulates one period of the default pipeline (3,000 cases,
min_confidence 0.7, 5% audits of confident cases, 10% `always_review` cases, every audit and
all, half or a fifth of the escalations resolved by reviewers), feeds the sample the pipeline
really produces to the package's own functions, and checks the result against the truth:

- the threshold: `fit_threshold` on audits (weight 1 / 0.05) and resolved low-confidence
  escalations (weight 1 / the share of escalations resolved: the two-phase sample), never on
  `always_review` cases. "target met" is the share of repetitions whose threshold's true
  agreement on the cases it lets the panel decide (computed on a reference population of
  400,000 cases) is at least the target; a repetition that certifies nothing escalates
  everything and cannot miss (the "fitted" column says how often a threshold was found).
  Goal: >= 1 - delta. "coverage/oracle" is the share of cases the fitted threshold lets the
  panel decide, over the share the oracle threshold (the lowest with true agreement >= target)
  would.
- the pass rate: `ppi_mean` over the period's cases, judges corrected by the resolved
  escalations (inclusion: the share resolved) and audits (inclusion 0.05). "PPI covers" is how
  often its 95% interval holds the period's true pass rate (goal >= 0.93); its width is
  compared with the human-only estimate from the same labels (`ppi_mean` with the judges'
  labels set to 0).
- "before": the same with every resolved escalation counted as reviewed for certain (weight 1,
  inclusion 1), as this package did until it weighted the second phase.

Run: `PYTHONPATH=src python benchmarks/calibration.py [--reps 300]` (about two minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pytest_hybridjudge.stats import fit_threshold, ppi_mean

Array = NDArray[np.float64]
TARGET, DELTA = 0.9, 0.1
N, MIN_CONFIDENCE, AUDIT_RATE, ALWAYS_REVIEW, PASS_RATE = 3000, 0.7, 0.05, 0.10, 0.7
SHARES = (1.0, 0.5, 0.2)  # share of escalations reviewers resolved


@dataclass(frozen=True)
class Scenario:
    """How panel confidence is distributed, and how often the panel agrees at each value."""

    name: str
    confidence: Callable[[np.random.Generator, int], Array]
    agreement: Callable[[Array], Array]


def uniform(rng: np.random.Generator, n: int) -> Array:
    return rng.uniform(0.5, 1.0, n)


def ties(rng: np.random.Generator, n: int) -> Array:
    return rng.choice(np.array([0.6, 0.7, 0.8, 0.9, 0.95, 1.0]), n)


def mass_at_one(rng: np.random.Generator, n: int) -> Array:
    return np.where(rng.random(n) < 0.4, 1.0, rng.uniform(0.5, 1.0, n))


SCENARIOS = [
    Scenario("well-calibrated", uniform, lambda c: c),
    Scenario("overconfident", uniform, lambda c: 0.3 + 0.65 * c),
    Scenario("ties", ties, lambda c: np.minimum(c, 0.97) - 0.02),
    Scenario("mass at 1.0", mass_at_one, lambda c: np.where(c == 1.0, 0.93, c)),
    Scenario("hopeless at 1.0", lambda rng, n: np.ones(n), lambda c: np.full(c.shape, 0.7)),
    # the oracle threshold lies among the escalations: their weight decides the fit
    Scenario("escalations decide", uniform, lambda c: 0.5 + 0.5 * c),
]


def truth_curve(s: Scenario, rng: np.random.Generator) -> Callable[[float | None], float]:
    """True agreement among cases with confidence >= t, from a large reference population."""
    conf = np.sort(s.confidence(rng, 400_000))[::-1]
    means = np.cumsum(s.agreement(conf)) / np.arange(1, conf.size + 1)

    def agreement(t: float | None) -> float:
        if t is None:
            return 1.0  # nothing decided by the panel: people decide everything
        k = int(np.searchsorted(-conf, -t, side="right"))
        return float(means[k - 1]) if k else 1.0

    return agreement


def share_above(s: Scenario, rng: np.random.Generator) -> Callable[[float | None], float]:
    conf = s.confidence(rng, 400_000)
    return lambda t: 0.0 if t is None else float((conf >= t).mean())


def oracle(s: Scenario, agreement: Callable[[float | None], float], grid: Array) -> float | None:
    ok = [t for t in grid if agreement(float(t)) >= TARGET]
    return float(min(ok)) if ok else None


def repetition(
    s: Scenario, rng: np.random.Generator, share: float
) -> tuple[float | None, bool, tuple, float | None, bool]:
    conf = s.confidence(rng, N)
    agree = rng.random(N) < s.agreement(conf)
    human = rng.random(N) < PASS_RATE
    judge = np.where(agree, human, ~human)
    always = rng.random(N) < ALWAYS_REVIEW
    low = conf < MIN_CONFIDENCE
    escalated = always | low
    audited = ~escalated & (rng.random(N) < AUDIT_RATE)
    # the second phase: reviewers resolve a random share of the run's escalations
    ids = np.flatnonzero(escalated)
    resolved = np.zeros(N, dtype=bool)
    resolved[rng.choice(ids, round(share * ids.size), replace=False)] = True
    realised = resolved.sum() / max(ids.size, 1)
    # the fit: audits and resolved low-confidence-only escalations, weighted; never always_review
    usable = audited | (low & ~always & resolved)
    weights = np.where(audited, 1 / AUDIT_RATE, 1 / realised)[usable]
    fit = fit_threshold(conf[usable], agree[usable], TARGET, DELTA, weights=weights)
    before = fit_threshold(
        conf[usable],
        agree[usable],
        TARGET,
        DELTA,
        weights=np.where(audited, 1 / AUDIT_RATE, 1.0)[usable],
    )
    # the pass rate: all labelled cases, each with its inclusion probability
    labelled = resolved | audited
    pi = np.where(audited, AUDIT_RATE, realised)[labelled]
    ppi = ppi_mean(judge, judge[labelled], human[labelled], pi)
    old_pi = np.where(audited, AUDIT_RATE, 1.0)[labelled]
    old = ppi_mean(judge, judge[labelled], human[labelled], old_pi)
    n = int(labelled.sum())
    human_only = ppi_mean(np.zeros(N), np.zeros(n), human[labelled], pi)
    truth = float(human.mean())
    old_covers = old.low is not None and old.high is not None and old.low <= truth <= old.high
    return fit.threshold, fit.passed, (ppi, human_only, truth), before.threshold, old_covers


def run(s: Scenario, reps: int, seed: int, share: float) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    agreement, above = truth_curve(s, rng), share_above(s, rng)
    best = oracle(s, agreement, np.unique(np.round(s.confidence(rng, 20_000), 3)))
    met = fitted = covered = given = met_before = covered_before = 0
    coverage, width, width_h = [], [], []
    for _ in range(reps):
        threshold, passed, (ppi, human_only, truth), old_threshold, old_covers = repetition(
            s, rng, share
        )
        fitted += passed
        met += agreement(threshold) >= TARGET
        met_before += agreement(old_threshold) >= TARGET
        covered_before += old_covers
        if best is not None:
            coverage.append(above(threshold) / above(best))
        if ppi.low is not None and ppi.high is not None:
            given += 1
            covered += ppi.low <= truth <= ppi.high
            width.append(ppi.high - ppi.low)
        if human_only.low is not None and human_only.high is not None:
            width_h.append(human_only.high - human_only.low)
    return {
        "met": met / reps,
        "fitted": fitted / reps,
        "coverage": float(np.mean(coverage)) if coverage else float("nan"),
        "oracle": float("nan") if best is None else best,
        "ppi": covered / given if given else float("nan"),
        "width": float(np.mean(width)) if width else float("nan"),
        "width_h": float(np.mean(width_h)) if width_h else float("nan"),
        "met_before": met_before / reps,
        "ppi_before": covered_before / reps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="Repetitions per row")
    parser.add_argument("--seed", type=int, default=2024, help="Random seed")
    parser.add_argument("--scenario", help="Only this scenario")
    args = parser.parse_args()
    start = time.perf_counter()
    print(
        f"{args.reps} repetitions x {N} cases; target {TARGET}, delta {DELTA}; min_confidence "
        f"{MIN_CONFIDENCE}, audit_rate {AUDIT_RATE}, always_review {ALWAYS_REVIEW:.0%}"
    )
    head = (
        "| scenario | escalations resolved | target met (goal >= 0.90) | fitted | oracle t "
        "| coverage/oracle | PPI covers (goal >= 0.93) | PPI width | human-only width "
        "| before: target met | before: PPI covers |"
    )
    print(head)
    print("|" + "---|" * 11)
    missed = []
    for i, s in enumerate(SCENARIOS):
        if args.scenario and s.name != args.scenario:
            continue
        for share in SHARES:
            r = run(s, args.reps, args.seed + i, share)
            print(
                f"| {s.name} | {share:.0%} | {r['met']:.3f} | {r['fitted']:.2f} "
                f"| {r['oracle']:.3f} | {r['coverage']:.2f} | {r['ppi']:.3f} | {r['width']:.3f} "
                f"| {r['width_h']:.3f} | {r['met_before']:.3f} | {r['ppi_before']:.3f} |",
                flush=True,
            )
            if r["met"] < 1 - DELTA or r["ppi"] < 0.93:
                missed.append(f"{s.name} with {share:.0%} resolved")
    for row in missed:
        print(f"GOAL MISSED: {row}")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
