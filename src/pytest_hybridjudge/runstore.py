"""The runs folder's ground rules: which folders are runs, which is still being written, which
is complete; and how each file of a run is read, in one typed shape. Only the run store
(`runs.py`) uses them; nothing else reads the folder.

A run folder is named by its run id (`20261129T223700Z-3fa2c1`) and holds the run's files; any
other folder in `runs_dir` belongs to someone else and is never touched. A run being written
holds an exclusive `flock` on its `.running` file for the whole session; the lock goes with the
process, so a killed run never looks alive. `LATEST` names the newest *complete* run, the only
kind that may be a baseline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import HybridJudgeError, RecordError, describe_validation_error
from .files import LineSpool
from .review.manifest import ReviewItem
from .summary import RunSummary
from .verdict import CaseResult
from .words import counted

if sys.platform != "win32":
    import fcntl

M = TypeVar("M", bound=BaseModel)
MAX_LINE_BYTES = 16 * 2**20  # one JSONL record; a longer line is not one a run wrote
SUMMARY_NAME = "summary.json"
RESULTS_FIX = "point {option} at a results.jsonl that pytest --judge wrote"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
RUN_FILES = ("summary.json", "results.jsonl", "results.jsonl.partial", "manifest.jsonl")
RUNNING_NAME = ".running"
LATEST_NAME = "LATEST"
PARTS_NAME = "parts"  # under xdist: each worker's finished results, until the controller merges


class RecordWriteError(HybridJudgeError):
    """A run's record could not be written (disk full, a quota, a file size limit)."""

    @classmethod
    def of(cls, exc: OSError, path: Path, kept: int) -> RecordWriteError:
        """The error for `exc` raised writing `path`, saying what was kept and what to free."""
        try:
            free = f"{shutil.disk_usage(path.parent).free / 1e6:,.1f} MB free there now"
        except OSError:
            free = "free space unknown"
        records = f"{kept} record{'s' if kept != 1 else ''}"
        return cls(
            f"cannot write {path} ({exc.strerror or exc}); the {records} written before are "
            f"whole in it. Free disk space in {path.parent} ({free}): remove old runs with "
            "`hybridjudge runs prune --keep N`, or point `runs_dir` or `cache_path` at a disk "
            "with room, then run again"
        )


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable, unique: `20261129T223700Z-3fa2c1`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunPaths:
    """Where one run's files go."""

    run_dir: Path
    results: Path
    manifest: Path
    summary: Path

    @classmethod
    def for_run(
        cls, runs_dir: Path, run_id: str, results: Path | None = None, manifest: Path | None = None
    ) -> RunPaths:
        """Default paths under `runs_dir/run_id`, with the command line's overrides."""
        run_dir = runs_dir / run_id
        return cls(
            run_dir=run_dir,
            results=results or run_dir / "results.jsonl",
            manifest=manifest or run_dir / "manifest.jsonl",
            summary=run_dir / SUMMARY_NAME,
        )

    @property
    def partial(self) -> Path:
        """Where results go while the run is going on."""
        return self.results.with_name(self.results.name + ".partial")


def is_run_id(name: str) -> bool:
    """Whether `name` has the shape of a run id."""
    return RUN_ID.fullmatch(name) is not None


def is_run_folder(path: Path) -> bool:
    """A real folder (not a link) named by a run id, holding at least one of a run's files."""
    if not is_run_id(path.name) or path.is_symlink() or not path.is_dir():
        return False
    return any((path / name).exists() for name in (*RUN_FILES, RUNNING_NAME))


def run_folders(runs_dir: Path) -> list[Path]:
    """The run folders directly under `runs_dir`, oldest first (run ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    return sorted((p for p in runs_dir.iterdir() if is_run_folder(p)), key=lambda p: p.name)


# --- the lease of a run being written ------------------------------------------------------


class RunLease:
    """The running session's hold on its run folder: an exclusive lock on `.running` (with the
    pid inside, for people), released by `release` or by the process ending."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / RUNNING_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Create the run folder and take the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("w", encoding="utf-8")
        if sys.platform != "win32":
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Remove the lock file and let go of the lock (the run's files are written)."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        handle.close()


def running_pid(run_dir: Path) -> int | None:
    """The pid of the session still writing `run_dir`, or None when no session holds it."""
    path = run_dir / RUNNING_NAME
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError:
        return None
    with handle:
        if sys.platform != "win32":
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else 0
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return None
        text = handle.read().strip()  # no flock: trust a pid file whose process lives
        return int(text) if text.isdigit() else None


# --- parts: each xdist worker's results, merged by the controller -------------------------


class RunPart:
    """One xdist worker's part of a run: each result it finishes, appended as one whole line
    (`files.LineSpool`), so a worker that crashes or is killed leaves every finished case."""

    def __init__(self, path: Path):
        self.path = path
        self._spool = LineSpool(path)

    def add(self, result: CaseResult) -> None:
        """Append one finished case's result."""
        self._spool.write(result.model_dump_json() + "\n")

    def close(self) -> None:
        """Close the file (no fsync: the controller reads it while this machine is up)."""
        self._spool.close(sync=False)


class RunParts:
    """The xdist workers' parts of one run (`parts/gw0.jsonl`, ...), like pytest-cov's data
    files: each worker writes its own, the controller merges them and then drops them."""

    def __init__(self, run_dir: Path):
        self.folder = run_dir / PARTS_NAME

    def open(self, worker: str) -> RunPart:
        """Worker `worker`'s part (`gw0`), opened for its results."""
        return RunPart(self.folder / f"{worker}.jsonl")

    def read(self) -> dict[str, list[CaseResult]]:
        """Each worker's finished results (worker id -> results, in the order written)."""
        parts: dict[str, list[CaseResult]] = {}
        for worker, result in self.each():
            parts.setdefault(worker, []).append(result)
        return parts

    def each(self) -> Iterator[tuple[str, CaseResult]]:
        """(worker id, result) for every finished result, one at a time (a 10,000-case run's
        results never sit in memory at once), a crashed worker's included; a line that is not
        a whole result (the worker died while writing it) is passed over: that case counts as
        not finished."""
        for path in sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []:
            with contextlib.suppress(OSError), path.open("rb") as handle:
                for raw in handle:
                    try:
                        result = CaseResult.model_validate_json(raw)
                    except (ValidationError, UnicodeDecodeError):
                        continue
                    yield path.stem, result

    def drop(self) -> None:
        """Remove the parts once merged into the run's records."""
        shutil.rmtree(self.folder, ignore_errors=True)


# --- completeness: which runs may be a baseline --------------------------------------------


@dataclass(frozen=True)
class RunShape:
    """What a run covered, as far as completeness goes (counted by the recorder)."""

    cases: int
    unfinished: int = 0  # selected cases the session stopped before (Ctrl-C, -x, --maxfail)
    outages: int = 0  # cases lost to provider outages
    over_budget: int = 0  # cases the budget skipped
    collection_errors: int = 0
    deselected: int = 0  # gold items -k, -m or --lf left out
    filtered: bool = False  # -k or -m given where the deselection is not seen (xdist controller)
    paths_given: bool = False  # only some gold files or cases named on the command line
    interrupted: bool = False  # Ctrl-C
    max_outage_share: float = 0.1
    crashed: tuple[str, ...] = ()  # xdist workers that crashed (`gw0`)


def incomplete_because(shape: RunShape) -> list[str]:
    """Why the run cannot stand for the whole gold set (empty: it is complete). Pure."""
    reasons = []
    if shape.interrupted:
        reasons.append("interrupted")
    if shape.collection_errors:
        reasons.append(counted(shape.collection_errors, "collection error"))
    if shape.cases == 0:
        reasons.append("no case ran")
    if shape.deselected:
        reasons.append(f"a subset: {counted(shape.deselected, 'case')} deselected (-k, -m or --lf)")
    if shape.filtered:
        reasons.append("a subset: -k or -m given")
    if shape.paths_given:
        reasons.append("a subset: only some gold files or cases named on the command line")
    if shape.crashed:
        reasons.append(
            f"xdist {counted(len(shape.crashed), 'worker')} crashed: {', '.join(shape.crashed)}"
        )
    if shape.unfinished:
        reasons.append(f"{counted(shape.unfinished, 'case')} never finished (the session stopped)")
    if shape.over_budget:
        reasons.append(f"{counted(shape.over_budget, 'case')} skipped by the budget")
    if shape.cases and shape.outages / shape.cases > shape.max_outage_share:
        reasons.append(
            f"{counted(shape.outages, 'case')} of {shape.cases} lost to provider outages "
            f"(more than {shape.max_outage_share:.0%})"
        )
    return reasons


# --- reading a run's files: one typed reader each ------------------------------------------


def recorded(run_dir: Path, kind: Literal["results", "manifest"]) -> Path:
    """Where the run in `run_dir` wrote its results or manifest: `<kind>.jsonl` in its folder,
    or the path its summary recorded (a run started with `--judge-report` / `--judge-manifest`)."""
    default = run_dir / f"{kind}.jsonl"
    if default.is_file():
        return default
    try:
        paths = read_summary(run_dir / SUMMARY_NAME).paths
    except RecordError:
        return default
    return Path(paths.results if kind == "results" else paths.manifest)


def read_summary(path: Path) -> RunSummary:
    """The summary at `path`; an unreadable or invalid one raises `RecordError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: cannot read ({exc})") from None
    try:
        return RunSummary.model_validate_json(text)
    except ValidationError as exc:
        raise RecordError(f"{path}: not a run summary: {describe_validation_error(exc)}") from None


def read_results(path: Path, fix: str = "", whose: str = "the run's") -> list[CaseResult]:
    """The case results of a results.jsonl, each line checked as a `CaseResult` with strict
    types; a bad line (not JSON, not an object, a field of the wrong type, longer than
    `MAX_LINE_BYTES`) raises `RecordError` naming `path:line`, `whose` results they are and the
    `fix`. Lines are read one at a time, never more than `MAX_LINE_BYTES` + 1 bytes of one."""
    fix = fix or RESULTS_FIX.format(option="--run")
    return _read_jsonl(path, CaseResult, "a case result a run wrote", fix, whose + " results")


def read_manifest(path: Path) -> list[ReviewItem]:
    """The review items of one manifest file; a missing file or a bad line raises `RecordError`."""
    if not path.is_file():
        raise RecordError(
            f"{path} is missing; the run did not finish writing its files. "
            "Run `pytest --judge` again, or pick another run with --run RUN_ID"
        )
    fix = "the manifest is written by `pytest --judge`: run it again, or fix that line"
    return _read_jsonl(path, ReviewItem, "a review item", fix, "", strict=False)


def _read_jsonl(
    path: Path, model: type[M], what: str, fix: str, whose: str, strict: bool = True
) -> list[M]:
    records = []
    try:
        with path.open("rb") as handle:
            for number, raw in _bounded_lines(handle, path, what, fix):
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise RecordError(
                        f"{path}:{number}: not valid JSON ({exc.msg}); {fix}"
                    ) from None
                if not isinstance(data, dict):
                    raise RecordError(f"{path}:{number}: expected a JSON object; {fix}")
                try:  # JSON mode: strict types, with arrays read as tuples
                    records.append(model.model_validate_json(raw, strict=strict))
                except ValidationError as exc:
                    problems = describe_validation_error(exc)
                    raise RecordError(f"{path}:{number}: not {what} ({problems}); {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        whose = f"{whose} " if whose else ""
        raise RecordError(f"{path}: cannot read {whose}({exc}); {fix}") from None
    return records


def _bounded_lines(handle: IO[bytes], path: Path, what: str, fix: str) -> Iterator[tuple[int, str]]:
    """(line number, text) per non-blank line, each line read with a size bound."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise RecordError(
                f"{path}:{number}: line longer than {MAX_LINE_BYTES // 2**20} MB, not {what}; {fix}"
            )
        line = raw.decode("utf-8").strip()
        if line:
            yield number, line
