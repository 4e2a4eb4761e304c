"""End to end: `pytest --judge --judge-batch` through the official SDKs against the loopback
server's batch APIs: the same outcomes as a direct run, in waves, half price."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Loaded at collection, with the registry other test modules load: pytester's in-process runs
# drop modules first imported inside them, and a registry kept from an earlier run would hand
# out a verifier whose results are of a dropped class (every verifier would then pass).
import pytest_hybridjudge.verifiers  # noqa: F401
from conftest import QUIET_PLUGINS, Project
from loopback import Call, LoopbackLLM, verdict
from loopback_batches import BatchDesk

CAPITALS = """
    rubric: correctness
    cases:
      - id: capital-france
        input: "What is the capital of France?"
      - id: capital-peru
        input: "What is the capital of Peru?"
      - id: refund-policy
        input: "Can I get a refund after 40 days?"
        verify: {regex: "(?i)no|not eligible"}
"""
TESTS = Path(__file__).parent
FAST = {"poll": 0.01, "poll_max": 0.05, "gather": 1.0}


def responder(call: Call) -> str:
    if not call.is_judge:
        return "Paris" if "France" in call.last_user else "I think it is Cusco"
    return verdict(2 if "Cusco" in call.prompt else 5)


def outcomes(project: Project) -> dict[str, tuple[str, Any, list[str]]]:
    return {case: (r["outcome"], r["score"], r["reasons"]) for case, r in project.results().items()}


def test_a_batched_run_decides_every_case_as_a_direct_run_does(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    desk = BatchDesk(llm, hold=2)
    project.config(batch=FAST, cache="off")
    project.gold("capitals.yaml", CAPITALS)
    project.run("--judge").assert_outcomes(passed=1, failed=2)
    direct = outcomes(project)
    direct_calls = len(llm.calls)

    result = project.run("--judge", "--judge-batch")

    result.assert_outcomes(passed=1, failed=2)
    assert outcomes(project) == direct
    assert len(llm.calls) == 2 * direct_calls  # every request answered once more, in batches
    # wave 1: the three targets; wave 2: judges a and b (OpenAI) and c (Anthropic)
    assert desk.created == {"openai": 2, "anthropic": 1}
    calls = project.summary()["calls"]
    assert calls["batches"]["waves"] == 2
    assert calls["batches"]["results"] == {"succeeded": 3 + 2 * 3}  # refund-policy not judged
    result.stdout.fnmatch_lines(["*batch wave 2*", "*batches: 2 waves, 3 created*"])
    assert not (project.run_dir() / "batches").exists() or all(
        '"collected"' in p.read_text() for p in (project.run_dir() / "batches").iterdir()
    )


def test_requests_expired_past_their_resubmissions_escalate_their_cases(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    BatchDesk(llm, expire=1.0)
    project.config(batch={**FAST, "resubmits": 1}, cache="off")
    project.gold("capitals.yaml", CAPITALS)

    result = project.run("--judge", "--judge-batch")

    results = project.results()
    assert {r["outcome"] for r in results.values()} == {"escalated"}
    assert all(r["reasons"][0].startswith("target: batch expired") for r in results.values())
    batches = project.summary()["calls"]["batches"]
    assert batches["results"] == {"expired": 6} and batches["resubmitted"] == 3
    result.stdout.fnmatch_lines(["*batch expired*"])


def test_a_held_create_is_sent_once_the_limit_lets_it_and_decides_as_a_direct_run(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    desk = BatchDesk(llm, reject_creates=2)
    project.config(batch=FAST, cache="off")
    project.gold("capitals.yaml", CAPITALS)
    project.run("--judge").assert_outcomes(passed=1, failed=2)
    direct = outcomes(project)

    result = project.run("--judge", "--judge-batch")

    assert outcomes(project) == direct
    assert sum(desk.rejected.values()) == 2 and desk.created == {"openai": 2, "anthropic": 1}
    assert project.summary()["calls"]["batches"]["held"] == 2
    result.stdout.fnmatch_lines(["*held 2 times for the enqueued-token limit*"])


@pytest.fixture
def batch_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The loopback server with its batch APIs in its own process (batches run on the second
    look), the SDKs of this process and of its children pointed at it; its URL."""
    server = subprocess.Popen(
        [sys.executable, str(TESTS / "loopback.py"), "--batches", "--batch-hold", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        yield url
    finally:
        server.terminate()
        server.wait()


def kill_once_submitted(project: Project, *args: str) -> None:
    """`pytest --judge --judge-batch *args` in its own process, SIGKILLed once its ledger
    holds a batch id (its first look found the batch busy; the next would come in 600 s)."""
    project.config(batch={**FAST, "poll": 600})
    killed = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", *QUIET_PLUGINS, "--judge", "--judge-batch", *args],
        cwd=project.path,
        stdout=subprocess.DEVNULL,
    )
    runs = project.path / ".hybridjudge" / "runs"
    deadline = time.monotonic() + 300  # a bound on waiting, not a timing assertion
    while not any('"batch_id"' in p.read_text() for p in runs.glob("*/batches/*.jsonl")):
        assert killed.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()


def many_cases(count: int) -> str:
    """`count` cases; every even one has a regex verifier that only some outputs pass (the
    target echoes the question), so outcomes differ from case to case."""
    lines = ["rubric: correctness", "cases:"]
    for i in range(count):
        lines += [f"  - id: case-{i:04d}", f'    input: "question {i}"']
        if i % 2 == 0:
            lines.append('    verify: {regex: "[02]$"}')
    return "\n".join(lines) + "\n"


def test_a_1000_case_run_killed_after_submitting_is_collected_with_no_extra_batch(
    project: Project, batch_server: str
) -> None:
    """The issue's "done when": killed once the targets' batch was created, the rerun creates
    only the judges' batches and decides every case as a direct run did. Three runs of 1,000
    cases (3,100 requests each way): about 40 s on 2 cores, most of it the killed run's
    start and the two batched waves' JSON."""
    project.gold("many.yaml", many_cases(1000))
    project.config(cache="off")
    project.run("--judge")
    direct = outcomes(project)
    direct_requests = project.summary()["calls"]["requests"]
    assert {o for o, _, _ in direct.values()} == {"passed", "failed"}

    kill_once_submitted(project)
    assert _server(batch_server)["created"] == {"openai": 1}  # the 1,000 targets' batch

    project.config(batch=FAST)
    rerun = project.run("--judge", "--judge-batch")

    assert outcomes(project) == direct
    assert _server(batch_server)["created"] == {"openai": 2, "anthropic": 1}  # judges only
    batches = project.summary()["calls"]["batches"]
    assert batches["collected"] == 1 and batches["batches"] == 2
    assert batches["requests"] == direct_requests - 1000  # no target request sent again
    assert sum(_server(batch_server)["answered"].values()) == direct_requests
    rerun.stdout.fnmatch_lines(["*1 collected from an earlier run*"])


def test_a_rerun_asking_for_fewer_cases_keeps_the_rest_of_the_collected_answers(
    project: Project, batch_server: str
) -> None:
    """The rerun after a kill selects one case with `-k`; the other targets' answers, paid for
    in the collected batch, are cached: a later run takes them from the cache."""
    project.gold("capitals.yaml", CAPITALS)
    kill_once_submitted(project)

    project.config(batch=FAST)
    rerun = project.run("--judge", "--judge-batch", "-k", "france")
    rerun.assert_outcomes(passed=1)
    rerun.stdout.fnmatch_lines(["*2 paid answers of earlier batches*kept in the cache*"])

    later = project.run("--judge", "-k", "not france")

    later.assert_outcomes(passed=1, failed=1)
    assert project.summary()["calls"]["providers"]["openai"]["requests"] == 2  # judges only
    assert _server(batch_server)["created"] == {"openai": 2, "anthropic": 1}


def _server(url: str) -> dict[str, dict[str, int]]:
    with urllib.request.urlopen(f"{url}/_loopback/batches") as reply:
        counts: dict[str, dict[str, int]] = json.load(reply)
    return counts
