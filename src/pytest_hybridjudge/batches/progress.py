"""Watching a provider batch until it ends: polls backing off from seconds to a minute, and a
progress line with the wave and the counts whenever they change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .transport import BatchProgress, BatchTransport


async def poll(
    transport: BatchTransport,
    batch_id: str,
    first: float,
    longest: float,
    show: Callable[[BatchProgress], None],
) -> BatchProgress:
    """The batch's progress once it ended or failed: asked for again after `first` seconds,
    then twice as long each time up to `longest`; `show` sees every change of its counts."""
    wait, shown = first, None
    while True:
        progress = await transport.progress(batch_id)
        counts = (progress.state, progress.processing, progress.succeeded, progress.errored)
        if counts != shown:
            shown = counts
            show(progress)
        if progress.done:
            return progress
        await asyncio.sleep(wait)
        wait = min(wait * 2, longest)


def progress_line(wave: int, provider: str, progress: BatchProgress) -> str:
    """`[hybridjudge] batch wave 2 (openai batch_1): 3 processing, 5 succeeded, ...`."""
    which = f"wave {wave}" if wave else "of an earlier run"
    return (
        f"[hybridjudge] batch {which} ({provider} {progress.batch_id}, {progress.state}): "
        f"{progress.processing} processing, {progress.succeeded} succeeded, "
        f"{progress.errored} errored, {progress.expired + progress.canceled} expired"
    )


def still_running(count: int, run_id: str) -> str:
    """What an interrupted batch run says of the batches it leaves running at the provider."""
    them = "1 provider batch is" if count == 1 else f"{count} provider batches are"
    return (
        f"{them} still running (not cancelled): run `pytest --judge --judge-batch` again to "
        f"collect the results without paying twice, or cancel with `hybridjudge batch cancel "
        f"{run_id}`"
    )
