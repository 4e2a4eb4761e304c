"""Provider calls with the cache, per-provider concurrency, one retry loop and a timeout.

Structured output: each provider starts in its configured mode (`auto`: the first of the modes
it supports); a server that refuses the mode (a 400/422/500 naming `response_format`) moves that
provider to its next mode once, for the rest of the run, and `CallStats.mode_switches` says so.

A call that fails for good says what kind of failure it was (`ProviderError.kind`, see
`failures.failure_kind`). A configuration error (a wrong key, model or URL) stops every call
after it: the caller sends nothing more and raises `ProviderConfigError`, and the run stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import CompletionCache
from .call_settings import CallSettings as CallSettings  # re-exported: callers name them here
from .call_settings import CallStats as CallStats
from .config import ProviderSpec
from .cost import call_cost, price_of
from .providers import (
    Completion,
    CompletionRequest,
    Provider,
    ProviderConfigError,
    ProviderError,
    StructuredMode,
    make_provider,
)
from .providers.base import MalformedResponse
from .providers.failures import describe, failure_kind, provider_message, trimmed
from .redact import redact, watch_env
from .structured import shape_request

if TYPE_CHECKING:
    from .batches.broker import BatchBroker, BatchCapable
    from .batches.transport import BatchResult, BatchTransport
    from .config import HybridJudgeConfig

MAX_RETRY_AFTER = 120.0
Validate = Callable[[str], object]


class _Refused(Exception):
    """The server refused the request's structured-output mode."""

    def __init__(self, cause: BaseException, mode: StructuredMode, requests: int):
        super().__init__(str(cause))
        self.cause, self.mode, self.requests = cause, mode, requests


class ModelCaller:
    """Makes provider calls for the scheduler; one instance per run, used on one event loop."""

    def __init__(
        self,
        specs: Mapping[str, ProviderSpec],
        cache: CompletionCache,
        settings: CallSettings | None = None,
        root: Path | None = None,
    ):
        self.specs, self.cache = specs, cache
        self.settings = settings or CallSettings()
        self.root = root
        self.stats = CallStats()
        self.providers: dict[str, Provider] = {}
        self._modes: dict[str, tuple[StructuredMode, ...]] = {}  # modes left to try, current first
        self._identities: dict[str, dict[str, Any]] = {}  # read once: they key the cache
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self.broker: BatchBroker | None = None  # set by the run in batch mode (`--judge-batch`)
        self._transports: dict[str, BatchTransport] = {}  # provider -> its batch API
        self._spool: BatchTransport | None = None  # an xdist worker's: to the controller
        watch_env(*(spec.api_key_env or "" for spec in specs.values()))

    @classmethod
    def from_config(
        cls, settings: HybridJudgeConfig, cache: CompletionCache, rootdir: Path
    ) -> ModelCaller:
        """The caller for a run configured by `settings`."""
        return cls(settings.providers, cache, CallSettings.from_config(settings), rootdir)

    def provider(self, name: str) -> Provider:
        """The provider called `name`, built once (raises ProviderError with the fix)."""
        if name not in self.providers:
            provider = make_provider(name, self.specs, self.root)
            wanted = self.specs[name].structured_output if name in self.specs else "auto"
            if wanted == "auto":
                self._modes[name] = tuple(provider.structured_modes)
            elif wanted in provider.structured_modes:
                self._modes[name] = (wanted,)
            else:
                raise ProviderError(
                    f"[tool.hybridjudge.providers.{name}] structured_output = {wanted!r}: this "
                    f"provider supports {', '.join(provider.structured_modes)} (or `auto`)"
                )
            self._identities[name] = dict(provider.identity)
            self.providers[name] = provider
        return self.providers[name]

    def _semaphore(self, provider: Provider) -> asyncio.Semaphore:
        if provider.name not in self._semaphores:
            limit = provider.concurrency or self.settings.concurrency
            self._semaphores[provider.name] = asyncio.Semaphore(limit)
        return self._semaphores[provider.name]

    async def __call__(
        self,
        provider_name: str,
        request: CompletionRequest,
        validate: Validate | None = None,
        *,
        missed: StructuredMode | None = None,
    ) -> Completion:
        """Answer from the cache, or call the provider with retries; ProviderError when it fails.

        A reply is cached only if `validate(text)` (when given) does not raise: an answer that
        did not parse is returned to the caller, and asked again on the next run. `missed`: the
        mode whose key `answered.look_up_together` found no answer for (not looked up again).
        """
        provider = self.provider(provider_name)
        refused = 0
        while True:
            modes = self._modes[provider_name]
            if (cached := await self._lookup(provider, request, modes, missed)) is not None:
                return cached
            missed = None
            self._check_stopped()
            shaped = shape_request(request, modes[0])
            try:
                completion = await self._call(provider, shaped)
            except _Refused as exc:
                refused += exc.requests
                self._refused(provider, request.model, exc, refused)
                continue
            except ProviderError as exc:
                exc.requests += refused
                raise
            completion.requests += refused
            if self.cache.mode != "off" and _valid(validate, completion.text):
                key = shaped.cache_key(self._identities[provider_name])
                self.cache.put(key, provider_name, request.model, completion)
            return completion

    def first_key(
        self, provider_name: str, request: CompletionRequest
    ) -> tuple[StructuredMode, str]:
        """The provider's current mode and the request's cache key under it (the key looked up
        first); ProviderError if the provider cannot be built."""
        mode = self._modes[self.provider(provider_name).name][0]
        return mode, shape_request(request, mode).cache_key(self._identities[provider_name])

    async def _lookup(
        self,
        provider: Provider,
        request: CompletionRequest,
        modes: tuple[StructuredMode, ...],
        missed: StructuredMode | None = None,
    ) -> Completion | None:
        """A cached answer under the current mode or, for structured requests, a later one
        (`missed`: a mode already looked up)."""
        if self.cache.mode == "off":
            return None
        for mode in modes if request.json_schema is not None else modes[:1]:
            if mode == missed:
                continue
            key = shape_request(request, mode).cache_key(self._identities[provider.name])
            cached = await self.cache.lookup(key)
            if cached is not None:
                cached.requests = 0
                self.stats.cache_hits += 1
                return cached
        return None

    def _refused(self, provider: Provider, model: str, exc: _Refused, requests: int) -> None:
        """Move the provider past the refused mode, or fail when there is none left."""
        modes = self._modes[provider.name]
        if modes[0] != exc.mode:
            return  # a call in flight at the same time already moved it on
        why = trimmed(redact(provider_message(exc.cause)))
        if len(modes) == 1:  # every call would be refused alike: a configuration error
            self.stats.failures += 1
            message = describe(provider.name, model, exc.cause, exc.requests)
            tried = self.stats.mode_switches.get(provider.name, (exc.mode,))[0]
            raise self._stop(
                f"{message}; the server refuses structured output in mode {exc.mode!r} "
                f'(started in {tried!r}); set structured_output = "prompt" in '
                f"[tool.hybridjudge.providers.{provider.name}] or use another server",
                requests,
            ) from exc.cause
        self._modes[provider.name] = modes[1:]
        first = self.stats.mode_switches.get(provider.name, (exc.mode,))[0]
        self.stats.mode_switches[provider.name] = (first, modes[1], why)

    def _stop(self, message: str, requests: int) -> ProviderConfigError:
        """The error that stops the run; the first one is kept as its cause."""
        if self.stats.config_error is None:
            self.stats.config_error = message
        return ProviderConfigError(message, requests=requests)

    def _check_stopped(self, requests: int = 0) -> None:
        """Send nothing once a configuration error has stopped the run."""
        if self.stats.config_error is not None:
            raise ProviderConfigError(f"not sent: {self.stats.config_error}", requests)

    def use_batches(self, broker: BatchBroker, transport: BatchTransport | None = None) -> None:
        """Batch mode: calls to providers with a batch API go through `broker`; `transport`,
        if given, stands in for every provider's own batch API (an xdist worker's spool)."""
        self.broker = broker
        self.stats.batch = broker.stats
        self._spool = transport
        broker.keep_answers(self._keep_batch_answer)

    def _keep_batch_answer(self, provider_name: str, key: str, result: BatchResult) -> bool:
        """Cache an earlier run's batch answer no call of this run asked for (it is paid for);
        whether it was kept (not when the cache is off or the answer does not read)."""
        known = self.providers.get(provider_name)
        provider = self.batched(known) if known is not None else None
        if provider is None or result.body is None or self.cache.mode == "off":
            return False
        try:
            completion = provider.read_body(result.body)
        except MalformedResponse:
            return False
        self.cache.put(key, provider_name, str(result.body.get("model", "")), completion)
        return True

    def batched(self, provider: Provider) -> BatchCapable | None:
        """The provider, if this call goes through its batch API (`--judge-batch`, and a
        provider that has one: OpenAI and Anthropic kinds; local models and apps call
        directly)."""
        if self.broker is None or not callable(getattr(provider, "batches", None)):
            return None
        return provider  # type: ignore[return-value]

    def transport(self, provider: BatchCapable) -> BatchTransport:
        """The provider's batch API, built once."""
        if provider.name not in self._transports:
            self._transports[provider.name] = self._spool or provider.batches()
        return self._transports[provider.name]

    async def _call(self, provider: Provider, request: CompletionRequest) -> Completion:
        """One call with the concurrency slot held (or through a batch), priced (the budget
        is reserved per case; a batched call at the batch price)."""
        model = f"{provider.name}/{request.model}"
        capable = self.batched(provider)
        price = price_of(model, self.settings.prices, batch=capable is not None)
        async with contextlib.nullcontext() if capable else self._semaphore(provider):
            self.stats.in_flight += 1
            completion = None
            try:
                if capable is not None:
                    completion = await self._through_batch(capable, request)
                else:
                    completion = await self._with_retries(provider, request)
                completion.cost = call_cost(
                    price, completion.input_tokens, completion.output_tokens
                )
                completion.priced = price is not None
                self.stats.cost += completion.cost
                if price is None:
                    self.stats.unpriced[model] = self.stats.unpriced.get(model, 0) + 1
                return completion
            finally:
                self.stats.in_flight -= 1
                self.stats.finished += 1

    async def _through_batch(
        self, provider: BatchCapable, request: CompletionRequest
    ) -> Completion:
        """The call as a request of a provider batch: no per-call timeout (a batch can take
        hours), no concurrency slot; the result body is read as a direct reply is."""
        assert self.broker is not None
        key = request.cache_key(self._identities[provider.name])
        body = provider.request_body(request)
        transport = self.transport(provider)
        try:
            completion = await self.broker.call(
                provider.name, transport, key, body, provider.read_body
            )
        except ProviderError as exc:
            self.stats.failures += 1
            for _ in range(exc.requests):
                self.stats.count_request(provider.name)
            if isinstance(exc, ProviderConfigError):  # no batch API there: the run stops
                raise self._stop(str(exc), exc.requests) from exc
            raise
        for attempt in range(completion.requests):
            self.stats.count_request(provider.name)
            if attempt:
                self.stats.count_retry(provider.name)
        return completion

    async def _attempt(self, provider: Provider, request: CompletionRequest) -> Completion:
        """One request, bounded by the timeout (the SDKs get it too; this bounds local calls)."""
        self.stats.count_request(provider.name)
        start = time.perf_counter()
        timeout = self.settings.timeout
        completion = await _bounded(provider.complete(request, timeout), timeout + 5)
        completion.latency = time.perf_counter() - start
        return completion

    async def _with_retries(self, provider: Provider, request: CompletionRequest) -> Completion:
        """The one retry loop: the provider's `should_retry` decides, waiting Retry-After when
        the server said, else jittered exponential backoff. A refused structured-output mode is
        never retried as such (the caller switches mode)."""
        attempts = 0
        while True:
            # a call that waited for its slot, or for a retry, while another found the run over
            self._check_stopped(attempts)
            attempts += 1
            try:
                completion = await self._attempt(provider, request)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a plugin provider's SystemExit fails the call only
                if request.json_schema is not None and provider.rejects_structured_output(exc):
                    raise _Refused(exc, request.structured_output, attempts) from exc
                # the caller's own bound (`_attempt`) is a timeout like the SDK's: retried
                retryable = isinstance(exc, TimeoutError) or (
                    isinstance(exc, Exception) and provider.should_retry(exc)
                )
                if attempts > self.settings.retries or not retryable:
                    self.stats.failures += 1
                    message = describe(provider.name, request.model, exc, attempts)
                    kind = failure_kind(exc, retryable)
                    if kind == "config":
                        raise self._stop(message, attempts) from exc
                    raise ProviderError(message, requests=attempts, kind=kind) from exc
                self.stats.count_retry(provider.name)
                await asyncio.sleep(self._wait(provider, exc, attempts))
                continue
            completion.requests = attempts
            return completion

    def _wait(self, provider: Provider, exc: BaseException, attempts: int) -> float:
        """Seconds before retry number `attempts`: the server's word, else backoff."""
        asked = provider.retry_after(exc)
        if asked is not None:
            return min(asked, MAX_RETRY_AFTER)
        backoff = self.settings.backoff
        if attempts == 1:
            return backoff
        return random.uniform(0, min(30 * backoff, backoff * 2 ** (attempts - 1)))

    async def aclose(self) -> None:
        """Close every provider's client."""
        for provider in self.providers.values():
            await provider.aclose()


def _valid(validate: Validate | None, text: str) -> bool:
    if validate is None:
        return True
    try:
        validate(text)
    except Exception:
        return False
    return True


async def _bounded(coro: Coroutine[Any, Any, Completion], seconds: float) -> Completion:
    """`asyncio.timeout`: no extra task per call."""
    async with asyncio.timeout(seconds):
        return await coro
