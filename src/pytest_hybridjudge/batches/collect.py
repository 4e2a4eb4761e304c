"""Collecting the batches an earlier, interrupted run submitted and never collected.

A rerun adopts each uncollected batch its ledger lists (`ledger.uncollected`): a call whose
request the batch holds waits for that batch instead of being sent again. Once the batch ended,
every succeeded answer in it is kept in the completion cache, asked for by this run or not (a
rerun with `-k` asks for fewer), so no paid answer is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .stats import BatchStats
from .transport import BatchProgress, BatchResult, BatchTransport, said

if TYPE_CHECKING:
    from .ledger import BatchLedger, LedgerEntry

# (provider, batch API, batch id) -> the batch once it ended or failed, watched as the broker's own
Watch = Callable[[str, BatchTransport, str], Awaitable[BatchProgress]]
# (provider, request cache key, a succeeded result's body): keep the answer in the cache
Keep = Callable[[str, str, BatchResult], bool]
WriteLine = Callable[[str], None]


class EarlierBatches:
    """The earlier runs' batches this run collects, and the answers they hold by request."""

    def __init__(
        self, watch: Watch, stats: BatchStats, ledger: BatchLedger | None, write_line: WriteLine
    ):
        self.watch, self.stats, self.ledger, self.write_line = watch, stats, ledger, write_line
        self.keep: Keep | None = None  # set by the caller that owns the cache
        # (provider, request key) -> the result an earlier batch holds; None: not there
        self._earlier: dict[tuple[str, str], asyncio.Future[BatchResult | None]] = {}
        self._claimed: set[tuple[str, str]] = set()  # asked for by a call of this run
        # (provider, request key) -> earlier batches holding it that have not said yet, and
        # the last failed result one of them said (a retry in a later wave may have succeeded)
        self._holding: dict[tuple[str, str], int] = {}
        self._failed: dict[tuple[str, str], BatchResult] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def adopt(self, entry: LedgerEntry, transport: BatchTransport) -> None:
        """Collect an uncollected batch of an earlier run: calls for its requests wait for it
        instead of being sent again (`find` looks up a batch whose id was never saved)."""
        loop = asyncio.get_running_loop()
        futures: dict[str, tuple[str, asyncio.Future[BatchResult | None]]] = {}
        for cid, key in entry.requests:
            slot = (entry.provider, key)
            future = self._earlier.get(slot)
            if future is None:
                future = self._earlier[slot] = loop.create_future()
            self._holding[slot] = self._holding.get(slot, 0) + 1
            futures[cid] = (key, future)
        task = loop.create_task(self._collect(entry, transport, futures))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def result(self, provider: str, request_key: str) -> BatchResult | None:
        """What an earlier batch answered this request, once it ended; None when no earlier
        batch holds it (or it was lost). A result that did not succeed is handed out once:
        the retry goes in a new batch."""
        earlier = self._earlier.get((provider, request_key))
        if earlier is None:
            return None
        self._claimed.add((provider, request_key))
        result = await asyncio.shield(earlier)
        if result is None or result.kind != "succeeded":
            self._earlier.pop((provider, request_key), None)
        return result

    async def _collect(
        self,
        entry: LedgerEntry,
        transport: BatchTransport,
        futures: dict[str, tuple[str, asyncio.Future[BatchResult | None]]],
    ) -> None:
        results: dict[str, BatchResult] = {}
        read = False
        try:
            batch_id = entry.batch_id or await transport.find(entry.key)
            if batch_id is not None:
                if entry.batch_id is None and self.ledger is not None:
                    self.ledger.created(entry.key, batch_id, path=entry.path)
                self.stats.adopted += 1
                progress = await self.watch(entry.provider, transport, batch_id)
                if progress.state == "ended":
                    lines = await transport.results(batch_id)
                    results = {r.custom_id: r for r in lines}
                    unknown = len(results.keys() - futures.keys())
                    if unknown:
                        self.write_line(unknown_lines(entry.provider, batch_id, unknown))
                read = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the batch cannot be read now: its calls are sent again
            what = entry.batch_id or f"with key {entry.key}"
            self.write_line(
                f"[hybridjudge] {entry.provider} batch {what} of run {entry.run_id} could not be "
                f"collected ({said(exc)}); its requests are sent again as this run asks for them"
            )
        for cid, (key, future) in futures.items():
            self._said((entry.provider, key), future, results.get(cid))
        if read and self.ledger is not None:
            self.ledger.ended(entry.key, path=entry.path)

    def _said(
        self,
        slot: tuple[str, str],
        future: asyncio.Future[BatchResult | None],
        result: BatchResult | None,
    ) -> None:
        """One earlier batch's result for a request: its answer as soon as one batch holding
        the request succeeded (the killed run may have retried it in a later wave); once every
        such batch said, the last failure (None: never created or lost, the call goes anew)."""
        self._holding[slot] -= 1
        if result is not None and result.kind != "succeeded":
            self._failed[slot] = result
        if future.done():
            return
        if result is not None and result.kind == "succeeded":
            future.set_result(result)
        elif not self._holding[slot]:
            future.set_result(self._failed.get(slot))

    def keep_unclaimed(self) -> int:
        """Keep in the cache every succeeded answer of a collected batch that no call of this
        run asked for (a rerun with `-k` asks for fewer); how many were kept."""
        kept = 0
        for (provider, key), future in self._earlier.items():
            if (provider, key) in self._claimed or not future.done() or future.cancelled():
                continue
            result = future.result()
            if result is not None and result.kind == "succeeded" and self.keep is not None:
                kept += self.keep(provider, key, result)
        self.stats.kept += kept
        if kept:
            self.write_line(
                f"[hybridjudge] {kept} paid answer{'s' if kept > 1 else ''} of earlier batches "
                "that no case of this run asked for kept in the cache for the run that does"
            )
        return kept

    async def aclose(self) -> None:
        """Stop collecting (an unfinished batch stays uncollected: the next run collects it),
        then keep the answers no call asked for."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.keep_unclaimed()


def unknown_lines(provider: str, batch_id: str, count: int) -> str:
    """The note for result lines whose custom_id no request of the batch carries."""
    return (
        f"[hybridjudge] {provider} batch {batch_id} returned {count} result "
        f"line{'s' if count > 1 else ''} for requests it was not sent (unknown custom_id); "
        "ignored: every request of the batch is answered by its own line or sent again"
    )
