"""End to end: `pytest --judge --judge-batch` through the official SDKs against the loopback
server's batch APIs: the same outcomes as a direct run, in waves, half price."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

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


def test_a_run_killed_after_submitting_is_collected_by_the_rerun_with_no_extra_batch(
    project: Project, tmp_path: Path
) -> None:
    """The loopback server in its own process; pytest killed (SIGKILL) once the ledger holds
    a batch id; the rerun creates only the batches the killed run never reached."""
    server = subprocess.Popen(
        [sys.executable, str(TESTS / "loopback.py"), "--batches", "--batch-hold", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": f"{url}/v1",
            "ANTHROPIC_BASE_URL": url,
            "OPENAI_API_KEY": "sk-test",
            "ANTHROPIC_API_KEY": "sk-ant-test",
        }
        project.gold("capitals.yaml", CAPITALS)
        pytest_args = [sys.executable, "-m", "pytest", "-q", *QUIET_PLUGINS, "--judge"]

        project.config(cache="off")
        direct = subprocess.run(pytest_args, cwd=project.path, env=env, capture_output=True)
        assert direct.returncode in (0, 1), direct.stdout
        expected = outcomes(project)

        project.config(batch={**FAST, "poll": 600})  # the first look finds it busy, then waits
        killed = subprocess.Popen(
            [*pytest_args, "--judge-batch"], cwd=project.path, env=env, stdout=subprocess.DEVNULL
        )
        runs = project.path / ".hybridjudge" / "runs"
        deadline = time.monotonic() + 60  # a bound on waiting, not a timing assertion
        while not any('"batch_id"' in p.read_text() for p in runs.glob("*/batches/*.jsonl")):
            assert killed.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert _created(url) == {"openai": 1}  # the targets' wave

        project.config(batch=FAST)
        rerun = subprocess.run(
            [*pytest_args, "--judge-batch"], cwd=project.path, env=env, capture_output=True
        )
        assert rerun.returncode in (0, 1), rerun.stdout
        assert outcomes(project) == expected
        # the judges' wave only: openai (judges a, b) and anthropic (judge c)
        assert _created(url) == {"openai": 2, "anthropic": 1}
        assert project.summary()["calls"]["batches"]["collected"] == 1
        assert b"collected from an earlier run" in rerun.stdout
    finally:
        server.terminate()
        server.wait()


def _created(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_loopback/batches") as reply:
        created: dict[str, int] = json.load(reply)["created"]
    return created
