"""A case's panel looked up in the cache together: the answers found, and a `Call` that returns
them and sends the rest on.

A cached rerun's judges then need no task of their own (see `Evaluator._judge`), and a request
not found is not looked up again under the same key (`ModelCaller.__call__`'s `missed`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .calls import ModelCaller, Validate
from .providers import Completion, CompletionRequest, ProviderError, StructuredMode


class Answered:
    """A `Call` for requests `look_up_together` looked up: each answered from the cache once, the
    ones not found sent on without a second look-up of the same key, any other request (a
    judge's retry) asked of the caller as usual."""

    def __init__(
        self,
        caller: ModelCaller,
        found: dict[int, tuple[CompletionRequest, Completion | StructuredMode]],
    ):
        self.caller = caller
        self._found = found  # id(request) -> (the request, its answer or the mode that missed)

    @property
    def complete(self) -> bool:
        """Whether every request looked up has its answer (none will wait on a provider)."""
        return bool(self._found) and all(
            isinstance(answer, Completion) for _, answer in self._found.values()
        )

    async def __call__(
        self, provider_name: str, request: CompletionRequest, validate: Validate | None = None
    ) -> Completion:
        """The answer found for `request`, else the caller's (see `ModelCaller.__call__`)."""
        request_, answer = self._found.pop(id(request), (None, None))
        if request_ is not request:  # not looked up (or another object at the same address)
            return await self.caller(provider_name, request, validate)
        if isinstance(answer, Completion):
            return answer
        return await self.caller(provider_name, request, validate, missed=answer)


async def look_up_together(
    caller: ModelCaller, asks: Sequence[tuple[str, CompletionRequest]]
) -> Answered:
    """The cached answers of several calls `(provider, request)`, read with one wait under each
    provider's current mode (`CompletionCache.lookup_many`), counted as cache hits."""
    if caller.cache.mode != "use":
        return Answered(caller, {})
    looked_up = []
    for provider_name, request in asks:
        try:
            mode, key = caller.first_key(provider_name, request)
        except ProviderError:
            continue  # raised by the caller itself, where the judge expects it
        looked_up.append((request, mode, key))
    found = await caller.cache.lookup_many([key for _, _, key in looked_up])
    caller.stats.cache_hits += sum(completion is not None for completion in found)
    return Answered(
        caller,
        {
            id(request): (request, completion or mode)
            for (request, mode, _), completion in zip(looked_up, found, strict=True)
        },
    )
