"""How provider calls are made (`CallSettings`) and what they counted (`CallStats`).

Both are plain values the caller (calls.py) holds; the progress line, the summary and the run
report read the counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .batches.broker import BatchStats
    from .config import HybridJudgeConfig


@dataclass(frozen=True)
class CallSettings:
    """How calls are made: limits, patience and prices (none of it changes an answer)."""

    concurrency: int = 32  # calls in flight per provider unless the provider says otherwise
    timeout: float = 60.0  # seconds per request
    retries: int = 4  # extra attempts after a retryable failure
    backoff: float = 1.0  # seconds of the first retry wait absent Retry-After
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, settings: HybridJudgeConfig) -> CallSettings:
        """The call settings of a `[tool.hybridjudge]` table."""
        return cls(
            concurrency=settings.concurrency,
            timeout=settings.timeout,
            retries=settings.retries,
            backoff=settings.backoff,
            prices=settings.price_table,
        )


@dataclass
class CallStats:
    """Counters the progress display and the run summary read."""

    finished: int = 0  # calls answered or failed for good (cache hits excluded)
    in_flight: int = 0
    cache_hits: int = 0
    requests: int = 0  # every request sent: retries, refusals and failures included
    retries: int = 0
    failures: int = 0  # calls that failed for good
    requests_by_provider: dict[str, int] = field(default_factory=dict)
    retries_by_provider: dict[str, int] = field(default_factory=dict)
    # provider -> (mode it started in, mode it uses now, the server's refusal)
    mode_switches: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    cost: float = 0.0  # USD of every answered call, whether or not its case was recorded
    unpriced: dict[str, int] = field(default_factory=dict)  # provider/model -> calls, no price
    config_error: str | None = None  # the first configuration error: nothing is sent after it
    batch: BatchStats | None = None  # `--judge-batch`: waves, batches and how requests ended

    def count_request(self, provider: str) -> None:
        """One more request sent to `provider`."""
        self.requests += 1
        self.requests_by_provider[provider] = self.requests_by_provider.get(provider, 0) + 1

    def count_retry(self, provider: str) -> None:
        """One more retry of a failed request to `provider`."""
        self.retries += 1
        self.retries_by_provider[provider] = self.retries_by_provider.get(provider, 0) + 1
