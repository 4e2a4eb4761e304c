"""The run store: the only reader and writer of the runs folder (`runs_dir`).

As pytest's `cacheprovider.Cache` owns `.pytest_cache`, `RunStore` owns the runs folder: a new
run and its paths, the newest complete run (`LATEST`), the list of runs, a run reference
(`latest`, a run id, a run folder or a results file) resolved, each file of a run read in one
typed shape (`CaseResult`, `ReviewItem`, `RunSummary`), the judged history, the xdist workers'
parts of a run, and prune. A record the tool wrote that cannot be read raises
`errors.RecordError` naming `path:line` and the fix. The folder's ground rules (which folders
are runs, the lease, completeness, the readers, the parts) are in `runstore`; which runs prune
removes and why it keeps the others, in `runs_prune`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, RecordError
from .files import write_json_atomic, write_jsonl_atomic, write_text_atomic
from .paths import configured
from .review.manifest import ReviewItem
from .runs_prune import PrunePlan, prune_runs
from .runstore import (
    LATEST_NAME,
    RESULTS_FIX,
    RUN_FILES,
    SUMMARY_NAME,
    RecordWriteError,
    RunLease,
    RunParts,
    RunPaths,
    is_run_id,
    new_run_id,
    read_manifest,
    read_results,
    read_summary,
    recorded,
    run_folders,
    running_pid,
)
from .summary import RunSummary
from .verdict import CaseResult

if TYPE_CHECKING:
    from .config import HybridJudgeConfig

Stratum = tuple[str, str, bool]
"""(run id, rubric, audit): the items one run sent to people for one reason."""


class RunReferenceError(InputError):
    """A run reference (`latest`, a run id, a run folder, a results file) names no run; the
    message names the option and the fix."""


@dataclass(frozen=True)
class RunRef:
    """A run as a reference named it: its results, and its id and manifest when it is a folder."""

    results: Path
    run_id: str | None = None  # None: a results file named by its path
    manifest: Path | None = None


@dataclass
class JudgedHistory:
    """What earlier runs judged: the newest judged record of each item, and the items each run
    sent to people, by stratum (run, rubric, audit)."""

    judged: dict[str, tuple[str, CaseResult]] = field(default_factory=dict)
    sent: dict[Stratum, set[str]] = field(default_factory=dict)


def sent_to_people(record: CaseResult) -> bool:
    """Whether the run sent the case to people: escalated, or drawn as an audit."""
    return bool(record.item_id) and (record.audit or record.outcome == "escalated")


def stratum_of(run_id: str, record: CaseResult) -> Stratum:
    """The stratum (`calibration_report.resolved_shares`) a run's record belongs to."""
    return (run_id, record.rubric or "(none)", record.audit)


class RunStore:
    """The runs folder, read and written through one object (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._history: JudgedHistory | None = None

    @classmethod
    def configured(cls, root: Path, settings: HybridJudgeConfig) -> RunStore:
        """The project's store: `runs_dir` resolved by the one path resolver (`~` expanded)."""
        return cls(configured(root, settings.runs_dir))

    # --- the runs ------------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        """The runs, oldest first (run ids sort by time); only run folders count."""
        return [p.name for p in run_folders(self.folder)]

    def running_pid(self, run_id: str) -> int | None:
        """The pid of the session still writing the run, or None."""
        return running_pid(self.folder / run_id)

    def owns(self, path: Path) -> bool:
        """Whether `path` (resolved) is a file of a run: inside a run folder, or named as a
        run's files are (a copied or renamed run). Never a whole folder."""
        try:
            inner = path.relative_to(self.folder.resolve()).parts
        except ValueError:
            return False
        return len(inner) > 1 and (is_run_id(inner[0]) or inner[-1] in RUN_FILES)

    def latest(self) -> str | None:
        """The newest complete run: the one `LATEST` names, if complete; else the newest run
        whose summary says it is complete (`LATEST` written before completeness was recorded
        may name any run). The only reader of `LATEST`."""

        def complete(run_id: str) -> bool | None:
            try:
                return self.summary(run_id).complete
            except RecordError:
                return False

        with contextlib.suppress(OSError, UnicodeDecodeError):
            named = (self.folder / LATEST_NAME).read_text(encoding="utf-8").strip()
            if is_run_id(named) and complete(named) is not False:
                return named
        for run_id in reversed(self.run_ids()):
            if complete(run_id):
                return run_id
        return None

    def resolve(self, ref: str, option: str = "--run") -> RunRef:
        """The run `OPTION REF` names: a results file, a run folder, a run id in this folder, or
        `latest` (the newest complete run). Raises `RunReferenceError` naming the option."""
        path = Path(ref).expanduser()
        if path.is_file():
            return RunRef(results=path)
        if path.is_dir():
            return _folder_ref(path)
        run_id = ref
        if ref == "latest":  # a -k subset or a stopped run never is
            found = self.latest()
            if found is None:
                raise RunReferenceError(
                    f"{option} latest: no complete run under {self.folder} yet (`LATEST` names "
                    "the newest one; `hybridjudge runs` says why each run is incomplete); run "
                    f"`pytest --judge` on the whole gold set first, or pass {option} RUN_ID"
                )
            run_id = found
        fix = "pass a run id from `hybridjudge runs`, a run folder or a results.jsonl path"
        if not _plain_name(run_id):
            raise RunReferenceError(
                f"{option} {ref}: no results file or run folder there, and {ref!r} is not a run "
                f"id; {fix}"
            )
        if (self.folder / run_id).is_dir():
            return _folder_ref(self.folder / run_id)
        known = self.run_ids()
        hint = f"known runs: {', '.join(known[-5:])}" if known else "no runs recorded yet"
        raise RunReferenceError(
            f"{option} {ref}: no results file, run folder or run id of that name (no run under "
            f"{self.folder} has that id; {hint}); {fix}"
        )

    # --- reading a run's files -------------------------------------------------------------

    def summary(self, run_id: str) -> RunSummary:
        """The run's summary.json; an unreadable or invalid one raises `RecordError`."""
        return read_summary(self.folder / run_id / SUMMARY_NAME)

    def results(
        self, ref: RunRef | Path, fix: str = "", whose: str = "the run's"
    ) -> list[CaseResult]:
        """The case results of a run (a `RunRef` or a results.jsonl path), typed and checked
        line by line (`read_results`)."""
        return read_results(ref.results if isinstance(ref, RunRef) else ref, fix, whose)

    def manifest(self, run_id: str) -> list[ReviewItem]:
        """The review items of run `run_id`; a missing or bad file raises `RecordError`."""
        return read_manifest(recorded(self.folder / run_id, "manifest"))

    def has_manifest(self, run_id: str) -> bool:
        """Whether the run wrote a manifest (an interrupted run has none)."""
        return recorded(self.folder / run_id, "manifest").is_file()

    def judged_history(self) -> JudgedHistory:
        """The judged records of every run, read once per store (oldest run first; a record
        decided by review, with no verdicts, never replaces one that has them). Runs without a
        results file (interrupted) are passed over; a bad line raises `RecordError`."""
        if self._history is None:
            history = JudgedHistory()
            for run_id in self.run_ids():
                path = recorded(self.folder / run_id, "results")
                if not path.is_file():
                    continue
                for record in read_results(path):
                    if record.item_id and record.verdicts:
                        history.judged[record.item_id] = (run_id, record)
                    if record.item_id and sent_to_people(record):
                        stratum = stratum_of(run_id, record)
                        history.sent.setdefault(stratum, set()).add(record.item_id)
            self._history = history
        return self._history

    # --- writing a run ---------------------------------------------------------------------

    def new_run(
        self, run_id: str | None = None, results: Path | None = None, manifest: Path | None = None
    ) -> tuple[str, RunPaths]:
        """A new run's id and paths (results and manifest where the command line puts them)."""
        run_id = run_id or new_run_id()
        return run_id, RunPaths.for_run(self.folder, run_id, results, manifest)

    def lease(self, paths: RunPaths) -> RunLease:
        """The lease of a run being written, taken: `prune` never removes the run meanwhile."""
        lease = RunLease(paths.run_dir)
        lease.acquire()
        return lease

    def publish_results(self, paths: RunPaths, written: bool) -> None:
        """Make the run's partial results its results.jsonl (an empty one when nothing was
        `written`): an atomic rename, so readers never see half a file."""
        if written:
            os.replace(paths.partial, paths.results)
        else:
            write_text_atomic(paths.results, "")

    def write_manifest(self, paths: RunPaths, items: Sequence[ReviewItem]) -> None:
        """The run's review items, written atomically."""
        write_jsonl_atomic(paths.manifest, (item.model_dump(mode="json") for item in items))

    def write_summary(self, paths: RunPaths, summary: RunSummary, complete: bool) -> None:
        """The run's summary, written atomically; a complete run becomes `LATEST` (the only
        kind that may be the next baseline)."""
        write_json_atomic(paths.summary, summary.model_dump(mode="json"))
        if complete:
            write_text_atomic(self.folder / LATEST_NAME, paths.run_dir.name + "\n")

    def parts(self, run_dir: Path) -> RunParts:
        """Under xdist: the workers' parts of the run in `run_dir` (`runstore.RunParts`)."""
        return RunParts(run_dir)

    # --- prune ---------------------------------------------------------------------------

    def prune(
        self,
        keep: int,
        force: bool,
        resolved: Collection[str],
        waiting: Callable[[list[ReviewItem]], int],
    ) -> PrunePlan:
        """Remove every run folder but the newest `keep` and those `runs_prune` keeps (being
        written, the newest complete run; unless `force`, batches never collected, review items
        still pending (`waiting` counts them), the only judge verdicts behind `resolved` items)."""
        return prune_runs(self, keep, force, resolved, waiting)


def _folder_ref(folder: Path) -> RunRef:
    return RunRef(
        results=recorded(folder, "results"),
        run_id=folder.name,
        manifest=recorded(folder, "manifest"),
    )


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name


__all__ = [
    "RESULTS_FIX",
    "SUMMARY_NAME",
    "JudgedHistory",
    "PrunePlan",
    "RecordWriteError",
    "RunPaths",
    "RunRef",
    "RunReferenceError",
    "RunStore",
    "Stratum",
    "read_manifest",
    "read_results",
    "read_summary",
    "sent_to_people",
    "stratum_of",
]
