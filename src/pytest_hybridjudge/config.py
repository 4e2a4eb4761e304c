"""The `[tool.hybridjudge]` table: loading, validation and command-line overrides.

Precedence, in one place: command-line flags, then `[tool.hybridjudge]` in the rootdir's
`pyproject.toml` (or a `hybridjudge.toml` beside it), then the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .configfile import ConfigError, find_config_table
from .errors import validation_problems

__all__ = ["ConfigError", "HybridJudgeConfig", "find_config_table", "load_config"]

CacheMode = Literal["use", "refresh", "off"]
Aggregation = Literal["median", "mean", "min"]
StructuredOutput = Literal["auto", "json_schema", "json_object", "prompt"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """A model call's settings: which model, and the sampling parameters that change its output."""

    model: str = Field(
        description="`provider/model`, e.g. `openai/gpt-4.1-mini` or `local/smollm2`"
    )
    name: str | None = Field(None, description="Display name; defaults to the model string")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature")
    max_tokens: int = Field(512, gt=0, description="Upper bound on generated tokens")
    system: str | None = Field(None, description="Optional system prompt sent before the messages")
    samples: int = Field(1, ge=1, le=20, description="Judges only: repeated calls per verdict")

    @field_validator("model")
    @classmethod
    def _provider_slash_model(cls, value: str) -> str:
        provider, _, model = value.partition("/")
        if not provider or not model:
            raise ValueError(f"{value!r} is not `provider/model` (e.g. `openai/gpt-4.1-mini`)")
        return value

    @property
    def label(self) -> str:
        """The name shown in reports and node ids."""
        return self.name or self.model


class TargetSpec(ModelSpec):
    """A model target: the case's variables are rendered into `prompt`."""

    prompt: str = Field("{{ input }}", description="Jinja template for the user message")


class CallableTarget(_Strict):
    """A Python callable of the user's application, `module:function`, sync or async."""

    callable: str = Field(description="`module:function` receiving the case, returning text")
    name: str | None = Field(None, description="Display name; defaults to the callable path")

    @field_validator("callable")
    @classmethod
    def _module_colon_function(cls, value: str) -> str:
        module, _, func = value.partition(":")
        if not module or not func:
            raise ValueError(f"{value!r} is not `module:function` (e.g. `myapp.qa:answer`)")
        return value

    @property
    def label(self) -> str:
        """The name shown in reports and node ids."""
        return self.name or self.callable


Target = TargetSpec | CallableTarget


class ProviderSpec(_Strict):
    """An OpenAI-compatible server (vLLM, llama.cpp server, Ollama) or an override of a built-in."""

    kind: str = Field(
        "openai",
        description="Wire format the server speaks: `openai`, `anthropic`, `local`, or a kind "
        "an installed package registers (entry point group `pytest_hybridjudge.providers`)",
    )
    base_url: str | None = Field(None, description="Server URL, e.g. `http://localhost:8000/v1`")
    api_key_env: str | None = Field(
        None,
        description='Environment variable holding the key; `""` for a server that needs none '
        "(unset: OPENAI_API_KEY/ANTHROPIC_API_KEY for the built-in `openai`/`anthropic`)",
    )
    structured_output: StructuredOutput = Field(
        "auto",
        description="How judges ask for JSON: `json_schema`, `json_object`, `prompt` (schema in "
        "the prompt, JSON read from the reply), or `auto` (the first the server accepts)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Settings for a provider kind from another package"
    )
    concurrency: int | None = Field(None, gt=0, description="Calls in flight for this provider")
    model_path: str | None = Field(None, description="`local` only: path of a GGUF file")
    logprobs: bool | None = Field(
        None, description="Ask for token log-probabilities (default: on for OpenAI and local)"
    )


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


class EscalationSpec(_Strict):
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


class TierSpec(_Strict):
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
    blind: bool = Field(
        False,
        description="Reviewers of this tier see no judge score, rationale, confidence or "
        "escalation reason until they have submitted (audit items are always blind)",
    )


class ReviewSpec(_Strict):
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
    reviews_per_item: int = Field(
        1,
        ge=1,
        description="Reviewers who decide each item before it leaves the review page's queue",
    )
    audit_reviews_per_item: int | None = Field(
        None, ge=1, description="The same for audit items (default: reviews_per_item)"
    )
    lease_minutes: float = Field(
        10.0, gt=0, description="How long the review page holds an item for the reviewer given it"
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

    def blind(self, tier: Tier) -> bool:
        """Whether the tier reviews blind (`[tool.hybridjudge.review.tier.<name>] blind = true`)."""
        spec = self.tier.get(tier)
        return spec is not None and spec.blind

    def reviews_needed(self, audit: bool) -> int:
        """How many reviewers decide an item (audit items may ask for more)."""
        if audit and self.audit_reviews_per_item is not None:
            return self.audit_reviews_per_item
        return self.reviews_per_item

    @property
    def all_rates(self) -> dict[str, float]:
        """USD per hour of every tier."""
        return {name: self.rate(name) for name in self.tier_names}


class GateSpec(_Strict):
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


class PriceSpec(_Strict):
    """A model's price in USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")


class HybridJudgeConfig(_Strict):
    """Everything `[tool.hybridjudge]` may hold."""

    gold: list[str] = Field(default_factory=lambda: ["gold"], description="Gold files or folders")
    rubrics: str = Field("rubrics", description="Folder of rubric templates")
    target: Target | list[Target] | None = Field(None, description="What produces the output")
    judges: list[ModelSpec] = Field(default_factory=list, description="The judge panel")
    aggregation: Aggregation = Field("median", description="How panel scores combine")
    concurrency: int = Field(32, gt=0, description="Calls in flight per provider")
    timeout: float = Field(60.0, gt=0, description="Seconds before one provider call is abandoned")
    retries: int = Field(4, ge=0, description="Retries after a 429, 5xx or timeout")
    backoff: float = Field(
        1.0,
        ge=0,
        description="Seconds of the first retry wait (grows, jittered) absent Retry-After",
    )
    cache: CacheMode = Field("use", description="use, refresh or off")
    cache_path: str = Field(".hybridjudge/cache.sqlite", description="SQLite cache file")
    runs_dir: str = Field(".hybridjudge/runs", description="Where each run's files go")
    resolutions: str = Field(
        "review/resolutions.jsonl",
        description="Append-only file of reviewers' decisions; calibration.json and "
        "calibration-history.jsonl are written beside it (never inside a gold folder)",
    )
    strict: bool = Field(False, description="Escalated cases fail the run")
    max_outage_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of cases lost to provider outages above which the run does not pass",
    )
    python_verifiers: list[str] = Field(
        default_factory=list,
        description="Modules outside the project whose functions `verify: {python: ...}` may "
        'call, e.g. `["mypkg.checks"]` (modules under the project root are always allowed)',
    )
    providers: dict[str, ProviderSpec] = Field(default_factory=dict, description="Extra providers")
    prices: dict[str, PriceSpec] = Field(
        default_factory=dict, description="`provider/model` -> price, overriding the built-in table"
    )
    budget: float | None = Field(None, gt=0, description="USD; stop scheduling calls past it")
    escalation: EscalationSpec = Field(default_factory=EscalationSpec)
    review: ReviewSpec = Field(default_factory=ReviewSpec)
    gate: GateSpec = Field(default_factory=GateSpec)

    @field_validator("gold", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("judges", mode="before")
    @classmethod
    def _judge_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"model": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _target_shorthand(cls, value: Any) -> Any:
        def one(v: Any) -> Any:
            if isinstance(v, str):
                return {"callable": v} if ":" in v else {"model": v}
            return v

        return [one(v) for v in value] if isinstance(value, list) else one(value)

    @field_validator("judges")
    @classmethod
    def _unique_judge_labels(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        _reject_duplicate_labels([j.label for j in value], "judge")
        return value

    @field_validator("target")
    @classmethod
    def _unique_target_labels(cls, value: Target | list[Target] | None) -> Any:
        if isinstance(value, list):
            _reject_duplicate_labels([t.label for t in value], "target")
        return value

    @property
    def price_table(self) -> dict[str, tuple[float, float]]:
        """Configured price overrides as (input, output) USD per million tokens."""
        return {name: (p.input, p.output) for name, p in self.prices.items()}

    @property
    def targets(self) -> list[Target]:
        """The configured targets as a list (empty when none is set)."""
        if self.target is None:
            return []
        return list(self.target) if isinstance(self.target, list) else [self.target]


def _reject_duplicate_labels(labels: list[str], kind: str) -> None:
    """Labels name node ids and report rows: two alike would make one of them vanish."""
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise ValueError(
                f"two {kind}s are labelled {label!r}; give each its own "
                f'`name = "..."` (e.g. name = "{label}-2")'
            )
        seen.add(label)


def load_config(rootdir: Path, overrides: dict[str, Any] | None = None) -> HybridJudgeConfig:
    """Read, merge and validate the config; errors name the file and the offending key."""
    table, source = find_config_table(rootdir)
    return validate_config(table, source or rootdir / "pyproject.toml", overrides)


def validate_config(
    table: dict[str, Any], source: Path, overrides: dict[str, Any] | None = None
) -> HybridJudgeConfig:
    """Merge command-line overrides into a raw table and validate it."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return HybridJudgeConfig.model_validate({**table, **flags})
    except ValidationError as exc:
        from_file, from_flags = [], []
        for err, problem in zip(
            exc.errors(), validation_problems(exc, model=HybridJudgeConfig), strict=True
        ):
            key = str(err["loc"][0]) if err["loc"] else ""
            if key in flags:  # the value came from the command line: blame the flag
                from_flags.append(f"{flag_name(key)} {_shown(flags[key])}: {err['msg']}")
            else:
                from_file.append(problem)
        if not from_file:
            raise ConfigError("; ".join(from_flags)) from None
        problems = "".join(f"\n  {p}" for p in from_file + from_flags)
        raise ConfigError(f"{source} [tool.hybridjudge]: invalid configuration{problems}") from None


def flag_name(key: str) -> str:
    """The `pytest` flag that overrides config key `key` (`budget` -> `--judge-budget`)."""
    return "--judge-" + key.replace("_", "-")


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
