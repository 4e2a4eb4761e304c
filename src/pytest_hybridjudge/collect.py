"""Gold files become pytest items: one `GoldItem` per case and target."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .session import SESSION, JudgeSession

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from .config import Target
    from .gold import GoldCase
    from .rubric import Rubric
    from .verdict import CaseResult

SKIP_REASON = "gold case: pass --judge to run it against the target and grade it"
CONTINUE_HINT = (
    "pytest stops at a collection error; to run the other gold files meanwhile, add "
    "--continue-on-collection-errors"
)


def _compares_itself(session: JudgeSession, target: Target | None, rubric: Rubric) -> bool:
    """The gate's baseline target on a pairwise rubric: its output is the reference the
    candidate's item compares with, so it gets no item of its own (it would only be skipped)."""
    gate = session.settings.gate
    return (
        rubric.meta.kind == "pairwise"
        and target is not None
        and gate.candidate is not None
        and target.label == gate.baseline
    )


class GoldFile(pytest.File):
    """A gold set file: one item per case and target."""

    def collect(self) -> Generator[GoldItem, None, None]:
        from .gold import GoldError

        session = self.config.stash[SESSION]
        try:
            planned = list(self._plan(session))
        except GoldError as exc:
            raise self.CollectError(f"{exc}\n{CONTINUE_HINT}") from None
        targets = session.settings.targets
        for case, target, rubric, rendered in planned:
            name = case.id if len(targets) <= 1 or target is None else f"{case.id}[{target.label}]"
            item: GoldItem = GoldItem.from_parent(self, name=name)
            item.case = case
            self._mark(session, item)
            if target is not None:
                from .jobs import Job

                session.jobs[item.nodeid] = Job(item.nodeid, case, target, rubric, rendered)
            yield item

    def _plan(
        self, session: JudgeSession
    ) -> Generator[tuple[GoldCase, Target | None, Rubric, str], None, None]:
        """Each case with its rubric rendered, once per target; the first problem is a GoldError."""
        from .gold import GoldError, load_gold_file
        from .rubric import RubricError
        from .verifiers import VerifierError, check_spec

        try:
            source = self.path.relative_to(session.rootdir).as_posix()
        except ValueError:
            source = str(self.path)
        targets: list[Target | None] = list(session.settings.targets) or [None]  # none: skipped
        cases = load_gold_file(self.path, source)
        _claim_ids(session, self.path, cases)
        for case in cases:
            try:
                if case.verify:
                    check_spec(case.verify, session.rootdir, session.settings.python_verifiers)
                rubric = session.rubrics.get(case.rubric or "correctness")
                rendered = rubric.render(case.variables(), case.id)
            except (RubricError, VerifierError) as exc:
                raise GoldError(self.path, str(exc), case.line, case.id) from None
            for target in targets:
                if not _compares_itself(session, target, rubric):
                    yield case, target, rubric, rendered

    def _mark(self, session: JudgeSession, item: GoldItem) -> None:
        """Tags become markers; items are skipped without --judge or in a dry run."""
        for tag in item.case.tags:
            if tag not in session.markers:
                self.config.addinivalue_line("markers", f"{tag}: gold cases tagged {tag}")
                session.markers.add(tag)
            item.add_marker(tag)
        item.add_marker("hybridjudge")
        if session.dry_run:
            item.add_marker(pytest.mark.skip(reason="dry run: nothing is called"))
        elif not session.enabled:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def _claim_ids(session: JudgeSession, path: Path, cases: list[GoldCase]) -> None:
    """Case ids are unique across the gold set: one review item, one resolution, one case."""
    from .gold import GoldError

    for case in cases:
        place = f"{case.source}:{case.line}" if case.line else case.source
        source, first = session.case_ids.setdefault(case.id, (case.source, place))
        if source != case.source:
            raise GoldError(
                path,
                f"case id '{case.id}' is also used at {first}; ids must be unique across the "
                "gold set (a resolution of one would decide both): rename one",
                case.line,
                case.id,
            )


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
        session = self.config.stash[SESSION]
        result = self.result = session.result_of(self.nodeid)
        if result.config_error is not None:  # stop before paying for more; exit code 4
            from .terminal import printable

            why = printable(result.config_error)
            self.session.shouldstop = f"hybridjudge: provider configuration error: {why}"
        if result.outcome == "skipped":
            from .terminal import printable

            pytest.skip(printable("; ".join(result.reasons)))
        if result.outcome == "failed" or (
            result.outcome == "escalated" and session.settings.strict
        ):
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


def gold_teststatus(
    report: pytest.TestReport,
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """How a gold call report is shown: `?` if escalated, "(by review)" if people decided."""
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
