"""`hybridjudge runs`: list the runs of the project, or prune old ones.

Only run folders (`runstore.is_run_folder`) are listed or ever removed. `prune` never removes a
run still being written, the newest complete run (`LATEST`), and, unless `--force`, runs holding
review items still pending or the only judge verdicts behind reviewers' decisions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..runstore import is_run_id, latest_complete, run_folders, running_pid
from .common import CommandError, Project, add_root_option, fail, say

if TYPE_CHECKING:
    from ..review.resolutions import Resolution


def add_runs_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `runs` (and `runs prune`) on `subparsers`."""
    runs = subparsers.add_parser("runs", help="List the runs under the runs folder")
    add_root_option(runs)
    runs.add_argument("--dir", help="Runs folder (default: runs_dir of the project's config)")
    commands = runs.add_subparsers(dest="runs_command", metavar="{prune}")
    prune = commands.add_parser(
        "prune",
        help="Remove old run folders, keeping the newest N",
        description="Removes run folders (never any other folder) but the newest N. Runs still "
        "being written and the newest complete run are always kept; runs with review items "
        "still pending, or holding the only judge verdicts behind reviewers' decisions, are "
        "kept unless --force.",
    )
    prune.add_argument(
        "--keep", type=int, required=True, metavar="N", help="How many of the newest runs to keep"
    )
    prune.add_argument(
        "--force",
        action="store_true",
        help="Also remove runs with pending review items or verdicts reviewers' decisions rest on",
    )
    return runs


def run_runs(args: argparse.Namespace) -> int:
    """Run `hybridjudge runs`; clear errors go to stderr with exit code 2, no traceback."""
    from ..errors import HybridJudgeError

    try:
        project = Project.from_args(args)
        folder = Path(args.dir).expanduser() if args.dir else project.runs_dir
        if args.runs_command == "prune":
            return _prune(folder, args.keep, args.force, project.resolutions)
        return _list(folder)
    except HybridJudgeError as exc:
        return fail("runs", exc)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _list(folder: Path) -> int:
    from ..summary import SUMMARY_NAME, SummaryError, read_summary

    folders = run_folders(folder)
    if not folders:
        say(f"no runs under {folder}; run `pytest --judge` first", file=sys.stderr)
        return 1
    latest = latest_complete(folder)
    for run in folders:
        pid = running_pid(run)
        if pid is not None:
            say(f"{run.name}  in progress (pid {pid})")
            continue
        if not (run / SUMMARY_NAME).is_file():
            say(f"{run.name}  incomplete: no summary (stopped before its files were written)")
            continue
        try:
            s = read_summary(run / SUMMARY_NAME)
        except SummaryError as exc:
            say(f"{exc}", file=sys.stderr)
            continue
        o = s.outcomes
        targets = ", ".join(s.targets) or "none"
        if s.complete is None:
            state = "completeness not recorded"
        elif s.complete:
            state = "complete" + ("  (LATEST: the baseline `latest` names)" * (run.name == latest))
        else:
            state = "incomplete: " + "; ".join(s.incomplete_because)
        say(
            f"{s.run_id}  {s.cases:>5} cases  {o.passed:>5} passed  {o.failed:>5} "
            f"failed  {o.escalated:>5} escalated  {o.skipped:>5} skipped  target {targets}  "
            f"{state}"
        )
    return 0


def _prune(folder: Path, keep: int, force: bool, resolutions: Path) -> int:
    """Remove every run folder but the newest `keep`, and those `_kept` keeps; say which."""
    import shutil

    if keep < 1:
        raise CommandError(f"--keep {keep}: keep at least the newest run (--keep 1)")
    if not folder.is_dir():
        raise CommandError(f"--dir {folder}: no such folder")
    for entry in sorted(folder.iterdir()):
        if is_run_id(entry.name) and entry.is_symlink():
            say(f"left {entry} alone: a link, not a run folder (remove the link by hand)")
    runs = run_folders(folder)
    old = runs[: max(0, len(runs) - keep)]
    kept = _kept(folder, runs, old, force, resolutions)
    removed, failed = 0, 0
    for run in old:
        if run.name in kept:
            say(f"kept {run.name}: {kept[run.name]}")
            continue
        try:
            shutil.rmtree(run)
        except OSError as exc:
            failed += 1
            say(f"could not remove {run} ({exc.strerror or exc})", file=sys.stderr)
            continue
        removed += 1
        say(f"removed {run}")
    say(f"{_n(removed, 'run')} removed, {_n(len(runs) - removed, 'run')} kept in {folder}")
    return 1 if failed else 0


def _kept(
    folder: Path, runs: list[Path], old: list[Path], force: bool, resolutions: Path
) -> dict[str, str]:
    """Run id -> why an old run is kept."""
    latest = latest_complete(folder)
    kept: dict[str, str] = {}
    for run in old:
        pid = running_pid(run)
        if pid is not None:
            kept[run.name] = f"still being written (pid {pid}); never removed while it runs"
        elif run.name == latest:
            kept[run.name] = "the newest complete run (LATEST, the next `latest` baseline)"
    if force:
        return kept
    from ..review.resolutions import load_resolutions

    decisions = load_resolutions(resolutions)
    for run in old:
        if run.name not in kept and (why := _pending_items(folder, run.name, decisions)):
            kept[run.name] = why
    resolved = {r.item_id for r in decisions}
    leaving = [run for run in old if run.name not in kept]
    for run_id, items in _verdict_holders(folder, runs, leaving, resolved).items():
        kept[run_id] = (
            f"holds the only judge verdicts behind reviewers' decisions on "
            f"{_n(items, 'item')} (calibrate reads them); --force removes it anyway"
        )
    return kept


def _pending_items(folder: Path, run_id: str, decisions: list[Resolution]) -> str | None:
    from ..review.store import ManifestError, manifest_path, pending, read_manifest

    path = manifest_path(folder, run_id)
    if not path.is_file():
        return None
    try:
        items = read_manifest(path)
    except ManifestError as exc:
        return f"its manifest cannot be read ({exc}); --force removes it anyway"
    waiting = pending(items, decisions)
    if not waiting:
        return None
    return (
        f"{_n(len(waiting), 'review item')} still pending (resolve them with "
        "`hybridjudge review`); --force removes it anyway"
    )


def _verdict_holders(
    folder: Path, runs: list[Path], leaving: list[Path], resolved: set[str]
) -> dict[str, int]:
    """Runs about to be removed that hold the last judge verdicts of resolved items: for each
    resolved item whose every judged record would go, the newest of those runs is kept."""
    from ..files import jsonl_objects
    from ..summary import recorded_path

    if not resolved or not leaving:
        return {}
    holders: dict[str, list[str]] = {}  # item id -> runs with its judge verdicts, oldest first
    for run in runs:
        path = recorded_path(folder, run.name, "results")
        try:
            text = path.read_text(encoding="utf-8")
            records = [r for _, r in jsonl_objects(text, path, ValueError, "")]
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        for record in records:
            item = record.get("item_id")
            if item in resolved and record.get("verdicts"):
                holders.setdefault(str(item), []).append(run.name)
    going = {run.name for run in leaving}
    keep: dict[str, int] = {}
    for runs_of_item in holders.values():
        if all(name in going for name in runs_of_item):
            newest = runs_of_item[-1]
            keep[newest] = keep.get(newest, 0) + 1
    return keep
