"""Under `pytest -n N`, each worker's call counters reach the controller on xdist's
`workeroutput` (the channel pytest-cov sends its data on) and are added up there, so the run's
summary counts requests, retries and provider batches as a `-n 0` run does.

With `--judge-batch` the controller's own broker made the provider batches: waves, batches,
batch requests, holds and earlier batches collected are its counts; how each request ended
(`results`), resubmissions and identical calls sent once are counted where the calls were
made, on the workers, and added to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batches.stats import BatchStats
    from .calls import CallStats

KEY = "hybridjudge_calls"  # workeroutput: the worker's call counters
_COUNTS = ("finished", "cache_hits", "requests", "retries", "failures", "cost")
_BY_NAME = ("requests_by_provider", "retries_by_provider", "unpriced")


def worker_output(stats: CallStats) -> dict[str, Any]:
    """A worker's counters as plain data xdist can send."""
    data: dict[str, Any] = {name: getattr(stats, name) for name in (*_COUNTS, *_BY_NAME)}
    data["mode_switches"] = {name: list(s) for name, s in stats.mode_switches.items()}
    if stats.batch is not None:
        batch = stats.batch
        data["batch"] = {
            "results": dict(batch.results),
            "resubmitted": batch.resubmitted,
            "deduplicated": batch.deduplicated,
        }
    return data


def add_worker_output(stats: CallStats, data: Mapping[str, Any]) -> None:
    """Add one worker's counters (`worker_output`) to the controller's."""
    for name in _COUNTS:
        setattr(stats, name, getattr(stats, name) + data.get(name, 0))
    for name in _BY_NAME:
        counts: dict[str, int] = getattr(stats, name)
        for key, value in (data.get(name) or {}).items():
            counts[key] = counts.get(key, 0) + value
    for name, (started, now, why) in (data.get("mode_switches") or {}).items():
        stats.mode_switches.setdefault(name, (started, now, why))
    if stats.batch is not None and data.get("batch"):
        _add_batch(stats.batch, data["batch"])


def _add_batch(batch: BatchStats, data: Mapping[str, Any]) -> None:
    for kind, count in (data.get("results") or {}).items():
        batch.results[kind] = batch.results.get(kind, 0) + count
    batch.resubmitted += data.get("resubmitted", 0)
    batch.deduplicated += data.get("deduplicated", 0)
