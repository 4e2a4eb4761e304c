"""One `pytest --judge` session in one pytest process: its run started, its cases scheduled.

`JudgeSession.configure` is called once per pytest process and asks there, once, whether this
process is an xdist worker. A worker runs its cases (xdist_worker.py: the groups it gets started
ahead, each result written to its part of the run folder); its test reports then carry only the
outcome. The controller (or a plain process) owns the `Recorder` (recorder.py), which takes the
results from the reports and the workers' parts and writes the run's files. What a run is set
up from is read and checked in session_setup.py; `--judge-batch` is wired in session_batches.py.
Heavy modules are imported when a run starts, so a plain `pytest` run costs nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .configfile import ConfigError, find_config_table
from .paths import configured
from .recorder import IN_PART, PAYLOAD
from .session_setup import refuse_space_separated_paths

if TYPE_CHECKING:
    from .cache import CompletionCache
    from .calls import ModelCaller
    from .config import HybridJudgeConfig
    from .gate.run import Baseline
    from .jobs import Job
    from .recorder import Recorder
    from .review.decisions import ReviewDesk
    from .rubric import RubricLibrary
    from .runs import RunStore
    from .scheduler import Scheduler
    from .session_batches import SessionBatches
    from .verdict import CaseResult
    from .xdist_worker import Evaluate, WorkerShare

PROGRESS_EVERY = 30.0  # seconds an item may wait before a progress line is printed


@dataclass
class JudgeSession:
    """Per-process state of a hybridjudge project's pytest session, kept on `config.stash`."""

    config: pytest.Config
    settings: HybridJudgeConfig
    rootdir: Path
    rubrics: RubricLibrary
    enabled: bool  # cases run (--judge, not a dry run or --collect-only)
    dry_run: bool
    collects: bool  # gold files become items (the project has a table, or --judge was given)
    is_worker: bool
    jobs: dict[str, Job] = field(default_factory=dict)
    selected: list[Job] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)
    case_ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (file, place)
    cache: CompletionCache | None = None
    caller: ModelCaller | None = None
    scheduler: Scheduler | None = None
    recorder: Recorder | None = None
    ran_cases: bool = False  # this process ran the cases (not an xdist controller)
    baseline: Baseline | None = None  # what the gate compares this run with, if anything
    store: RunStore | None = None  # the runs folder, once a run starts
    desk: ReviewDesk | None = None  # the reviewers' decisions, read once for the run and gate
    share: WorkerShare | None = None  # on an xdist worker: its cases and its part of the run
    batches: SessionBatches | None = None  # `--judge-batch` (session_batches.py)

    @classmethod
    def configure(cls, config: pytest.Config) -> JudgeSession | None:
        """The session for this pytest process, or None when this is no hybridjudge project."""
        refuse_space_separated_paths(config)
        rootdir = Path(config.rootpath)
        judge, dry_run = bool(config.getoption("judge")), bool(config.getoption("judge_dry_run"))
        try:
            table, source = find_config_table(rootdir)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        if not table and not (judge or dry_run):
            return None  # not a hybridjudge project: a plain run imports nothing more
        if (
            dry_run
            and config.getoption("numprocesses", None)
            and not hasattr(config, "workerinput")
        ):
            raise pytest.UsageError(
                "hybridjudge: --judge-dry-run calls nothing and needs no workers: drop -n "
                "(under xdist the controller sees no cases to estimate)"
            )
        from .rubric import RubricLibrary
        from .session_setup import read_settings

        settings = read_settings(config, table, source, rootdir)
        session = cls(
            config=config,
            settings=settings,
            rootdir=rootdir,
            rubrics=RubricLibrary(
                configured(rootdir, settings.rubrics), settings.review.tier_names
            ),
            # a dry run collects and skips (the summary estimates); --collect-only never runs
            enabled=judge and not dry_run and not config.getoption("collectonly"),
            dry_run=dry_run,
            collects=bool(table) or judge,
            is_worker=hasattr(config, "workerinput"),
        )
        if session.enabled:
            session._start()
        return session

    def _start(self) -> None:
        """Build cache, providers, app callables and the loop; problems stop with one line."""
        from .cost import budget_share
        from .review.decisions import ReviewDesk
        from .runs import RunStore
        from .scheduler import Scheduler
        from .session_setup import build_evaluator, build_report, check_paths, gate_baseline

        store = self.store = RunStore.configured(self.rootdir, self.settings)
        check_paths(self.settings, self.rootdir, store, self.config, records=not self.is_worker)
        self.baseline = gate_baseline(self.settings, store, self.config)
        share = budget_share(getattr(self.config, "workerinput", None))  # xdist: limit / workers
        self.desk = ReviewDesk.for_project(self.rootdir, self.settings, store)
        evaluator = build_evaluator(self.settings, self.rootdir, self.desk, self.baseline, share)
        self.caller, self.cache = evaluator.caller, evaluator.caller.cache
        evaluate: Evaluate = evaluator.evaluate
        if self.is_worker:
            from .xdist_worker import WorkerShare

            self.share = WorkerShare.open(store, getattr(self.config, "workerinput", {}))
            evaluate = self.share.evaluating(evaluate)
        self.scheduler = Scheduler(evaluate, window=self._window(), freeze_when_warm=True)
        if not self.is_worker:
            from .recorder import Recorder

            self.recorder = Recorder(self, build_report(self.settings, store, self.config))
            self.recorder.report.resolved = self.desk.decided_items()
            self.recorder.report.lead_times = self.desk.lead_times()  # measured review minutes
        if self.settings.batch.enabled:
            self._start_batches()

    def _start_batches(self) -> None:
        """`--judge-batch`: under xdist only the controller creates provider batches; each
        worker spools its waves to it (session_batches.py)."""
        from .session_batches import SessionBatches
        from .session_setup import xdist_workers

        assert self.scheduler is not None and self.caller is not None and self.store is not None
        share, recorder = self.share, self.recorder
        self.batches = SessionBatches.start(
            self.settings,
            self.scheduler,
            self.caller,
            self.store,
            run_dir=recorder.report.paths.run_dir if recorder is not None else None,
            worker=(share.workerid, share.run_dir) if share and share.run_dir else None,
            workers=xdist_workers(self.config),
            write_line=self.write_line,
        )

    def worker_down(self, worker: str) -> None:
        """An xdist worker is gone (finished or crashed): no batch wave waits for it."""
        if self.batches is not None:
            self.batches.worker_down(worker)

    def is_gold(self, file_path: Path) -> bool:
        """Whether `file_path` is one of this project's gold files (`goldset.is_gold`)."""
        from .goldset import is_gold

        return self.collects and is_gold(self.settings, self.rootdir, file_path)

    def _window(self) -> int:
        """Cases in progress at once: enough to keep every provider busy."""
        settings = self.settings
        providers = max(1, len({j.model.split("/")[0] for j in settings.judges} | {"target"}))
        return max(256, 4 * settings.concurrency * providers)

    def close(self) -> None:
        """Stop polling batches (they run on at the provider), close provider clients on the
        loop, stop it, close the cache and a worker's part."""
        if self.scheduler is not None:
            if self.batches is not None:
                self.batches.close()
            if self.caller is not None:
                with contextlib.suppress(Exception):  # never mask the run's own outcome
                    self.scheduler.run(self.caller.aclose(), timeout=10)
            self.scheduler.close()
            self.scheduler = None
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        if self.share is not None:
            self.share.close()

    # -- scheduling -------------------------------------------------------------------------

    def schedule(self, session: pytest.Session) -> None:
        """Queue the selected cases before the first item runs (the scheduler starts them in
        order, a window at a time, no further than a lead ahead of the items). An xdist worker
        queues only the cases of the groups it knows it gets; any other case starts when its
        item asks for it (`result_of`)."""
        from . import heap

        self.selected = [self.jobs[i.nodeid] for i in session.items if i.nodeid in self.jobs]
        if self.scheduler is None:
            return
        if session.testsfailed and not self.config.option.continue_on_collection_errors:
            self._report_spool_state()  # idle: the controller's waves need not wait for it
            return  # pytest is about to stop: nothing may be paid for cases that will not run
        heap.freeze()  # modules, items and jobs live until the end (see heap.py)
        if self.batches is not None:
            self.batches.before_cases(len(self.selected))
        if self.share is not None:  # an xdist worker: the cases it knows it gets (xdist_worker)
            ahead = self.share.ahead([item.nodeid for item in session.items])
            self.scheduler.submit_all([self.jobs[n] for n in ahead if n in self.jobs])
            self._report_spool_state()
            return  # the controller prints the start line and records the run
        self.scheduler.submit_all(self.selected)
        self.ran_cases = bool(self.selected)
        if self.selected and self.config.get_verbosity() >= 0:
            settings = self.settings
            judges = ", ".join(j.label for j in settings.judges) or "none"
            targets = ", ".join(t.label for t in settings.targets)
            against = f"; baseline {self.baseline.label}" if self.baseline is not None else ""
            self.write_line(
                f"[hybridjudge] {len(self.selected)} cases started: target {targets}; judges "
                f"{judges}; concurrency {settings.concurrency}; cache {settings.cache}{against}"
            )

    def _report_spool_state(self) -> None:
        """An xdist worker in batch mode: keep telling the controller's desk whether it has
        cases in progress."""
        if self.batches is not None:
            self.batches.report_state()

    def result_of(self, nodeid: str) -> CaseResult:
        """Wait for one case's result, with a progress line every PROGRESS_EVERY seconds."""
        assert self.scheduler is not None
        if self.share is not None and (group := self.share.unannounced_group(nodeid)):
            self.scheduler.submit_all([self.jobs[n] for n in group if n in self.jobs])
        future = self.scheduler.submit(self.jobs[nodeid])
        waited, last_note = 0.0, 0.0
        while True:
            try:
                result = future.result(timeout=1.0)
                break
            except TimeoutError:
                waited += 1.0
                if waited - last_note >= PROGRESS_EVERY:
                    last_note = waited
                    self._note_progress(nodeid)
        self.scheduler.forget(nodeid)  # the item holds the result from here on
        return result

    @contextlib.contextmanager
    def loop_held_for(self, nodeid: str) -> Iterator[None]:
        """Hold the loop while a ready item runs its protocol, if the loop has cases to run
        (holding an idle loop, as in a cached run, only costs switches)."""
        scheduler = self.scheduler
        if scheduler is not None and scheduler.pending and scheduler.is_done(nodeid):
            with scheduler.paused():
                yield
        else:
            yield

    def _note_progress(self, nodeid: str) -> None:
        if self.scheduler is None or self.caller is None:
            return
        stats = self.caller.stats
        self.write_line(
            f"[hybridjudge] waiting on {nodeid}: {self.scheduler.finished}/"
            f"{self.scheduler.total} cases done; {stats.in_flight} calls in flight, "
            f"{stats.finished} finished, {stats.retries} retries, {stats.cache_hits} cache hits"
        )

    def write_line(self, line: str) -> None:
        """A line on the terminal, past output capture (which would swallow it)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(line)

    def batch_lines(self) -> list[str]:
        """After an interrupted batch run: how to collect, or cancel, what is still running."""
        if self.batches is None:
            return []
        return self.batches.unfinished_lines(
            self.recorder.report.run_id if self.recorder is not None else "RUN"
        )

    # -- the result's journey to the controller ----------------------------------------------

    def attach(self, report: pytest.TestReport, result: CaseResult) -> None:
        """Put the result on the call report: the object in process; from a worker, only a
        mark when its part holds the result (the controller reads the parts once), else JSON."""
        report.hybridjudge_outcome = result.outcome  # type: ignore[attr-defined]
        report.hybridjudge_by_review = bool(result.resolved_by)  # type: ignore[attr-defined]
        if self.share is not None and result.nodeid and self.share.holds(result.nodeid):
            setattr(report, IN_PART, True)
        else:
            payload = result.model_dump(mode="json") if self.is_worker else result
            setattr(report, PAYLOAD, payload)

    def dry_run_lines(self) -> list[str]:
        """The `--judge-dry-run` estimate of the selected cases."""
        from .estimate import estimate_lines, estimate_run

        return estimate_lines(estimate_run(self.selected, self.settings))


SESSION = pytest.StashKey[JudgeSession]()
