"""`hybridjudge runs`: list the runs of the project, or prune old ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import CommandError, Project, add_root_option, fail, say


def add_runs_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `runs` (and `runs prune`) on `subparsers`."""
    runs = subparsers.add_parser("runs", help="List the runs under the runs folder")
    add_root_option(runs)
    runs.add_argument("--dir", help="Runs folder (default: runs_dir of the project's config)")
    commands = runs.add_subparsers(dest="runs_command", metavar="{prune}")
    prune = commands.add_parser("prune", help="Remove old run folders, keeping the newest N")
    prune.add_argument(
        "--keep", type=int, required=True, metavar="N", help="How many of the newest runs to keep"
    )
    return runs


def run_runs(args: argparse.Namespace) -> int:
    """Run `hybridjudge runs`; clear errors go to stderr with exit code 2, no traceback."""
    from ..errors import HybridJudgeError

    try:
        folder = Path(args.dir) if args.dir else Project.from_args(args).runs_dir
        if args.runs_command == "prune":
            return _prune(folder, args.keep)
        return _list(folder)
    except HybridJudgeError as exc:
        return fail("runs", exc)


def _list(folder: Path) -> int:
    from ..summary import SummaryError, read_summary

    summaries = sorted(folder.glob("*/summary.json"))
    if not summaries:
        say(f"no runs under {folder}; run `pytest --judge` first", file=sys.stderr)
        return 1
    for path in summaries:
        try:
            s = read_summary(path)
        except SummaryError as exc:
            say(f"{exc}", file=sys.stderr)
            continue
        o = s.outcomes
        say(
            f"{s.run_id}  {s.cases:>5} cases  {o.passed:>5} passed  {o.failed:>5} "
            f"failed  {o.escalated:>5} escalated  {o.skipped:>5} skipped"
        )
    return 0


def _prune(folder: Path, keep: int) -> int:
    """Remove every run folder but the newest `keep` (and the one `LATEST` names)."""
    import shutil

    from ..review.store import run_ids

    if keep < 1:
        raise CommandError(f"--keep {keep}: keep at least the newest run (--keep 1)")
    runs = run_ids(folder)
    latest = (folder / "LATEST").read_text().strip() if (folder / "LATEST").is_file() else None
    old = [run for run in runs[: max(0, len(runs) - keep)] if run != latest]
    for run in old:
        shutil.rmtree(folder / run)
        say(f"removed {folder / run}")
    say(f"{len(old)} run(s) removed, {len(runs) - len(old)} kept in {folder}")
    return 0
