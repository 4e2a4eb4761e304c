"""The controller's record of a run: test reports in, results, manifest, summary and gate out.

Only the process that records the run (the xdist controller, or a plain pytest process) has a
`Recorder`. A plain process's results come on the test reports (`PAYLOAD`). An xdist worker
writes each result to its part of the run folder and its report carries only the outcome and a
mark (`IN_PART`); at the end the recorder merges the parts, the way pytest-cov combines
coverage, a crashed worker's included, and lists the cases no worker finished. A result no part
holds (its part could not be written) still travels whole on its report, as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .calls import ModelCaller
    from .config import HybridJudgeConfig
    from .gate.decide import GateReport
    from .gate.run import Baseline
    from .health import ProviderHealth
    from .jobs import Job
    from .report import RunReport
    from .review.decisions import ReviewDesk
    from .runs import RunStore
    from .scheduler import Scheduler
    from .verdict import CaseResult, Outcome

PAYLOAD = "hybridjudge_result"  # the report attribute a case's result travels on
IN_PART = "hybridjudge_in_part"  # set instead on an xdist worker's report: its part holds it


class RunView(Protocol):
    """What the recorder sees of the session: the settings and places, the cases selected and
    the calls made, the baseline, the review desk and the run store. `JudgeSession` is one."""

    config: pytest.Config
    settings: HybridJudgeConfig
    rootdir: Path
    store: RunStore | None
    jobs: dict[str, Job]
    selected: list[Job]
    scheduler: Scheduler | None
    caller: ModelCaller | None
    ran_cases: bool
    baseline: Baseline | None
    desk: ReviewDesk | None

    def is_gold(self, file_path: Path) -> bool:
        """Whether `file_path` is one of the project's gold files."""


class Recorder:
    """On the controller: turns test reports into the run's records, and writes them."""

    def __init__(self, session: RunView, report: RunReport):
        assert report.store is not None
        self.session, self.report, self.store = session, report, report.store
        self.summary: Any = None
        self.gate: GateReport | None = None
        self.gate_error: str | None = None
        self.write_error: str | None = None  # the run's records could not be written
        self.pytest_session: pytest.Session | None = None
        self.remote: dict[str, None] = {}  # gold node ids xdist workers selected, in order
        self.collection_errors = 0  # gold files that failed to collect
        self.deselected = 0  # gold items -k, -m or --lf deselected
        self.lease = self.store.lease(report.paths)  # `runs prune` never removes it meanwhile
        # under xdist: workers that crashed (id -> why), the items xdist reported they crashed
        # on, the results merged from each worker's part, the cases no worker finished
        self.crashed_workers: dict[str, str] = {}
        self.crash_items: set[str] = set()
        self.from_parts: dict[str, int] = {}
        self.missing: list[str] = []
        self.worker_calls: list[dict[str, Any]] = []  # each worker's call counters (-n N)

    def record(self, report: pytest.TestReport) -> None:
        """Record a gold item's result, or why it ended without one."""
        from .verdict import CaseResult

        crash = report.failed and report.when not in ("setup", "call", "teardown")  # "???"
        if "hybridjudge" not in report.keywords and not (crash and report.nodeid in self.remote):
            return  # (xdist's report for the item a worker crashed on carries no keywords)
        if getattr(report, IN_PART, False):
            return  # a worker's part holds the result: merged at the end (`_merge_parts`)
        payload = getattr(report, PAYLOAD, None)
        if payload is not None:
            # pytest's terminal reporter keeps every report until the end: drop the result, or
            # every result would stay in memory with it (most of a 10,000-case run's peak)
            delattr(report, PAYLOAD)
            result = (
                payload if isinstance(payload, CaseResult) else CaseResult.model_validate(payload)
            )
            self._add(result)
        elif report.skipped or (report.failed and report.when in ("setup", "call", "???")):
            self._unfinished(report)  # "???": xdist's report for an item whose worker crashed
            if crash:
                self.crash_items.add(report.nodeid)

    def crashed(self, worker: str, error: str) -> None:
        """An xdist worker went down with `error` (its part is still merged at the end)."""
        self.crashed_workers[worker] = error

    def _unfinished(self, report: pytest.TestReport) -> None:
        """A gold item that ended without a result still gets a record, with why."""
        from .jobs import new_record

        job = self.session.jobs.get(report.nodeid)
        reason = _longrepr_text(report)
        failed = not report.skipped
        if job is not None:
            record = new_record(
                job, "failed" if failed else "skipped", [reason], reason if failed else None
            )
        else:  # the xdist controller collects nothing: read what the node id says
            record = _from_node_id(report.nodeid, "failed" if failed else "skipped", reason)
        self._add(record)

    def _add(self, result: CaseResult) -> None:
        """Record a result; if the disk refuses it, stop the run (nothing more is paid for)."""
        from .runs import RecordWriteError

        try:
            self.report.add(result)
        except RecordWriteError as exc:
            self._stop(str(exc))

    def _stop(self, error: str) -> None:
        self.write_error = error
        if self.session.scheduler is not None:
            self.session.scheduler.stop()
        if self.pytest_session is not None:
            self.pytest_session.shouldstop = "hybridjudge: the run's records cannot be written"

    def collected(self, report: pytest.CollectReport) -> None:
        """Count a gold file that failed to collect (the run then cannot be complete)."""
        path = report.nodeid.partition("::")[0]
        if report.failed and path and self.session.is_gold(self.session.rootdir / path):
            self.collection_errors += 1

    def deselect(self, items: Sequence[pytest.Item]) -> None:
        """Count gold items left out by -k, -m or --lf."""
        self.deselected += sum("hybridjudge" in item.keywords for item in items)

    def selected_elsewhere(self, nodeids: Sequence[str]) -> None:
        """Gold node ids an xdist worker collected and selected (every worker sends them all).

        Whether a file is gold is asked once per file: resolving paths for each of thousands
        of node ids, per worker, held the controller's loop for seconds while workers waited."""
        root, gold = self.session.rootdir, dict[str, bool]()
        for nodeid in nodeids:
            path, sep, _ = nodeid.partition("::")
            if not sep or nodeid in self.remote:
                continue
            if path not in gold:
                gold[path] = self.session.is_gold(root / path)
            if gold[path]:
                self.remote[nodeid] = None

    def finish(self, exitstatus: int) -> None:
        """Stop the cases still running; record every selected case not recorded yet (a result
        that finished but no item took, else skipped with why); write the files."""
        from .jobs import new_record
        from .runs import RecordWriteError

        scheduler = self.session.scheduler
        if scheduler is not None:
            scheduler.stop()  # -x, --maxfail, Ctrl-C: nothing more is started or paid for
        self._merge_parts()  # first: under xdist the parts hold the results the tally counts
        why = (
            "not run: the run stopped on a provider configuration error"
            if self.report.tally.config_error is not None
            else "run interrupted before this case finished"
            if exitstatus == pytest.ExitCode.INTERRUPTED
            else "the session stopped before this case ran"
        )
        unfinished = 0
        for job in self.session.selected:  # no selected case silently disappears
            if not self.report.recorded(job.nodeid):
                done = scheduler.result_if_finished(job.nodeid) if scheduler else None
                unfinished += done is None
                self._add(done or new_record(job, "skipped", [why]))
        for nodeid in self.remote:  # under xdist: cases no worker finished
            if not self.report.recorded(nodeid):
                unfinished += 1
                self.missing.append(nodeid)
                self._add(_from_node_id(nodeid, "skipped", why))
        self.missing[:0] = sorted(self.crash_items)  # crashed on, and no part holds its result
        if self.session.caller is not None and self.session.ran_cases:
            self.report.calls = self.session.caller.stats
        elif self.session.caller is not None and self.worker_calls and not self.crashed_workers:
            from .worker_calls import add_worker_output  # every worker said: counted in full

            for counts in self.worker_calls:
                add_worker_output(self.session.caller.stats, counts)
            self.report.calls = self.session.caller.stats
        self.report.incomplete = self._incomplete(exitstatus, unfinished)
        try:
            self.summary = self.report.write()
        except RecordWriteError as exc:
            self.write_error = str(exc)
        except OSError as exc:  # the summary or manifest: their atomic writes leave no half file
            self.write_error = (
                f"cannot write the run's files in {self.report.paths.run_dir} "
                f"({exc.strerror or exc}); free disk space there and run again"
            )
        finally:
            self.lease.release()
        if self.write_error is None:
            self.store.parts(self.report.paths.run_dir).drop()  # merged: the run is one folder
            self._gate()

    def _merge_parts(self) -> None:
        """Under xdist, like pytest-cov's combine: every result a worker wrote to its part and
        no report carried whole (each one whose report said its part holds it, a crashed
        worker's finished cases, a stopped run's) is recorded, read once from the parts; one
        replaces the failure xdist reported for the item a worker crashed on."""
        for worker, result in self.store.parts(self.report.paths.run_dir).each():
            nodeid = result.nodeid
            if nodeid and (not self.report.recorded(nodeid) or nodeid in self.crash_items):
                self.crash_items.discard(nodeid)
                self.from_parts[worker] = self.from_parts.get(worker, 0) + 1
                self._add(result)

    def _incomplete(self, exitstatus: int, unfinished: int) -> list[str]:
        """Why this run cannot be a baseline (see `runstore.incomplete_because`)."""
        from .runstore import RunShape, incomplete_because

        tally, config = self.report.tally, self.session.config
        return incomplete_because(
            RunShape(
                cases=len(self.report),
                unfinished=unfinished,
                outages=tally.outages,
                over_budget=tally.over_budget,
                collection_errors=self.collection_errors,
                deselected=self.deselected,
                filtered=bool(self.remote and not self.session.jobs)  # xdist: workers deselect
                and bool(config.option.keyword or config.option.markexpr),
                paths_given=_names_a_subset(self.session),
                interrupted=exitstatus == pytest.ExitCode.INTERRUPTED
                and not self.collection_errors,
                max_outage_share=self.session.settings.max_outage_share,
                crashed=tuple(sorted(self.crashed_workers)),
            )
        )

    def _gate(self) -> None:
        """Compare with the baseline, if there is one; write gate.json and the CI summary."""
        from .ci_summary import write_ci_summary

        paths, baseline, desk = self.report.paths, self.session.baseline, self.session.desk
        settings = self.session.settings
        decisions = desk.decisions if desk is not None else {}  # read once, at the start
        if baseline is not None:  # only a gated run imports the gate's statistics
            from .errors import HybridJudgeError
            from .gate.run import gate_run

            try:
                self.gate = gate_run(baseline, settings, self.store, paths, decisions)
            except HybridJudgeError as exc:
                self.gate_error = f"gate not decided: {exc}"
        try:
            write_ci_summary(self.summary, self.gate, paths.run_dir)
        except OSError as exc:  # the run's own files are written; say why this one is not
            self.write_error = (
                f"cannot write the Markdown summary ({exc.strerror or exc}: {exc.filename})"
            )

    @property
    def failed_to_record(self) -> bool:
        """Whether the run's records could not be written (the session then fails)."""
        return self.write_error is not None

    @property
    def health(self) -> ProviderHealth:
        """Outages and a configuration error, as the run's records say."""
        from .health import ProviderHealth

        tally = self.report.tally
        return ProviderHealth(len(self.report), tally.outages, tally.config_error)

    def exit_code(self, exit_code: int) -> int:
        """The session's exit code with provider failures taken into account (`health`)."""
        from .health import health_exit_code

        return health_exit_code(exit_code, self.health, self.session.settings.max_outage_share)

    def summary_lines(self) -> list[str]:
        """The terminal summary of the run, once its files are written."""
        from .health import health_lines
        from .summary_text import summary_lines
        from .terminal import printable

        lines = summary_lines(self.summary) if self.summary is not None else []
        share = self.session.settings.max_outage_share
        lines += [printable(line) for line in health_lines(self.health, share)]
        lines += [printable(line) for line in self._crash_lines()]
        if self.write_error is not None:
            lines.append(f"run not recorded: {self.write_error}")
        if self.gate is not None:
            from .gate.decide import gate_lines

            lines += [printable(line) for line in gate_lines(self.gate)]  # ids from any file
        if self.gate_error is not None:
            lines.append(self.gate_error)
        return lines

    def _crash_lines(self, shown: int = 10) -> list[str]:
        """Which xdist workers crashed, what their parts gave back, which cases are missing."""
        lines = []
        for worker, error in sorted(self.crashed_workers.items()):
            merged = self.from_parts.get(worker, 0)
            lines.append(
                f"xdist worker {worker} crashed ({error}); {merged} finished "
                f"case{'s' if merged != 1 else ''} recorded from its part of the run"
            )
        if self.crashed_workers and self.missing:
            more = len(self.missing) - shown
            lines.append(
                f"{len(self.missing)} case{'s' if len(self.missing) != 1 else ''} no worker "
                f"finished: {', '.join(self.missing[:shown])}"
                + (f" and {more} more" if more > 0 else "")
            )
        return lines


def _names_a_subset(session: RunView) -> bool:
    """Whether the command line named only some of the gold set: a gold file or case below a
    gold entry, while some gold entry is named by no path at or above it."""
    from .paths import configured

    config = session.config
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    roots = [configured(session.rootdir, entry).resolve() for entry in session.settings.gold]
    roots = [root for root in roots if root.exists()]
    given = []
    for arg in config.args:
        path, sep, _ = arg.partition("::")
        full = (config.invocation_params.dir / path).resolve()
        if sep and any(full == root or root in full.parents for root in roots):
            return True  # cases named by node id
        given.append(full)
    return not all(any(g == root or g in root.parents for g in given) for root in roots)


def _longrepr_text(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = str(report.longrepr or "")
    return text.strip().splitlines()[-1] if text.strip() else report.outcome


def _from_node_id(nodeid: str, outcome: Outcome, reason: str) -> CaseResult:
    """A record from the node id alone (`file::case` or `file::case[target]`)."""
    from .verdict import CaseResult

    source, _, name = nodeid.partition("::")
    case_id, _, label = name.partition("[")
    return CaseResult(
        case_id=case_id,
        nodeid=nodeid,
        source=source,
        target=label.removesuffix("]"),
        outcome=outcome,
        reasons=[reason],
        error=reason if outcome == "failed" else None,
    )
