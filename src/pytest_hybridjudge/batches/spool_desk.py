"""The xdist controller's batch desk: every worker's spooled requests in one wave of batches.

Under `pytest -n N --judge-batch` only the controller talks to the providers' batch APIs. Its
desk, a task on the controller's own event loop (its scheduler's, idle under xdist), takes each
whole `<key>.requests.json` a worker spooled (spool.py) and holds it until the wave can go:
when every live worker has spooled its wave, waits on one in flight, or is idle; or after
`gather` seconds with nothing new (longer while a worker has not said yet whether it has cases:
it may still be collecting). Then the held requests go to the run's one broker (broker.py:
the write-ahead ledger, the split at the provider's limits, the enqueued-token hold, polling,
and the batches an earlier run left, collected instead of paid again), and each worker's
results are written back by custom_id. A crashed worker's spooled requests are sent and
recorded in the ledger all the same. The worker's broker decides what a result means
(resubmitting an expired request, the typed errors), so a run makes the batches `-n 0` makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ProviderConfigError
from .broker import BatchBroker
from .spool import REQUESTS, TICK, SpooledWave, read_state, read_wave, write_results
from .transport import BatchResult, BatchTransport

STARTUP = 30.0  # seconds a wave waits for a worker that has not yet said whether it has cases

TransportOf = Callable[[str], BatchTransport]


class SpoolDesk:
    """Gathers the workers' spooled batches into the run's waves (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        broker: BatchBroker,
        transport_of: TransportOf,
        workers: int,
        gather: float,
    ):
        """`folder`: the run's spool; `transport_of`: a provider's real batch API by its name;
        `workers`: how many xdist workers the run starts (`gw0` ...)."""
        self.folder, self.broker, self.transport_of = folder, broker, transport_of
        self.gather = gather
        self._expected = {f"gw{i}" for i in range(workers)}
        self._down: set[str] = set()
        self._taken: set[tuple[str, str]] = set()  # (worker, key) of every wave taken
        self._held: list[SpooledWave] = []
        self._answering: dict[str, int] = {}  # worker -> its batches sent, not answered yet
        # a crashed worker's answers, by (provider, request cache key): its replacement's
        # requests for the same calls take them instead of paying again
        self._orphans: dict[tuple[str, str], BatchResult] = {}
        self._last_spool = time.monotonic()
        self._serving: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def worker_down(self, worker: str) -> None:
        """xdist says `worker` is gone: no wave waits for it (from the pytest thread)."""
        self._down.add(worker)

    def start(self) -> None:
        """Serve on the running loop until `aclose`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._serving = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            self._take_spooled()
            if self._held and self._wave_may_go():
                await self._send_held()
            await asyncio.sleep(TICK)

    def _workers(self) -> set[str]:
        seen = {p.name for p in self.folder.iterdir() if p.is_dir()}
        return (self._expected | seen) - self._down

    def _take_spooled(self) -> None:
        for path in sorted(self.folder.glob(f"*/*{REQUESTS}")):
            key = path.name.removesuffix(REQUESTS)
            if (path.parent.name, key) in self._taken:
                continue
            self._taken.add((path.parent.name, key))
            self._held.append(read_wave(path))
            self._last_spool = time.monotonic()

    def _wave_may_go(self) -> bool:
        """Every live worker waits (spooled, or waits on a batch in flight) or is idle; else
        after `gather` quiet seconds (STARTUP while a worker has not said)."""
        held = {wave.worker for wave in self._held}
        busy = [
            worker
            for worker in self._workers()
            if worker not in held
            and not self._answering.get(worker)
            and read_state(self.folder / worker) is not True
        ]
        if not busy:
            return True
        unsaid = any(read_state(self.folder / worker) is None for worker in busy)
        quiet = time.monotonic() - self._last_spool
        return quiet >= (max(self.gather, STARTUP) if unsaid else self.gather)

    async def _send_held(self) -> None:
        """Hand every held request to the broker at once, then send them as one wave."""
        loop = asyncio.get_running_loop()
        waves, self._held = self._held, []
        for wave in waves:
            self._answering[wave.worker] = self._answering.get(wave.worker, 0) + 1
            try:
                transport = self.transport_of(wave.provider)
            except ProviderConfigError as exc:
                self._answered(wave, [], str(exc))
                continue
            asks = [
                self._ask(wave.provider, cid, rkey, body, transport)
                for cid, rkey, body in wave.requests
            ]
            self._keep(loop.create_task(self._answer(wave, asks)))
        await asyncio.sleep(0)  # each request joins the wave (or waits on an earlier batch)
        self.broker.flush()

    def _ask(
        self,
        provider: str,
        cid: str,
        request_key: str,
        body: Mapping[str, Any],
        transport: BatchTransport,
    ) -> asyncio.Future[BatchResult]:
        loop = asyncio.get_running_loop()
        kept = self._orphans.pop((provider, request_key), None)
        if kept is None:
            return loop.create_task(
                self.broker.request(provider, cid, request_key, body, transport)
            )
        future: asyncio.Future[BatchResult] = loop.create_future()
        future.set_result(kept)
        return future

    async def _answer(self, wave: SpooledWave, asks: list[asyncio.Future[BatchResult]]) -> None:
        """Write the worker's results back once every request of its batch has one."""
        outcomes = await asyncio.gather(*asks, return_exceptions=True)
        results, unsupported = [], None
        for (cid, _, _), outcome in zip(wave.requests, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, ProviderConfigError):
                unsupported = str(outcome)
            elif isinstance(outcome, BaseException):
                error = f"{type(outcome).__name__}: {outcome}"[:300]
                results.append(BatchResult(cid, "server", error=error))
            else:  # a request deduplicated within the wave carries another's custom_id
                results.append(BatchResult(cid, outcome.kind, outcome.body, outcome.error))
        self._answered(wave, results, unsupported)

    def _answered(
        self, wave: SpooledWave, results: list[BatchResult], unsupported: str | None
    ) -> None:
        self._answering[wave.worker] -= 1
        if wave.worker in self._down:  # no one reads it: kept for the worker's replacement
            for (_, rkey, _), result in zip(wave.requests, results, strict=False):
                if result.kind == "succeeded":
                    self._orphans[(wave.provider, rkey)] = result
            return
        with contextlib.suppress(OSError):  # the worker's broker then retries in a later wave
            write_results(self.folder / wave.worker, wave.key, results, unsupported)

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop serving (the broker's batches are the broker's to close) and drop the spool."""
        for task in [self._serving, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._serving is not None:
            await asyncio.gather(self._serving, return_exceptions=True)
        shutil.rmtree(self.folder, ignore_errors=True)
