"""The broker: gathers a wave of provider calls into batches, polls them, hands each result back.

A call in batch mode (`ModelCaller` with `--judge-batch`) waits here instead of calling the
provider. Waves: the waiting requests are sent when every case in progress waits on the broker
(so all target calls go in wave 1, every judge call in wave 2), or after `gather` seconds with
no new request. Within a wave identical requests are sent once; batches are split at the
transport's limits. Results come back by `custom_id` and flow through the provider's reader, so
a batched answer is cached and judged exactly as a direct one.

What each result means for its call (its answer, another attempt in the next wave, or its
error) is `attempts.CallAttempts`'s to say. Earlier runs' batches are collected by
`collect.EarlierBatches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ProviderConfigError
from ..providers.base import Completion
from .attempts import CallAttempts, Read
from .collect import EarlierBatches, Keep, unknown_lines
from .progress import poll, progress_line
from .retrying import RetryingTransport
from .site import CALL_SITE, CallSite
from .stats import BatchStats as BatchStats  # where callers have always found it
from .transport import (
    BatchingProvider,
    BatchProgress,
    BatchRequest,
    BatchResult,
    BatchTransport,
    BatchUnsupported,
    EnqueuedLimit,
    custom_id,
    said,
)

if TYPE_CHECKING:
    from ..config_batch import BatchSpec
    from .ledger import BatchLedger, LedgerEntry

TICK = 0.05  # seconds between two looks at whether every case waits on the broker
WriteLine = Callable[[str], None]


BatchCapable = BatchingProvider  # a provider whose calls can go through its batch API


@dataclass
class _Waiting:
    """One request of the next wave and the calls waiting for its result."""

    custom_id: str
    request_key: str
    body: Mapping[str, Any]
    futures: list[asyncio.Future[BatchResult]] = field(default_factory=list)


class BatchBroker:
    """Sends batch-mode calls in waves of provider batches; one per run, on the run's loop."""

    def __init__(
        self,
        spec: BatchSpec,
        running: Callable[[], int],
        retries: int = 4,
        ledger: BatchLedger | None = None,
        write_line: WriteLine | None = None,
    ):
        """`running`: cases in progress now (the scheduler's count); `retries`: waves a server
        error or malformed reply is sent again in, as a direct call's outage is retried."""
        self.spec, self.running, self.retries = spec, running, retries
        self.ledger = ledger
        self.write_line = write_line or (lambda line: None)
        self.stats = BatchStats()
        self._transports: dict[str, BatchTransport] = {}
        self._next: dict[str, dict[str, _Waiting]] = {}  # provider -> request key -> request
        self._cases: dict[str, int] = {}  # case -> its calls waiting on the broker
        self._last_request = 0.0
        self._gatherer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()  # cleared while the enqueued-token limit holds creates
        self._room.set()
        self._in_flight = 0  # batches created and not ended
        self.earlier = EarlierBatches(self._watch, self.stats, ledger, self.write_line)

    @property
    def unfinished(self) -> int:
        """Batches created (or collected from an earlier run) that have not ended."""
        return self._in_flight

    def keep_answers(self, keep: Keep) -> None:
        """How an earlier batch's answer no call of this run asked for is kept (the cache)."""
        self.earlier.keep = keep

    # -- calls ------------------------------------------------------------------------------

    async def call(
        self,
        provider: str,
        transport: BatchTransport,
        request_key: str,
        body: Mapping[str, Any],
        read: Read,
    ) -> Completion:
        """The completion of one request sent through a batch; ProviderError when it fails
        for good (`kind` expired, rejected or outage). `requests` counts its submissions."""
        self._api(provider, transport)
        site = CALL_SITE.get()
        attempts = CallAttempts(provider, self.spec.resubmits, self.retries, self.stats)
        with self._waiting_case(site.case):
            while True:
                result = await self._result(provider, site, attempts.attempt, request_key, body)
                completion = attempts.settle(result, read)
                if completion is not None:
                    return completion

    async def _result(
        self, provider: str, site: CallSite, attempt: int, request_key: str, body: Mapping[str, Any]
    ) -> BatchResult:
        """The result of this attempt (`request`), its custom_id made of the call's site."""
        cid = custom_id(site.case, site.role, site.judge, site.order, attempt, request_key)
        return await self.request(provider, cid, request_key, body)

    async def request(
        self,
        provider: str,
        cid: str,
        request_key: str,
        body: Mapping[str, Any],
        transport: BatchTransport | None = None,
    ) -> BatchResult:
        """One request's result, as its batch returned it: from an earlier run's batch
        holding the same request, else from a batch of the next wave. `call` decides what a
        result means; the xdist controller (spool_desk.py) asks here on behalf of a worker's
        broker, which decides."""
        if transport is not None:
            self._api(provider, transport)
        earlier = await self.earlier.result(provider, request_key)
        if earlier is not None:
            return earlier
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        wave = self._next.setdefault(provider, {})
        if request_key in wave:
            wave[request_key].futures.append(future)
            self.stats.deduplicated += 1
        else:
            wave[request_key] = _Waiting(cid, request_key, body, [future])
        self._last_request = time.monotonic()
        if self._gatherer is None:
            self._gatherer = asyncio.get_running_loop().create_task(self._gather())
        return await future

    def _api(self, provider: str, transport: BatchTransport) -> BatchTransport:
        """The provider's batch API, its own outages asked again (retrying.py); kept once."""
        if provider not in self._transports:
            patient = RetryingTransport(transport, self.spec.poll, self.spec.poll_max)
            self._transports[provider] = patient
        return self._transports[provider]

    @contextlib.contextmanager
    def _waiting_case(self, case: str) -> Iterator[None]:
        self._cases[case] = self._cases.get(case, 0) + 1
        try:
            yield
        finally:
            self._cases[case] -= 1
            if not self._cases[case]:
                del self._cases[case]

    def _every_case_waits(self) -> bool:
        return len(self._cases) >= self.running()

    # -- waves ------------------------------------------------------------------------------

    async def _gather(self) -> None:
        """Wait until every case waits on the broker (settled over a few loop turns: cache
        look-ups of sibling calls take some), or `gather` seconds pass with no new request;
        then send the wave."""
        try:
            while True:
                if self._every_case_waits():
                    for _ in range(5):
                        await asyncio.sleep(0)
                    if self._every_case_waits():
                        break
                if time.monotonic() - self._last_request >= self.spec.gather:
                    break
                await asyncio.sleep(TICK)
        finally:
            self._gatherer = None
        self.flush()

    def flush(self) -> None:
        """Send every waiting request now, as this wave's batches."""
        waiting, self._next = self._next, {}
        if not any(waiting.values()):
            return
        self.stats.waves += 1
        wave = self.stats.waves
        loop = asyncio.get_running_loop()
        for provider, requests in waiting.items():
            transport = self._transports[provider]
            for chunk in split(list(requests.values()), transport):
                task = loop.create_task(self._send(provider, transport, chunk, wave))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(
        self, provider: str, transport: BatchTransport, chunk: list[_Waiting], wave: int
    ) -> None:
        """One batch from creation to its results, delivered to every waiting call."""
        try:
            results = await self._batch(provider, transport, chunk, wave)
        except (BatchUnsupported, ProviderConfigError) as exc:
            _fail(chunk, ProviderConfigError(str(exc)))
            return
        except asyncio.CancelledError:
            for waiting in chunk:
                for future in waiting.futures:
                    future.cancel()
            raise
        except Exception as exc:  # the SDK's error on create/poll/results: like a 5xx
            why = said(exc)
            self.write_line(
                f"[hybridjudge] {provider} batch of wave {wave} could not be read ({why}); its "
                f"{len(chunk)} requests go again in the next wave"
            )
            results = {w.custom_id: BatchResult(w.custom_id, "server", error=why) for w in chunk}
        if unknown := len(results.keys() - {w.custom_id for w in chunk}):
            self.write_line(unknown_lines(provider, f"of wave {wave}", unknown))
        _deliver(chunk, results)

    async def _batch(
        self, provider: str, transport: BatchTransport, chunk: list[_Waiting], wave: int
    ) -> dict[str, BatchResult]:
        requests = [transport.request(w.custom_id, w.body) for w in chunk]
        while True:
            batch_id, key = await self._create(provider, transport, chunk, requests)
            progress = await self._watch(provider, transport, batch_id, wave)
            if progress.state == "failed" and progress.extra.get("enqueued_limit"):
                self._hold()
                if self.ledger is not None:
                    self.ledger.collected(key)  # nothing in it ran: the requests go again
                continue
            if progress.state == "failed":  # nothing in it ran: like a 5xx for each request
                if self.ledger is not None:
                    self.ledger.collected(key)
                return self._failed(provider, progress, chunk)
            results = await transport.results(batch_id)
            if self.ledger is not None:
                self.ledger.ended(key)
            return {r.custom_id: r for r in results}

    def _failed(
        self, provider: str, progress: BatchProgress, chunk: list[_Waiting]
    ) -> dict[str, BatchResult]:
        """A batch the provider failed as a whole: its requests go again in the next wave
        (up to the retries), each failing with the provider's reason."""
        self.stats.failed += 1
        reasons = "; ".join(progress.extra.get("errors") or []) or "no reason given"
        why = f"batch {progress.batch_id} failed: {reasons}"
        self.write_line(
            f"[hybridjudge] {provider} {why}; its {len(chunk)} requests go again in the next wave"
        )
        return {w.custom_id: BatchResult(w.custom_id, "server", error=why) for w in chunk}

    async def _create(
        self,
        provider: str,
        transport: BatchTransport,
        chunk: list[_Waiting],
        requests: list[BatchRequest],
    ) -> tuple[str, str]:
        """Create the batch, its requests written ahead to the ledger; held while the
        enqueued-token limit is reached."""
        while True:
            await self._room.wait()
            key = secrets.token_hex(16)
            if self.ledger is not None:
                self.ledger.write_ahead(
                    key, provider, [(w.custom_id, w.request_key, w.body) for w in chunk]
                )
            try:
                batch_id = await transport.create(requests, key)
            except EnqueuedLimit:
                if self.ledger is not None:
                    self.ledger.collected(key)  # refused: nothing was created
                self._hold()
                continue
            except BaseException:
                if self.ledger is not None:
                    self.ledger.collected(key)
                raise
            if self.ledger is not None:
                self.ledger.created(key, batch_id)
            self.stats.batches += 1
            self.stats.requests += len(requests)
            return batch_id, key

    def _hold(self) -> None:
        """Hold creates until a batch ends (or, with none in flight, for a poll interval)."""
        self.stats.held += 1
        self._room.clear()
        if not self._in_flight:
            asyncio.get_running_loop().call_later(self.spec.poll, self._room.set)

    async def _watch(
        self, provider: str, transport: BatchTransport, batch_id: str, wave: int = 0
    ) -> BatchProgress:
        """Poll a batch until it ended or failed, counted in flight meanwhile (wave 0: a batch
        of an earlier run)."""
        self._in_flight += 1
        try:
            return await poll(
                transport,
                batch_id,
                self.spec.poll,
                self.spec.poll_max,
                lambda progress: self.write_line(progress_line(wave, provider, progress)),
            )
        finally:
            self._in_flight -= 1
            self._room.set()  # a batch ended: held creates may try again

    # -- earlier runs' batches ---------------------------------------------------------------

    def adopt(self, entry: LedgerEntry, transport: BatchTransport) -> None:
        """Collect an uncollected batch of an earlier run (see `collect.EarlierBatches`)."""
        self.earlier.adopt(entry, self._api(entry.provider, transport))

    async def aclose(self) -> None:
        """Stop polling (the provider's batches run on; a rerun collects them), and keep the
        collected answers of earlier batches no call asked for."""
        for task in list(self._tasks):
            task.cancel()
        if self._gatherer is not None:
            self._gatherer.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.earlier.aclose()


def split(requests: Sequence[_Waiting], transport: BatchTransport) -> Iterator[list[_Waiting]]:
    """The wave's requests in batches within the transport's request and byte limits."""
    limits = transport.limits
    chunk: list[_Waiting] = []
    size = 0
    for waiting in requests:
        bytes_ = transport.size(transport.request(waiting.custom_id, waiting.body))
        if chunk and (len(chunk) >= limits.max_requests or size + bytes_ > limits.max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(waiting)
        size += bytes_
    if chunk:
        yield chunk


def _deliver(chunk: Sequence[_Waiting], results: Mapping[str, BatchResult]) -> None:
    """Each waiting call its result, by custom_id; a request with no line expired."""
    for waiting in chunk:
        result = results.get(waiting.custom_id) or BatchResult(
            waiting.custom_id, "expired", error="no result line for the request"
        )
        for future in waiting.futures:
            if not future.done():
                future.set_result(result)


def _fail(chunk: Sequence[_Waiting], exc: BaseException) -> None:
    for waiting in chunk:
        for future in waiting.futures:
            if not future.done():
                future.set_exception(exc)
