"""Faults at scale (issue 19, item 6): a 1,000-case run under injected faults loses no case and
pays at most one extra request per fault; a run killed midway and run again repeats no call the
killed run finished.

The runs are `pytest --judge` subprocesses against the loopback server in this process, so a
SIGKILL of the run leaves the server, and its counts, alive. Each reply carries the digest of the
request body it answers (`req <digest>`), so the cache the killed run left says which calls it
finished. `RUN_MODES` holds the ways a run sends its calls: directly, or through the provider
batch APIs (`--judge-batch`), where the server's batch desk answers each batch line as it would
the direct call, its fault mapped onto what a batch returns (loopback_batches.py), and a share
of the batch API calls themselves fail too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from conftest import QUIET_PLUGINS, Project, point_sdks_at
from loopback import MALFORMED_VERDICT, Call, Faults, LoopbackLLM, Reply, verdict
from loopback_batches import BatchDesk
from pytest_hybridjudge.batches.ledger import read_entry
from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.calls import CallSettings, ModelCaller
from pytest_hybridjudge.config import ProviderSpec
from pytest_hybridjudge.errors import RecordError
from pytest_hybridjudge.providers import Completion, CompletionRequest, ProviderBase
from pytest_hybridjudge.registry import PROVIDERS

pytestmark = pytest.mark.scale

CASES = 1_000
JUDGES = ["openai/judge-a", "anthropic/judge-c"]
CALLS_PER_CASE = 1 + len(JUDGES)  # the target, then each judge once
CONCURRENCY = 32  # per provider: at most this many calls in flight on each
PROVIDER_COUNT = 2
FAULTS = Faults(server_error=0.05, rate_limit=0.05, hang=0.02, drop=0.02, malformed=0.02, seed=19)
OUTCOMES = {"passed", "failed", "escalated", "skipped"}
# how a run sends its calls -> the flags that say so
RUN_MODES: dict[str, tuple[str, ...]] = {"direct": (), "batch": ("--judge-batch",)}
# batch mode: the batch API calls themselves (upload, create, retrieve, results) fail too
API_FAULTS = Faults(server_error=0.05, rate_limit=0.05, drop=0.05, seed=19)
BATCH = {"poll": 0.01, "poll_max": 0.05, "gather": 1.0}  # look at batches often
RUN_TIMEOUT = 300  # seconds before a hung run fails the test (a bound, not an expectation)
DIGEST = re.compile(r"\breq ([0-9a-f]{16})\b")


def tagged(call: Call) -> str:
    """Answer naming the request body's digest; cases whose number ends in 3 fail both judges."""
    if call.is_judge:
        return verdict(2 if "3 plus" in call.prompt else 4, rationale=f"req {call.digest}")
    return f"Answer: {call.last_user} [req {call.digest}]"


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackLLM]:
    """The loopback server injecting `FAULTS` (with batch APIs failing `API_FAULTS` of their
    calls), with both SDKs pointed at it."""
    server = LoopbackLLM(tagged, faults=FAULTS)
    BatchDesk(server, seed=19, api_faults=API_FAULTS)
    server.start()
    point_sdks_at(server, monkeypatch)
    yield server
    server.stop()


def scale_project(project: Project) -> Project:
    """1,000 cases graded by two judges on two providers; a short timeout bounds each hang."""
    project.config(
        judges=JUDGES,
        concurrency=CONCURRENCY,
        timeout=3.0,
        retries=4,
        backoff=0.01,
        batch=BATCH,
    )
    lines = (
        json.dumps(
            {
                "id": f"case-{i:04d}",
                "input": f"What is {i} plus {i}?",
                "reference": str(2 * i),
                "rubric": "correctness",
            }
        )
        for i in range(CASES)
    )
    (project.path / "gold").mkdir()
    (project.path / "gold" / "scale.jsonl").write_text("\n".join(lines) + "\n")
    return project


def judge_command(mode: str) -> list[str]:
    """`pytest --judge` in this interpreter, in `mode`."""
    return [sys.executable, "-m", "pytest", "--judge", "-q", *QUIET_PLUGINS, *RUN_MODES[mode]]


def run_judge(project: Project, mode: str) -> pytest.RunResult:
    """A whole run in a subprocess."""
    return project.pytester.run(*judge_command(mode), timeout=RUN_TIMEOUT)


def assert_no_case_lost(project: Project, result: pytest.RunResult) -> dict[str, Any]:
    """Every case ends passed, failed, escalated or skipped with a reason, in pytest's count and
    in the run's records; returns the run's summary."""
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    counted = result.parseoutcomes()
    assert sum(counted.get(outcome, 0) for outcome in OUTCOMES) == CASES, counted
    records = [json.loads(line) for line in (project.run_dir() / "results.jsonl").open()]
    assert sorted(r["case_id"] for r in records) == [f"case-{i:04d}" for i in range(CASES)]
    assert {r["outcome"] for r in records} <= OUTCOMES
    # the faults changed no verdict: a case fails when its number ends in 3, else passes, or
    # is escalated for a judge that never gave a verdict, or skipped for a target outage
    odd = [
        (r["case_id"], r["outcome"], r["reasons"])
        for r in records
        if not (
            r["outcome"] == ("failed" if r["case_id"].endswith("3") else "passed")
            or (r["outcome"] == "escalated" and _all_say(r["reasons"], "no valid verdict"))
            or (r["outcome"] == "skipped" and _all_say(r["reasons"], "provider outage"))
        )
    ]
    assert odd == []
    summary = project.summary()
    assert summary["cases"] == CASES
    assert summary["complete"] is True, summary["incomplete_because"]
    return summary


def _all_say(reasons: list[str], words: str) -> bool:
    return bool(reasons) and all(words in reason for reason in reasons)


def finished_calls(project: Project) -> set[str]:
    """Digests of the request bodies whose answers are in the project's cache."""
    with sqlite3.connect(project.path / ".hybridjudge" / "cache.sqlite") as db:
        rows = db.execute("SELECT response FROM completions").fetchall()
    digests = {m.group(1) for (response,) in rows if (m := DIGEST.search(response))}
    assert len(digests) == len(rows), "a cached answer names no request"
    return digests


# --------------------------------------------------------------------------- the faults


def test_faults_are_drawn_per_request_and_reproducible() -> None:
    """The same body and attempt always draw the same fault; shares come out near their rate;
    a target is never given a malformed verdict."""
    faults = Faults(server_error=0.2, malformed=0.3, seed=7)
    draws = [faults.draw(f"{n:016x}", 1, is_judge=True) for n in range(4000)]
    assert draws == [faults.draw(f"{n:016x}", 1, is_judge=True) for n in range(4000)]
    counts = Counter(draws)
    assert 0.17 < counts["server_error"] / 4000 < 0.23
    assert 0.27 < counts["malformed"] / 4000 < 0.33
    assert [faults.draw(f"{n:016x}", 2, is_judge=True) for n in range(4000)] != draws
    as_target = Counter(faults.draw(f"{n:016x}", 1, is_judge=False) for n in range(4000))
    assert as_target["malformed"] == 0
    assert as_target["server_error"] == counts["server_error"]
    with pytest.raises(ValueError, match="more than 1"):
        Faults(server_error=0.6, hang=0.6)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("server_error", openai.InternalServerError),
        ("rate_limit", openai.RateLimitError),
        ("hang", openai.APITimeoutError),
        ("drop", openai.APIConnectionError),
    ],
)
def test_each_fault_reaches_the_sdk_as_its_own_error(kind: str, error: type) -> None:
    """Through the official SDK: a 500, a 429 with retry-after, a hang bounded by the client's
    timeout, a connection closed without a reply; each counted once."""

    async def ask(server: LoopbackLLM) -> None:
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        try:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], timeout=0.3
            )
        finally:
            await client.close()

    with LoopbackLLM(faults=Faults(**{kind: 1.0})) as server:
        with pytest.raises(error) as caught:
            asyncio.run(ask(server))
        assert server.injected == {kind: 1}
        assert server.answered.total() == 0
    if kind == "rate_limit":
        assert caught.value.response.headers["retry-after-ms"] == "5"


def test_a_malformed_fault_is_a_judge_reply_that_is_not_a_verdict() -> None:
    """A judge request (here Anthropic's, with a schema) gets 200 and prose; a target request
    drawn for it is answered as usual and counted as answered."""
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    user: Any = [{"role": "user", "content": "grade it"}]

    async def ask(server: LoopbackLLM) -> tuple[str, str]:
        client = anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="k", max_retries=0
        )
        try:
            judged = await client.messages.create(
                model="m",
                max_tokens=64,
                messages=user,
                extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
            )
            target = await client.messages.create(model="m", max_tokens=64, messages=user)
        finally:
            await client.close()
        return judged.content[0].text, target.content[0].text  # type: ignore[union-attr]

    with LoopbackLLM(lambda call: Reply(text="fine"), faults=Faults(malformed=1.0)) as server:
        assert asyncio.run(ask(server)) == (MALFORMED_VERDICT, "fine")
        assert server.injected == {"malformed": 1}
        assert server.answered.total() == 1


PUT_THEN_WAIT = """
import sys, time
from pathlib import Path
from pytest_hybridjudge.batches.ledger import read_entry
from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.calls import CallSettings, ModelCaller
from pytest_hybridjudge.config import ProviderSpec
from pytest_hybridjudge.errors import RecordError
from pytest_hybridjudge.providers import Completion, CompletionRequest, ProviderBase
from pytest_hybridjudge.registry import PROVIDERS
from pytest_hybridjudge.providers import Completion

cache = CompletionCache(Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    cache.put(f"key-{n}", "openai", "m", Completion(text=f"answer {n}"))
print("stored", flush=True)
time.sleep(600)
"""


def test_an_answer_stored_in_the_cache_survives_a_sigkill(tmp_path: Path) -> None:
    """Once `put` has returned, the answer is on disk: a process killed right after it (no
    close, no checkpoint) leaves every answer for the next run."""
    path = tmp_path / "cache.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-c", PUT_THEN_WAIT, str(path), "200"], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"stored\n"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    cache = CompletionCache(path)
    try:
        stored = [cache.get(f"key-{n}") for n in range(200)]
    finally:
        cache.close()
    assert [c.text if c else None for c in stored] == [f"answer {n}" for n in range(200)]


class StallsOnce(ProviderBase):
    """A provider whose first request outlives the caller's own bound on a call."""

    calls = 0

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        type(self).calls += 1
        if type(self).calls == 1:
            raise TimeoutError  # what `asyncio.timeout` raises when the bound runs out
        return Completion(text="answer")


def test_a_call_that_outlives_the_callers_bound_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load a first call (which also imports the SDK) can outlive `timeout` + 5 s before
    the SDK's own timeout applies; that is a timeout like any other: retried, not an outage
    after one attempt (seen at scale: targets skipped "TimeoutError (after 1 attempt)")."""
    monkeypatch.setitem(PROVIDERS._loaded, "stalls", StallsOnce)
    monkeypatch.setattr(StallsOnce, "calls", 0)
    specs = {"stalls": ProviderSpec(kind="stalls")}
    caller = ModelCaller(
        specs, CompletionCache(tmp_path / "c.sqlite"), CallSettings(retries=1, backoff=0.001)
    )
    completion = asyncio.run(caller("stalls", CompletionRequest(model="m", messages=())))
    assert (completion.text, completion.requests) == ("answer", 2)
    assert (caller.stats.requests, caller.stats.retries, caller.stats.failures) == (2, 1, 0)


# --------------------------------------------------------------------------- at scale


@pytest.mark.parametrize("mode", sorted(RUN_MODES))
def test_1000_cases_under_faults_lose_none_and_pay_one_request_per_fault(
    project: Project, faulty: LoopbackLLM, mode: str
) -> None:
    """5% 500s, 5% 429s, 2% hangs, 2% dropped connections, 2% malformed verdicts: every case
    ends with an outcome, no answer is asked for twice, and the requests beyond one per call
    are at most the faults injected."""
    scale_project(project)
    result = run_judge(project, mode)
    summary = assert_no_case_lost(project, result)

    injected, answered = faulty.tally()
    assert set(injected) == {"server_error", "rate_limit", "hang", "drop", "malformed"}, injected
    requests = len(faulty.calls)
    assert requests == answered.total() + injected.total()
    # no answered request was sent again, and every answer was one the run needed
    assert max(answered.values()) == 1
    assert answered.total() <= CASES * CALLS_PER_CASE
    assert requests <= CASES * CALLS_PER_CASE + injected.total()
    # the run counted every request the server saw (and, under load, a first call whose SDK
    # import outlived the caller's bound, which never reached the server)
    assert summary["calls"]["requests"] >= requests
    # retries: one per fault the server injected, plus one per attempt that never reached it
    # (on a loaded machine a connection can time out before the server accepts it)
    unseen = summary["calls"]["requests"] - requests
    assert summary["calls"]["retries"] <= injected.total() - injected["malformed"] + unseen
    if mode == "batch":
        desk: BatchDesk = faulty.batches
        assert set(desk.api_injected) == {"server_error", "rate_limit", "drop"}, desk.api_injected
        assert_no_batch_created_twice(desk)
        assert all("batch-id" in call.headers for call in faulty.calls)  # none sent directly
        batches = summary["calls"]["batches"]
        assert batches["requests"] == summary["calls"]["requests"]
        # every line fault came back as its class: 500s and 429s as server errors, hangs and
        # dropped lines as expired requests, malformed verdicts read, then judged invalid
        assert batches["results"]["server"] == injected["server_error"] + injected["rate_limit"]
        assert batches["results"]["expired"] == injected["hang"] + injected["drop"]


def assert_no_batch_created_twice(desk: BatchDesk) -> None:
    """No idempotency key (OpenAI's metadata) made two batches, and no two batches hold the
    same requests (Anthropic's batches carry no key)."""
    keys = Counter(b.metadata["hybridjudge_key"] for b in desk.batches.values() if b.metadata)
    assert keys and max(keys.values()) == 1
    held = Counter(frozenset(cid for cid, _ in b.requests) for b in desk.batches.values())
    assert max(held.values()) == 1


@pytest.mark.parametrize("mode", sorted(RUN_MODES))
def test_a_run_killed_midway_and_run_again_repeats_no_finished_call(
    project: Project, faulty: LoopbackLLM, mode: str
) -> None:
    """SIGKILL once a good share of the calls is answered: what the killed run finished is in
    the cache (all but the calls in flight at the kill), and the rerun sends none of it again,
    completing the run under the same faults."""
    if mode == "batch":
        killed_batched_and_run_again(project, faulty)
        return
    scale_project(project)
    log = (project.path / "killed.log").open("wb")
    killed = subprocess.Popen(
        judge_command(mode), cwd=project.path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while faulty.tally()[1].total() < 0.4 * CASES * CALLS_PER_CASE:
            assert killed.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made too little progress to kill"
            time.sleep(0.02)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.kill()  # no-op when already dead
        killed.wait()
        log.close()
    assert killed.returncode == -signal.SIGKILL
    time.sleep(0.2)  # the server finishes the handlers the kill left (hangs see the peer gone)
    sent_before = len(faulty.calls)
    answered_before = set(faulty.tally()[1])

    finished = finished_calls(project)
    assert 0.3 * CASES * CALLS_PER_CASE < len(finished) < CASES * CALLS_PER_CASE
    assert finished <= answered_before
    # an answer the killed run received is in its cache, unless it was in flight at the kill
    assert len(answered_before - finished) <= CONCURRENCY * PROVIDER_COUNT

    result = run_judge(project, mode)
    assert_no_case_lost(project, result)
    again = Counter(call.digest for call in faulty.calls[sent_before:])
    assert again, "the rerun had calls left to make"
    assert sorted(finished & set(again)) == []


def killed_batched_and_run_again(project: Project, faulty: LoopbackLLM) -> None:
    """Batched: the judges' batches stay in progress until the run is SIGKILLed (once the
    ledger holds their ids; the targets' answers are cached by then). The rerun collects the
    submitted batches: it creates no batch for a request already submitted and answered, asks
    for no finished call again, and completes the run under the same faults."""
    desk: BatchDesk = faulty.batches
    desk.hold_judges = True
    scale_project(project)
    log = (project.path / "killed.log").open("wb")
    killed = subprocess.Popen(
        judge_command("batch"), cwd=project.path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not judges_submitted(project):
            assert killed.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made too little progress to kill"
            time.sleep(0.05)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.kill()
        killed.wait()
        log.close()
    assert killed.returncode == -signal.SIGKILL
    before = set(desk.batches)
    assert len(before) == 3  # the targets' batch, then the judges' (OpenAI and Anthropic)
    finished = finished_calls(project)
    assert 0.8 * CASES < len(finished) <= CASES  # the targets' answers, less their faults
    assert finished <= set(faulty.tally()[1])

    desk.hold_judges = False
    result = run_judge(project, "batch")
    assert_no_case_lost(project, result)
    batches = project.summary()["calls"]["batches"]
    assert batches["collected"] == len(before)  # every batch the killed run submitted
    assert_no_batch_created_twice(desk)
    # what batches the rerun created asked for: no call the killed run finished, and no
    # request a submitted batch answered (only what failed there is asked again)
    again = {c.digest for c in faulty.calls if c.headers["batch-id"] not in before}
    assert again, "the rerun had calls left to make"
    answered_earlier = {
        c.digest
        for c in faulty.calls
        if c.headers["batch-id"] in before and FAULTS.draw(c.digest, c.attempt, c.is_judge) is None
    }
    assert sorted(finished & again) == []
    assert sorted(answered_earlier & again) == []
    assert max(faulty.tally()[1].values()) == 1  # no request answered twice


def judges_submitted(project: Project) -> bool:
    """Whether the run's ledger holds the ids of the judges' batches (its second wave)."""
    made: Counter[str] = Counter()
    for path in project.path.glob(".hybridjudge/runs/*/batches/*.jsonl"):
        try:
            entry = read_entry(path)
        except RecordError:  # being written: its request list is not whole yet
            continue
        made[entry.provider] += entry.batch_id is not None
    return made["anthropic"] >= 1 and made["openai"] >= 2
