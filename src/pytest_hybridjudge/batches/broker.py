"""The broker: gathers a wave of provider calls into batches, polls them, hands each result back.

A call in batch mode (`ModelCaller` with `--judge-batch`) waits here instead of calling the
provider. Waves: the waiting requests are sent when every case in progress waits on the broker
(so all target calls go in wave 1, every judge call in wave 2), or after `gather` seconds with
no new request. Within a wave identical requests are sent once; batches are split at the
transport's limits. Results come back by `custom_id` and flow through the provider's reader, so
a batched answer is cached and judged exactly as a direct one.

Partial failure is typed (`transport.ResultKind`): expired and cancelled requests are sent again
(a new attempt, so a new `custom_id`) up to `resubmits` times, then the call fails with kind
`expired`; invalid, auth and billing errors fail the call with the provider's message; server
errors and malformed replies are retried in a later wave like a direct call's outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ProviderConfigError, ProviderError
from ..providers.base import Completion, MalformedResponse
from .site import BATCH_EXPIRED, CALL_SITE, CallSite
from .transport import (
    BatchProgress,
    BatchRequest,
    BatchResult,
    BatchTransport,
    BatchUnsupported,
    EnqueuedLimit,
    ResultKind,
    custom_id,
)

if TYPE_CHECKING:
    from ..config_batch import BatchSpec
    from .ledger import BatchLedger, LedgerEntry

TICK = 0.05  # seconds between two looks at whether every case waits on the broker
RESUBMITTED: tuple[ResultKind, ...] = ("expired", "canceled")
Read = Callable[[Mapping[str, Any]], Completion]
WriteLine = Callable[[str], None]


class BatchCapable(Protocol):
    """A provider whose calls can go through its batch API (OpenAI, Anthropic)."""

    name: str

    def batches(self) -> BatchTransport:
        """Its batch API, on the provider's own client."""
        ...

    def request_body(self, request: Any) -> dict[str, Any]:
        """The request body a direct call sends (no timeout, no stream)."""
        ...


@dataclass
class BatchStats:
    """What the run summary says of the batches."""

    waves: int = 0
    batches: int = 0  # batches created by this run
    adopted: int = 0  # uncollected batches of earlier runs this run collected
    held: int = 0  # creates refused for the enqueued-token limit, then held
    requests: int = 0  # requests sent in batches, resubmissions included
    deduplicated: int = 0  # calls answered by an identical request of the same wave
    resubmitted: int = 0
    results: dict[str, int] = field(default_factory=dict)  # ResultKind -> requests ended so

    def count(self, kind: str) -> None:
        """One more request ended as `kind` (`malformed` for a reply the reader refused)."""
        self.results[kind] = self.results.get(kind, 0) + 1


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
        # (provider, request key) -> the result an earlier run's batch holds; None: not there
        self._earlier: dict[tuple[str, str], asyncio.Future[BatchResult | None]] = {}

    @property
    def unfinished(self) -> int:
        """Batches created (or collected from an earlier run) that have not ended."""
        return self._in_flight

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
        self._transports.setdefault(provider, transport)
        site = CALL_SITE.get()
        attempt, resubmits, retries = 0, 0, 0
        with self._waiting_case(site.case):
            while True:
                result = await self._result(provider, site, attempt, request_key, body)
                attempt += 1
                if result.kind == "succeeded" and result.body is None:
                    result = BatchResult(result.custom_id, "server", error="no response body")
                if result.kind == "succeeded" and result.body is not None:
                    try:
                        completion = read(result.body)
                    except MalformedResponse as exc:
                        result = BatchResult(result.custom_id, "server", error=str(exc))
                        self.stats.count("malformed")
                    else:
                        self.stats.count("succeeded")
                        completion.requests = attempt
                        return completion
                else:
                    self.stats.count(result.kind)
                why = result.error or result.kind
                if result.kind in RESUBMITTED:
                    if resubmits >= self.spec.resubmits:
                        raise ProviderError(
                            f"{BATCH_EXPIRED}: {provider} {result.kind} the request "
                            f"{attempt} times ({why})",
                            requests=attempt,
                            kind="expired",
                        )
                    resubmits += 1
                    self.stats.resubmitted += 1
                elif result.kind == "server":
                    if retries >= self.retries:
                        raise ProviderError(
                            f"{provider}: batch request failed {attempt} times: {why}",
                            requests=attempt,
                            kind="outage",
                        )
                    retries += 1
                else:  # invalid, auth, billing: the provider's word, never retried
                    raise ProviderError(
                        f"{provider} refused the batch request ({result.kind}): {why}",
                        requests=attempt,
                    )

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
            self._transports.setdefault(provider, transport)
        earlier = self._earlier.get((provider, request_key))
        if earlier is not None:
            result = await asyncio.shield(earlier)
            if result is None or result.kind != "succeeded":  # a retry goes in a new batch
                self._earlier.pop((provider, request_key), None)
            if result is not None:
                return result
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
            said = _said(exc)
            results = {w.custom_id: BatchResult(w.custom_id, "server", error=said) for w in chunk}
        _deliver(chunk, results)

    async def _batch(
        self, provider: str, transport: BatchTransport, chunk: list[_Waiting], wave: int
    ) -> dict[str, BatchResult]:
        requests = [transport.request(w.custom_id, w.body) for w in chunk]
        while True:
            batch_id, key = await self._create(provider, transport, chunk, requests)
            self._in_flight += 1
            try:
                progress = await self._poll(provider, transport, batch_id, wave)
            finally:
                self._in_flight -= 1
                self._room.set()  # a batch ended: held creates may try again
            if progress.state == "failed" and progress.extra.get("enqueued_limit"):
                self._hold()
                if self.ledger is not None:
                    self.ledger.collected(key)  # nothing in it ran: the requests go again
                continue
            results = await transport.results(batch_id) if progress.state == "ended" else []
            if self.ledger is not None:
                self.ledger.ended(key)
            return {r.custom_id: r for r in results}

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

    async def _poll(
        self, provider: str, transport: BatchTransport, batch_id: str, wave: int
    ) -> BatchProgress:
        """Ask for the batch's state, backing off from `poll` seconds up to `poll_max`, with a
        progress line whenever its counts change."""
        wait, shown = self.spec.poll, None
        while True:
            progress = await transport.progress(batch_id)
            counts = (progress.state, progress.processing, progress.succeeded, progress.errored)
            if counts != shown:
                shown = counts
                self.write_line(progress_line(wave, provider, progress))
            if progress.done:
                return progress
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.spec.poll_max)

    # -- earlier runs' batches ---------------------------------------------------------------

    def adopt(self, entry: LedgerEntry, transport: BatchTransport) -> None:
        """Collect an uncollected batch of an earlier run: calls for its requests wait for it
        instead of being sent again (`find` looks up a batch whose id was never saved)."""
        loop = asyncio.get_running_loop()
        self._transports.setdefault(entry.provider, transport)
        futures: dict[str, asyncio.Future[BatchResult | None]] = {}
        for cid, key in entry.requests:
            future = self._earlier.get((entry.provider, key))
            if future is None:
                future = self._earlier[(entry.provider, key)] = loop.create_future()
            futures[cid] = future
        task = loop.create_task(self._collect(entry, transport, futures))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _collect(
        self,
        entry: LedgerEntry,
        transport: BatchTransport,
        futures: dict[str, asyncio.Future[BatchResult | None]],
    ) -> None:
        results: dict[str, BatchResult] = {}
        try:
            batch_id = entry.batch_id or await transport.find(entry.key)
            if batch_id is not None:
                if entry.batch_id is None and self.ledger is not None:
                    self.ledger.created(entry.key, batch_id, path=entry.path)
                self.stats.adopted += 1
                self._in_flight += 1
                try:
                    progress = await self._poll(entry.provider, transport, batch_id, 0)
                finally:
                    self._in_flight -= 1
                    self._room.set()
                if progress.state == "ended":
                    results = {r.custom_id: r for r in await transport.results(batch_id)}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the batch cannot be read: its calls are sent again
            self.write_line(f"[hybridjudge] batch {entry.batch_id or entry.key}: {_said(exc)}")
        for cid, future in futures.items():
            if not future.done():  # never created, failed or lost: None, the call goes anew
                future.set_result(results.get(cid))
        if self.ledger is not None:
            self.ledger.ended(entry.key, path=entry.path)

    async def aclose(self) -> None:
        """Stop polling (the provider's batches run on; a rerun collects them)."""
        for task in list(self._tasks):
            task.cancel()
        if self._gatherer is not None:
            self._gatherer.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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


def progress_line(wave: int, provider: str, progress: BatchProgress) -> str:
    """`[hybridjudge] batch wave 2 (openai batch_1): 3 processing, 5 succeeded, ...`."""
    which = f"wave {wave}" if wave else "of an earlier run"
    return (
        f"[hybridjudge] batch {which} ({provider} {progress.batch_id}, {progress.state}): "
        f"{progress.processing} processing, {progress.succeeded} succeeded, "
        f"{progress.errored} errored, {progress.expired + progress.canceled} expired"
    )


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


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
