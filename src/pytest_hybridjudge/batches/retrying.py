"""A provider's batch API that rides out its own outages: every call to it (upload, create,
retrieve, list, results) that fails for a reason worth asking again (a dropped connection, a
timeout, 429, 5xx: the transport's `transient`) is asked again, backing off like polling does.

A create is never repeated blindly: before asking again, the batch API is searched for a batch
created with the same idempotency key (`find`, OpenAI's metadata), whose id is then used, so
one ledger key never makes two batches where the provider can tell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from .transport import BatchLimits, BatchProgress, BatchRequest, BatchResult, BatchTransport

T = TypeVar("T")
TRIES = 8  # asks per call: with the default back-off (5 s doubling to 60 s) about 4 minutes


class RetryingTransport:
    """`transport` with its transient failures asked again, `first` seconds after the first,
    twice as long each time up to `longest`, `tries` asks in all (then the error is raised)."""

    def __init__(self, transport: BatchTransport, first: float, longest: float, tries: int = TRIES):
        self.transport, self.first, self.longest, self.tries = transport, first, longest, tries
        self.limits: BatchLimits = transport.limits
        self.retries = 0  # calls asked again, over the run

    def request(self, custom_id: str, body: Mapping[str, Any]) -> BatchRequest:
        """The request as the wrapped transport's batch carries it."""
        return self.transport.request(custom_id, body)

    def size(self, request: BatchRequest) -> int:
        """Bytes the request takes in the wrapped transport's batch."""
        return self.transport.size(request)

    def transient(self, exc: BaseException) -> bool:
        """Whether the wrapped transport's failure is worth asking again."""
        return self.transport.transient(exc)

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        """Create the batch; after a transient failure, the batch `key` made if the provider
        has it (`find`), else create again."""
        asked = False

        async def create_once() -> str:
            nonlocal asked
            if asked and (found := await self.transport.find(key)) is not None:
                return found  # the failed create made the batch: never make a second one
            asked = True
            return await self.transport.create(requests, key)

        return await self._patiently(create_once)

    async def find(self, key: str) -> str | None:
        """The batch created with `key` whose id was never saved, if the provider can tell."""
        return await self._patiently(lambda: self.transport.find(key))

    async def progress(self, batch_id: str) -> BatchProgress:
        """The batch's state and counts."""
        return await self._patiently(lambda: self.transport.progress(batch_id))

    async def results(self, batch_id: str) -> list[BatchResult]:
        """The typed results of an ended batch (read again whole after a failure)."""
        return await self._patiently(lambda: self.transport.results(batch_id))

    async def cancel(self, batch_id: str) -> None:
        """Ask the provider to cancel the batch."""
        await self._patiently(lambda: self.transport.cancel(batch_id))

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        wait = self.first
        for ask in range(1, self.tries + 1):
            try:
                return await call()
            except Exception as exc:
                if ask == self.tries or not self.transient(exc):
                    raise
            self.retries += 1
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.longest)
        raise AssertionError("unreachable")
