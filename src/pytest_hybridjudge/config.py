"""The `[tool.hybridjudge]` table: loading, validation and command-line overrides.

Precedence, in one place: command-line flags, then `[tool.hybridjudge]` in the rootdir's
`pyproject.toml` (or a `hybridjudge.toml` beside it), then the defaults below. The tables it
holds live by job: models, targets, providers and prices in `config_models`, escalation and
reviewer tiers in `config_review`, the gate in `config_gate`; all are importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from .config_batch import BatchSpec
from .config_gate import GateSpec
from .config_models import (
    CallableTarget,
    ModelSpec,
    PriceSpec,
    ProviderSpec,
    Strict,
    StructuredOutput,
    Target,
    TargetSpec,
)
from .config_review import (
    DEFAULT_MINUTES,
    DEFAULT_RANKS,
    DEFAULT_RATES,
    TIERS,
    EscalationSpec,
    ReviewSpec,
    Tier,
    TierSpec,
)
from .configfile import ConfigError, find_config_table
from .errors import validation_problems

__all__ = [
    "DEFAULT_MINUTES",
    "DEFAULT_RANKS",
    "DEFAULT_RATES",
    "TIERS",
    "Aggregation",
    "BatchSpec",
    "CacheMode",
    "CallableTarget",
    "ConfigError",
    "EscalationSpec",
    "GateSpec",
    "HybridJudgeConfig",
    "ModelSpec",
    "PriceSpec",
    "ProviderSpec",
    "ReviewSpec",
    "StructuredOutput",
    "Target",
    "TargetSpec",
    "Tier",
    "TierSpec",
    "find_config_table",
    "flag_name",
    "load_config",
    "validate_config",
]

CacheMode = Literal["use", "refresh", "off"]
Aggregation = Literal["median", "mean", "min"]


class HybridJudgeConfig(Strict):
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
    batch: BatchSpec = Field(default_factory=BatchSpec)

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
