"""What a run costs: model prices, token estimates, the budget, and human review by tier."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import HybridJudgeError

# USD per million tokens (input, output), list prices as published by the providers in 2026.
# Override or extend with [tool.hybridjudge.prices] "provider/model" = { input = .., output = .. }.
PRICES: dict[str, tuple[float, float]] = {
    "openai/gpt-5": (1.25, 10.00),
    "openai/gpt-5-mini": (0.25, 2.00),
    "openai/gpt-5-nano": (0.05, 0.40),
    "openai/gpt-4.1": (2.00, 8.00),
    "openai/gpt-4.1-mini": (0.40, 1.60),
    "openai/gpt-4.1-nano": (0.10, 0.40),
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/o3": (2.00, 8.00),
    "openai/o4-mini": (1.10, 4.40),
    "anthropic/claude-opus-4-1": (15.00, 75.00),
    "anthropic/claude-opus-4-5": (5.00, 25.00),
    "anthropic/claude-sonnet-4-5": (3.00, 15.00),
    "anthropic/claude-sonnet-4": (3.00, 15.00),
    "anthropic/claude-haiku-4-5": (1.00, 5.00),
    "anthropic/claude-3-5-haiku": (0.80, 4.00),
}
FREE_PROVIDERS = ("local",)
BATCH_DISCOUNT = 0.5  # OpenAI Batch and Anthropic Message Batches: half the listed price


def price_of(
    model: str, overrides: Mapping[str, tuple[float, float]], batch: bool = False
) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None when the price is unknown; `batch`:
    the price of a call sent in a provider batch (`--judge-batch`)."""
    price = _listed_price(model, overrides)
    if price is None or not batch:
        return price
    return (price[0] * BATCH_DISCOUNT, price[1] * BATCH_DISCOUNT)


def _listed_price(
    model: str, overrides: Mapping[str, tuple[float, float]]
) -> tuple[float, float] | None:
    if model in overrides:
        return overrides[model]
    if model.split("/", 1)[0] in FREE_PROVIDERS:
        return (0.0, 0.0)
    if model in PRICES:
        return PRICES[model]
    # dated snapshots, e.g. anthropic/claude-sonnet-4-5-20250929, price like their family
    family = max((k for k in PRICES if model.startswith(k + "-")), key=len, default=None)
    return PRICES[family] if family else None


def call_cost(price: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float:
    """USD for one call (0 when the price is unknown; the report says which models those are)."""
    if price is None:
        return 0.0
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens with tiktoken, or approximates (4 characters a token) when it cannot."""

    approximate: bool
    reason: str = ""

    def count(self, text: str) -> int:
        """Tokens in `text`."""
        encoding = _encoding()
        if encoding is None:
            return max(1, len(text) // 4)
        return len(encoding.encode(text, disallowed_special=()))


@functools.cache
def _encoding() -> Any:
    try:
        import tiktoken

        return tiktoken.get_encoding("o200k_base")
    except Exception:  # the BPE file is downloaded on first use; offline that fails
        return None


def token_counter() -> TokenCounter:
    """A counter, saying whether its counts are exact (tiktoken) or approximate."""
    if _encoding() is None:
        return TokenCounter(True, "tiktoken's encoding could not be loaded offline")
    return TokenCounter(False)


class BudgetExhausted(HybridJudgeError):
    """A case's worst-case cost no longer fits in `--judge-budget`; the message says how much."""


class Budget:
    """Buys whole cases: each case reserves its worst-case cost before it starts and settles at
    what it really cost, so the budget is spent on finished cases, never on half of each.

    Used from one event loop. Reservations are first come, first served: a case that does not
    fit while others hold reservations waits for them to settle, and while anyone waits a
    newcomer queues behind them even if it would fit, so a small later case cannot starve an
    earlier large one. A case is refused only when it could not fit even if every running case
    cost nothing more.
    """

    def __init__(self, limit: float | None):
        self.limit = limit
        self.spent = 0.0
        self.reserved = 0.0
        self._holding = 0  # cases holding a reservation now
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()  # in arrival order

    async def reserve(self, worst_case: float) -> None:
        """Claim a case's worst-case cost, in arrival order, waiting for running cases to
        settle if that could make room; raise BudgetExhausted when it cannot fit."""
        if self.limit is None:
            return
        if not self._waiting and self._fits(worst_case):
            self._take(worst_case)
            return
        if self._hopeless(worst_case):
            raise self._exhausted()
        granted = asyncio.get_running_loop().create_future()
        entry = (worst_case, granted)
        self._waiting.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if entry in self._waiting:
                self._waiting.remove(entry)
            elif granted.done() and not granted.cancelled() and granted.exception() is None:
                self._release(worst_case)  # granted, but cancelled before it could start
            self._admit()  # whoever queued behind it may fit now
            raise

    def settle(self, worst_case: float, actual: float) -> None:
        """Replace a reservation with what the case really cost."""
        self.spent += actual
        if self.limit is None:
            return
        self._release(worst_case)
        self._admit()

    def _fits(self, worst_case: float) -> bool:
        assert self.limit is not None
        return self.spent + self.reserved + worst_case <= self.limit

    def _hopeless(self, worst_case: float) -> bool:
        """It could not fit even if every running case cost nothing more."""
        assert self.limit is not None
        return self.spent + worst_case > self.limit or not self._holding

    def _take(self, worst_case: float) -> None:
        self.reserved += worst_case
        self._holding += 1

    def _release(self, worst_case: float) -> None:
        self._holding -= 1
        self.reserved = max(0.0, self.reserved - worst_case) if self._holding else 0.0

    def _exhausted(self) -> BudgetExhausted:
        return BudgetExhausted(
            f"budget exhausted: ${self.spent + self.reserved:.4f} of "
            f"${self.limit or 0.0:.4f} spent or reserved"
        )

    def _admit(self) -> None:
        """Grant waiters from the front while they fit; refuse the front one if it never can."""
        while self._waiting:
            worst_case, granted = self._waiting[0]
            if granted.done():  # cancelled; its task removes nothing once it is gone from here
                self._waiting.popleft()
            elif self._fits(worst_case):
                self._waiting.popleft()
                self._take(worst_case)
                granted.set_result(None)
            elif self._hopeless(worst_case):
                self._waiting.popleft()
                granted.set_exception(self._exhausted())
            else:
                return


def budget_share(workerinput: Mapping[str, Any] | None) -> float:
    """The part of the budget one process may spend: under pytest-xdist each of the
    `workercount` workers has its own `Budget`, so each gets an equal share; else all of it."""
    if not workerinput:
        return 1.0
    return 1.0 / max(1, int(workerinput.get("workercount", 1)))


def review_cost(minutes: float, rate_per_hour: float) -> float:
    """Expected USD of human review: total expected minutes at the tier's hourly rate."""
    return minutes / 60 * rate_per_hour
