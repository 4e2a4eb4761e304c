"""The controller's record of a run: test reports in, results, manifest, summary and gate out.

Only the process that records the run (the xdist controller, or a plain pytest process) has a
`Recorder`; workers only run cases and send each result on its test report (`PAYLOAD`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .session import PAYLOAD, JudgeSession

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .gate import GateReport
    from .report import RunReport
    from .verdict import CaseResult, Outcome


class Recorder:
    """On the controller: turns test reports into the run's records, and writes them."""

    def __init__(self, session: JudgeSession, report: RunReport):
        self.session, self.report = session, report
        self.summary: Any = None
        self.gate: GateReport | None = None
        self.gate_error: str | None = None
        self.remote: dict[str, None] = {}  # gold node ids xdist workers selected, in order

    def record(self, report: pytest.TestReport) -> None:
        """Record a gold item's result, or why it ended without one."""
        from .verdict import CaseResult

        if "hybridjudge" not in report.keywords:
            return
        payload = getattr(report, PAYLOAD, None)
        if payload is not None:
            # pytest's terminal reporter keeps every report until the end: drop the result, or
            # every result would stay in memory with it (most of a 10,000-case run's peak)
            delattr(report, PAYLOAD)
            result = (
                payload if isinstance(payload, CaseResult) else CaseResult.model_validate(payload)
            )
            self.report.add(result)
        elif report.skipped or (report.failed and report.when in ("setup", "call", "???")):
            self._unfinished(report)  # "???": xdist's report for an item whose worker crashed

    def _unfinished(self, report: pytest.TestReport) -> None:
        """A gold item that ended without a result still gets a record, with why."""
        from .evaluate import new_record

        job = self.session.jobs.get(report.nodeid)
        reason = _longrepr_text(report)
        failed = not report.skipped
        if job is not None:
            record = new_record(
                job, "failed" if failed else "skipped", [reason], reason if failed else None
            )
        else:  # the xdist controller collects nothing: read what the node id says
            record = _from_node_id(report.nodeid, "failed" if failed else "skipped", reason)
        self.report.add(record)

    def selected_elsewhere(self, nodeids: Sequence[str]) -> None:
        """Gold node ids an xdist worker collected and selected (every worker sends them all)."""
        from .collect import is_gold

        root = self.session.rootdir
        for nodeid in nodeids:
            path = nodeid.partition("::")[0]
            if "::" in nodeid and is_gold(self.session, root / path):
                self.remote.setdefault(nodeid)

    def finish(self, exitstatus: int) -> None:
        """Stop the cases still running; record every selected case not recorded yet (a result
        that finished but no item took, else skipped with why); write the files."""
        from .evaluate import new_record

        scheduler = self.session.scheduler
        if scheduler is not None:
            scheduler.stop()  # -x, --maxfail, Ctrl-C: nothing more is started or paid for
        why = (
            "run interrupted before this case finished"
            if exitstatus == pytest.ExitCode.INTERRUPTED
            else "the session stopped before this case ran"
        )
        for job in self.session.selected:  # no selected case silently disappears
            if not self.report.recorded(job.nodeid):
                done = scheduler.result_if_finished(job.nodeid) if scheduler else None
                self.report.add(done or new_record(job, "skipped", [why]))
        for nodeid in self.remote:  # under xdist: cases no worker reported on
            if not self.report.recorded(nodeid):
                self.report.add(_from_node_id(nodeid, "skipped", why))
        if self.session.caller is not None and self.session.ran_cases:
            self.report.calls = self.session.caller.stats
        self.summary = self.report.write()
        self._gate()

    def _gate(self) -> None:
        """Compare with the baseline, if there is one; write gate.json and the CI summary."""
        from .ci_summary import write_ci_summary
        from .comparison import gate_run
        from .errors import HybridJudgeError

        paths, baseline = self.report.paths, self.session.baseline
        settings = self.session.settings
        resolutions = self.session.rootdir / settings.resolutions  # labels for the PPI change
        if baseline is not None:
            try:
                self.gate = gate_run(baseline, settings, paths.results, paths.run_dir, resolutions)
            except HybridJudgeError as exc:
                self.gate_error = f"gate not decided: {exc}"
        write_ci_summary(self.summary, self.gate, paths.run_dir)

    def summary_lines(self) -> list[str]:
        """The terminal summary of the run, once its files are written."""
        from .gate import gate_lines
        from .summary_text import summary_lines
        from .terminal import printable

        lines = summary_lines(self.summary) if self.summary is not None else []
        if self.gate is not None:
            lines += [printable(line) for line in gate_lines(self.gate)]  # ids from any file
        if self.gate_error is not None:
            lines.append(self.gate_error)
        return lines


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
