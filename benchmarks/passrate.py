"""Proof by simulation: the run's pass-rate interval covers the truth, with few labels too.

Not a timed test. Each repetition simulates one run of the default pipeline: N cases, 15%
escalated for low confidence (the judges right on 70% of those), 5% audits of the confident
rest (the judges right on `accuracy` of those), every audit resolved by reviewers and a share
of the escalations (all, half, a fifth). The labels go to the package's own functions as a run
hands them over: `resolved_shares` gives each resolved escalation its two-phase inclusion
probability (1 x the share resolved), `ppi_mean` the pass rate and its 95% interval. "covers"
is how often the interval holds the run's true pass rate (the reviewers' label of every case),
among the runs that got an interval; "no interval" how often none was given (no audit drawn).
"before" is the interval this package gave until now, computed here: the Horvitz-Thompson
variance unsmoothed, every resolved escalation counted as reviewed for certain.

Run: `PYTHONPATH=src python benchmarks/passrate.py [--reps 1000]` (about half a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import time
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from pytest_hybridjudge.review.labelled import resolved_shares
from pytest_hybridjudge.stats import ppi_mean

AUDIT_RATE, ESCALATED, ESCALATED_ACCURACY = 0.05, 0.15, 0.7
SIZES = (200, 1000, 5000)
SCENARIOS = [  # (true pass rate, judges' accuracy on confident cases)
    (0.95, 0.935),
    (0.95, 0.99),
    (0.70, 0.90),
    (0.50, 0.85),
]
SHARES = (1.0, 0.5, 0.2)  # share of escalations reviewers resolved


def before(
    judge: NDArray[np.float64],
    jl: NDArray[np.float64],
    hl: NDArray[np.float64],
    pi: NDArray[np.float64],
) -> tuple[float, float]:
    """The old interval: unsmoothed Horvitz-Thompson variance."""
    n_all = judge.size
    r = hl - jl
    estimate = min(1.0, max(0.0, judge.mean() + float((r / pi).sum()) / n_all))
    half = NormalDist().inv_cdf(0.975) * math.sqrt(float(((1 - pi) / pi**2 * r * r).sum()))
    return max(0.0, estimate - half / n_all), min(1.0, estimate + half / n_all)


def repetition(
    rng: np.random.Generator, n: int, pass_rate: float, accuracy: float, share: float
) -> tuple[float, tuple[float, float] | None, tuple[float, float]]:
    human = rng.random(n) < pass_rate
    escalated = rng.random(n) < ESCALATED
    right = rng.random(n) < np.where(escalated, ESCALATED_ACCURACY, accuracy)
    judge = np.where(right, human, ~human).astype(float)
    audited = ~escalated & (rng.random(n) < AUDIT_RATE)
    escalated_ids = np.flatnonzero(escalated)
    k = round(share * escalated_ids.size)
    resolved = np.zeros(n, dtype=bool)
    resolved[rng.choice(escalated_ids, k, replace=False)] = True
    # the second phase as a run hands it over: one stratum of escalations, one of audits
    sent = {
        ("run", "r", False): {str(i) for i in escalated_ids},
        ("run", "r", True): {str(i) for i in np.flatnonzero(audited)},
    }
    done = {str(i) for i in np.flatnonzero(resolved | audited)}
    shares = resolved_shares(sent, done)
    pi_escalated = shares.get(("run", "r", False), 1.0)
    labelled = audited | resolved
    pi = np.where(audited, AUDIT_RATE * shares.get(("run", "r", True), 1.0), pi_escalated)
    pi = pi[labelled]
    rate = ppi_mean(judge, judge[labelled], human[labelled].astype(float), pi)
    interval = None if rate.low is None or rate.high is None else (rate.low, rate.high)
    old_pi = np.where(audited, AUDIT_RATE, 1.0)[labelled]
    old = before(judge, judge[labelled], human[labelled].astype(float), old_pi)
    return float(human.mean()), interval, old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="Repetitions per row")
    parser.add_argument("--seed", type=int, default=2026, help="Random seed")
    args = parser.parse_args()
    start = time.perf_counter()
    print(
        f"{args.reps} runs per row; audit_rate {AUDIT_RATE}, {ESCALATED:.0%} escalated (judges "
        f"right on {ESCALATED_ACCURACY:.0%} of those); 95% intervals"
    )
    print(
        "| cases | pass rate | judges right (confident) | escalations resolved "
        "| covers (goal >= 0.93) | no interval | mean width | before: covers | before: width |"
    )
    print("|" + "---|" * 9)
    worst = 1.0
    for n in SIZES:
        for row, (pass_rate, accuracy) in enumerate(SCENARIOS):
            for share in SHARES if row == 0 else (1.0,):
                rng = np.random.default_rng([args.seed, n, row, int(share * 100)])
                covered = given = 0
                widths: list[float] = []
                old_covered = 0
                old_widths: list[float] = []
                for _ in range(args.reps):
                    truth, interval, old = repetition(rng, n, pass_rate, accuracy, share)
                    old_covered += old[0] - 1e-9 <= truth <= old[1] + 1e-9
                    old_widths.append(old[1] - old[0])
                    if interval is None:
                        continue
                    given += 1
                    covered += interval[0] - 1e-9 <= truth <= interval[1] + 1e-9
                    widths.append(interval[1] - interval[0])
                rate = covered / given if given else float("nan")
                worst = min(worst, rate)
                print(
                    f"| {n:,} | {pass_rate:.0%} | {accuracy:.1%} | {share:.0%} | {rate:.3f} "
                    f"| {1 - given / args.reps:.3f} | {np.mean(widths):.3f} "
                    f"| {old_covered / args.reps:.3f} | {np.mean(old_widths):.3f} |",
                    flush=True,
                )
    print(f"\nlowest coverage {worst:.3f} (goal >= 0.93)")
    if worst < 0.93:
        print("GOAL MISSED: an interval covered less than 93% of runs")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
