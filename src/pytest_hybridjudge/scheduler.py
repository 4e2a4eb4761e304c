"""One asyncio loop, in a thread, that runs every selected case while pytest walks the items."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .review.resolutions import Resolution

from . import heap
from .calls import ModelCaller
from .config import CallableTarget, EscalationSpec, HybridJudgeConfig, Target, TargetSpec
from .cost import BudgetExhausted
from .escalation import (
    CaseContext,
    audit_pick,
    choose_tier,
    decide,
    is_always_review,
    review_minutes,
)
from .gold import GoldCase
from .judge import judge_prompt, run_judge
from .panel import aggregate
from .providers import ProviderError
from .review.manifest import item_id
from .rubric import Rubric
from .targets import TargetError, call_app, target_request
from .verdict import CaseResult, Outcome, Usage
from .verifiers import run_verifiers


@dataclass(frozen=True)
class Job:
    """One case against one target, with its rubric already rendered at collection."""

    nodeid: str
    case: GoldCase
    target: Target
    rubric: Rubric | None
    rendered: str | None


class Evaluator:
    """Turns a job into a `CaseResult`: target, verifiers, judge panel, decision."""

    def __init__(
        self,
        config: HybridJudgeConfig,
        caller: ModelCaller,
        apps: dict[str, Callable[..., Any]],
        resolutions: Mapping[str, Sequence[Resolution]] | None = None,
        calibration: Mapping[str, float] | None = None,
    ):
        self.config, self.caller, self.apps = config, caller, apps
        self.resolutions = resolutions or {}
        self.calibration = calibration or {}

    def policy_for(self, rubric: str) -> EscalationSpec:
        """The escalation policy, with the rubric's calibrated min_confidence when there is one."""
        policy = self.config.escalation
        if rubric in self.calibration:
            policy = policy.model_copy(update={"min_confidence": self.calibration[rubric]})
        return policy

    async def evaluate(self, job: Job) -> CaseResult:
        """Run one job to its outcome; never raises for provider or app failures."""
        case, rubric = job.case, job.rubric
        result = CaseResult(
            case_id=case.id,
            nodeid=job.nodeid,
            source=case.source,
            target=job.target.label,
            rubric=rubric.name if rubric else None,
            rubric_version=rubric.version if rubric else None,
            outcome="skipped",
            input=case.input
            if case.input is not None
            else [m.model_dump() for m in case.messages or ()],
            reference=case.reference,
            rendered_rubric=job.rendered,
            pass_threshold=rubric.meta.pass_threshold if rubric else None,
            scale=rubric.scale if rubric else None,
            tags=list(case.tags),
        )
        try:
            return await self._evaluate(job, result)
        except BudgetExhausted as exc:
            return self._finish(result, "skipped", [str(exc).split(":")[0]], error=None)

    async def _evaluate(self, job: Job, result: CaseResult) -> CaseResult:
        case, rubric = job.case, job.rubric
        try:
            result.output = await self._produce(job, result.target_usage)
        except (ProviderError, TargetError) as exc:
            return self._finish(result, "failed", [f"target error: {exc}"], error=str(exc))
        except BudgetExhausted:
            raise
        except Exception as exc:  # the user's app raised: that is the case failing
            message = f"target '{job.target.label}' raised {type(exc).__name__}: {exc}"
            return self._finish(result, "failed", [message], error=message)
        result.verifiers = run_verifiers(case, result.output)
        result.item_id = item_id(case.id, result.output, rubric.version if rubric else None)
        if rubric is not None:
            review = self.config.review
            tier = choose_tier(case.tags, rubric.name, rubric.meta.tier, review)
            result.tier = tier
            # the rubric's estimate is for its own tier; a red-team review takes what red team takes
            own = rubric.meta.review_minutes if rubric.meta.tier in (None, tier) else None
            result.review_minutes = review_minutes(tier, own, review)
        if any(not v.passed for v in result.verifiers):
            return self._finish(result, *decide(result.verifiers, None, self.config.escalation))
        human = self.resolutions.get(result.item_id)
        if human:
            return self._by_review(result, human)
        panel = None
        context = None
        if rubric and self.config.judges:
            prompt = judge_prompt(rubric, job.rendered or "", result.output)  # same for every judge
            result.verdicts = list(
                await asyncio.gather(
                    *(run_judge(self.caller, j, rubric, prompt) for j in self.config.judges)
                )
            )
            panel = aggregate(
                result.verdicts, rubric.meta.pass_threshold, self.config.aggregation, rubric.scale
            )
            result.panel, result.score = panel, panel.score
            policy = self.policy_for(rubric.name)
            context = CaseContext(
                pass_threshold=rubric.meta.pass_threshold,
                always_review=is_always_review(
                    case.tags, rubric.name, rubric.meta.always_review, policy.always_review
                ),
                audit=audit_pick(policy.seed, policy.audit_rate, case.id, result.output),
            )
        policy = self.policy_for(rubric.name) if rubric else self.config.escalation
        outcome, reasons = decide(result.verifiers, panel, policy, context)
        result.audit = outcome == "escalated" and reasons[0].startswith("audit sample")
        return self._finish(result, outcome, reasons)

    def _by_review(self, result: CaseResult, human: Sequence[Resolution]) -> CaseResult:
        """Reviewers' resolutions replace the judges: no judge calls are made."""
        from .review.resolutions import human_decision

        decision, score = human_decision(list(human))
        result.resolved_by = sorted({r.reviewer for r in human})
        names = ", ".join(result.resolved_by)
        if decision == "disagree":
            verdicts = "; ".join(f"{r.reviewer}: {r.verdict}" for r in human)
            return self._finish(result, "escalated", [f"reviewers disagree ({verdicts})"])
        result.score = score
        outcome: Outcome = "passed" if decision == "pass" else "failed"
        return self._finish(result, outcome, [f"{outcome} by review ({names})"])

    async def _produce(self, job: Job, usage: Usage) -> str:
        target = job.target
        if isinstance(target, CallableTarget):
            return await call_app(self.apps[target.callable], job.case, target.label)
        assert isinstance(target, TargetSpec)
        provider, request = target_request(target, job.case)
        completion = await self.caller(provider, request)
        usage.count(completion)
        return completion.text

    @staticmethod
    def _finish(
        result: CaseResult, outcome: Any, reasons: list[str], error: str | None = None
    ) -> CaseResult:
        result.outcome, result.reasons, result.error = outcome, reasons, error
        result.usage = Usage()
        result.usage.add(result.target_usage)
        for verdict in result.verdicts:
            result.usage.add(verdict.usage)
        return result


_FORGOTTEN: concurrent.futures.Future[CaseResult] = concurrent.futures.Future()
_FORGOTTEN.cancel()  # a done placeholder: the job ran, and submit() must not start it again


class Scheduler:
    """Owns the event loop thread; items submit jobs and wait only for their own result."""

    def __init__(self, evaluator: Evaluator, window: int = 256, freeze_when_warm: bool = False):
        self.evaluator = evaluator
        self.window = window  # cases in progress at once: enough to keep every provider busy
        # After the first case the SDKs are imported and their clients built: freeze those too.
        self.freeze_when_warm = freeze_when_warm
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hybridjudge-loop", daemon=True)
        self._futures: dict[str, concurrent.futures.Future[CaseResult]] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._queued: set[str] = set()
        self._running = 0
        self.total = 0
        self.finished = 0
        self._lock = threading.Lock()
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit_all(self, jobs: Sequence[Job]) -> None:
        """Queue every selected job; at most `window` run at once, in order, the rest wait.

        Starting 10,000 cases at once would hold 10,000 coroutines and results in memory.
        """
        with self._lock:
            fresh = [
                j for j in jobs if j.nodeid not in self._queued and j.nodeid not in self._futures
            ]
            self._queue.extend(fresh)
            self._queued.update(j.nodeid for j in fresh)
            self.total += len(fresh)
        self.loop.call_soon_threadsafe(self._feed)

    def submit(self, job: Job) -> concurrent.futures.Future[CaseResult]:
        """The job's future, starting it now if it is still queued (an item is waiting for it)."""
        with self._lock:
            future = self._futures.get(job.nodeid)
            if future is None:
                if job.nodeid not in self._queued:
                    self.total += 1
                future = self._start(job)
            return future

    def _feed(self) -> None:
        """Start queued jobs while fewer than `window` are running (on the loop thread)."""
        with self._lock:
            while self._queue and self._running < self.window:
                job = self._queue.popleft()
                if job.nodeid not in self._futures:
                    self._start(job)

    def _start(self, job: Job) -> concurrent.futures.Future[CaseResult]:
        """Start one job; the caller holds the lock."""
        self._running += 1
        future = asyncio.run_coroutine_threadsafe(self._run_job(job), self.loop)
        self._futures[job.nodeid] = future
        return future

    async def _run_job(self, job: Job) -> CaseResult:
        try:
            return await self.evaluator.evaluate(job)
        finally:
            with self._lock:
                self._running -= 1
                self.finished += 1
                warm = self.finished == 1 and self.freeze_when_warm
            if warm:
                heap.freeze()
            self._feed()

    def is_done(self, nodeid: str) -> bool:
        """Whether the job's result is ready (an item running now would not wait)."""
        future = self._futures.get(nodeid)
        return future is not None and future.done()

    @contextlib.contextmanager
    def paused(self, reach: float = 0.5, hold: float = 0.5) -> Iterator[None]:
        """Hold the loop at a safe point while the calling thread does a short burst of work.

        pytest's per-item work (capture, reports, terminal) and the loop's SDK calls share the
        GIL; side by side they hand it over at every system call (tens of thousands of context
        switches in a 1,000-case run, and ~5% of its time). Held for one item, each runs alone.
        Never deadlocks and never stalls calls for long: if the loop has not reached the hold
        within `reach` seconds the burst runs anyway, and the loop waits at most `hold` seconds.
        """
        holding, resume = threading.Event(), threading.Event()

        def wait_for_burst() -> None:
            holding.set()
            resume.wait(timeout=hold)

        try:
            self.loop.call_soon_threadsafe(wait_for_burst)
        except RuntimeError:  # the loop is closed
            yield
            return
        holding.wait(timeout=reach)
        try:
            yield
        finally:
            resume.set()

    def forget(self, nodeid: str) -> None:
        """Drop a finished job's future once its item holds the result (memory, at 10k cases)."""
        with self._lock:
            if (future := self._futures.get(nodeid)) is not None and future.done():
                self._futures[nodeid] = _FORGOTTEN

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        return self.total - self.finished

    def close(self) -> None:
        """Cancel what is left, close clients and stop the loop thread."""
        for future in self._futures.values():
            future.cancel()
        closing = asyncio.run_coroutine_threadsafe(self.evaluator.caller.aclose(), self.loop)
        with contextlib.suppress(Exception):  # closing must never mask the run's own outcome
            closing.result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
