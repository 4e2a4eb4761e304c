"""One asyncio loop, in a thread, that runs every selected case while pytest walks the items."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from . import heap
from .jobs import Job
from .verdict import CaseResult

T = TypeVar("T")


_FORGOTTEN: concurrent.futures.Future[CaseResult] = concurrent.futures.Future()
_FORGOTTEN.cancel()  # a done placeholder: the job ran, and submit() must not start it again


class CaseCrashed(Exception):
    """User or plugin code raised a BaseException (e.g. SystemExit) the evaluator did not catch."""


class Scheduler:
    """Owns the event loop thread; items submit jobs and wait only for their own result."""

    def __init__(
        self,
        evaluate: Callable[[Job], Awaitable[CaseResult]],
        window: int = 256,
        freeze_when_warm: bool = False,
        lead: int | None = None,
    ):
        """`lead`: how many queued jobs may start ahead of the last one an item asked for
        (default: twice `window`)."""
        self.evaluate = evaluate
        self.window = window  # cases in progress at once: enough to keep every provider busy
        # Finished results wait for their items; pytest's thread shares the GIL with the loop
        # and can fall behind it, so without this bound a 10,000-case run held most results
        # at once (~11 KB each: the largest part of its peak memory).
        self.lead = lead if lead is not None else 2 * window
        # After the first case the SDKs are imported and their clients built: freeze those too.
        self.freeze_when_warm = freeze_when_warm
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hybridjudge-loop", daemon=True)
        self._futures: dict[str, concurrent.futures.Future[CaseResult]] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._queued: set[str] = set()
        self._order: dict[str, int] = {}  # queue position of each job submit_all queued
        self._fed = 0  # jobs the queue has started, in order
        self._claimed = 0  # queue positions up to the last job an item asked for
        self._running = 0
        self.total = 0
        self.finished = 0
        self._lock = threading.Lock()
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run_all_at_once(self, count: int) -> None:
        """Let `count` jobs run and start at once, whatever the items ask for (batch mode: a
        wave goes to the provider when every case in progress waits on it)."""
        self.window = max(self.window, count)
        self.lead = max(self.lead, count)

    def submit_all(self, jobs: Sequence[Job]) -> None:
        """Queue every selected job; at most `window` run at once, in order, the rest wait.

        Starting 10,000 cases at once would hold 10,000 coroutines and results in memory.
        """
        with self._lock:
            fresh = [
                j for j in jobs if j.nodeid not in self._queued and j.nodeid not in self._futures
            ]
            self._queue.extend(fresh)
            self._queued.update(j.nodeid for j in fresh)
            first = len(self._order)
            self._order.update((j.nodeid, first + i) for i, j in enumerate(fresh))
            self.total += len(fresh)
        self.loop.call_soon_threadsafe(self._feed)

    def submit(self, job: Job) -> concurrent.futures.Future[CaseResult]:
        """The job's future, starting it now if it is still queued (an item is waiting for it)."""
        with self._lock:
            position = self._order.get(job.nodeid)
            if position is not None and position >= self._claimed:
                self._claimed = position + 1  # the queue may run further ahead again
                if self._queue and not self.loop.is_closed():
                    self.loop.call_soon_threadsafe(self._feed)
            future = self._futures.get(job.nodeid)
            if future is None or future is _FORGOTTEN:  # never started, or run again (a rerun)
                if job.nodeid not in self._queued or future is _FORGOTTEN:
                    self.total += 1
                future = self._start(job)
            return future

    def result_if_finished(self, nodeid: str) -> CaseResult | None:
        """The job's result if it finished and no item has taken it yet, else None."""
        future = self._futures.get(nodeid)
        if future is None or future is _FORGOTTEN or not future.done() or future.cancelled():
            return None
        return future.result() if future.exception() is None else None

    def stop(self) -> None:
        """Start nothing more and cancel what is running (the session is over: nothing more may
        be paid for); finished results stay readable through `result_if_finished`."""
        with self._lock:
            self._queue.clear()
            running = [f for f in self._futures.values() if not f.done()]
        for future in running:
            future.cancel()

    def _feed(self) -> None:
        """Start queued jobs while fewer than `window` are running and the queue is fewer than
        `lead` jobs ahead of the items (on the loop thread)."""
        with self._lock:
            while (
                self._queue
                and self._running < self.window
                and self._fed - self._claimed < self.lead
            ):
                job = self._queue.popleft()
                self._fed += 1
                if job.nodeid not in self._futures:
                    self._start(job)

    def _start(self, job: Job) -> concurrent.futures.Future[CaseResult]:
        """Start one job; the caller holds the lock."""
        self._running += 1
        future = asyncio.run_coroutine_threadsafe(self._run_job(job), self.loop)
        self._futures[job.nodeid] = future
        return future

    async def _run_job(self, job: Job) -> CaseResult:
        try:
            return await self.evaluate(job)
        except (asyncio.CancelledError, GeneratorExit, Exception):
            raise  # GeneratorExit: the closed loop's pending case is collected, nothing to fail
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt raised on this thread by user or plugin code would
            # stop the loop, and every item would wait on it forever: fail this job instead
            # (Ctrl-C reaches the main thread, never this one)
            raise CaseCrashed(f"{job.nodeid}: {type(exc).__name__}: {exc}") from exc
        finally:
            with self._lock:
                self._running -= 1
                self.finished += 1
                warm = self.finished == 1 and self.freeze_when_warm
            if warm:
                heap.freeze()
            if not self.loop.is_closed():
                self._feed()

    def is_done(self, nodeid: str) -> bool:
        """Whether the job's result is ready (an item running now would not wait)."""
        future = self._futures.get(nodeid)
        return future is not None and future.done()

    @contextlib.contextmanager
    def paused(self, reach: float = 0.5, hold: float = 0.5) -> Iterator[None]:
        """Hold the loop at a safe point while the calling thread does a short burst of work.

        pytest's per-item work (capture, reports, terminal) and the loop's SDK calls share the
        GIL; side by side they hand it over at every system call (tens of thousands of context
        switches in a 1,000-case run, and ~5% of its time). Held for one item, each runs alone.
        Never deadlocks and never stalls calls for long: if the loop has not reached the hold
        within `reach` seconds the burst runs anyway, and the loop waits at most `hold` seconds.
        """
        holding, resume = threading.Event(), threading.Event()

        def wait_for_burst() -> None:
            holding.set()
            resume.wait(timeout=hold)

        try:
            self.loop.call_soon_threadsafe(wait_for_burst)
        except RuntimeError:  # the loop is closed
            yield
            return
        holding.wait(timeout=reach)
        try:
            yield
        finally:
            resume.set()

    def forget(self, nodeid: str) -> None:
        """Drop a finished job's future once its item holds the result (memory, at 10k cases)."""
        with self._lock:
            if (future := self._futures.get(nodeid)) is not None and future.done():
                self._futures[nodeid] = _FORGOTTEN

    @property
    def running(self) -> int:
        """Jobs started and not finished (the batch broker's waves wait for all of them)."""
        return self._running

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        return self.total - self.finished

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the loop (e.g. closing clients) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        """Cancel what is left and stop the loop thread."""
        for future in self._futures.values():
            future.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()  # else the garbage collector closes it, at some later test's time
