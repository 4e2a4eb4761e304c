"""One `pytest --judge` session: set-up, scheduling, the xdist payload, and the run's record.

`JudgeSession.configure` is called once per pytest process. Whether this process is an xdist
worker is asked there, once: a worker runs its cases (xdist_worker.py: started ahead, written
to its part of the run folder) and sends each result on its test report;
the controller (or a plain process) also owns the `Recorder` (recorder.py), which writes the
run's files.
Heavy modules are imported when a run starts, so a plain `pytest` run costs nothing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .configfile import ConfigError, find_config_table
from .paths import configured
from .recorder import IN_PART, PAYLOAD

if TYPE_CHECKING:
    from .batches.broker import BatchBroker
    from .batches.ledger import BatchLedger
    from .batches.spool_desk import SpoolDesk
    from .batches.transport import BatchTransport
    from .cache import CompletionCache
    from .calls import ModelCaller
    from .config import HybridJudgeConfig
    from .evaluate import Evaluator
    from .gate.run import Baseline
    from .jobs import Job
    from .recorder import Recorder
    from .report import RunReport
    from .review.decisions import ReviewDesk
    from .rubric import RubricLibrary
    from .runs import RunStore
    from .scheduler import Scheduler
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
    broker: BatchBroker | None = None  # `--judge-batch`: provider batches (batches/broker.py)
    ledger: BatchLedger | None = None  # the batches' write-ahead record, in the run folder
    share: WorkerShare | None = None  # on an xdist worker: its cases and its part of the run
    spool: Path | None = None  # `--judge-batch` on an xdist worker: its spool folder
    spool_state: concurrent.futures.Future[None] | None = None  # the worker's state reports
    spool_desk: SpoolDesk | None = None  # `--judge-batch` on the xdist controller

    @classmethod
    def configure(cls, config: pytest.Config) -> JudgeSession | None:
        """The session for this pytest process, or None when this is no hybridjudge project."""
        _refuse_space_separated_paths(config)
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
        from .config import validate_config
        from .rubric import RubricLibrary

        overrides = {
            "concurrency": config.getoption("judge_concurrency"),
            "cache": config.getoption("judge_cache"),
            "timeout": config.getoption("judge_timeout"),
            "strict": config.getoption("judge_strict"),
            "budget": config.getoption("judge_budget"),
        }
        try:
            settings = validate_config(table, source or rootdir / "pyproject.toml", overrides)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        if config.getoption("judge_batch"):
            batch = settings.batch.model_copy(update={"enabled": True})
            settings = settings.model_copy(update={"batch": batch})
        if "rubrics" in table and not (rootdir / settings.rubrics).is_dir():
            raise pytest.UsageError(
                f"{source} [tool.hybridjudge]: rubrics = {settings.rubrics!r}: the folder "
                f"{rootdir / settings.rubrics} does not exist; create it or point `rubrics` at "
                "the folder that holds your rubric files"
            )
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
        from .runs import RunStore
        from .scheduler import Scheduler

        store = self.store = RunStore.configured(self.rootdir, self.settings)
        _check_paths(self.settings, self.rootdir, store, self.config, records=not self.is_worker)
        self.baseline = _load_baseline(self.settings, store, self.config)
        share = budget_share(getattr(self.config, "workerinput", None))  # xdist: limit / workers
        from .review.decisions import ReviewDesk

        self.desk = ReviewDesk.for_project(self.rootdir, self.settings, store)
        evaluator = _build_evaluator(self.settings, self.rootdir, self.desk, self.baseline, share)
        self.caller, self.cache = evaluator.caller, evaluator.caller.cache
        evaluate: Evaluate = evaluator.evaluate
        if self.is_worker:
            from .xdist_worker import WorkerShare

            self.share = WorkerShare.open(store, getattr(self.config, "workerinput", {}))
            evaluate = self.share.evaluating(evaluate)
        self.scheduler = Scheduler(evaluate, window=self._window(), freeze_when_warm=True)
        if not self.is_worker:
            from .recorder import Recorder

            self.recorder = Recorder(self, _build_report(self.settings, store, self.config))
            self.recorder.report.resolved = self.desk.decided_items()
            self.recorder.report.lead_times = self.desk.lead_times()  # measured review minutes
        if self.settings.batch.enabled:
            self._start_batches()

    def _start_batches(self) -> None:
        """`--judge-batch`: the broker, and the ledger in the run folder. Under xdist only the
        controller creates provider batches: each worker's broker spools its waves to the
        controller's desk (batches/spool.py, batches/spool_desk.py), which batches them."""
        from .batches.broker import BatchBroker
        from .batches.ledger import BatchLedger

        assert self.scheduler is not None and self.caller is not None
        if self.share is not None and self.share.run_dir is not None:
            self._start_spool(self.share.run_dir)
            return
        if self.recorder is not None:
            self.ledger = BatchLedger(self.recorder.report.paths.run_dir)
        scheduler = self.scheduler
        workers = _xdist_workers(self.config)
        self.broker = BatchBroker(
            self.settings.batch,
            # the controller's waves go when its desk says (every worker waits): at once
            running=(lambda: 0) if workers else (lambda: scheduler.running),
            retries=self.settings.retries,
            ledger=self.ledger,
            write_line=self.write_line,
        )
        self.caller.use_batches(self.broker)
        if workers and self.recorder is not None:
            self._start_spool_desk(self.recorder.report.paths.run_dir, workers)

    def _start_spool(self, run_dir: Path) -> None:
        """An xdist worker: its broker's batches go to the controller through the spool."""
        from .batches.broker import BatchBroker
        from .batches.spool import TICK, SpoolLedger, SpoolTransport, spool_folder

        assert self.scheduler is not None and self.caller is not None and self.share is not None
        folder = spool_folder(run_dir) / self.share.workerid
        folder.mkdir(parents=True, exist_ok=True)
        scheduler = self.scheduler
        self.broker = BatchBroker(
            # the controller's answer is a local file: looked for often
            self.settings.batch.model_copy(update={"poll": TICK, "poll_max": 10 * TICK}),
            running=lambda: scheduler.running,
            retries=self.settings.retries,
            ledger=SpoolLedger(folder),
            write_line=lambda line: None,  # the controller prints the provider batches' lines
        )
        self.caller.use_batches(self.broker, transport=SpoolTransport(folder))
        self.spool = folder

    def _start_spool_desk(self, run_dir: Path, workers: int) -> None:
        """The xdist controller: the desk that batches the workers' spooled requests, on the
        controller's loop (it runs no case), after the earlier runs' batches are adopted."""
        from .batches.spool import spool_folder
        from .batches.spool_desk import SpoolDesk

        assert self.scheduler is not None and self.caller is not None and self.broker is not None
        caller = self.caller

        def transport_of(provider: str) -> BatchTransport:
            from .errors import ProviderConfigError

            capable = (
                caller.batched(caller.providers[provider]) if provider in caller.providers else None
            )
            if capable is None:
                raise ProviderConfigError(f"{provider}: no batch API in this run's providers")
            return caller.transport(capable)

        desk = self.spool_desk = SpoolDesk(
            spool_folder(run_dir), self.broker, transport_of, workers, self.settings.batch.gather
        )
        self.scheduler.run(self._collect_earlier_batches(), timeout=60)
        self.scheduler.run(_started(desk), timeout=10)

    def worker_down(self, worker: str) -> None:
        """An xdist worker is gone (finished or crashed): no batch wave waits for it."""
        if self.spool_desk is not None:
            self.spool_desk.worker_down(worker)

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
        if self.spool_state is not None:
            self.spool_state.cancel()
        if self.spool is not None:
            from .batches.spool import write_state

            with contextlib.suppress(OSError):
                write_state(self.spool, idle=True)
        if self.scheduler is not None:
            if self.spool_desk is not None:
                with contextlib.suppress(Exception):
                    self.scheduler.run(self.spool_desk.aclose(), timeout=10)
            if self.broker is not None:
                with contextlib.suppress(Exception):
                    self.scheduler.run(self.broker.aclose(), timeout=10)
            if self.ledger is not None:
                self.ledger.close()
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
        """Start every selected case's work before the first item runs."""
        from . import heap

        self.selected = [self.jobs[i.nodeid] for i in session.items if i.nodeid in self.jobs]
        if self.scheduler is None:
            return
        if session.testsfailed and not self.config.option.continue_on_collection_errors:
            self._report_spool_state()  # idle: the controller's waves need not wait for it
            return  # pytest is about to stop: nothing may be paid for cases that will not run
        heap.freeze()  # modules, items and jobs live until the end (see heap.py)
        if self.broker is not None:
            # a wave goes when every case waits on it: every selected case must be in progress
            self.scheduler.run_all_at_once(len(self.selected))
            if self.spool is None and self.spool_desk is None:  # else the controller's desk did
                self.scheduler.run(self._collect_earlier_batches(), timeout=60)
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
        cases in progress (a wave waits for busy workers only)."""
        if self.spool is None or self.scheduler is None:
            return
        import asyncio

        from .batches.spool import report_state

        scheduler = self.scheduler
        self.spool_state = asyncio.run_coroutine_threadsafe(
            report_state(self.spool, lambda: scheduler.pending), scheduler.loop
        )

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

    async def _collect_earlier_batches(self) -> None:
        """Calls whose requests an earlier, interrupted run submitted wait for its batches."""
        from .batches.ledger import uncollected

        assert self.broker is not None and self.caller is not None and self.store is not None
        for entry in uncollected(self.store.folder):
            if entry.provider not in self.caller.providers:
                continue  # a provider this run does not use: `hybridjudge batch cancel` ends it
            capable = self.caller.batched(self.caller.providers[entry.provider])
            if capable is not None:
                self.broker.adopt(entry, self.caller.transport(capable))

    def batch_lines(self) -> list[str]:
        """After an interrupted batch run: how to collect, or cancel, what is still running."""
        if self.broker is None or not self.broker.unfinished:
            return []
        from .batches.progress import still_running

        run = self.recorder.report.run_id if self.recorder is not None else "RUN"
        return [still_running(self.broker.unfinished, run)]

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


PATH_OPTIONS = ("--judge-baseline",)  # an existing path; report and manifest are new files


def _refuse_space_separated_paths(config: pytest.Config) -> None:
    """`--judge-baseline PATH` with a space: pytest picks its rootdir before any plugin adds its
    options, so it reads an existing PATH as a test path and may switch to another project (and
    run it). Refused, with the `=` form as the fix; a run id or `latest` is no path and passes."""
    import itertools
    import os
    import shlex

    params = config.invocation_params
    args = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *map(str, params.args)]
    for option, value in itertools.pairwise(args):
        if option in PATH_OPTIONS and (params.dir / value).exists():
            raise pytest.UsageError(
                f"hybridjudge: write {option}={value} (with '='): pytest reads a path after a "
                "space as a test path before plugins load, and one outside this project would "
                "switch pytest's rootdir to another project"
            )


def _check_paths(
    settings: HybridJudgeConfig,
    rootdir: Path,
    store: RunStore,
    config: pytest.Config,
    records: bool,
) -> None:
    """Every path the run writes, before the first call is paid for."""
    from .preflight import UnwritablePath, check_cache, check_file, check_folder

    try:
        if settings.cache != "off":
            check_cache(configured(rootdir, settings.cache_path))
        if records:
            check_folder(store.folder, "runs_dir")
            for option in ("judge_report", "judge_manifest"):
                if value := config.getoption(option):
                    check_file(Path(value).resolve(), "--" + option.replace("_", "-"))
            if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):
                check_file(Path(step_summary), "$GITHUB_STEP_SUMMARY")  # appended at the end
    except UnwritablePath as exc:
        raise pytest.UsageError(f"hybridjudge: {exc}") from None


def _load_baseline(
    settings: HybridJudgeConfig, store: RunStore, config: pytest.Config
) -> Baseline | None:
    """The gate's baseline (`--judge-baseline` or the gate's targets), checked before any call."""
    option, gate = config.getoption("judge_baseline"), settings.gate
    if not option and gate.baseline is None and gate.candidate is None:
        return None  # no gate: a run without one need not import the gate's statistics
    from .errors import HybridJudgeError
    from .gate.run import load_baseline

    try:
        return load_baseline(option, settings, store)
    except HybridJudgeError as exc:  # the option, the run it names, or a line of its results
        raise pytest.UsageError(f"hybridjudge: {exc}") from None


def _build_evaluator(
    settings: HybridJudgeConfig,
    rootdir: Path,
    desk: ReviewDesk,
    baseline: Baseline | None = None,
    share: float = 1.0,
) -> Evaluator:
    """Cache, providers, app callables, the reviewers' decisions (read here, once) and
    calibration, checked before any call."""
    from .cache import CompletionCache
    from .calibration import calibration_paths, load_calibration
    from .calls import ModelCaller
    from .config import CallableTarget
    from .errors import HybridJudgeError
    from .evaluate import Evaluator
    from .providers import split_model
    from .targets import load_callable

    if not settings.targets:
        raise pytest.UsageError(
            "hybridjudge: no target configured: set `target` in [tool.hybridjudge] "
            '(e.g. target = { model = "openai/gpt-4.1-mini" } or target = "myapp.qa:answer")'
        )
    cache = CompletionCache(configured(rootdir, settings.cache_path), settings.cache)
    try:
        caller = ModelCaller.from_config(settings, cache, rootdir)
        apps = {}
        for target in settings.targets:
            if isinstance(target, CallableTarget):
                apps[target.callable] = load_callable(target, rootdir)
            else:
                caller.provider(split_model(target.model)[0])
        for judge in settings.judges:
            caller.provider(split_model(judge.model)[0])
        decisions = desk.decisions
        calibration = load_calibration(calibration_paths(desk.path)[0])
    except HybridJudgeError as exc:
        cache.close()
        raise pytest.UsageError(f"hybridjudge: {exc}") from None
    return Evaluator(settings, caller, apps, decisions, calibration, baseline, budget_share=share)


def _build_report(settings: HybridJudgeConfig, store: RunStore, config: pytest.Config) -> RunReport:
    """The run's record, at its run folder or the paths the command line names."""
    from .report import RunReport

    results, manifest = config.getoption("judge_report"), config.getoption("judge_manifest")
    run_id, paths = store.new_run(
        results=Path(results).resolve() if results else None,
        manifest=Path(manifest).resolve() if manifest else None,
    )
    return RunReport(
        run_id, paths, store=store, rates=settings.review.all_rates, budget=settings.budget
    )


def _xdist_workers(config: pytest.Config) -> int:
    """How many xdist workers this controller starts (0: no xdist, or this is a worker)."""
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":
        return 0
    from xdist.workermanage import parse_tx_spec_config

    return len(parse_tx_spec_config(config))


async def _started(desk: SpoolDesk) -> None:
    desk.start()


SESSION = pytest.StashKey[JudgeSession]()
