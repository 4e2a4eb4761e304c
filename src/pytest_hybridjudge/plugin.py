"""pytest hooks, and nothing else: each delegates to the `JudgeSession` built at configure time.

Order of a run: configure (session.py) -> collect (collect.py) -> queue the selected cases on the
loop (scheduler.py, evaluate.py; under xdist each worker the groups of cases it gets,
xdist_groups.py) -> each item waits for its result -> the controller records the run
(recorder.py: the results on the reports, and under xdist the workers' parts) and reports.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import heap
from .session import SESSION, JudgeSession
from .worker_calls import KEY as WORKER_CALLS

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter
    from xdist.remote import Producer
    from xdist.workermanage import WorkerController

    from .gate.exit_status import GateOutcome
    from .recorder import Recorder
    from .xdist_groups import JudgeGroupScheduling


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
        "--judge-batch",
        action="store_true",
        default=False,
        help="Send OpenAI and Anthropic calls through their batch APIs, at half price; "
        "run it again after an interruption to collect what was submitted",
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
    group.addoption(
        "--judge-baseline",
        default=None,
        metavar="RUN",
        help="Gate this run against an earlier one: a run id, run folder or results.jsonl path",
    )


def pytest_configure(config: pytest.Config) -> None:
    heap.thaw()  # whatever an earlier session in this process froze
    config.addinivalue_line("markers", "hybridjudge: a gold case collected by pytest-hybridjudge")
    session = JudgeSession.configure(config)
    if session is not None:
        config.stash[SESSION] = session
        if session.recorder is not None:
            config.pluginmanager.register(_RecorderHooks(session.recorder), "hybridjudge-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its call counters to the controller (worker_calls.py)."""
    judge = session.config.stash.get(SESSION, None)
    output = getattr(session.config, "workeroutput", None)
    if judge is not None and judge.caller is not None and output is not None:
        from .worker_calls import worker_output

        output[WORKER_CALLS] = worker_output(judge.caller.stats)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(SESSION, None)
    if session is None:
        return None
    if not session.is_gold(file_path):
        return None
    from .collect import GoldFile

    collector: GoldFile = GoldFile.from_parent(parent, path=file_path)
    return collector


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Queue the selected cases before the first item runs (`JudgeSession.schedule`)."""
    judge = session.config.stash.get(SESSION, None)
    if judge is not None:
        judge.schedule(session)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """A gold item whose result is ready runs its whole protocol with the loop held."""
    judge = item.config.stash.get(SESSION, None)
    if judge is None or "hybridjudge" not in item.keywords:
        return (yield)
    with judge.loop_held_for(item.nodeid):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    gold = "hybridjudge" in item.keywords and SESSION in item.config.stash
    result = getattr(item, "result", None) if gold else None  # another plugin's items: not ours
    if call.when == "call" and result is not None and getattr(item.config.option, "xmlpath", None):
        from .ci_summary import junit_properties

        item.user_properties.extend(junit_properties(result))  # junitxml's own channel
    report = yield
    if call.when == "call" and result is not None:
        item.config.stash[SESSION].attach(report, result)
        item.result = None  # type: ignore[attr-defined]  # the report carries it from here
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(
    config: pytest.Config, log: Producer
) -> JudgeGroupScheduling | None:
    """Under --judge with xdist's default `--dist load`: hand out groups of cases that each
    worker knows in advance (xdist_groups.py); any other --dist is the user's choice."""
    if not _hands_out_groups(config):
        return None
    from .xdist_groups import JudgeGroupScheduling

    return JudgeGroupScheduling(config, log)


def _hands_out_groups(config: pytest.Config) -> bool:
    judge = config.stash.get(SESSION, None)
    return judge is not None and judge.enabled and config.getvalue("dist") == "load"


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if SESSION not in config.stash:
        return None
    from .collect import gold_teststatus

    return gold_teststatus(report)


class _RecorderHooks:
    """The recording hooks, registered at configure only where there is a run to record."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.recorder.pytest_session = session  # to stop the run if its records cannot be written

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.recorder.record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.recorder.collected(report)

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.recorder.deselect(items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: Sequence[str]) -> None:
        """The xdist controller collects nothing itself: the workers say what was selected."""
        self.recorder.selected_elsewhere(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: WorkerController) -> None:
        """Tell each xdist worker where its part of the run goes, and whether it gets groups."""
        from .xdist_worker import GROUPS_KEY, RUN_DIR_KEY

        node.workerinput[RUN_DIR_KEY] = str(self.recorder.report.paths.run_dir)
        node.workerinput[GROUPS_KEY] = _hands_out_groups(self.recorder.session.config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: WorkerController, error: object | None) -> None:
        config = self.recorder.session.config
        config.stash[SESSION].worker_down(node.gateway.id)  # no batch wave waits for it
        if counts := getattr(node, "workeroutput", {}).get(WORKER_CALLS):
            self.recorder.worker_calls.append(counts)
        if error is not None:
            self.recorder.crashed(node.gateway.id, str(error))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.recorder.finish(exitstatus)
        session.exitstatus = _exit_status(self.recorder, int(session.exitstatus))


def _gate_outcome(recorder: Recorder) -> GateOutcome | None:
    if recorder.gate_error is not None:
        return "ERROR"
    return recorder.gate.result if recorder.gate is not None else None


def _gate_exit_status(recorder: Recorder, pytest_status: int) -> int:
    """With a baseline the gate decides the session's exit status (`gate.exit_status`)."""
    from .gate.exit_status import session_exit_status

    on_inconclusive = recorder.session.settings.gate.on_inconclusive
    return session_exit_status(pytest_status, _gate_outcome(recorder), on_inconclusive)


def _exit_status(recorder: Recorder, pytest_status: int) -> int:
    """The session's exit status: the gate's (or the cases'), then a run that could not be
    recorded, then provider failures (health.py: a configuration error, too many outages)."""
    status = _gate_exit_status(recorder, pytest_status)
    if recorder.failed_to_record and status == pytest.ExitCode.OK:
        status = pytest.ExitCode.INTERRUPTED  # the run stopped unrecorded
    return recorder.exit_code(int(status))


def pytest_terminal_summary(
    terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    judge = config.stash.get(SESSION, None)
    if judge is None:
        return
    if judge.dry_run:
        title, lines = "hybridjudge dry run", judge.dry_run_lines()
    elif judge.recorder is not None and (
        judge.recorder.summary is not None or judge.recorder.failed_to_record
    ):
        title, lines = "hybridjudge", judge.recorder.summary_lines()
        gate = _gate_outcome(judge.recorder)
        if gate is not None:
            from .gate.exit_status import exit_status_line

            failed = int(judge.recorder.summary.get("outcomes", {}).get("failed", 0))
            status = _gate_exit_status(judge.recorder, int(exitstatus))
            if status == _exit_status(judge.recorder, int(exitstatus)):  # else health says why
                lines.append(exit_status_line(int(exitstatus), gate, failed, status))
    else:
        return
    lines += judge.batch_lines()
    terminalreporter.write_sep("=", title)
    for line in lines:
        terminalreporter.write_line(line)
