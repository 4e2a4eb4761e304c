"""The run store: the only reader and writer of the runs folder (`runs_dir`).

As pytest's `cacheprovider.Cache` owns `.pytest_cache`, `RunStore` owns the runs folder: a new
run and its paths, the newest complete run (`LATEST`), the list of runs, a run reference
(`latest`, a run id, a run folder or a results file) resolved, each file of a run read in one
typed shape (`CaseResult`, `ReviewItem`, `RunSummary`), the judged history, and prune. A record
the tool wrote that cannot be read raises `errors.RecordError` naming `path:line` and the fix.
The folder's ground rules (which folders are runs, the lease, completeness) are in `runstore`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .batches.ledger import uncollected
from .errors import InputError, RecordError
from .files import write_json_atomic, write_jsonl_atomic, write_text_atomic
from .paths import configured
from .review.manifest import ReviewItem
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


@dataclass
class PrunePlan:
    """What `prune` did, run by run in order: (run folder, "kept" | "removed" | "failed", why)."""

    links: list[Path] = field(default_factory=list)  # run-id-named links, left alone
    done: list[tuple[Path, str, str]] = field(default_factory=list)
    runs: int = 0  # run folders before pruning

    @property
    def removed(self) -> int:
        """How many runs were removed."""
        return sum(what == "removed" for _, what, _ in self.done)

    @property
    def failed(self) -> int:
        """How many runs could not be removed."""
        return sum(what == "failed" for _, what, _ in self.done)


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
        """Remove every run folder but the newest `keep`, never one still being written or the
        newest complete run; unless `force`, keep runs with review items still pending
        (`waiting` counts them) or the only judge verdicts behind `resolved` items."""
        plan = PrunePlan()
        plan.links = [
            p for p in sorted(self.folder.iterdir()) if is_run_id(p.name) and p.is_symlink()
        ]
        runs = self.run_ids()
        plan.runs = len(runs)
        old = runs[: max(0, len(runs) - keep)]
        kept = self._kept(runs, old, force, resolved, waiting)
        for run_id in old:
            folder = self.folder / run_id
            if run_id in kept:
                plan.done.append((folder, "kept", kept[run_id]))
                continue
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                plan.done.append((folder, "failed", str(exc.strerror or exc)))
                continue
            plan.done.append((folder, "removed", ""))
        return plan

    def _kept(
        self,
        runs: list[str],
        old: list[str],
        force: bool,
        resolved: Collection[str],
        waiting: Callable[[list[ReviewItem]], int],
    ) -> dict[str, str]:
        """Run id -> why an old run is kept."""
        latest = self.latest()
        kept: dict[str, str] = {}
        for run_id in old:
            pid = self.running_pid(run_id)
            if pid is not None:
                kept[run_id] = f"still being written (pid {pid}); never removed while it runs"
            elif run_id == latest:
                kept[run_id] = "the newest complete run (LATEST, the next `latest` baseline)"
        if force:
            return kept
        for run_id in old:
            if run_id not in kept and (batches := len(uncollected(self.folder, run_id))):
                kept[run_id] = (
                    f"{batches} provider batch{'es' if batches > 1 else ''} never collected "
                    "(`pytest --judge --judge-batch` collects them, `hybridjudge batch cancel "
                    f"{run_id}` cancels them); --force removes it anyway"
                )
        for run_id in old:
            if run_id not in kept and (why := self._pending(run_id, waiting)):
                kept[run_id] = why
        leaving = [run_id for run_id in old if run_id not in kept]
        for run_id, items in self._verdict_holders(runs, leaving, resolved).items():
            kept[run_id] = (
                f"holds the only judge verdicts behind reviewers' decisions on "
                f"{_n(items, 'item')} (calibrate reads them); --force removes it anyway"
            )
        return kept

    def _pending(self, run_id: str, waiting: Callable[[list[ReviewItem]], int]) -> str | None:
        if not self.has_manifest(run_id):
            return None
        try:
            count = waiting(self.manifest(run_id))
        except RecordError as exc:
            return f"its manifest cannot be read ({exc}); --force removes it anyway"
        if not count:
            return None
        return (
            f"{_n(count, 'review item')} still pending (resolve them with "
            "`hybridjudge review`); --force removes it anyway"
        )

    def _verdict_holders(
        self, runs: list[str], leaving: list[str], resolved: Collection[str]
    ) -> dict[str, int]:
        """Runs about to be removed that hold the last judge verdicts of resolved items: for
        each resolved item whose every judged record would go, the newest of those runs is
        kept."""
        if not resolved or not leaving:
            return {}
        holders: dict[str, list[str]] = {}  # item id -> runs with its judge verdicts, oldest first
        for run_id in runs:
            try:
                records = read_results(recorded(self.folder / run_id, "results"))
            except RecordError:
                continue
            for record in records:
                if record.item_id and record.item_id in resolved and record.verdicts:
                    holders.setdefault(record.item_id, []).append(run_id)
        going = set(leaving)
        keep: dict[str, int] = {}
        for runs_of_item in holders.values():
            if all(name in going for name in runs_of_item):
                newest = runs_of_item[-1]
                keep[newest] = keep.get(newest, 0) + 1
        return keep


def _folder_ref(folder: Path) -> RunRef:
    return RunRef(
        results=recorded(folder, "results"),
        run_id=folder.name,
        manifest=recorded(folder, "manifest"),
    )


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _n(count: int, one: str) -> str:
    return f"{count} {one if count == 1 else one + 's'}"


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
