"""Keep long-lived objects out of the cyclic garbage collector's way during a run.

A run allocates a great deal of short-lived garbage (each SDK call builds request, response and
pydantic objects), and every full collection it triggers also rescans everything long-lived:
modules, the SDK's thousands of classes, pytest's items and the run's jobs.  `gc.freeze()` moves
what is alive now into a generation the collector ignores, so those collections stay short
(a third of a cached run's time, and seconds of a 1,000-case run, otherwise).

While frozen, the collector also runs less often (`RUN_THRESHOLDS`): almost nothing a run
allocates after the freeze is cyclic (results, reports and calls are freed by reference
counting), so the default thresholds only paid for scans that found nothing to free, about a
tenth of a cached rerun's CPU.

The next session in the same process thaws it first, so a long-lived process (pytester, an
IDE) keeps nothing frozen, nor its thresholds changed, for longer than one run.
"""

from __future__ import annotations

import gc

# gen0 every 50,000 net container allocations (CPython's default: 700), then every 20th of those
# a gen1 and every 10th of those a full collection: still bounded, rarely paid.
RUN_THRESHOLDS = (50_000, 20, 10)

_frozen = False  # this process called gc.freeze() for a run; outlives the run's config
_thresholds: tuple[int, int, int] | None = None  # the collector's thresholds before the run


def freeze() -> None:
    """Move every object alive now out of the collector's reach until `thaw()`, and collect
    less often meanwhile (`RUN_THRESHOLDS`)."""
    global _frozen, _thresholds
    gc.freeze()
    _frozen = True
    if _thresholds is None:
        _thresholds = gc.get_threshold()
        gc.set_threshold(*RUN_THRESHOLDS)


def thaw() -> None:
    """Undo `freeze()` (a no-op when this module froze nothing)."""
    global _frozen, _thresholds
    if _frozen:
        gc.unfreeze()
        _frozen = False
    if _thresholds is not None:
        gc.set_threshold(*_thresholds)
        _thresholds = None
