"""`[tool.hybridjudge.gate]`: the settings of the gate that compares a run with its baseline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .config_models import Strict


class GateSpec(Strict):
    """`[tool.hybridjudge.gate]`: when a candidate may replace the baseline (see gate.py)."""

    min_pass_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The candidate's pass rate over the compared cases (unresolved escalations "
        "left out)",
    )
    max_regression: float = Field(
        0.05, ge=0, lt=1, description="Largest tolerated drop in pass rate, e.g. 0.05 = 5 points"
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the McNemar test")
    critical: list[str] = Field(
        default_factory=list, description="Tags or case ids whose cases must not regress at all"
    )
    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="Share of provider outages making the gate INCONCLUSIVE"
    )
    baseline: str | None = Field(
        None, description="Label of the target that is the baseline, when one session runs both"
    )
    candidate: str | None = Field(
        None, description="Label of the target that is the candidate, when one session runs both"
    )
    resamples: int = Field(4000, ge=100, description="Paired bootstrap resamples")
    seed: int = Field(0, description="Seed of the paired bootstrap")
    on_inconclusive: Literal["block", "pass"] = Field(
        "block",
        description="What an INCONCLUSIVE gate exits with: `block` (exit 6, a pipeline stops) or "
        "`pass` (exit 0)",
    )
