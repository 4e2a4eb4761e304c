"""Keep long-lived objects out of the cyclic garbage collector's way during a run.

A run allocates a great deal of short-lived garbage (each SDK call builds request, response and
pydantic objects), and every full collection it triggers also rescans everything long-lived:
modules, the SDK's thousands of classes, pytest's items and the run's jobs.  `gc.freeze()` moves
what is alive now into a generation the collector ignores, so those collections stay short
(a third of a cached run's time, and seconds of a 1,000-case run, otherwise).

The next session in the same process thaws it first, so a long-lived process (pytester, an
IDE) keeps nothing frozen for longer than one run.
"""

from __future__ import annotations

import gc

_frozen = False  # this process called gc.freeze() for a run; outlives the run's config


def freeze() -> None:
    """Move every object alive now out of the collector's reach until `thaw()`."""
    global _frozen
    gc.freeze()
    _frozen = True


def thaw() -> None:
    """Undo `freeze()` (a no-op when this module froze nothing)."""
    global _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False
