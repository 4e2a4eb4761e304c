"""Provider calls with the cache, per-provider concurrency, one retry policy and a timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenacity import RetryCallState

from .cache import CompletionCache
from .config import ProviderSpec
from .cost import Budget, call_cost, price_of, token_counter
from .providers import Completion, CompletionRequest, Provider, ProviderError, make_provider
from .providers.base import is_malformed

MAX_RETRY_AFTER = 120.0


@dataclass
class CallStats:
    """Counters the progress display and the report read."""

    finished: int = 0
    in_flight: int = 0
    cache_hits: int = 0
    retries: int = 0


class ModelCaller:
    """Makes provider calls for the scheduler; one instance per run, used on one event loop."""

    def __init__(
        self,
        specs: Mapping[str, ProviderSpec],
        cache: CompletionCache,
        concurrency: int,
        timeout: float,
        retries: int,
        backoff: float = 1.0,
        root: Path | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        budget: float | None = None,
    ):
        self.specs, self.cache = specs, cache
        self.concurrency, self.timeout, self.retries = concurrency, timeout, retries
        self.backoff, self.root = backoff, root
        self.prices = dict(prices or {})
        self.budget = Budget(budget)
        self._counter = token_counter() if budget is not None else None
        self.stats = CallStats()
        self.providers: dict[str, Provider] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def provider(self, name: str) -> Provider:
        """The provider called `name`, built once (raises ProviderError with the fix)."""
        if name not in self.providers:
            self.providers[name] = make_provider(name, self.specs, self.root)
        return self.providers[name]

    def _semaphore(self, provider: Provider) -> asyncio.Semaphore:
        if provider.name not in self._semaphores:
            limit = provider.concurrency or self.concurrency
            self._semaphores[provider.name] = asyncio.Semaphore(limit)
        return self._semaphores[provider.name]

    async def __call__(self, provider_name: str, request: CompletionRequest) -> Completion:
        """Answer from the cache, or call the provider with retries; ProviderError when it fails."""
        key = request.cache_key(provider_name) if self.cache.mode != "off" else ""
        cached = self.cache.get(key) if key else None
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        provider = self.provider(provider_name)
        price = price_of(f"{provider_name}/{request.model}", self.prices)
        async with self._semaphore(provider):
            worst = self._worst_case(price, request)
            self.budget.reserve(worst)  # raises BudgetExhausted: the case is skipped
            self.stats.in_flight += 1
            completion = None
            try:
                completion = await self._with_retries(provider, request)
                completion.cost = call_cost(
                    price, completion.input_tokens, completion.output_tokens
                )
            finally:
                self.stats.in_flight -= 1
                self.stats.finished += 1
                self.budget.settle(worst, completion.cost if completion else 0.0)
        self.cache.put(key, provider_name, request.model, completion)
        return completion

    def _worst_case(self, price: tuple[float, float] | None, request: CompletionRequest) -> float:
        """Prompt tokens plus `max_tokens` of output, priced (only counted under a budget)."""
        if self._counter is None or price is None:
            return 0.0
        prompt = sum(self._counter.count(content) + 4 for _, content in request.messages)
        return call_cost(price, prompt, request.max_tokens)

    async def _attempt(self, provider: Provider, request: CompletionRequest) -> Completion:
        """One call, bounded by the timeout (the SDKs get it too; this also bounds local calls)."""
        start = time.perf_counter()
        completion = await _bounded(provider.complete(request, self.timeout), self.timeout + 5)
        completion.latency = time.perf_counter() - start
        return completion

    async def _with_retries(self, provider: Provider, request: CompletionRequest) -> Completion:
        """The first attempt runs bare (most calls succeed); tenacity takes over on a retryable
        failure, waiting Retry-After when the server said, else random exponential backoff."""
        try:
            return await self._attempt(provider, request)
        except Exception as exc:
            if self.retries == 0 or not provider.should_retry(exc):
                raise ProviderError(_describe(provider.name, request.model, exc, 1)) from exc
            first_failure = exc
        # Imported here: most runs never retry, and tenacity takes ~40 ms to import.
        from tenacity import (
            AsyncRetrying,
            retry_if_exception,
            stop_after_attempt,
            wait_random_exponential,
        )

        jitter = wait_random_exponential(multiplier=self.backoff, max=30 * self.backoff)

        def wait(state: RetryCallState) -> float:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else first_failure
            asked = provider.retry_after(exc) if exc is not None else None
            return min(asked, MAX_RETRY_AFTER) if asked is not None else jitter(state)

        self.stats.retries += 1
        asked = provider.retry_after(first_failure)
        await asyncio.sleep(min(asked, MAX_RETRY_AFTER) if asked is not None else self.backoff)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries),
            retry=retry_if_exception(provider.should_retry),
            wait=wait,
            reraise=True,
        )
        attempts = 1
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._attempt(provider, request)
        except Exception as exc:
            raise ProviderError(_describe(provider.name, request.model, exc, attempts)) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def aclose(self) -> None:
        """Close every provider's client."""
        for provider in self.providers.values():
            await provider.aclose()


async def _bounded(coro: Coroutine[Any, Any, Completion], seconds: float) -> Completion:
    """`asyncio.timeout`: no extra task per call."""
    async with asyncio.timeout(seconds):
        return await coro


def _describe(provider: str, model: str, exc: BaseException, attempts: int) -> str:
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    what = f"HTTP {status} {kind}" if status else kind
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    if status in (401, 403, 404):
        hint = "check the key and model name"
    elif is_malformed(exc):
        hint = "the server's reply was not the API's response shape; check base_url and server"
    elif status or "Timeout" in kind or "Connection" in kind:
        hint = "the provider may be down or rate limiting; raise `timeout`/`retries` or try later"
    else:
        hint = "unexpected error; please report it with this message"
    return f"{provider}/{model}: {what}: {message} ({tries}); {hint}"
