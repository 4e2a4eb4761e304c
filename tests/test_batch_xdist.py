"""`pytest -n 2 --judge --judge-batch`: the workers hand their requests to the controller, which
creates exactly the provider batches `-n 0` creates, and keeps the one ledger a rerun collects.

Real xdist workers, the official SDKs against the loopback server's batch APIs (batches counted
there), real run folders; the kill test runs the server and pytest in their own processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import QUIET_PLUGINS, Project
from loopback import Call, LoopbackLLM, verdict
from loopback_batches import BatchDesk

TESTS = Path(__file__).parent
FAST = {"poll": 0.01, "poll_max": 0.05, "gather": 1.0}
CASES = 12


def _gold(project: Project) -> None:
    lines = ["rubric: correctness", "cases:"]
    for i in range(CASES):
        lines += [f"  - id: c{i}", f"    input: question {i}?"]
    project.gold("g.yaml", "\n".join(lines) + "\n")


def responder(call: Call) -> str:
    """The target answers; judge-b fails every third case (its panel is split: escalated)."""
    if not call.is_judge:
        return "Paris"
    third = any(f"question {i}?" in call.prompt for i in range(0, CASES, 3))
    return verdict(2 if call.model == "judge-b" and third else 5)


def outcomes(project: Project) -> dict[str, tuple[str, Any, list[str]]]:
    return {case: (r["outcome"], r["score"], r["reasons"]) for case, r in project.results().items()}


def test_two_workers_create_the_batches_one_process_creates_with_the_same_outcomes(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = responder
    desk = BatchDesk(llm, hold=2)
    project.config(batch=FAST, cache="off", escalation={"audit_rate": 0})
    _gold(project)
    project.run("--judge", "--judge-batch")
    alone, alone_outcomes, alone_calls = Counter(desk.created), outcomes(project), len(llm.calls)
    alone_counts = project.summary()["calls"]
    # wave 1: the targets; wave 2: judges a and b (OpenAI) and c (Anthropic)
    assert alone == {"openai": 2, "anthropic": 1}
    assert Counter(o for o, _, _ in alone_outcomes.values()) == {"passed": 8, "escalated": 4}

    result = project.run("--judge", "--judge-batch", "-n", "2", "-v")

    result.stdout.fnmatch_lines(["*scheduling tests via JudgeGroupScheduling*"])
    assert desk.created - alone == alone  # as many batches again, not one more
    assert len(llm.calls) == 2 * alone_calls  # and every request answered once
    assert outcomes(project) == alone_outcomes
    run_dir = project.run_dir()
    assert not (run_dir / "spool").exists()  # the hand-over is gone once the run is recorded
    ledger = list((run_dir / "batches").glob("*.jsonl"))
    assert len(ledger) == 3  # the controller's ledger holds every batch of the run
    assert all('"collected"' in path.read_text() for path in ledger)
    # the summary and the terminal count the batches and requests as -n 0 does
    counts = project.summary()["calls"]
    assert counts is not None, "no call counts under -n 2"
    assert counts["batches"] == alone_counts["batches"]
    assert counts["batches"]["results"] == {"succeeded": 12 + 3 * 12}
    assert (counts["requests"], counts["providers"]) == (
        alone_counts["requests"],
        alone_counts["providers"],
    )
    result.stdout.fnmatch_lines(["*batches: 2 waves, 3 created, 48 requests (48 succeeded)*"])


def test_a_killed_two_worker_run_is_collected_by_the_rerun_with_no_extra_batch(
    project: Project,
) -> None:
    """The whole run (controller and workers) SIGKILLed once the controller's ledger holds a
    batch id; the rerun under -n 2 collects that batch and creates only the judges' wave."""
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
        _gold(project)
        pytest_args = [sys.executable, "-m", "pytest", "-q", *QUIET_PLUGINS, "--judge"]
        project.config(cache="off")
        direct = subprocess.run(pytest_args, cwd=project.path, env=env, capture_output=True)
        assert direct.returncode in (0, 1), direct.stdout
        expected = outcomes(project)

        project.config(batch={**FAST, "poll": 600})  # the first look finds it busy, then waits
        killed = subprocess.Popen(
            [*pytest_args, "--judge-batch", "-n", "2"],
            cwd=project.path,
            env=env,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the workers die with it
        )
        runs = project.path / ".hybridjudge" / "runs"
        deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
        while not any('"batch_id"' in p.read_text() for p in runs.glob("*/batches/*.jsonl")):
            assert killed.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        assert _created(url) == {"openai": 1}  # the targets' wave, one batch for both workers

        project.config(batch=FAST)
        rerun = subprocess.run(
            [*pytest_args, "--judge-batch", "-n", "2"],
            cwd=project.path,
            env=env,
            capture_output=True,
        )
        assert rerun.returncode in (0, 1), rerun.stdout
        assert outcomes(project) == expected
        # the judges' wave only: openai (judges a, b) and anthropic (judge c)
        assert _created(url) == {"openai": 2, "anthropic": 1}
        ledgers = list(runs.glob("*/batches/*.jsonl"))
        assert all('"collected"' in p.read_text() for p in ledgers)
    finally:
        server.terminate()
        server.wait()


def _created(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_loopback/batches") as reply:
        created: dict[str, int] = json.load(reply)["created"]
    return created
