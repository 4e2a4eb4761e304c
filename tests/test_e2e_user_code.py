"""User and plugin code on the run's loop thread: whatever it raises (SystemExit from argparse or
an imported setup.py, sys.exit in a plugin) fails that case and never stops the loop.

Each run is a subprocess with a timeout, so a regression (the loop thread dying and every item
waiting on it) fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, Project
from loopback import LoopbackLLM
from pytest_hybridjudge.scheduler import CaseCrashed, Scheduler

TIMEOUT = 120  # seconds; a hang is the failure these tests exist to catch

TWO_CASES = """
    cases:
      - id: exits
        input: "What is the capital of France?"
        verify: {VERIFY}
      - id: fine
        input: "What is the capital of Italy?"
"""


def _run(project: Project) -> pytest.RunResult:
    return project.pytester.runpytest_subprocess("--judge", *QUIET_PLUGINS, timeout=TIMEOUT)


def _records(project: Project) -> dict[str, dict[str, object]]:
    runs = project.path / ".hybridjudge" / "runs"
    run = runs / (runs / "LATEST").read_text().strip()
    lines = (run / "results.jsonl").read_text().splitlines()
    return {r["case_id"]: r for r in map(json.loads, lines)}


def test_verifier_calling_argparse_fails_its_case_only(project: Project, llm: LoopbackLLM) -> None:
    project.config(judges=["openai/judge-a"])
    project.pytester.makepyfile(
        checks="""
        import argparse

        def strict(output, case):
            argparse.ArgumentParser(prog="checks").parse_args(["--no-such-flag"])
            return True
        """
    )
    project.gold("g.yaml", TWO_CASES.replace("{VERIFY}", '{python: "checks:strict"}'))
    result = _run(project)
    result.assert_outcomes(passed=1, failed=1)
    [verifier] = _records(project)["exits"]["verifiers"]
    assert verifier["passed"] is False and "SystemExit(2)" in verifier["detail"]  # type: ignore[index]


def test_python_verifier_naming_an_ordinary_setup_py(project: Project, llm: LoopbackLLM) -> None:
    project.config(judges=["openai/judge-a"])
    project.pytester.makepyfile(
        setup="from setuptools import setup\n\nsetup(name='demo')\n\ndef x(output, case):\n    "
        "return True\n"
    )
    project.gold("g.yaml", TWO_CASES.replace("{VERIFY}", '{python: "setup:x"}'))
    result = _run(project)
    result.assert_outcomes(passed=1, failed=1)
    [verifier] = _records(project)["exits"]["verifiers"]
    assert "SystemExit" in verifier["detail"]  # type: ignore[index]


def test_app_target_calling_sys_exit_fails_its_case(project: Project, llm: LoopbackLLM) -> None:
    project.config(target="app:answer", judges=["openai/judge-a"])
    project.pytester.makepyfile(
        app="""
        import sys

        def answer(case):
            if case.id == "exits":
                sys.exit(3)
            return "Rome"
        """
    )
    project.gold("g.yaml", TWO_CASES.replace("verify: {VERIFY}", "reference: x"))
    result = _run(project)
    result.assert_outcomes(passed=1, failed=1)
    record = _records(project)["exits"]
    assert record["outcome"] == "failed" and "SystemExit" in str(record["error"])


PLUGIN = '''
import sys

from pytest_hybridjudge.providers import Completion, ProviderBase


class ExitingProvider(ProviderBase):
    """Exits on the question about France; answers everything else."""

    async def complete(self, request, timeout):
        if "France" in request.messages[-1][1]:
            sys.exit("provider gave up")
        if request.json_schema is not None:
            return Completion(text='{"score": 5, "rationale": "ok", "confidence": 1}')
        return Completion(text="Rome")


def exiting(arg, output, case):
    sys.exit(1)
'''


def test_plugin_verifier_and_provider_calling_sys_exit(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "hj_exit_plugin.py").write_text(PLUGIN)
    info = site / "hj_exit_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hj-exit-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""
        [pytest_hybridjudge.providers]
        exiting = hj_exit_plugin:ExitingProvider

        [pytest_hybridjudge.verifiers]
        exiting = hj_exit_plugin:exiting
        """)
    )
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    project.config(
        target={"model": "ex/any"}, judges=["ex/judge"], providers={"ex": {"kind": "exiting"}}
    )
    project.gold(
        "g.yaml",
        """
        cases:
          - id: provider-exits
            input: "What is the capital of France?"
          - id: verifier-exits
            input: "What is the capital of Italy?"
            verify: {exiting: true}
          - id: fine
            input: "What is the capital of Italy?"
        """,
    )
    result = _run(project)
    result.assert_outcomes(passed=1, failed=2)
    records = _records(project)
    assert "SystemExit" in str(records["provider-exits"]["error"])
    assert "provider gave up" in str(records["provider-exits"]["error"])
    [verifier] = records["verifier-exits"]["verifiers"]  # type: ignore[misc]
    assert "SystemExit" in verifier["detail"]


def test_scheduler_survives_a_job_raising_system_exit() -> None:
    """The last guard: a BaseException out of the evaluator fails that job, the loop runs on."""

    async def evaluate(job: object) -> object:
        if job.nodeid == "a":
            raise SystemExit(2)
        await asyncio.sleep(0)
        return "done"

    class Job:
        def __init__(self, nodeid: str):
            self.nodeid = nodeid

    scheduler = Scheduler(evaluate)  # type: ignore[arg-type]
    try:
        crashed = scheduler.submit(Job("a"))  # type: ignore[arg-type]
        with pytest.raises(CaseCrashed, match="a: SystemExit: 2"):
            crashed.result(timeout=TIMEOUT)
        assert scheduler.submit(Job("b")).result(timeout=TIMEOUT) == "done"  # type: ignore[arg-type]
    finally:
        scheduler.close()


def test_gold_file_cannot_name_a_function_a_project_module_imports(
    project: Project, llm: LoopbackLLM
) -> None:
    victim = project.path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    llm.responder = lambda call: str(victim) if not call.is_judge else '{"score": 5, '
    project.config(judges=["openai/judge-a"])
    project.pytester.makepyfile(helpers="from shutil import rmtree\n")
    project.gold(
        "g.yaml",
        """
        cases:
          - id: wipe
            input: "Name a folder"
            verify: {python: "helpers:rmtree"}
        """,
    )
    result = _run(project)
    result.assert_outcomes(failed=1)
    assert (victim / "keep.txt").read_text() == "precious"
    [verifier] = _records(project)["wipe"]["verifiers"]  # type: ignore[misc]
    assert "shutil.rmtree" in verifier["detail"] and "not run" in verifier["detail"]
