"""`hybridjudge runs`: list the runs of the project, or prune old ones.

Only run folders (`runstore.is_run_folder`) are listed or ever removed, by the run store
(`runs.RunStore.prune`); this module only formats. `prune` never removes a
run still being written, the newest complete run (`LATEST`), and, unless `--force`, runs holding
review items still pending or the only judge verdicts behind reviewers' decisions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..words import counted
from .common import CommandError, Project, add_root_option, fail, say

if TYPE_CHECKING:
    from ..runs import RunStore


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
    from ..runs import RunStore

    try:
        project = Project.from_args(args)
        store = RunStore(Path(args.dir).expanduser()) if args.dir else project.store
        if args.runs_command == "prune":
            return _prune(store, args.keep, args.force, project)
        return _list(store)
    except HybridJudgeError as exc:
        return fail("runs", exc)


def _list(store: RunStore) -> int:
    from ..errors import RecordError
    from ..runs import SUMMARY_NAME

    run_ids = store.run_ids()
    if not run_ids:
        say(f"no runs under {store.folder}; run `pytest --judge` first", file=sys.stderr)
        return 1
    latest = store.latest()
    for run_id in run_ids:
        pid = store.running_pid(run_id)
        if pid is not None:
            say(f"{run_id}  in progress (pid {pid})")
            continue
        if not (store.folder / run_id / SUMMARY_NAME).is_file():
            say(f"{run_id}  incomplete: no summary (stopped before its files were written)")
            continue
        try:
            s = store.summary(run_id)
        except RecordError as exc:
            say(f"{exc}", file=sys.stderr)
            continue
        o = s.outcomes
        targets = ", ".join(s.targets) or "none"
        if s.complete is None:
            state = "completeness not recorded"
        elif s.complete:
            state = "complete" + ("  (LATEST: the baseline `latest` names)" * (run_id == latest))
        else:
            state = "incomplete: " + "; ".join(s.incomplete_because)
        say(
            f"{s.run_id}  {s.cases:>5} cases  {o.passed:>5} passed  {o.failed:>5} "
            f"failed  {o.escalated:>5} escalated  {o.skipped:>5} skipped  target {targets}  "
            f"{state}"
        )
    return 0


def _prune(store: RunStore, keep: int, force: bool, project: Project) -> int:
    """Remove every run folder but the newest `keep`, and those the store keeps; say which."""
    from ..review.store import pending

    if keep < 1:
        raise CommandError(f"--keep {keep}: keep at least the newest run (--keep 1)")
    if not store.folder.is_dir():
        raise CommandError(f"--dir {store.folder}: no such folder")
    decisions = [] if force else project.desk.recorded
    plan = store.prune(
        keep,
        force,
        resolved={r.item_id for r in decisions},
        waiting=lambda items: len(pending(items, decisions)),
    )
    for link in plan.links:
        say(f"left {link} alone: a link, not a run folder (remove the link by hand)")
    for run, what, why in plan.done:
        if what == "kept":
            say(f"kept {run.name}: {why}")
        elif what == "failed":
            say(f"could not remove {run} ({why})", file=sys.stderr)
        else:
            say(f"removed {run}")
    kept = plan.runs - plan.removed
    say(f"{counted(plan.removed, 'run')} removed, {counted(kept, 'run')} kept in {store.folder}")
    return 1 if plan.failed else 0
