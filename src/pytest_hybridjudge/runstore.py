"""The runs folder: which folders are runs, which run is still being written, which is complete.

A run folder is named by its run id (`20261129T223700Z-3fa2c1`) and holds the run's files; any
other folder in `runs_dir` belongs to someone else and is never touched. A run being written
holds an exclusive `flock` on its `.running` file for the whole session; the lock goes with the
process, so a killed run never looks alive. `LATEST` names the newest *complete* run, the only
kind that may be a baseline.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

if sys.platform != "win32":
    import fcntl

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
RUN_FILES = ("summary.json", "results.jsonl", "results.jsonl.partial", "manifest.jsonl")
RUNNING_NAME = ".running"
LATEST_NAME = "LATEST"


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


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def incomplete_because(shape: RunShape) -> list[str]:
    """Why the run cannot stand for the whole gold set (empty: it is complete). Pure."""
    reasons = []
    if shape.interrupted:
        reasons.append("interrupted")
    if shape.collection_errors:
        reasons.append(_n(shape.collection_errors, "collection error"))
    if shape.cases == 0:
        reasons.append("no case ran")
    if shape.deselected:
        reasons.append(f"a subset: {_n(shape.deselected, 'case')} deselected (-k, -m or --lf)")
    if shape.filtered:
        reasons.append("a subset: -k or -m given")
    if shape.paths_given:
        reasons.append("a subset: only some gold files or cases named on the command line")
    if shape.unfinished:
        reasons.append(f"{_n(shape.unfinished, 'case')} never finished (the session stopped)")
    if shape.over_budget:
        reasons.append(f"{_n(shape.over_budget, 'case')} skipped by the budget")
    if shape.cases and shape.outages / shape.cases > shape.max_outage_share:
        reasons.append(
            f"{_n(shape.outages, 'case')} of {shape.cases} lost to provider outages "
            f"(more than {shape.max_outage_share:.0%})"
        )
    return reasons


def latest_complete(runs_dir: Path) -> str | None:
    """The run `LATEST` names, if it is complete; else the newest run whose summary says it is
    complete (a `LATEST` written before completeness was recorded may name any run)."""
    from .summary import SUMMARY_NAME, SummaryError, read_summary

    def complete(run_id: str) -> bool | None:
        try:
            return read_summary(runs_dir / run_id / SUMMARY_NAME).complete
        except SummaryError:
            return False

    with contextlib.suppress(OSError, UnicodeDecodeError):
        named = (runs_dir / LATEST_NAME).read_text(encoding="utf-8").strip()
        if is_run_id(named) and complete(named) is not False:
            return named
    for folder in reversed(run_folders(runs_dir)):
        if complete(folder.name):
            return folder.name
    return None
