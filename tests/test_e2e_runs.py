"""End to end: which runs may be a baseline, where configured paths lead, and files that fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import QUIET_PLUGINS, Project
from loopback import LoopbackLLM

TWO = """
    cases:
      - id: capital-france
        input: "What is the capital of France?"
        reference: "Paris"
      - id: capital-peru
        input: "What is the capital of Peru?"
        reference: "Lima"
"""


def _latest(project: Project) -> str:
    return (project.path / ".hybridjudge" / "runs" / "LATEST").read_text().strip()


def _newest_summary(project: Project) -> dict[str, object]:
    runs = project.path / ".hybridjudge" / "runs"
    newest = max(runs.glob("*/summary.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(newest.read_text())


def test_only_a_complete_run_moves_latest(
    project: Project, llm: LoopbackLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_hybridjudge.cli import main

    project.config()
    project.gold("capitals.yaml", TWO)
    project.run("--judge").assert_outcomes(passed=2)
    complete = _latest(project)
    summary = _newest_summary(project)
    assert (summary["complete"], summary["incomplete_because"]) == (True, [])
    assert summary["targets"] == ["openai/target-model"]

    project.run("--judge", "-k", "france").assert_outcomes(passed=1)
    subset = _newest_summary(project)
    assert subset["complete"] is False
    assert subset["incomplete_because"] == ["a subset: 1 case deselected (-k, -m or --lf)"]
    assert _latest(project) == complete

    project.run("--judge", "gold/capitals.yaml::capital-peru").assert_outcomes(passed=1)
    assert _newest_summary(project)["incomplete_because"] == [
        "a subset: only some gold files or cases named on the command line"
    ]
    assert _latest(project) == complete

    project.gold("broken.yaml", "cases: [")
    assert project.run("--judge").ret == pytest.ExitCode.INTERRUPTED
    broken = _newest_summary(project)
    assert broken["incomplete_because"][:1] == ["1 collection error"]
    assert _latest(project) == complete
    (project.path / "gold" / "broken.yaml").unlink()

    project.path.joinpath("conftest.py").write_text(
        "def pytest_runtest_setup(item):\n"
        "    if 'peru' in item.nodeid:\n"
        "        raise KeyboardInterrupt\n"
    )
    ctrl_c = project.pytester.runpytest("--judge", *QUIET_PLUGINS, no_reraise_ctrlc=True)
    assert ctrl_c.ret == pytest.ExitCode.INTERRUPTED
    stopped = _newest_summary(project)
    assert stopped["incomplete_because"][0] == "interrupted"
    assert _latest(project) == complete
    (project.path / "conftest.py").unlink()

    gated = project.run("--judge", "--judge-baseline", "latest")
    gated.stdout.fnmatch_lines([f"*; baseline *{complete}*results.jsonl (the latest complete run)"])

    assert main(["runs"]) == 0  # pytester runs in the project folder
    out = capsys.readouterr().out
    assert out.count("incomplete: ") == 4 and out.count("  complete") == 2
    assert f"{complete}      2 cases" in out and "target openai/target-model" in out


def test_home_in_configured_paths_means_the_home_folder_for_plugin_and_cli(
    project: Project,
    llm: LoopbackLLM,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_hybridjudge.cli import main

    home = project.path / "home"
    monkeypatch.setenv("HOME", str(home))
    project.config(
        runs_dir="~/hj/runs", cache_path="~/hj/cache.sqlite", resolutions="~/hj/res.jsonl"
    )
    project.gold("capitals.yaml", TWO)
    project.run("--judge").assert_outcomes(passed=2)
    assert not (project.path / "~").exists()
    assert (home / "hj" / "cache.sqlite").is_file()
    run_id = (home / "hj" / "runs" / "LATEST").read_text().strip()
    capsys.readouterr()
    assert main(["runs"]) == 0  # pytester runs in the project folder
    assert capsys.readouterr().out.startswith(run_id)


def test_a_cache_in_the_project_root_hides_no_gold_case(project: Project, llm: LoopbackLLM) -> None:
    project.config(cache_path="cache.sqlite")
    project.gold("capitals.yaml", TWO)
    project.run("--judge").assert_outcomes(passed=2)
    assert (project.path / "cache.sqlite").is_file()


def test_the_tools_own_files_in_a_gold_folder_are_not_cases(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config(runs_dir="gold/runs", cache_path="gold/cache.jsonl")
    project.gold("capitals.yaml", TWO)
    project.run("--judge").assert_outcomes(passed=2)
    project.run("--judge").assert_outcomes(passed=2)  # results.jsonl under gold/runs: not gold


def test_a_step_summary_that_is_a_folder_stops_the_run_before_any_call(
    project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project.path / "step-summary"
    folder.mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(folder))
    project.config()
    project.gold("capitals.yaml", TWO)
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*`$GITHUB_STEP_SUMMARY` = {folder} is a folder; name a file*"])
    assert llm.calls == []


def test_a_damaged_cache_with_a_valid_header_is_named_before_any_call(
    project: Project, llm: LoopbackLLM
) -> None:
    import sqlite3

    cache = project.path / ".hybridjudge" / "cache.sqlite"
    cache.parent.mkdir(parents=True)
    with sqlite3.connect(cache) as db:
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    db.close()
    data = bytearray(cache.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, header intact
    cache.write_bytes(bytes(data))
    project.config()
    project.gold("capitals.yaml", TWO)
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*`cache_path` = {cache} is a damaged SQLite database (*); delete it*"]
    )
    assert llm.calls == []
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# --- a disk that fills up mid-run -------------------------------------------------------------


LIMITED_PYTEST = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))  # no file may grow past 12 KB
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_mid_run_leaves_every_record_whole_and_says_what_to_free(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config(cache="off")
    cases = "".join(
        f'  - id: case-{n}\n    input: "Question {n}?"\n    reference: "{n}"\n' for n in range(40)
    )
    project.gold("many.yaml", "cases:\n" + cases)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_PYTEST, "--judge", *QUIET_PLUGINS, "-p", "no:randomly"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert done.returncode == pytest.ExitCode.INTERRUPTED
    assert "run not recorded: cannot write" in output
    assert "File too large" in output and "Free disk space in" in output
    runs = project.path / ".hybridjudge" / "runs"
    [partial] = runs.glob("*/results.jsonl.partial")
    text = partial.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert 0 < len(records) < 40
    assert f"the {len(records)} records written before are whole" in output
    assert not (runs / "LATEST").exists()
