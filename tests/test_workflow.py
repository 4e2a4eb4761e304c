"""The example GitHub workflow (examples/github-actions/gate.yml): its steps, and its shell
scripts run as CI would run them (bash -eo pipefail) on a small project with the loopback LLM.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Project
from loopback import Call, LoopbackLLM, verdict
from pytest_hybridjudge.gate.exit_status import INCONCLUSIVE

WORKFLOW = Path(__file__).parents[1] / "examples" / "github-actions" / "gate.yml"


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())  # type: ignore[no-any-return]


def steps(job: str) -> list[dict[str, Any]]:
    return workflow()["jobs"][job]["steps"]  # type: ignore[no-any-return]


def step(job: str, name: str) -> dict[str, Any]:
    return next(s for s in steps(job) if s.get("name") == name)


def test_install_never_comes_from_an_index_where_the_package_is_unpublished() -> None:
    package = workflow()["env"]["HYBRIDJUDGE_PACKAGE"]
    assert re.fullmatch(r"pytest-hybridjudge @ git\+https://\S+@\S+", package)
    for job in ("baseline", "gate"):
        install = step(job, "Install pytest-hybridjudge")["run"]
        assert install.strip() == 'pip install "$HYBRIDJUDGE_PACKAGE"'
        assert not any("pip install pytest-hybridjudge" in str(s.get("run")) for s in steps(job))


def test_a_pull_request_restores_only_mains_cache_and_never_saves_its_own() -> None:
    uses = [s.get("uses", "") for s in steps("gate")]
    assert not any(u.startswith(("actions/cache@", "actions/cache/save@")) for u in uses)
    restore = step("gate", "Restore main's completion cache and runs")
    assert restore["uses"] == "actions/cache/restore@v4"
    keys = [restore["with"]["key"], *restore["with"]["restore-keys"].split()]
    assert all(k.startswith("hybridjudge-main-") for k in keys)
    assert "github.ref_name" not in json.dumps(workflow()["jobs"])  # no branch's own cache
    save = step("baseline", "Save main's completion cache and runs")
    assert save["uses"] == "actions/cache/save@v4"
    assert save["with"]["key"].startswith("hybridjudge-main-")
    assert "if" not in save  # only after a successful (complete) baseline run
    assert workflow()["jobs"]["baseline"]["if"] == "github.event_name == 'push'"
    assert workflow()["jobs"]["gate"]["if"] == "github.event_name == 'pull_request'"


@pytest.fixture
def ci(project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project whose `pytest` and `hybridjudge` are this environment's, as after install."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:cacheprovider -p no:randomly -p no:benchmark")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    project.config()
    cases = "".join(f'  - {{id: q{i}, input: "question {i}"}}\n' for i in range(12))
    project.gold("qa.yaml", "rubric: correctness\ncases:\n" + cases)
    return project


def answers(wrong: set[int]) -> Any:
    def responder(call: Call) -> str:
        if call.is_judge:
            return verdict(2 if "WRONG" in call.prompt else 5)
        return "WRONG" if int(call.last_user.split()[-1]) in wrong else "right"

    return responder


def run_step(project: Project, job: str, name: str) -> pytest.RunResult:
    """The step's script as GitHub runs a `shell: bash` step."""
    script = step(job, name)["run"]
    return project.pytester.run("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)


def baseline_run(project: Project) -> pytest.RunResult:
    return run_step(project, "baseline", "Baseline run")


def candidate_run(project: Project) -> pytest.RunResult:
    return run_step(project, "gate", "Candidate, gated against main's baseline run")


def runs(project: Project) -> Path:
    return project.path / ".hybridjudge" / "runs"


def test_the_baseline_job_succeeds_when_its_run_is_complete_even_if_cases_fail(
    ci: Project, llm: LoopbackLLM
) -> None:
    llm.responder = answers({1})  # one case fails on main
    done = baseline_run(ci)
    assert done.ret == 0, done.stderr.str()
    chosen = (ci.path / ".hybridjudge" / "baseline-run").read_text().strip()
    assert chosen == (runs(ci) / "LATEST").read_text().strip()
    assert (runs(ci) / chosen / "results.jsonl").is_file()


def test_the_baseline_job_fails_and_names_no_baseline_when_the_run_did_not_finish(
    ci: Project, llm: LoopbackLLM
) -> None:
    (ci.path / "pyproject.toml").write_text("[tool.hybridjudge]\nconcurency = 3\n")  # a typo
    done = baseline_run(ci)
    assert done.ret == pytest.ExitCode.USAGE_ERROR
    done.stdout.fnmatch_lines(["*the baseline run did not finish (pytest exit 4)*"])
    assert not (ci.path / ".hybridjudge" / "baseline-run").exists()
    assert llm.count() == 0


def test_a_pull_request_gates_against_mains_run_never_its_own(
    ci: Project, llm: LoopbackLLM
) -> None:
    missing = candidate_run(ci)  # main has not run yet
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stdout.fnmatch_lines(["*no baseline run from main yet*"])

    llm.responder = answers({1})
    assert baseline_run(ci).ret == 0
    main_run = (ci.path / ".hybridjudge" / "baseline-run").read_text().strip()

    first = candidate_run(ci)  # the same failure as main: the gate passes, exit 0
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    first.stdout.fnmatch_lines(["*gate PASS*", "FAILED gold/qa.yaml::q1*"])
    own = (runs(ci) / "LATEST").read_text().strip()
    assert own != main_run

    ci.config(target={"model": "openai/model-v2"})  # a second push: another model, much worse
    llm.responder = answers(set(range(12)))
    second = candidate_run(ci)
    assert second.ret == pytest.ExitCode.TESTS_FAILED  # REGRESSED
    newest = runs(ci) / (runs(ci) / "LATEST").read_text().strip()
    report = json.loads((newest / "gate.json").read_text())
    assert report["result"] == "REGRESSED"
    assert Path(report["baseline"]).parent.name == main_run  # main's run, not the first push's

    ci.config(target={"model": "openai/model-v3"})
    llm.responder = answers({0, 1})  # one loss in twelve cases: neither shown nor ruled out
    third = candidate_run(ci)
    assert third.ret == INCONCLUSIVE
