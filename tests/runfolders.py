"""The one writer of run folders for tests: the run store itself, as `pytest --judge` uses it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_hybridjudge.report import RunReport
from pytest_hybridjudge.review.manifest import ReviewItem
from pytest_hybridjudge.runs import RunStore
from pytest_hybridjudge.verdict import CaseResult


def runs_folder(project: Path) -> Path:
    """The default runs folder of the project at `project`."""
    return project / ".hybridjudge" / "runs"


def write_run(
    project: Path,
    run_id: str,
    items: Sequence[ReviewItem] | None = None,
    *,
    results: Sequence[CaseResult] = (),
    incomplete: Sequence[str] = (),
    runs: Path | None = None,
) -> dict[str, Any]:
    """A finished run of the project at `project` (or in the folder `runs`), written through the
    run store: `results`, a summary, and as manifest `items` when given (else the review items
    the results make). A complete run becomes `LATEST`; one `incomplete` for a reason (stopped
    early, a subset) never does, so an older run written after a newer one gives a reason.
    Returns the summary as written."""
    store = RunStore(runs if runs is not None else runs_folder(project))
    run_id, paths = store.new_run(run_id)
    report = RunReport(run_id, paths, store=store)
    for result in results:
        report.add(result)
    report.incomplete = list(incomplete)
    summary = report.write()
    if items is not None:
        store.write_manifest(paths, items)
    return summary
