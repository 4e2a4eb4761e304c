"""The batch broker against an in-memory batch API: waves, splitting, identical requests,
resubmission, typed errors, back-pressure and results mapped by custom_id."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import pytest

from batch_memory import MemoryBatches, chat_body, read_chat
from pytest_hybridjudge.batches import site
from pytest_hybridjudge.batches.broker import BatchBroker
from pytest_hybridjudge.batches.transport import CUSTOM_ID, BatchLimits
from pytest_hybridjudge.config_batch import BatchSpec
from pytest_hybridjudge.errors import ProviderConfigError, ProviderError

FAST = BatchSpec(poll=0.001, poll_max=0.005, gather=5.0, resubmits=2)


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Run:
    """Cases run side by side, each a list of stages of calls made together (a target call,
    then its judges); `running` is what the scheduler would count."""

    def __init__(self, transport: MemoryBatches, spec: BatchSpec = FAST, retries: int = 4):
        self.transport = transport
        self.running = 0
        self.lines: list[str] = []
        self.broker = BatchBroker(spec, lambda: self.running, retries, write_line=self.lines.append)

    async def call(self, text: str) -> str:
        completion = await self.broker.call(
            "openai", self.transport, key(text), chat_body(text), read_chat
        )
        return completion.text

    async def case(self, name: str, stages: Sequence[Sequence[str]]) -> list[list[str]]:
        site.enter(case=name, role="target")
        try:
            answers = []
            for stage in stages:
                answers.append(list(await asyncio.gather(*(self.call(t) for t in stage))))
            return answers
        finally:
            self.running -= 1

    async def cases(self, plans: dict[str, Sequence[Sequence[str]]]) -> dict[str, object]:
        self.running = len(plans)
        done = await asyncio.gather(
            *(self.case(n, p) for n, p in plans.items()), return_exceptions=True
        )
        await self.broker.aclose()
        return dict(zip(plans, done, strict=True))


def texts(batch: Sequence[object]) -> list[str]:
    return sorted(r.body["messages"][-1]["content"] for r in batch)  # type: ignore[attr-defined]


def test_targets_go_in_wave_one_and_every_judge_call_in_wave_two() -> None:
    plans = {f"case{i}": [[f"t{i}"], [f"j{i}a", f"j{i}b"]] for i in range(3)}
    transport = MemoryBatches(busy_polls=2)
    run = Run(transport)
    results = asyncio.run(run.cases(plans))

    assert [texts(b) for b in transport.created] == [
        ["t0", "t1", "t2"],
        ["j0a", "j0b", "j1a", "j1b", "j2a", "j2b"],
    ]
    assert results["case1"] == [["answer to t1"], ["answer to j1a", "answer to j1b"]]
    assert run.broker.stats.waves == 2
    assert any("wave 2" in line and "6 succeeded" in line for line in run.lines)
    assert any("3 processing" in line for line in run.lines)


def test_a_busy_case_does_not_hold_the_wave_past_the_gather_seconds() -> None:
    transport = MemoryBatches()
    run = Run(transport, BatchSpec(poll=0.001, poll_max=0.005, gather=0.05))

    async def main() -> str:
        run.running = 2  # the second case is busy elsewhere (an app call) and never asks
        return await run.call("t0")

    assert asyncio.run(main()) == "answer to t0"
    assert len(transport.created) == 1


def test_each_result_reaches_its_own_call_though_lines_come_back_shuffled() -> None:
    plans = {f"case{i}": [[f"q{i}"]] for i in range(20)}
    transport = MemoryBatches()
    results = asyncio.run(Run(transport).cases(plans))

    assert all(results[f"case{i}"] == [[f"answer to q{i}"]] for i in range(20))
    ids = [r.custom_id for r in transport.created[0]]
    assert len(set(ids)) == 20 and all(CUSTOM_ID.match(i) for i in ids)


def test_identical_requests_of_one_wave_are_sent_once() -> None:
    plans = {"a": [["same"]], "b": [["same"]], "c": [["other"]]}
    transport = MemoryBatches()
    run = Run(transport)
    results = asyncio.run(run.cases(plans))

    assert texts(transport.created[0]) == ["other", "same"]
    assert results["a"] == results["b"] == [["answer to same"]]
    assert run.broker.stats.deduplicated == 1


def test_a_wave_is_split_at_the_transports_request_and_byte_limits() -> None:
    plans = {f"case{i}": [[f"q{i}"]] for i in range(5)}
    by_count = MemoryBatches(limits=BatchLimits(max_requests=2, max_bytes=10**6))
    asyncio.run(Run(by_count).cases(plans))
    assert [len(b) for b in by_count.created] == [2, 2, 1]

    one = by_count.size(by_count.created[0][0])
    by_bytes = MemoryBatches(limits=BatchLimits(max_requests=100, max_bytes=3 * one))
    asyncio.run(Run(by_bytes).cases(plans))
    assert [len(b) for b in by_bytes.created] == [3, 2]


def test_expired_requests_alone_are_resubmitted_then_the_call_fails_as_batch_expired() -> None:
    transport = MemoryBatches(fates={"late": ["expired", "canceled", "missing"]})
    run = Run(transport)
    results = asyncio.run(run.cases({"a": [["late"]], "b": [["fine"]]}))

    error = results["a"]
    assert isinstance(error, ProviderError) and error.kind == "expired"
    assert "batch expired" in str(error) and error.requests == 3
    assert [texts(b) for b in transport.created] == [["fine", "late"], ["late"], ["late"]]
    ids = {b[0].custom_id for b in transport.created[1:]}
    assert len(ids) == 2  # each resubmission is a new attempt, so a new custom_id
    assert run.broker.stats.resubmitted == 2
    assert run.broker.stats.results == {"succeeded": 1, "expired": 2, "canceled": 1}


def test_an_expired_request_that_succeeds_on_resubmission_answers_the_call() -> None:
    transport = MemoryBatches(fates={"late": ["expired"]})
    results = asyncio.run(Run(transport).cases({"a": [["late"]]}))
    assert results["a"] == [["answer to late"]]


@pytest.mark.parametrize("kind", ["invalid", "auth", "billing"])
def test_invalid_auth_and_billing_errors_reach_the_case_with_the_providers_message(
    kind: str,
) -> None:
    transport = MemoryBatches(fates={"bad": [kind]})
    results = asyncio.run(Run(transport).cases({"a": [["bad"]]}))

    error = results["a"]
    assert isinstance(error, ProviderError) and error.kind == "rejected"
    assert f"the provider says: {kind}" in str(error)
    assert len(transport.created) == 1  # never retried


def test_server_errors_and_malformed_replies_are_retried_in_the_next_wave() -> None:
    transport = MemoryBatches(fates={"flaky": ["server", "malformed"]})
    run = Run(transport)
    results = asyncio.run(run.cases({"a": [["flaky"]]}))

    assert results["a"] == [["answer to flaky"]]
    assert len(transport.created) == 3
    assert run.broker.stats.results == {"server": 1, "malformed": 1, "succeeded": 1}


def test_server_errors_past_the_retries_are_an_outage() -> None:
    transport = MemoryBatches(fates={"down": ["server"] * 5})
    results = asyncio.run(Run(transport, retries=1).cases({"a": [["down"]]}))

    error = results["a"]
    assert isinstance(error, ProviderError) and error.kind == "outage"
    assert len(transport.created) == 2


def test_an_enqueued_limit_holds_the_batch_until_there_is_room_then_creates_it() -> None:
    transport = MemoryBatches(refuse_creates=2, fail_enqueued=1)
    run = Run(transport)
    results = asyncio.run(run.cases({"a": [["q"]]}))

    assert results["a"] == [["answer to q"]]
    assert transport.refused == 2
    assert len(transport.created) == 2  # one failed at validation for the limit, then again
    assert run.broker.stats.held == 3


def test_a_batch_that_fails_as_a_whole_is_sent_again_with_the_providers_reason_shown() -> None:
    transport = MemoryBatches(fail_batches=1)
    run = Run(transport)
    results = asyncio.run(run.cases({"a": [["q"]]}))

    assert results["a"] == [["answer to q"]]  # not taken for expired: nothing in it ran
    assert len(transport.created) == 2 and run.broker.stats.failed == 1
    assert run.broker.stats.results == {"server": 1, "succeeded": 1}
    assert any("batch_1 failed: line 1: model 'm' is not available" in x for x in run.lines)


def test_a_batch_failing_past_the_retries_fails_the_call_as_an_outage_naming_the_reason() -> None:
    transport = MemoryBatches(fail_batches=3)
    results = asyncio.run(Run(transport, retries=1).cases({"a": [["q"]]}))

    error = results["a"]
    assert isinstance(error, ProviderError) and error.kind == "outage"
    assert "is not available in the Batch API" in str(error)


def test_result_lines_for_requests_never_sent_are_ignored_and_said() -> None:
    transport = MemoryBatches(stray_lines=2)
    run = Run(transport)
    results = asyncio.run(run.cases({f"case{i}": [[f"q{i}"]] for i in range(3)}))

    assert all(results[f"case{i}"] == [[f"answer to q{i}"]] for i in range(3))
    assert any("2 result lines for requests it was not sent" in x for x in run.lines)


def test_a_batch_api_gone_mid_run_stops_the_calls_with_the_fix() -> None:
    transport = MemoryBatches(busy_polls=5, gone_after=1)
    results = asyncio.run(Run(transport).cases({"a": [["q"]]}))

    error = results["a"]
    assert isinstance(error, ProviderConfigError)
    assert "run without --judge-batch" in str(error)


def test_an_interrupted_run_says_how_to_collect_or_cancel_what_still_runs() -> None:
    from pytest_hybridjudge.batches.progress import still_running

    assert still_running(1, "RUN1").startswith("1 provider batch is still running")
    line = still_running(3, "RUN1")
    assert line.startswith("3 provider batches are") and "`pytest --judge --judge-batch`" in line
    assert line.endswith("`hybridjudge batch cancel RUN1`")


def test_each_result_settles_its_call_as_an_answer_another_attempt_or_its_error() -> None:
    """`CallAttempts` alone: a succeeded line is the answer (its submissions counted), an
    expired one goes again up to the resubmissions, a server error or unreadable reply up to
    the retries; the next attempt's number is always the results read so far."""
    from pytest_hybridjudge.batches.attempts import CallAttempts
    from pytest_hybridjudge.batches.stats import BatchStats
    from pytest_hybridjudge.batches.transport import BatchResult

    stats = BatchStats()
    ok = {"choices": [{"message": {"content": "yes"}}]}
    call = CallAttempts("openai", resubmits_allowed=1, retries_allowed=1, stats=stats)
    assert call.settle(BatchResult("a", "expired"), read_chat) is None
    assert call.settle(BatchResult("b", "succeeded", body={"no": "choices"}), read_chat) is None
    completion = call.settle(BatchResult("c", "succeeded", body=ok), read_chat)
    assert completion is not None and (completion.text, completion.requests) == ("yes", 3)
    assert stats.results == {"expired": 1, "malformed": 1, "succeeded": 1}
    assert stats.resubmitted == 1

    spent = CallAttempts("openai", resubmits_allowed=0, retries_allowed=0, stats=stats)
    with pytest.raises(ProviderError, match="batch expired") as expired:
        spent.settle(BatchResult("d", "canceled", error="cancelled"), read_chat)
    assert (expired.value.kind, expired.value.requests) == ("expired", 1)
    with pytest.raises(ProviderError, match="failed 1 times: HTTP 500") as outage:
        CallAttempts("openai", 0, 0, stats).settle(
            BatchResult("e", "server", error="HTTP 500"), read_chat
        )
    assert outage.value.kind == "outage"


def test_a_batch_api_dropping_its_own_calls_is_ridden_out_with_no_batch_made_twice() -> None:
    """The create's reply lost after the batch was made, two polls and a results read dropped:
    each call is asked again after a back-off; the lost create's batch is found by its key
    instead of made again, and every request is answered from the one batch."""
    transport = MemoryBatches(drops={"create": 1, "progress": 2, "results": 1})
    run = Run(transport)
    results = asyncio.run(run.cases({f"case{i}": [[f"t{i}"]] for i in range(3)}))

    assert results == {f"case{i}": [[f"answer to t{i}"]] for i in range(3)}
    assert [texts(b) for b in transport.created] == [["t0", "t1", "t2"]]
    assert transport.drops == {"create": 0, "progress": 0, "results": 0}
    assert run.broker.stats.results == {"succeeded": 3} and run.broker.stats.batches == 1


def test_a_batch_api_failing_past_its_asks_sends_the_requests_again_in_the_next_wave() -> None:
    """A retrieve that keeps failing is given up after its asks: the wave's requests go again
    (a new batch), as a failure the broker cannot read always did."""
    transport = MemoryBatches(drops={"progress": 8})
    run = Run(transport)
    results = asyncio.run(run.cases({"a": [["t"]]}))

    assert results == {"a": [["answer to t"]]}
    assert len(transport.created) == 2
    assert any("could not be read (ConnectionError" in line for line in run.lines)
