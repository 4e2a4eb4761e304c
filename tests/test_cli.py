"""The `hybridjudge` command's shared behaviour: runs, schema, migrate, pipes, terminal safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import (
    RUN_NEW,
    RUN_OLD,
    make_item,
    write_project,
    write_run,
)
from pytest_hybridjudge.cli import main
from pytest_hybridjudge.summary import RunSummary

HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\u202eid\u2066"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- runs ----------------------------------------------------------------------------------


def test_runs_from_a_subfolder_finds_the_project_and_reads_summaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    write_run(tmp_path, RUN_OLD)
    (tmp_path / "gold" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "gold" / "deep")
    code, out, err = _cli(capsys, "runs")
    assert (code, err) == (0, "")
    assert out.split()[:3] == [RUN_OLD, "0", "cases"]


def test_runs_names_a_summary_that_is_not_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    write_run(tmp_path, RUN_OLD)
    broken = tmp_path / ".hybridjudge" / "runs" / RUN_NEW / "summary.json"
    broken.parent.mkdir()
    broken.write_text('{"run_id": "x"}')
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "runs")
    assert code == 0
    assert RUN_OLD in out
    assert f"{broken}: not a run summary: missing 'started'" in err


def test_runs_prune_keeps_the_newest_and_says_what_it_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    ids = [f"2026010{n}T090000Z-aaaaaa" for n in range(1, 5)]
    for run_id in ids:
        write_run(tmp_path, run_id)
    runs = tmp_path / ".hybridjudge" / "runs"
    (runs / "LATEST").write_text(ids[-1] + "\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = _cli(capsys, "runs", "prune", "--keep", "2")
    assert code == 0
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ids[2:]
    assert f"removed {runs / ids[0]}" in out and f"removed {runs / ids[1]}" in out
    assert "2 runs removed, 2 runs kept" in out
    code, _, err = _cli(capsys, "runs", "prune", "--keep", "0")
    assert code == 2 and "--keep 0" in err
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ids[2:]


# --- schema --------------------------------------------------------------------------------


def test_schema_summary_documents_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "schema", "summary")
    assert code == 0
    schema = json.loads(out)
    assert schema == RunSummary.model_json_schema()
    assert {"run_id", "outcomes", "cost", "paths"} <= set(schema["properties"])
    assert all("description" in field for field in schema["properties"].values())


# --- files the tool writes live outside gold/ ----------------------------------------------


def test_an_old_gold_resolutions_file_stops_with_the_move_and_migrate_moves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    write_run(tmp_path, RUN_NEW, [make_item("capital-france")])
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "resolutions.jsonl").write_text("")
    (gold / "calibration.json").write_text('{"rubrics": {}}\n')
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, "review")
    assert code == 2
    assert "gold/resolutions.jsonl found" in err
    assert "hybridjudge migrate" in err
    assert f"git mv {gold / 'resolutions.jsonl'} {tmp_path / 'review' / 'resolutions.jsonl'}" in err

    code, out, _ = _cli(capsys, "migrate")
    assert code == 0
    assert "moved gold/resolutions.jsonl -> review/resolutions.jsonl" in out
    assert "moved gold/calibration.json -> review/calibration.json" in out
    assert sorted(p.name for p in gold.iterdir()) == []
    assert (tmp_path / "review" / "calibration.json").read_text() == '{"rubrics": {}}\n'
    assert _cli(capsys, "review")[0] == 0


def test_calibrate_without_write_writes_nothing_into_gold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_hybridjudge.review.resolutions import Resolution, append_resolution

    write_project(tmp_path)
    (tmp_path / "gold").mkdir()
    item = make_item("capital-france")
    write_run(tmp_path, RUN_NEW, [item])
    append_resolution(
        tmp_path / "review" / "resolutions.jsonl",
        Resolution.for_item(item, verdict="pass", reviewer="ann"),
    )
    monkeypatch.chdir(tmp_path)
    code, out, _ = _cli(capsys, "calibrate")
    assert code == 0
    assert list((tmp_path / "gold").iterdir()) == []
    assert "review/calibration-history.jsonl" in out


# --- pipes and terminals -------------------------------------------------------------------


def test_review_json_into_a_closed_pipe_prints_no_traceback(tmp_path: Path) -> None:
    write_project(tmp_path)
    items = [make_item(f"case-{n}", output="x" * 2000 + str(n)) for n in range(300)]
    write_run(tmp_path, RUN_NEW, items)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        f"{sys.executable} -m pytest_hybridjudge.cli review --json | head -1",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout)["case_id"] == "case-0"
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


def _raw_controls(text: str) -> list[str]:
    return [ch for ch in text if ch in "\x1b\x07\u202e\u2066"]


def test_untrusted_text_is_escaped_in_every_review_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    item = make_item(HOSTILE, output=f"answer {HOSTILE}", reasons=[f"reason {HOSTILE}"])
    write_run(tmp_path, RUN_NEW, [item])
    monkeypatch.chdir(tmp_path)
    outputs = [
        _cli(capsys, "review"),
        _cli(capsys, "review", "--json"),
        _cli(capsys, "review", "show", item.item_id),
        _cli(capsys, "review", "show", item.item_id, "--json"),
        _cli(capsys, "review", "resolve", item.item_id, "--verdict", "pass", "--reviewer", "a"),
        _cli(capsys, "review", "show", HOSTILE),  # an error that repeats the bad id
        _cli(capsys, "runs", "--dir", str(tmp_path / f"runs{HOSTILE}")),
    ]
    for code, out, err in outputs:
        assert _raw_controls(out + err) == [], (code, out, err)
    _, out, _ = outputs[0]
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\u202eid\\u2066" in out
    assert json.loads(outputs[1][1])["case_id"] == HOSTILE  # JSON escapes mean the same text


def test_decided_by_is_the_same_in_junit_and_in_export_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule: a pairwise case behind a passing verifier was decided by its judges; a target
    that produced nothing failed the case itself; a verifier's failure is the verifiers'."""
    from pytest_hybridjudge.ci_summary import junit_properties
    from pytest_hybridjudge.verdict import (
        CaseResult,
        PairwiseJudgment,
        PairwiseResult,
        VerifierResult,
    )

    ok = [VerifierResult(name="regex", passed=True)]
    judged = PairwiseJudgment(judge="j", candidate_first="candidate", baseline_first="candidate")
    cases = {
        "pairwise": CaseResult(
            case_id="pairwise",
            target="t",
            outcome="passed",
            output="new",
            verifiers=ok,
            pairwise=PairwiseResult(baseline_output="old", judgments=[judged]),
        ),
        "no-output": CaseResult(
            case_id="no-output", target="t", outcome="failed", error="target error: boom"
        ),
        "checked": CaseResult(
            case_id="checked",
            target="t",
            outcome="failed",
            output="x",
            verifiers=[VerifierResult(name="regex", passed=False)],
        ),
        "skipped": CaseResult(case_id="skipped", target="t", outcome="skipped"),
    }
    write_project(tmp_path)
    write_run(tmp_path, RUN_NEW, results=list(cases.values()))
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "export", "results", "--format", "jsonl")
    assert code == 0, err
    exported = {row["case_id"]: row["decided_by"] for row in map(json.loads, out.splitlines())}
    junit = {
        case_id: dict(junit_properties(case))["hybridjudge.decided_by"]
        for case_id, case in cases.items()
    }
    expected = {
        "pairwise": "judges",
        "no-output": "target",
        "checked": "verifiers",
        "skipped": "none",
    }
    assert exported == junit == expected
