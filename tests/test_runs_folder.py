"""The runs folder and the project's own files: which folders are runs, prune, migrate, `~`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    make_item,
    write_project,
    write_run,
)
from pytest_hybridjudge.cli import main
from pytest_hybridjudge.review.resolutions import Resolution, append_resolution, load_resolutions
from pytest_hybridjudge.runs import RunPaths, RunStore
from pytest_hybridjudge.verdict import CaseResult

IDS = [f"2026010{n}T090000Z-aaaaaa" for n in range(1, 6)]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- prune: only runs are ever candidates ---------------------------------------------------


def test_prune_in_the_project_folder_removes_no_folder_that_is_not_a_run(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("src", "gold", "docs"):
        (root / name).mkdir()
        (root / name / "keep.txt").write_text(name)
    runs = root / ".hybridjudge" / "runs"
    for run_id in IDS[:3]:
        write_run(root, run_id)
    (runs / "coverage-html").mkdir()  # another tool's folder in a shared runs_dir
    (runs / "coverage-html" / "index.html").write_text("<html>")
    (runs / IDS[3]).mkdir()  # named like a run, but holds nothing of one
    code, out, err = _cli(capsys, "runs", "--dir", ".", "prune", "--keep", "1")
    assert (code, err) == (0, "")
    assert {p.name for p in root.iterdir()} >= {"src", "gold", "docs", ".hybridjudge"}
    assert "0 runs removed, 0 runs kept" in out

    code, out, err = _cli(capsys, "runs", "prune", "--keep", "1")
    assert (code, err) == (0, "")
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        ["coverage-html", IDS[2], IDS[3], "LATEST"]
    )
    assert (runs / "coverage-html" / "index.html").read_text() == "<html>"
    assert "2 runs removed, 1 run kept" in out


def test_prune_leaves_a_linked_run_folder_alone_without_a_traceback(
    root: Path, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    write_run(elsewhere, IDS[0])
    for run_id in IDS[1:3]:
        write_run(root, run_id)
    runs = root / ".hybridjudge" / "runs"
    (runs / IDS[0]).symlink_to(elsewhere / ".hybridjudge" / "runs" / IDS[0])
    code, out, err = _cli(capsys, "runs", "prune", "--keep", "1")
    assert (code, err) == (0, "")
    assert f"left {runs / IDS[0]} alone: a link" in out
    assert (elsewhere / ".hybridjudge" / "runs" / IDS[0] / "summary.json").is_file()
    assert not (runs / IDS[1]).exists() and (runs / IDS[2]).is_dir()


# --- prune: what it keeps, and says why -----------------------------------------------------


def test_prune_never_removes_a_run_being_written_even_with_force(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = root / ".hybridjudge" / "runs"
    store = RunStore(runs)
    lease = store.lease(RunPaths.for_run(runs, IDS[0]))  # a session writes it: .running is locked
    (runs / IDS[0] / "results.jsonl.partial").write_text('{"case_id": "a"}\n')
    for run_id in IDS[1:3]:
        write_run(root, run_id)
    try:
        assert store.running_pid(IDS[0]) == os.getpid()
        code, out, _ = _cli(capsys, "runs", "prune", "--keep", "1", "--force")
        assert code == 0
        assert f"kept {IDS[0]}: still being written (pid {os.getpid()})" in out
        assert (runs / IDS[0] / "results.jsonl.partial").is_file()
        assert not (runs / IDS[1]).exists()
        code, out, _ = _cli(capsys, "runs")
        assert f"{IDS[0]}  in progress (pid {os.getpid()})" in out
    finally:
        lease.release()
    assert store.running_pid(IDS[0]) is None
    code, out, _ = _cli(capsys, "runs", "prune", "--keep", "1")
    assert not (runs / IDS[0]).exists()


def test_prune_keeps_runs_with_pending_items_unless_forced(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = root / ".hybridjudge" / "runs"
    write_run(
        root, IDS[0], [make_item("capital-france", run_id=IDS[0])], incomplete=["interrupted"]
    )
    for run_id in IDS[1:3]:
        write_run(root, run_id)
    code, out, _ = _cli(capsys, "runs", "prune", "--keep", "1")
    assert code == 0
    assert f"kept {IDS[0]}: 1 review item still pending" in out
    assert "--force removes it anyway" in out
    assert (runs / IDS[0] / "manifest.jsonl").is_file()
    assert "1 run removed, 2 runs kept" in out
    code, out, _ = _cli(capsys, "runs", "prune", "--keep", "1", "--force")
    assert f"removed {runs / IDS[0]}" in out
    assert not (runs / IDS[0]).exists()


def test_prune_keeps_the_only_judge_verdicts_behind_reviewers_decisions(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = root / ".hybridjudge" / "runs"
    item = make_item("capital-france", run_id=IDS[0])
    record = CaseResult(
        case_id="capital-france",
        target="t",
        outcome="escalated",
        item_id=item.item_id,
        verdicts=item.verdicts,
    )
    write_run(root, IDS[0], [item], results=[record], incomplete=["interrupted"])
    resolution = Resolution.for_item(item, verdict="pass", reviewer="ana")
    append_resolution(root / "review" / "resolutions.jsonl", resolution)
    for run_id in IDS[1:3]:
        write_run(root, run_id)
    code, out, _ = _cli(capsys, "runs", "prune", "--keep", "1")
    assert code == 0
    assert (
        f"kept {IDS[0]}: holds the only judge verdicts behind reviewers' decisions on 1 item" in out
    )
    assert item.item_id in RunStore(runs).judged_history().judged
    _cli(capsys, "runs", "prune", "--keep", "1", "--force")
    assert RunStore(runs).judged_history().judged == {}


# --- runs: target, size, completeness --------------------------------------------------------


def test_runs_shows_each_runs_target_size_and_completeness(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(root, IDS[0])
    write_run(root, IDS[1], incomplete=["a subset: 2 cases deselected (-k, -m or --lf)"])
    (root / ".hybridjudge" / "runs" / IDS[2]).mkdir()
    (root / ".hybridjudge" / "runs" / IDS[2] / "results.jsonl.partial").write_text("")
    code, out, _ = _cli(capsys, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(IDS[0]) and lines[0].endswith(
        "complete  (LATEST: the baseline `latest` names)"
    )
    assert lines[1].endswith("incomplete: a subset: 2 cases deselected (-k, -m or --lf)")
    assert lines[2] == f"{IDS[2]}  incomplete: no summary (stopped before its files were written)"
    latest = (root / ".hybridjudge" / "runs" / "LATEST").read_text().strip()
    assert latest == IDS[0]  # the incomplete run did not move it


@pytest.mark.parametrize(
    ("shape", "reasons"),
    [
        (dict(cases=10), []),
        (dict(cases=0), ["no case ran"]),
        (dict(cases=0, collection_errors=1), ["1 collection error", "no case ran"]),
        (dict(cases=3, deselected=7), ["a subset: 7 cases deselected (-k, -m or --lf)"]),
        (
            dict(cases=10, interrupted=True, unfinished=4),
            ["interrupted", "4 cases never finished (the session stopped)"],
        ),
        (dict(cases=10, outages=1, max_outage_share=0.1), []),
        (
            dict(cases=10, outages=6, max_outage_share=0.1),
            ["6 cases of 10 lost to provider outages (more than 10%)"],
        ),
        (dict(cases=10, over_budget=1), ["1 case skipped by the budget"]),
    ],
)
def test_what_makes_a_run_incomplete(shape: dict[str, Any], reasons: list[str]) -> None:
    from pytest_hybridjudge.runstore import RunShape, incomplete_because

    assert incomplete_because(RunShape(**shape)) == reasons


# --- migrate: inside the project only, across filesystems -----------------------------------


def test_migrate_and_the_pre_run_check_never_reach_outside_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "gold" / "resolutions.jsonl"  # another project's file, one folder up
    other.parent.mkdir()
    other.write_text('{"not": "ours"}\n')
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, 'resolutions = "decisions.jsonl"')
    monkeypatch.chdir(project)
    assert load_resolutions(project / "decisions.jsonl", root=project) == []
    assert load_resolutions(project / "decisions.jsonl") == []  # root found by pyproject.toml
    code, out, err = _cli(capsys, "migrate")
    assert (code, err) == (0, "")
    assert "nothing to migrate" in out and "never read or moved" in out
    assert other.read_text() == '{"not": "ours"}\n'
    assert not (project / "decisions.jsonl").exists()


def _other_filesystem() -> Path | None:
    for candidate in ("/dev/shm", tempfile.gettempdir()):
        usable = os.path.isdir(candidate) and os.access(candidate, os.W_OK)
        if usable and os.stat(candidate).st_dev != os.stat(Path.cwd()).st_dev:
            return Path(candidate)
    return None


def test_migrate_moves_files_across_filesystems(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _other_filesystem()
    if base is None:
        pytest.skip("no writable folder on another filesystem")
    review = Path(tempfile.mkdtemp(dir=base))
    try:
        (root / "review").symlink_to(review)  # review/ lives on another filesystem
        gold = root / "gold"
        gold.mkdir()
        (gold / "resolutions.jsonl").write_text('{"line": 1}\n')
        (gold / "calibration.json").write_text('{"rubrics": {}}\n')
        code, out, err = _cli(capsys, "migrate")
        assert (code, err) == (0, "")
        assert "moved gold/resolutions.jsonl -> review/resolutions.jsonl" in out
        assert (review / "resolutions.jsonl").read_text() == '{"line": 1}\n'
        assert (review / "calibration.json").read_text() == '{"rubrics": {}}\n'
        assert list(gold.iterdir()) == []
        assert not [p for p in review.iterdir() if p.name.endswith(".tmp")]
    finally:
        import shutil

        shutil.rmtree(review)
