"""`--judge-batch` in one pytest process: the run's broker and ledger, and the xdist spool.

A plain process creates the provider batches itself: one `BatchBroker` and the write-ahead
`BatchLedger` in the run folder. Under xdist only the controller creates them: each worker's
broker spools its waves to the run folder (batches/spool.py) and keeps telling the controller
whether it has cases in progress; the controller's `SpoolDesk` (batches/spool_desk.py) sends
every worker's spooled requests in one wave through its broker and ledger. Before the first
case, the batches an earlier, interrupted run submitted are adopted, so none is paid for twice.
The session imports this module only in batch mode.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .batches.broker import BatchBroker
from .batches.ledger import BatchLedger, uncollected
from .batches.progress import still_running
from .batches.spool import (
    TICK,
    SpoolLedger,
    SpoolTransport,
    report_state,
    spool_folder,
    write_state,
)
from .batches.spool_desk import SpoolDesk
from .errors import ProviderConfigError

if TYPE_CHECKING:
    from .batches.transport import BatchTransport
    from .calls import ModelCaller
    from .config import HybridJudgeConfig
    from .runs import RunStore
    from .scheduler import Scheduler


@dataclass
class SessionBatches:
    """The batch side of a session (`JudgeSession.batches`): a plain process's or the xdist
    controller's broker with its ledger (and the controller's desk), or a worker's spool."""

    broker: BatchBroker
    scheduler: Scheduler
    caller: ModelCaller
    store: RunStore
    ledger: BatchLedger | None = None  # the batches' write-ahead record, in the run folder
    spool: Path | None = None  # on an xdist worker: its spool folder
    spool_state: concurrent.futures.Future[None] | None = None  # the worker's state reports
    spool_desk: SpoolDesk | None = None  # on the xdist controller

    @classmethod
    def start(
        cls,
        settings: HybridJudgeConfig,
        scheduler: Scheduler,
        caller: ModelCaller,
        store: RunStore,
        *,
        run_dir: Path | None,
        worker: tuple[str, Path] | None,
        workers: int,
        write_line: Callable[[str], None],
    ) -> SessionBatches:
        """The broker, put in front of the caller: a worker's (`worker`: its id and the run
        folder the controller named) spools to the controller; the recording process's
        (`run_dir`, its run folder) keeps the ledger there, and with `workers` (the xdist
        controller) starts the desk, after adopting the earlier runs' batches."""

        if worker is not None:
            return cls._spooling(settings, scheduler, caller, store, *worker)
        ledger = BatchLedger(run_dir) if run_dir is not None else None
        broker = BatchBroker(
            settings.batch,
            # the controller's waves go when its desk says (every worker waits): at once
            running=(lambda: 0) if workers else (lambda: scheduler.running),
            retries=settings.retries,
            ledger=ledger,
            write_line=write_line,
        )
        caller.use_batches(broker)
        batches = cls(broker, scheduler, caller, store, ledger=ledger)
        if workers and run_dir is not None:
            batches._start_desk(run_dir, workers, settings.batch.gather)
        return batches

    @classmethod
    def _spooling(
        cls,
        settings: HybridJudgeConfig,
        scheduler: Scheduler,
        caller: ModelCaller,
        store: RunStore,
        workerid: str,
        run_dir: Path,
    ) -> SessionBatches:
        """An xdist worker: its broker's batches go to the controller through the spool."""

        folder = spool_folder(run_dir) / workerid
        folder.mkdir(parents=True, exist_ok=True)
        broker = BatchBroker(
            # the controller's answer is a local file: looked for often
            settings.batch.model_copy(update={"poll": TICK, "poll_max": 10 * TICK}),
            running=lambda: scheduler.running,
            retries=settings.retries,
            ledger=SpoolLedger(folder),
            write_line=lambda line: None,  # the controller prints the provider batches' lines
        )
        caller.use_batches(broker, transport=SpoolTransport(folder))
        return cls(broker, scheduler, caller, store, spool=folder)

    def _start_desk(self, run_dir: Path, workers: int, gather: float) -> None:
        """The xdist controller: the desk that batches the workers' spooled requests, on the
        controller's loop (it runs no case), after the earlier runs' batches are adopted."""

        def transport_of(provider: str) -> BatchTransport:
            transport = self._transport_of(provider)
            if transport is None:
                raise ProviderConfigError(f"{provider}: no batch API in this run's providers")
            return transport

        desk = self.spool_desk = SpoolDesk(
            spool_folder(run_dir), self.broker, transport_of, workers, gather
        )
        self.scheduler.run(self._collect_earlier_batches(), timeout=60)
        self.scheduler.run(_started(desk), timeout=10)

    def before_cases(self, cases: int) -> None:
        """Before the selected cases start: a wave goes when every case waits on it, so every
        one is in progress at once; a plain process adopts the earlier runs' batches here (the
        controller's desk did at start, a worker's spool leaves it to the controller)."""
        self.scheduler.run_all_at_once(cases)
        if self.spool is None and self.spool_desk is None:
            self.scheduler.run(self._collect_earlier_batches(), timeout=60)

    def report_state(self) -> None:
        """An xdist worker: keep telling the controller's desk whether it has cases in progress
        (a wave waits for busy workers only)."""
        if self.spool is None:
            return

        scheduler = self.scheduler
        self.spool_state = asyncio.run_coroutine_threadsafe(
            report_state(self.spool, lambda: scheduler.pending), scheduler.loop
        )

    def worker_down(self, worker: str) -> None:
        """An xdist worker is gone (finished or crashed): no wave waits for it."""
        if self.spool_desk is not None:
            self.spool_desk.worker_down(worker)

    def unfinished_lines(self, run_id: str) -> list[str]:
        """After an interrupted batch run: how to collect, or cancel, what is still running."""
        if not self.broker.unfinished:
            return []
        return [still_running(self.broker.unfinished, run_id)]

    def close(self) -> None:
        """Stop polling (the batches run on at the provider; a rerun collects them), tell the
        controller a worker is idle, close the desk and the ledger. Before the loop stops."""
        if self.spool_state is not None:
            self.spool_state.cancel()
        if self.spool is not None:
            with contextlib.suppress(OSError):
                write_state(self.spool, idle=True)
        if self.spool_desk is not None:
            with contextlib.suppress(Exception):
                self.scheduler.run(self.spool_desk.aclose(), timeout=10)
        with contextlib.suppress(Exception):
            self.scheduler.run(self.broker.aclose(), timeout=10)
        if self.ledger is not None:
            self.ledger.close()

    def _transport_of(self, provider: str) -> BatchTransport | None:
        """The batch transport of one of this run's providers, or None (none, or no batch API)."""
        caller = self.caller
        capable = (
            caller.batched(caller.providers[provider]) if provider in caller.providers else None
        )
        return caller.transport(capable) if capable is not None else None

    async def _collect_earlier_batches(self) -> None:
        """Calls whose requests an earlier, interrupted run submitted wait for its batches."""
        for entry in uncollected(self.store.folder):
            transport = self._transport_of(entry.provider)
            if transport is not None:  # else not this run's: `hybridjudge batch cancel` ends it
                self.broker.adopt(entry, transport)


async def _started(desk: SpoolDesk) -> None:
    desk.start()
