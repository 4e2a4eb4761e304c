"""The scheduler's loop thread: holding it for a burst of pytest work, and the heap freeze."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_hybridjudge import heap
from pytest_hybridjudge.scheduler import Scheduler


class _Caller:
    async def aclose(self) -> None:
        return None


class _Evaluator:
    """Stands in for the Evaluator: every job finishes after `delay` seconds."""

    def __init__(self, delay: float = 0.0):
        self.caller, self.delay = _Caller(), delay

    async def evaluate(self, job: Any) -> str:
        await asyncio.sleep(self.delay)
        return f"result of {job.nodeid}"


class _Job:
    def __init__(self, nodeid: str):
        self.nodeid = nodeid


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    s = Scheduler(_Evaluator())  # type: ignore[arg-type]
    yield s
    s.close()


def _ran_while(scheduler: Scheduler, seconds: float) -> list[float]:
    """Times at which loop callbacks ran, scheduled every millisecond for `seconds`."""
    ticks: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        scheduler.loop.call_soon_threadsafe(lambda: ticks.append(time.monotonic()))
        time.sleep(0.001)
    return ticks


def test_paused_holds_the_loop_for_the_burst_only(scheduler: Scheduler) -> None:
    assert len(_ran_while(scheduler, 0.05)) > 10  # the loop runs callbacks when not held
    ticks: list[float] = []
    with scheduler.paused():
        start = time.monotonic()
        scheduler.loop.call_soon_threadsafe(lambda: ticks.append(time.monotonic()))
        time.sleep(0.1)
        end = time.monotonic()
    time.sleep(0.05)
    assert len(ticks) == 1 and ticks[0] >= end > start  # ran only once the burst was over


def test_a_long_burst_holds_the_loop_at_most_hold_seconds(scheduler: Scheduler) -> None:
    ticks: list[float] = []
    with scheduler.paused(hold=0.05):
        start = time.monotonic()
        scheduler.loop.call_soon_threadsafe(lambda: ticks.append(time.monotonic()))
        time.sleep(0.3)
    assert ticks and ticks[0] - start < 0.25  # the loop went on without waiting for the burst


def test_paused_on_a_stopped_loop_does_not_hang() -> None:
    s = Scheduler(_Evaluator())  # type: ignore[arg-type]
    s.close()  # stops the loop thread: nothing will ever run the hold
    start = time.monotonic()
    with s.paused(reach=0.1):
        pass
    assert time.monotonic() - start < 1.0


def test_jobs_finish_and_is_done_follows_them(scheduler: Scheduler) -> None:
    jobs = [_Job(f"g.yaml::case-{i}") for i in range(5)]
    scheduler.submit_all(jobs)  # type: ignore[arg-type]
    results = [scheduler.submit(job).result(timeout=5) for job in jobs]  # type: ignore[arg-type]
    assert results == [f"result of {j.nodeid}" for j in jobs]
    assert all(scheduler.is_done(j.nodeid) for j in jobs)
    assert not scheduler.is_done("g.yaml::never-submitted")


def test_freeze_when_warm_freezes_after_the_first_case_and_thaw_undoes_it() -> None:
    heap.thaw()
    assert gc.get_freeze_count() == 0
    s = Scheduler(_Evaluator(), freeze_when_warm=True)  # type: ignore[arg-type]
    try:
        s.submit(_Job("g.yaml::a")).result(timeout=5)  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the freeze runs just after the result is set
        assert gc.get_freeze_count() > 0
    finally:
        s.close()
        heap.thaw()
    assert gc.get_freeze_count() == 0


def test_without_freeze_when_warm_nothing_is_frozen(scheduler: Scheduler) -> None:
    heap.thaw()
    scheduler.submit(_Job("g.yaml::a")).result(timeout=5)  # type: ignore[arg-type]
    time.sleep(0.05)
    assert gc.get_freeze_count() == 0
