"""The scheduler's loop thread: holding it for a burst of pytest work, and the heap freeze."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_hybridjudge import heap
from pytest_hybridjudge.scheduler import Scheduler


async def _evaluate(job: Any) -> str:
    """Stands in for `Evaluator.evaluate`: every job finishes at once."""
    await asyncio.sleep(0)
    return f"result of {job.nodeid}"


async def _turns(count: int) -> None:
    """Let the loop go round `count` times (whatever it can start meanwhile, it starts)."""
    for _ in range(count):
        await asyncio.sleep(0)


class _Job:
    def __init__(self, nodeid: str):
        self.nodeid = nodeid


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    s = Scheduler(_evaluate)  # type: ignore[arg-type]
    yield s
    s.close()


def test_paused_holds_the_loop_for_the_burst_only(scheduler: Scheduler) -> None:
    ran = threading.Event()
    with scheduler.paused(reach=30, hold=30):
        scheduler.loop.call_soon_threadsafe(ran.set)
        ran_during_burst = ran.wait(timeout=0.2)
    assert not ran_during_burst  # the loop waited at its safe point ...
    assert ran.wait(timeout=30)  # ... and ran the callback once the burst was over


def test_a_long_burst_holds_the_loop_at_most_hold_seconds(scheduler: Scheduler) -> None:
    ran = threading.Event()
    with scheduler.paused(hold=0.05):
        scheduler.loop.call_soon_threadsafe(ran.set)
        # the loop goes on without waiting for the burst: the callback runs while it lasts
        went_on = ran.wait(timeout=30)
    assert went_on


def test_paused_on_a_stopped_loop_does_not_hang() -> None:
    s = Scheduler(_evaluate)  # type: ignore[arg-type]
    s.close()  # stops the loop thread: nothing will ever run the hold
    burst = threading.Thread(target=lambda: s.paused(reach=0.1).__enter__())
    burst.start()
    burst.join(timeout=30)  # a guard against a hang, not a speed bound
    assert not burst.is_alive()


def test_run_waits_for_a_coroutine_on_the_loop(scheduler: Scheduler) -> None:
    async def on_loop() -> bool:
        return asyncio.get_running_loop() is scheduler.loop

    assert scheduler.run(on_loop(), timeout=30) is True


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
    s = Scheduler(_evaluate, freeze_when_warm=True)  # type: ignore[arg-type]
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


def test_a_rerun_of_a_taken_result_runs_the_job_again(scheduler: Scheduler) -> None:
    """pytest-rerunfailures runs an item again after its result was handed over and forgotten."""
    job = _Job("g.yaml::a")
    assert scheduler.submit(job).result(timeout=30) == "result of g.yaml::a"  # type: ignore[arg-type]
    scheduler.forget(job.nodeid)
    again = scheduler.submit(job)  # type: ignore[arg-type]
    assert again.result(timeout=30) == "result of g.yaml::a"  # not a CancelledError


def test_stop_cancels_what_runs_and_keeps_what_finished() -> None:
    release = threading.Event()

    async def slow_unless_first(job: Any) -> str:
        if job.nodeid != "g.yaml::first":
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        return f"result of {job.nodeid}"

    s = Scheduler(slow_unless_first)  # type: ignore[arg-type]
    try:
        jobs = [_Job("g.yaml::first"), _Job("g.yaml::slow")]
        s.submit_all(jobs)  # type: ignore[arg-type]
        s.submit(jobs[0]).result(timeout=30)  # type: ignore[arg-type]
        s.stop()
        assert s.result_if_finished("g.yaml::first") == "result of g.yaml::first"
        assert s.result_if_finished("g.yaml::slow") is None
        assert s.submit(jobs[1]).cancelled()  # type: ignore[arg-type]
    finally:
        release.set()
        s.close()


def test_close_closes_the_loop_and_a_case_left_pending_is_collected_quietly() -> None:
    """An unclosed loop, or a pending case turned into a crash when collected, surfaced as
    "Exception ignored" tracebacks in whatever test the garbage collector ran next."""
    never = threading.Event()

    async def hangs(job: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, never.wait, 5)
        return "never"

    s = Scheduler(hangs)  # type: ignore[arg-type]
    s.submit_all([_Job("g.yaml::hangs")])  # type: ignore[list-item]
    time.sleep(0.05)  # let the case start on the loop
    unraisable: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        s.close()
        assert s.loop.is_closed()
        del s
        gc.collect()
    finally:
        sys.unraisablehook = hook
        never.set()
    assert unraisable == [], [str(u.exc_value) for u in unraisable]


def test_the_queue_runs_at_most_lead_jobs_ahead_of_the_items() -> None:
    s = Scheduler(_evaluate, window=2, lead=3)  # type: ignore[arg-type]
    try:
        jobs = [_Job(f"g.yaml::case-{i}") for i in range(10)]
        s.submit_all(jobs)  # type: ignore[arg-type]
        s.run(_turns(100), timeout=30)  # the loop has had many turns
        assert [s.is_done(j.nodeid) for j in jobs] == [True] * 3 + [False] * 7
        assert s.submit(jobs[4]).result(timeout=30) == "result of g.yaml::case-4"  # type: ignore[arg-type]
        s.run(_turns(100), timeout=30)
        # an item asked for case 4 (cases 0-3 were skipped, say): three more may run ahead of it
        assert [s.is_done(j.nodeid) for j in jobs] == [True] * 8 + [False] * 2
        assert s.finished == s.total - 2
    finally:
        s.close()
