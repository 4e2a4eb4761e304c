"""pytest hooks: options, gold-file collection, scheduling, outcomes and the run's report."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import heap
from .configfile import ConfigError, find_config_table

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr
    from _pytest.terminal import TerminalReporter

    from .config import HybridJudgeConfig, Target
    from .gold import GoldCase
    from .report import RunReport
    from .rubric import Rubric, RubricLibrary
    from .scheduler import Job, Scheduler
    from .verdict import CaseResult, Outcome

PROPERTY = "hybridjudge_result"
SKIP_REASON = "gold case: pass --judge to run it against the target and grade it"
PROGRESS_EVERY = 30.0  # seconds an item may wait before a progress line is printed


@dataclass
class JudgeState:
    """Per-session state, kept on `config.stash`."""

    settings: HybridJudgeConfig
    rootdir: Path
    enabled: bool
    has_table: bool
    rubrics: RubricLibrary
    scheduler: Scheduler | None = None
    report: RunReport | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)
    summary: dict[str, Any] | None = None
    dry_run: bool = False
    selected: list[Job] = field(default_factory=list)


STATE = pytest.StashKey[JudgeState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hybridjudge", "LLM gold sets graded by a judge panel")
    group.addoption(
        "--judge",
        action="store_true",
        default=False,
        help="Run gold cases against the target and grade them with the judge panel",
    )
    group.addoption(
        "--judge-strict",
        action="store_true",
        default=None,
        help="Fail the run when any case is escalated",
    )
    group.addoption(
        "--judge-concurrency",
        type=int,
        default=None,
        metavar="N",
        help="Provider calls in flight per provider (overrides `concurrency`)",
    )
    group.addoption(
        "--judge-cache",
        choices=("use", "refresh", "off"),
        default=None,
        help="Use the completion cache, refresh it, or turn it off",
    )
    group.addoption(
        "--judge-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Seconds before a provider call is abandoned (overrides `timeout`)",
    )
    group.addoption(
        "--judge-budget",
        type=float,
        default=None,
        metavar="USD",
        help="Stop scheduling provider calls once spend would exceed USD (overrides `budget`)",
    )
    group.addoption(
        "--judge-dry-run",
        action="store_true",
        default=False,
        help="Print the calls, tokens and dollars a run would need, without calling anything",
    )
    group.addoption(
        "--judge-report",
        default=None,
        metavar="PATH",
        help="Write results.jsonl to PATH instead of the run folder",
    )
    group.addoption(
        "--judge-manifest",
        default=None,
        metavar="PATH",
        help="Write the review manifest to PATH instead of the run folder",
    )


def pytest_configure(config: pytest.Config) -> None:
    heap.thaw()  # whatever an earlier session in this process froze
    config.addinivalue_line("markers", "hybridjudge: a gold case collected by pytest-hybridjudge")
    rootdir = Path(config.rootpath)
    judge, dry_run = bool(config.getoption("judge")), bool(config.getoption("judge_dry_run"))
    try:
        table, source = find_config_table(rootdir)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not table and not (judge or dry_run):
        return  # not a hybridjudge project: a plain run imports nothing more
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
    state = JudgeState(
        settings=settings,
        rootdir=rootdir,
        # a dry run collects and skips (the summary estimates); --collect-only lists, never runs
        enabled=judge and not dry_run and not config.getoption("collectonly"),
        has_table=bool(table),
        rubrics=RubricLibrary(rootdir / settings.rubrics),
        dry_run=dry_run,
    )
    config.stash[STATE] = state
    if state.enabled:
        _start_run(config, state)


def _start_run(config: pytest.Config, state: JudgeState) -> None:
    """Build providers, app callables, cache and scheduler; problems stop with one clear line."""
    from .cache import CompletionCache
    from .calls import ModelCaller
    from .config import CallableTarget
    from .providers import ProviderError, split_model
    from .report import RunPaths, RunReport, new_run_id, tier_rates
    from .scheduler import Evaluator, Scheduler
    from .targets import TargetError, load_callable

    settings = state.settings
    if not settings.targets:
        raise pytest.UsageError(
            "hybridjudge: no target configured: set `target` in [tool.hybridjudge] "
            '(e.g. target = { model = "openai/gpt-4.1-mini" } or target = "myapp.qa:answer")'
        )
    cache = CompletionCache(state.rootdir / settings.cache_path, settings.cache)
    caller = ModelCaller.from_config(settings, cache, state.rootdir)
    apps = {}
    try:
        for target in settings.targets:
            if isinstance(target, CallableTarget):
                apps[target.callable] = load_callable(target, state.rootdir)
            else:
                caller.provider(split_model(target.model)[0])
        for judge in settings.judges:
            caller.provider(split_model(judge.model)[0])
    except (ProviderError, TargetError) as exc:
        cache.close()
        raise pytest.UsageError(f"hybridjudge: {exc}") from None
    from .calibration import calibration_paths, load_calibration
    from .review.resolutions import ReviewError, load_resolutions, resolutions_by_item

    resolutions_path = state.rootdir / settings.resolutions
    try:
        resolutions = resolutions_by_item(load_resolutions(resolutions_path))
        calibration = load_calibration(calibration_paths(resolutions_path)[0])
    except (ReviewError, ConfigError) as exc:
        cache.close()
        raise pytest.UsageError(f"hybridjudge: {exc}") from None
    evaluator = Evaluator(settings, caller, apps, resolutions, calibration)
    providers = max(1, len({j.model.split("/")[0] for j in settings.judges} | {"target"}))
    window = max(256, 4 * settings.concurrency * providers)
    state.scheduler = Scheduler(evaluator, window=window, freeze_when_warm=True)
    if not hasattr(config, "workerinput"):
        run_id = new_run_id()
        results = config.getoption("judge_report")
        manifest = config.getoption("judge_manifest")
        paths = RunPaths.for_run(
            state.rootdir / settings.runs_dir,
            run_id,
            Path(results).resolve() if results else None,
            Path(manifest).resolve() if manifest else None,
        )
        state.report = RunReport(run_id, paths, rates=tier_rates(settings.review.rates))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.scheduler is not None:
        state.scheduler.close()
        state.scheduler.evaluator.caller.cache.close()
        state.scheduler = None


def _is_gold(state: JudgeState, file_path: Path) -> bool:
    from .gold import GOLD_SUFFIXES

    if file_path.suffix not in GOLD_SUFFIXES or not (state.has_table or state.enabled):
        return False
    if file_path.resolve() == (state.rootdir / state.settings.resolutions).resolve():
        return False  # reviewers' decisions live beside the gold set, but are not cases
    for entry in state.settings.gold:
        root = (state.rootdir / entry).resolve()
        if file_path.resolve() == root or root in file_path.resolve().parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE, None)
    if state is None or not _is_gold(state, file_path):
        return None
    collector: GoldFile = GoldFile.from_parent(parent, path=file_path)
    return collector


class GoldFile(pytest.File):
    """A gold set file: one item per case and target."""

    def collect(self) -> Generator[GoldItem, None, None]:
        from .gold import GoldError, load_gold_file
        from .rubric import RubricError
        from .scheduler import Job
        from .verifiers import VerifierError, check_spec

        state = self.config.stash[STATE]
        try:
            try:
                source = self.path.relative_to(state.rootdir).as_posix()
            except ValueError:
                source = str(self.path)
            cases = load_gold_file(self.path, source)
        except GoldError as exc:
            raise self.CollectError(f"{exc}") from None
        targets = state.settings.targets
        jobs: list[tuple[GoldCase, Target | None, Rubric, str]] = []
        for case in cases:
            try:
                if case.verify:
                    check_spec(case.verify, state.rootdir, state.settings.python_verifiers)
                rubric = state.rubrics.get(case.rubric or "correctness")
                rendered = rubric.render(case.variables(), case.id)
            except RubricError as exc:
                raise self.CollectError(
                    f"{GoldError(self.path, str(exc), case.line, case.id)}"
                ) from None
            except VerifierError as exc:
                raise self.CollectError(
                    f"{GoldError(self.path, str(exc), case.line, case.id)}"
                ) from None
            each: list[Target | None] = list(targets) or [None]  # no target: collected, skipped
            jobs += [(case, target, rubric, rendered) for target in each]
        for case, target, rubric, rendered in jobs:
            name = case.id if len(targets) <= 1 or target is None else f"{case.id}[{target.label}]"
            item: GoldItem = GoldItem.from_parent(self, name=name)
            item.case = case
            for tag in case.tags:
                if tag not in state.markers:
                    self.config.addinivalue_line("markers", f"{tag}: gold cases tagged {tag}")
                    state.markers.add(tag)
                item.add_marker(tag)
            item.add_marker("hybridjudge")
            if state.dry_run:
                item.add_marker(pytest.mark.skip(reason="dry run: nothing is called"))
            elif not state.enabled:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
            if target is not None:
                state.jobs[item.nodeid] = Job(item.nodeid, case, target, rubric, rendered)
            yield item


class JudgeFailure(Exception):
    """The case failed (or was escalated under --judge-strict); carries the result to show."""

    def __init__(self, result: CaseResult):
        super().__init__(result.case_id)
        self.result = result


class GoldItem(pytest.Item):
    """One case against one target."""

    case: GoldCase
    result: CaseResult | None = None

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        assert state.scheduler is not None
        future = state.scheduler.submit(state.jobs[self.nodeid])
        waited, last_note = 0.0, 0.0
        while True:
            try:
                result = future.result(timeout=1.0)
                break
            except TimeoutError:
                waited += 1.0
                if waited - last_note >= PROGRESS_EVERY:
                    last_note = waited
                    _note_progress(self.config, state, self.nodeid)
        state.scheduler.forget(self.nodeid)  # the item holds the result from here on
        self.result = result
        if hasattr(self.config, "workerinput"):  # xdist: the controller reads it off the report
            self.user_properties.append((PROPERTY, result.model_dump_json()))
        if result.outcome == "skipped":
            pytest.skip("; ".join(result.reasons))
        if result.outcome == "failed" or (result.outcome == "escalated" and state.settings.strict):
            raise JudgeFailure(result)

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, JudgeFailure):
            from .explain import explain_failure

            return explain_failure(excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return self.path, line, f"gold case {self.name}"


def _note_progress(config: pytest.Config, state: JudgeState, nodeid: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or state.scheduler is None:
        return
    stats = state.scheduler.evaluator.caller.stats
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        _write_progress(reporter, state, nodeid, stats)


def _write_progress(reporter: Any, state: JudgeState, nodeid: str, stats: Any) -> None:
    assert state.scheduler is not None
    reporter.write_line(
        f"[hybridjudge] waiting on {nodeid}: {state.scheduler.finished}/"
        f"{state.scheduler.total} cases done; {stats.in_flight} calls in flight, {stats.finished} "
        f"finished, {stats.retries} retries, {stats.cache_hits} cache hits"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Start every selected case's work before the first item runs."""
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    state.selected = [state.jobs[i.nodeid] for i in session.items if i.nodeid in state.jobs]
    if state.scheduler is None or hasattr(session.config, "workerinput"):
        return
    heap.freeze()  # modules, items and jobs live until the end (see heap.py)
    state.scheduler.submit_all(state.selected)
    started = len(state.selected)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if started and reporter is not None and session.config.get_verbosity() >= 0:
        settings = state.settings
        judges = ", ".join(j.label for j in settings.judges) or "none"
        targets = ", ".join(t.label for t in settings.targets)
        reporter.write_line(
            f"[hybridjudge] {started} cases started: target {targets}; judges {judges}; "
            f"concurrency {settings.concurrency}; cache {settings.cache}"
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """A gold item whose result is ready runs its whole protocol with the loop held, while the
    loop has cases to run (holding an idle loop, as in a cached run, only costs switches)."""
    state = item.config.stash.get(STATE, None)
    scheduler = state.scheduler if state is not None else None
    if (
        isinstance(item, GoldItem)
        and scheduler is not None
        and scheduler.pending
        and scheduler.is_done(item.nodeid)
    ):
        with scheduler.paused():
            return (yield)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if isinstance(item, GoldItem) and call.when == "call" and item.result is not None:
        report.hybridjudge_outcome = item.result.outcome  # type: ignore[attr-defined]
        report.hybridjudge_by_review = bool(item.result.resolved_by)  # type: ignore[attr-defined]
        if not hasattr(item.config, "workerinput"):  # in process: hand over the object itself
            report.hybridjudge_result = item.result  # type: ignore[attr-defined]
        item.result = None
    return report


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.when != "call":
        return None
    outcome = getattr(report, "hybridjudge_outcome", None)
    if report.passed and outcome == "escalated":
        return "escalated", "?", ("ESCALATED", {"yellow": True})
    if getattr(report, "hybridjudge_by_review", False) and outcome in ("passed", "failed"):
        word = "PASSED" if outcome == "passed" else "FAILED"
        letter = "." if outcome == "passed" else "F"
        color = {"green": True} if outcome == "passed" else {"red": True}
        return report.outcome, letter, (f"{word} (by review)", color)
    return None


class _Recorder:
    """Registered on the controller: turns test reports into the run's records."""

    def __init__(self, state: JudgeState):
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .verdict import CaseResult

        assert self.state.report is not None
        if "hybridjudge" not in report.keywords:
            return
        result = getattr(report, "hybridjudge_result", None)
        if result is not None:
            self.state.report.add(result)
            # pytest's terminal reporter keeps every report until the end: without this, every
            # result would stay in memory with it (most of a 10,000-case run's peak)
            del report.hybridjudge_result
            return
        sent = [value for name, value in report.user_properties if name == PROPERTY]
        if sent:  # from an xdist worker, on every phase's report: read once, then drop it
            report.user_properties = [p for p in report.user_properties if p[0] != PROPERTY]
            if report.when == "call":
                self.state.report.add(CaseResult.model_validate_json(str(sent[0])))
            return
        if (report.when == "call" and report.failed) or report.skipped:
            self._unfinished(report)

    def _unfinished(self, report: pytest.TestReport) -> None:
        """A gold item that ended without a result still gets a record, with why."""
        from .verdict import CaseResult

        assert self.state.report is not None
        job = self.state.jobs.get(report.nodeid)
        reason = _longrepr_text(report)
        outcome: Outcome = "skipped" if report.skipped else "failed"
        self.state.report.add(
            CaseResult(
                case_id=job.case.id if job else report.nodeid.rpartition("::")[2],
                nodeid=report.nodeid,
                source=job.case.source if job else "",
                target=job.target.label if job else "",
                outcome=outcome,
                reasons=[reason],
                error=reason if outcome == "failed" else None,
            )
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .verdict import CaseResult

        report = self.state.report
        assert report is not None
        why = (
            "run interrupted before this case finished"
            if exitstatus == pytest.ExitCode.INTERRUPTED
            else "the session stopped before this case ran"
        )
        for job in self.state.selected:  # no selected case silently disappears
            if not report.recorded(job.nodeid):
                report.add(
                    CaseResult(
                        case_id=job.case.id,
                        nodeid=job.nodeid,
                        source=job.case.source,
                        target=job.target.label,
                        outcome="skipped",
                        reasons=[why],
                    )
                )
        self.state.summary = report.write()

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        from .report import summary_lines

        if self.state.summary is None:
            return
        terminalreporter.write_sep("=", "hybridjudge")
        for line in summary_lines(self.state.summary):
            terminalreporter.write_line(line)


def _longrepr_text(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = str(report.longrepr or "")
    return text.strip().splitlines()[-1] if text.strip() else report.outcome


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.dry_run:
        return
    from .estimate import estimate_lines, estimate_run

    terminalreporter.write_sep("=", "hybridjudge dry run")
    for line in estimate_lines(estimate_run(state.selected, state.settings)):
        terminalreporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.report is not None:
        session.config.pluginmanager.register(_Recorder(state), "hybridjudge-recorder")
