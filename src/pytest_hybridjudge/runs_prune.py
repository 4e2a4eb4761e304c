"""`hybridjudge runs prune`: which old runs the run store removes, and why it keeps the others.

Part of the run store (`RunStore.prune` calls it; nothing else removes a run): never a run still
being written or the newest complete run; unless forced, never a run with provider batches not
collected yet, review items still pending, or the only judge verdicts behind reviewers'
decisions. Links named like runs are left alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .batches.ledger import uncollected
from .errors import RecordError
from .review.manifest import ReviewItem
from .runstore import is_run_id, read_results, recorded
from .words import counted


class PrunedRuns(Protocol):
    """What prune reads of the run store (`runs.RunStore` is one)."""

    folder: Path

    def run_ids(self) -> list[str]:
        """The runs, oldest first."""

    def running_pid(self, run_id: str) -> int | None:
        """The pid of the session still writing the run, or None."""

    def latest(self) -> str | None:
        """The newest complete run."""

    def has_manifest(self, run_id: str) -> bool:
        """Whether the run wrote a manifest."""

    def manifest(self, run_id: str) -> list[ReviewItem]:
        """The run's review items."""


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


def prune_runs(
    store: PrunedRuns,
    keep: int,
    force: bool,
    resolved: Collection[str],
    waiting: Callable[[list[ReviewItem]], int],
) -> PrunePlan:
    """Remove every run folder but the newest `keep`, never one still being written or the
    newest complete run; unless `force`, keep runs with batches never collected, review items
    still pending (`waiting` counts them) or the only judge verdicts behind `resolved` items."""
    plan = PrunePlan()
    plan.links = [p for p in sorted(store.folder.iterdir()) if is_run_id(p.name) and p.is_symlink()]
    runs = store.run_ids()
    plan.runs = len(runs)
    old = runs[: max(0, len(runs) - keep)]
    kept = _kept(store, runs, old, force, resolved, waiting)
    for run_id in old:
        folder = store.folder / run_id
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
    store: PrunedRuns,
    runs: list[str],
    old: list[str],
    force: bool,
    resolved: Collection[str],
    waiting: Callable[[list[ReviewItem]], int],
) -> dict[str, str]:
    """Run id -> why an old run is kept."""
    latest = store.latest()
    kept: dict[str, str] = {}
    for run_id in old:
        pid = store.running_pid(run_id)
        if pid is not None:
            kept[run_id] = f"still being written (pid {pid}); never removed while it runs"
        elif run_id == latest:
            kept[run_id] = "the newest complete run (LATEST, the next `latest` baseline)"
    if force:
        return kept
    for run_id in old:
        if run_id not in kept and (batches := len(uncollected(store.folder, run_id))):
            kept[run_id] = (
                f"{counted(batches, 'provider batch', 'provider batches')} never collected "
                "(`pytest --judge --judge-batch` collects them, `hybridjudge batch cancel "
                f"{run_id}` cancels them); --force removes it anyway"
            )
    for run_id in old:
        if run_id not in kept and (why := _pending(store, run_id, waiting)):
            kept[run_id] = why
    leaving = [run_id for run_id in old if run_id not in kept]
    for run_id, items in _verdict_holders(store.folder, runs, leaving, resolved).items():
        kept[run_id] = (
            f"holds the only judge verdicts behind reviewers' decisions on "
            f"{counted(items, 'item')} (calibrate reads them); --force removes it anyway"
        )
    return kept


def _pending(
    store: PrunedRuns, run_id: str, waiting: Callable[[list[ReviewItem]], int]
) -> str | None:
    if not store.has_manifest(run_id):
        return None
    try:
        count = waiting(store.manifest(run_id))
    except RecordError as exc:
        return f"its manifest cannot be read ({exc}); --force removes it anyway"
    if not count:
        return None
    return (
        f"{counted(count, 'review item')} still pending (resolve them with "
        "`hybridjudge review`); --force removes it anyway"
    )


def _verdict_holders(
    folder: Path, runs: list[str], leaving: list[str], resolved: Collection[str]
) -> dict[str, int]:
    """Runs about to be removed that hold the last judge verdicts of resolved items: for each
    resolved item whose every judged record would go, the newest of those runs is kept."""
    if not resolved or not leaving:
        return {}
    holders: dict[str, list[str]] = {}  # item id -> runs with its judge verdicts, oldest first
    for run_id in runs:
        try:
            records = read_results(recorded(folder / run_id, "results"))
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
