"""Paired comparison of two runs, case by case: the statistics the model-upgrade gate uses.

Pure functions; scipy and numpy are imported inside the functions that need them.
"""

from __future__ import annotations

import math


def mcnemar_exact(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against Binomial(wins + losses, 1/2).

    `wins` are pairs the candidate passed and the baseline did not, `losses` the reverse; ties
    carry no information about the difference. 1.0 when there is no discordant pair.
    """
    from scipy.stats import binomtest

    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be counts, got {wins} and {losses}")
    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def paired_bootstrap(
    wins: int, losses: int, ties: int, resamples: int = 4000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the change in pass rate (candidate - baseline) over paired cases.

    Resampling n pairs with replacement only changes how many are wins, losses and ties, so
    each resample is one multinomial draw of the three counts (the same distribution as drawing
    pair indices, far cheaper); a seeded `numpy.random.Generator` makes it repeatable.
    """
    import numpy as np

    n = wins + losses + ties
    if n == 0:
        raise ValueError("no paired cases to resample")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [wins / n, losses / n, ties / n], size=resamples)
    diffs = (draws[:, 0] - draws[:, 1]) / n
    tail = (1 - level) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return float(low), float(high)


def paired_sample_size(
    difference: float, discordant: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Pairs needed for a two-sided McNemar test at `alpha` to detect a change in pass rate of
    `difference` with probability `power`, when a share `discordant` of pairs disagree.

    Connor (1987), "Sample size for testing differences in proportions for the paired-sample
    design", Biometrics 43: n = (z_{a/2} sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2. The discordant
    share is raised to at least |d| (a change of d needs that many discordant pairs).
    """
    from scipy.stats import norm

    d = abs(difference)
    if not 0 < d <= 1:
        raise ValueError(f"difference must be a nonzero change in pass rate, got {difference}")
    psi = min(1.0, max(discordant, d))
    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    root = float(z_a) * math.sqrt(psi) + float(z_b) * math.sqrt(max(psi - d * d, 0.0))
    return math.ceil(root**2 / d**2)
