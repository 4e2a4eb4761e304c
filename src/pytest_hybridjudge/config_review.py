"""Who reviews what: the escalation rules and the reviewer tiers (`escalation`, `review`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from .config_models import Strict

Tier = str
"""A reviewer tier's name: one of `TIERS` or a tier the project defines under
`[tool.hybridjudge.review.tier.<name>]`."""
TIERS: tuple[Tier, ...] = ("annotator", "senior", "domain_expert", "red_team")
DEFAULT_MINUTES: dict[Tier, float] = {
    "annotator": 2,
    "senior": 5,
    "domain_expert": 15,
    "red_team": 10,
}
DEFAULT_RATES: dict[Tier, float] = {  # USD/hour, midpoints of published 2026 ranges
    "annotator": 20,
    "senior": 58,
    "domain_expert": 300,
    "red_team": 150,
}
DEFAULT_RANKS: dict[Tier, int] = {"annotator": 0, "senior": 1, "domain_expert": 2, "red_team": 2}
"""Adjudication order: a reviewer settles disputes on items of a lower rank (or, outside the
dispute, of their own)."""


class EscalationSpec(Strict):
    """When a verdict goes to people instead of deciding the case; each rule is a reason."""

    min_confidence: float = Field(
        0.0, ge=0.0, le=1.0, description="Escalate when panel confidence is below this"
    )
    on_split: bool = Field(True, description="Escalate when judges disagree on pass/fail")
    max_spread: float | None = Field(
        None, ge=0, description="Escalate when highest minus lowest judge score exceeds this"
    )
    borderline: float = Field(
        0.0, ge=0, description="Escalate when |panel score - pass_threshold| < this"
    )
    on_error: bool = Field(True, description="Escalate when any judge errored")
    always_review: list[str] = Field(
        default_factory=list, description="Tags or rubric names whose cases always go to review"
    )
    audit_rate: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of confident cases sampled for audit: the random sample that "
        "calibration and pass-rate intervals rest on (0 turns it off)",
    )
    seed: int = Field(0, description="Seed of the audit sample (the same cases each run)")


class TierSpec(Strict):
    """`[tool.hybridjudge.review.tier.<name>]`: a reviewer tier of the project's own, or a
    change to a built-in one (whose values are the defaults)."""

    rate: float | None = Field(None, ge=0, description="USD per hour")
    minutes: float | None = Field(None, gt=0, description="Expected minutes one review takes")
    rank: int | None = Field(
        None,
        ge=0,
        description="Adjudication order (built-in: annotator 0, senior 1, domain_expert and "
        "red_team 2): a reviewer settles disputes on items of a lower rank",
    )


class ReviewSpec(Strict):
    """Who reviews escalations, how long it takes, and what their hour costs."""

    tier: dict[str, TierSpec] = Field(
        default_factory=dict,
        description="The project's own tiers (name -> rate, minutes, rank), beside the built-in "
        "annotator, senior, domain_expert and red_team; e.g. legal_expert = {rate = 600, "
        "minutes = 20, rank = 3}",
    )
    default_tier: Tier = Field("annotator", description="Tier when no rule names one")
    tiers: dict[str, Tier] = Field(
        default_factory=dict, description="Tag or rubric name -> tier, e.g. {medical = ...}"
    )
    minutes: dict[Tier, float] = Field(
        default_factory=lambda: dict(DEFAULT_MINUTES),
        description="Expected minutes per review, per tier (a rubric's review_minutes wins)",
    )
    rates: dict[Tier, float] = Field(
        default_factory=lambda: dict(DEFAULT_RATES),
        description="USD per hour per tier (midpoints of published 2026 market ranges)",
    )
    reviewers: dict[str, Tier] = Field(
        default_factory=dict,
        description="Reviewer name -> their tier; `review resolve --adjudicate` needs a tier "
        "above the item's, or the item's own from outside the dispute",
    )
    adjudicators: list[str] = Field(
        default_factory=list,
        description="Reviewers who may settle any dispute with `--adjudicate`, whatever its tier",
    )

    @field_validator("tier", mode="before")
    @classmethod
    def _tier_tables(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, spec in value.items():
                if not isinstance(spec, dict):
                    raise ValueError(
                        f"tier.{name} = {spec!r}: a tier is defined by a table "
                        f"[tool.hybridjudge.review.tier.{name}] with rate, minutes and rank; to "
                        f"send tag or rubric {name!r} to a tier, use tiers = {{ {name} = "
                        '"<tier>" }'
                    )
        return value

    @model_validator(mode="after")
    def _known_tiers(self) -> ReviewSpec:
        for name, spec in self.tier.items():
            if name in TIERS:
                continue
            missing = [
                key
                for key, given in (
                    ("rate", spec.rate is not None or name in self.rates),
                    ("minutes", spec.minutes is not None or name in self.minutes),
                    ("rank", spec.rank is not None),
                )
                if not given
            ]
            if missing:
                raise ValueError(
                    f"tier.{name} is a new tier: give its {' and '.join(missing)} "
                    f"(e.g. [tool.hybridjudge.review.tier.{name}] rate = 60, minutes = 5, "
                    "rank = 1; rank orders tiers for adjudication, annotator 0 to red_team 2)"
                )
        uses = [("default_tier", self.default_tier)]
        uses += [(f"tiers.{k}", v) for k, v in self.tiers.items()]
        uses += [(f"minutes.{k}", k) for k in self.minutes]
        uses += [(f"rates.{k}", k) for k in self.rates]
        uses += [(f"reviewers.{k}", v) for k, v in self.reviewers.items()]
        for where, name in uses:
            self.check_tier(name, where)
        return self

    @property
    def tier_names(self) -> tuple[Tier, ...]:
        """Every tier, built-in and the project's, lowest rank first (ties in definition order)."""
        names = list(dict.fromkeys([*TIERS, *self.tier]))
        return tuple(sorted(names, key=self.rank))

    def check_tier(self, name: str, where: str) -> None:
        """Raise ValueError naming `where` when `name` is not a tier."""
        if name not in TIERS and name not in self.tier:
            raise ValueError(
                f"{where}: unknown tier {name!r}; known tiers: {', '.join(self.tier_names)}. "
                f"Define it under [tool.hybridjudge.review.tier.{name}] (rate, minutes, rank)"
            )

    def rank(self, tier: Tier) -> int:
        """The tier's adjudication rank (-1 for a name that is no tier)."""
        spec = self.tier.get(tier)
        if spec is not None and spec.rank is not None:
            return spec.rank
        return DEFAULT_RANKS.get(tier, -1)

    def rate(self, tier: Tier) -> float:
        """USD per hour of the tier: its table's `rate`, else `rates`, else the default."""
        spec = self.tier.get(tier)
        if spec is not None and spec.rate is not None:
            return spec.rate
        return self.rates.get(tier, DEFAULT_RATES.get(tier, 0.0))

    def minutes_for(self, tier: Tier) -> float:
        """Expected minutes of one review by the tier: its table's, else `minutes`, else 2."""
        spec = self.tier.get(tier)
        if spec is not None and spec.minutes is not None:
            return spec.minutes
        return self.minutes.get(tier, DEFAULT_MINUTES.get(tier, 2.0))

    @property
    def all_rates(self) -> dict[str, float]:
        """USD per hour of every tier."""
        return {name: self.rate(name) for name in self.tier_names}
