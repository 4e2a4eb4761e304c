"""`hybridjudge review`: listing, showing and resolving review items; the resolutions file."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    RUN_NEW,
    RUN_OLD,
    T0,
    make_item,
    resolutions_file,
    run_cli,
    run_script,
    runs_folder,
    write_project,
    write_run,
)
from pytest_hybridjudge.review.manifest import ReviewItem
from pytest_hybridjudge.review.resolutions import (
    Resolution,
    ResolutionError,
    append_resolution,
    human_decision,
    load_resolutions,
    resolutions_by_item,
    validate_resolution,
)
from pytest_hybridjudge.review.store import (
    ItemLookupError,
    find_item,
    load_items,
    pending,
)
from pytest_hybridjudge.runs import RunReferenceError, RunStore


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one older run and a latest run of three items; cwd is the project."""
    write_project(tmp_path)
    write_run(
        tmp_path, RUN_OLD, [make_item("old-case", run_id=RUN_OLD)], incomplete=["interrupted"]
    )
    write_run(
        tmp_path,
        RUN_NEW,
        [
            make_item("capital-france"),
            make_item("refund-policy", tier="senior", rubric="policy-faithfulness"),
            make_item("drug-dose", tier="domain_expert", reasons=["low confidence 0.41"]),
        ],
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYBRIDJUDGE_REVIEWER", raising=False)
    return tmp_path


def items_of(root: Path, run: str = RUN_NEW) -> dict[str, ReviewItem]:
    return {i.case_id: i for i in load_items(RunStore(runs_folder(root)), run)}


# --- list ---------------------------------------------------------------------------------------


def test_list_shows_pending_items_of_every_run_newest_first(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A `-k` run after the old one: the old run's item is still pending, so it is listed.
    code, out, err = run_cli(capsys)
    assert (code, err) == (0, "")
    items = items_of(project)
    header, *rows = [line for line in out.splitlines() if line.strip()][:5]
    assert header.split() == ["ID", "TIER", "RUBRIC", "CASE", "REASONS"]
    assert rows[0].split()[:4] == [
        items["capital-france"].item_id[:12],
        "annotator",
        "correctness",
        "capital-france",
    ]
    assert "judges split on pass/fail" in rows[0]
    assert "low confidence 0.41" in rows[2]
    assert "old-case" in rows[3]  # the older run's item comes after the newer run's
    assert "4 pending in all runs" in out
    _, out, _ = run_cli(capsys, "--run", "latest")
    assert "old-case" not in out
    assert "3 pending in the latest run" in out


def test_an_item_pending_in_several_runs_is_listed_once_as_its_newest_run_has_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = make_item("capital-france", run_id=RUN_OLD, reasons=["an older reason"])
    write_run(project, RUN_OLD, [again], incomplete=["interrupted"])
    code, out, _ = run_cli(capsys)
    assert code == 0
    assert out.count("capital-france") == 1
    assert "an older reason" not in out
    assert "3 pending in all runs" in out


def test_list_filters_by_tier_rubric_and_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run_cli(capsys, "--tier", "senior")
    assert "refund-policy" in out
    assert "capital-france" not in out
    _, out, _ = run_cli(capsys, "--rubric", "correctness")
    assert "capital-france" in out
    assert "drug-dose" in out
    assert "refund-policy" not in out
    _, out, _ = run_cli(capsys, "--run", RUN_OLD)
    assert "old-case" in out
    assert "capital-france" not in out
    _, out, _ = run_cli(capsys, "--run", "all", "--tier", "annotator")
    assert "old-case" in out
    assert "capital-france" in out
    assert "drug-dose" not in out


def test_list_json_prints_review_items(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--json", "--tier", "domain_expert")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    item = ReviewItem.model_validate_json(lines[0])
    assert item == items_of(project)["drug-dose"]


def test_list_bad_tier_or_run_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "--tier", "seniro")
    assert code == 2
    assert "unknown tier 'seniro'" in err
    assert "senior" in err
    code, _, err = run_cli(capsys, "--run", "20990101T000000Z-ffffff")
    assert code == 2
    assert "no run" in err
    assert RUN_NEW in err
    code, _, err = run_cli(capsys, "--run", "../elsewhere")
    assert code == 2
    assert "not a run id" in err


def test_no_runs_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys)
    assert code == 2
    assert "run `pytest --judge` first" in err
    assert "Traceback" not in err


def test_malformed_manifest_line_names_file_and_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project / ".hybridjudge" / "runs" / RUN_NEW / "manifest.jsonl"
    first = manifest.read_text().splitlines()[0]
    manifest.write_text(first + "\n" + '{"item_id": "x"}\n')
    code, _, err = run_cli(capsys)
    assert code == 2
    assert f"{manifest}:2: not a review item" in err
    manifest.write_text(first + "\n\n{oops\n")
    code, _, err = run_cli(capsys)
    assert f"{manifest}:3: not valid JSON" in err


def test_project_root_is_found_upwards_or_given(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = project / "gold" / "deeper"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    code, out, _ = run_cli(capsys)
    assert code == 0
    assert "capital-france" in out
    monkeypatch.chdir(project.parent)
    code, out, _ = run_cli(capsys, "--root", str(project), "--tier", "senior")
    assert code == 0
    assert "refund-policy" in out


def test_resolutions_path_comes_from_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(project, 'resolutions = "decisions/human.jsonl"')
    prefix = items_of(project)["capital-france"].item_id[:8]
    code, _, err = run_cli(capsys, "resolve", prefix, "--verdict", "pass", "--reviewer", "ann")
    assert (code, err) == (0, "")
    assert len(load_resolutions(project / "decisions" / "human.jsonl")) == 1
    assert not resolutions_file(project).exists()


# --- show ---------------------------------------------------------------------------------------


def test_show_has_everything_a_reviewer_needs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = make_item(
        "tricky",
        output="Paris.\n\x1b[2Jsecond line\u202e\nEND OF OUTPUT ---",
        reasons=["judges split on pass/fail", "a judge errored"],
    )
    write_run(project, "20260103T090000Z-cccccc", [item])
    code, out, err = run_cli(capsys, "show", item.item_id[:6])
    assert (code, err) == (0, "")
    for expected in (
        item.item_id,
        "case        tricky",
        "source      gold/capitals.yaml",
        "target      openai/gpt-4.1-mini",
        "tier        annotator  (expected 5 min)",
        "  - judges split on pass/fail",
        "  - a judge errored",
        "  | Question for tricky?",
        "REFERENCE\n  | Paris",
        "  | Grade the answer for tricky.",
        "scale 1-5, passes at 4 or more",
        "openai/gpt-4.1: score 5, pass, confidence 0.9",
        "    | Matches the reference.",
        "anthropic/claude-sonnet-4-5: score -, confidence -",
        "    error: timed out after 60s",
    ):
        assert expected in out, expected
    # The output is plain text behind a gutter; control characters cannot act on the terminal.
    body = out.split("OUTPUT  (plain text")[1].split("\nEND OF OUTPUT ---")[0]
    assert body.splitlines()[1:] == [
        "  | Paris.",
        "  | \\x1b[2Jsecond line\\u202e",
        "  | END OF OUTPUT ---",
    ]
    assert "\x1b" not in out


def test_show_finds_items_of_older_runs_and_prints_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = items_of(project, RUN_OLD)["old-case"]
    code, out, _ = run_cli(capsys, "show", old.item_id, "--json")
    assert code == 0
    assert ReviewItem.model_validate_json(out) == old


def test_unknown_and_ambiguous_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    write_run(
        tmp_path,
        RUN_NEW,
        [
            make_item("one", ident="abc1111111111111"),
            make_item("two", ident="abc2222222222222"),
        ],
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "show", "abc")
    assert code == 2
    assert "ambiguous" in err
    assert "abc1111111111111  one" in err
    assert "abc2222222222222  two" in err
    code, _, err = run_cli(capsys, "resolve", "fff", "--verdict", "pass", "--reviewer", "ann")
    assert code == 2
    assert "no review item with id 'fff'" in err
    assert "hybridjudge review --run all" in err
    assert "Traceback" not in err
    assert not resolutions_file(tmp_path).exists()
    code, out, _ = run_cli(capsys, "show", "ABC2")
    assert code == 0
    assert "case        two" in out


# --- resolve ------------------------------------------------------------------------------------


def test_resolve_appends_exactly_one_line_and_never_rewrites(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = items_of(project)
    path = resolutions_file(project)
    code, out, err = run_cli(
        capsys,
        "resolve",
        items["capital-france"].item_id[:10],
        "--verdict",
        "pass",
        "--score",
        "5",
        "--reviewer",
        "ann",
        "--note",
        "exactly the reference",
    )
    assert (code, err) == (0, "")
    assert "resolved" in out
    assert "decision now: pass, score 5" in out
    before = path.read_bytes()
    assert before.count(b"\n") == 1
    record = json.loads(before)
    assert record["item_id"] == items["capital-france"].item_id
    assert record["reviewer"] == "ann"
    assert record["verdict"] == "pass"
    assert record["score"] == 5
    assert record["note"] == "exactly the reference"
    assert record["run_id"] == RUN_NEW
    assert record["rubric_version"] == "rv1"
    resolved_at = dt.datetime.fromisoformat(record["resolved_at"].replace("Z", "+00:00"))
    assert resolved_at.utcoffset() == dt.timedelta(0)

    code, _, _ = run_cli(
        capsys, "resolve", items["drug-dose"].item_id, "--verdict", "fail", "--reviewer", "bo"
    )
    assert code == 0
    after = path.read_bytes()
    assert after.startswith(before)
    assert after[len(before) :].count(b"\n") == 1
    assert [r.case_id for r in load_resolutions(path)] == ["capital-france", "drug-dose"]
    _, out, _ = run_cli(capsys)
    assert "refund-policy" in out
    assert "capital-france" not in out
    assert "drug-dose" not in out


def test_resolve_after_hand_edit_without_final_newline(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = items_of(project)
    path = resolutions_file(project)
    path.parent.mkdir()
    hand = Resolution.for_item(
        items["drug-dose"], verdict="fail", reviewer="doc", resolved_at=T0
    ).model_dump_json()
    path.write_text("\n" + hand)  # a blank line, and no newline at the end
    code, _, _ = run_cli(
        capsys, "resolve", items["refund-policy"].item_id, "--verdict", "fail", "--reviewer", "x"
    )
    assert code == 0
    text = path.read_text()
    assert text.startswith("\n" + hand + "\n")
    assert [r.reviewer for r in load_resolutions(path)] == ["doc", "x"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--verdict", "pass", "--score", "7"], "score 7 is outside the scale 1-5"),
        (["--verdict", "fail", "--score", "0"], "give a score from 1 to 5, or leave it out"),
        (["--verdict", "pass", "--score", "2"], "verdict 'pass' with score 2 is inconsistent"),
        (["--verdict", "fail", "--score", "4"], "give a score from 1 to 3, or verdict 'pass'"),
        (["--verdict", "pass", "--reviewer", "ANN "], "ann already resolved item"),
        (["--verdict", "pass", "--reviewer", "  "], "reviewer name is empty"),
    ],
)
def test_resolve_errors_leave_the_file_untouched(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    item = items_of(project)["capital-france"]
    assert (
        run_cli(capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "ann")[0] == 0
    )
    before = resolutions_file(project).read_bytes()
    if "--reviewer" not in argv:
        argv = [*argv, "--reviewer", "someone-else"]
    code, out, err = run_cli(capsys, "resolve", item.item_id, *argv)
    assert code == 2
    assert message in err
    assert err.startswith("hybridjudge review: error: ")
    assert "Traceback" not in err
    assert out == ""
    assert resolutions_file(project).read_bytes() == before


def test_reviewer_from_environment_or_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    item = items_of(project)["capital-france"]
    code, _, err = run_cli(capsys, "resolve", item.item_id, "--verdict", "pass")
    assert code == 2
    assert "--reviewer NAME or set HYBRIDJUDGE_REVIEWER" in err
    assert not resolutions_file(project).exists()
    monkeypatch.setenv("HYBRIDJUDGE_REVIEWER", "env-ann")
    assert run_cli(capsys, "resolve", item.item_id, "--verdict", "pass")[0] == 0
    assert load_resolutions(resolutions_file(project))[0].reviewer == "env-ann"


def test_disagreeing_reviewers_keep_the_item_pending(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = items_of(project)["capital-france"]
    run_cli(capsys, "resolve", item.item_id, "--verdict", "pass", "--reviewer", "ann")
    code, out, _ = run_cli(capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "bo")
    assert code == 0
    assert "reviewers disagree (ann: pass, bo: fail): the item stays pending" in out
    _, out, _ = run_cli(capsys)
    row = next(line for line in out.splitlines() if "capital-france" in line)
    assert "reviewers disagree (ann: pass, bo: fail)" in row
    _, out, _ = run_cli(capsys, "show", item.item_id)
    assert "resolved by\n  - ann: pass on " in out
    code, out, _ = run_cli(capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "cy")
    assert "reviewers disagree" in out  # still: ann said pass
    assert len(load_resolutions(resolutions_file(project))) == 3


def test_malformed_resolutions_line_names_the_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = items_of(project)["capital-france"]
    path = resolutions_file(project)
    path.parent.mkdir()
    good = Resolution.for_item(item, verdict="pass", reviewer="ann", resolved_at=T0)
    path.write_text(good.model_dump_json() + "\n\n" + '{"item_id": "x", "verdit": "pass"}\n')
    before = path.read_bytes()
    code, _, err = run_cli(capsys)
    assert code == 2
    assert f"{path}:3: not a valid resolution" in err
    assert "unknown key 'verdit'" in err
    assert "fix or remove that line" in err
    code, _, err = run_cli(capsys, "resolve", item.item_id, "--verdict", "pass", "--reviewer", "bo")
    assert code == 2
    assert f"{path}:3:" in err
    assert path.read_bytes() == before


def test_console_script_lists_and_resolves(project: Path) -> None:
    item = items_of(project)["refund-policy"]
    listed = run_script(project, "--tier", "senior")
    assert listed.returncode == 0, listed.stderr
    assert item.item_id[:12] in listed.stdout
    done = run_script(
        project,
        "resolve",
        item.item_id[:8],
        "--verdict",
        "fail",
        "--score",
        "1",
        env={"HYBRIDJUDGE_REVIEWER": "script"},
    )
    assert done.returncode == 0, done.stderr
    [resolution] = load_resolutions(resolutions_file(project))
    assert (resolution.item_id, resolution.reviewer, resolution.score) == (
        item.item_id,
        "script",
        1,
    )
    again = run_script(
        project, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "script"
    )
    assert again.returncode == 2
    assert "script already resolved item" in again.stderr
    assert "Traceback" not in again.stderr


# --- walk ---------------------------------------------------------------------------------------


def test_walk_resolves_one_skips_one_and_quits(project: Path) -> None:
    items = items_of(project)
    result = run_script(
        project, "walk", "--run", "latest", "--reviewer", "ann", stdin="p\n5\nlooks right\ns\nq\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "3 items for ann in the latest run" in out
    assert "item 3 of 3" in out  # reached the third, then quit
    assert "verdict [p]ass/[f]ail/[s]kip/[q]uit:" in out
    assert "score 4-5 (enter for none):" in out  # a pass takes a passing score
    assert "1 resolved, 1 skipped, 2 left for ann" in out
    [resolution] = load_resolutions(resolutions_file(project))
    assert resolution.item_id == items["capital-france"].item_id
    assert (resolution.verdict, resolution.score, resolution.note) == ("pass", 5, "looks right")
    assert resolution.reviewer == "ann"

    again = run_script(project, "walk", "--run", "latest", "--reviewer", "ann", stdin="q\n")
    assert "2 items for ann" in again.stdout  # the resolved one is no longer offered


def test_walk_stops_cleanly_at_end_of_input(project: Path) -> None:
    result = run_script(project, "walk", "--run", "latest", "--reviewer", "ann", stdin="")
    assert result.returncode == 0
    assert "end of input" in result.stdout
    assert "Traceback" not in result.stderr
    assert not resolutions_file(project).exists()
    # In the middle of an item (after the verdict, at the score): nothing is recorded.
    result = run_script(project, "walk", "--run", "latest", "--reviewer", "ann", stdin="f\n")
    assert result.returncode == 0
    assert "0 resolved, 0 skipped, 3 left" in result.stdout
    assert not resolutions_file(project).exists()


def test_walk_asks_again_on_bad_answers(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("maybe\nf\n4\nfour\n2\n\nq\n"))
    code, out, _ = run_cli(
        capsys, "walk", "--run", "latest", "--reviewer", "ann", "--rubric", "correctness"
    )
    assert code == 0
    assert "answer p (pass), f (fail), s (skip this item) or q (quit)" in out
    assert "a 'fail' takes a score from 1 to 3 on this rubric" in out
    assert "'four' is not a whole number" in out
    [resolution] = load_resolutions(resolutions_file(project))
    assert (resolution.case_id, resolution.verdict, resolution.score, resolution.note) == (
        "capital-france",
        "fail",
        2,
        None,
    )
    assert "item 2 of 2" in out  # --rubric correctness: capital-france and drug-dose
    assert "refund-policy" not in out


def test_walk_offers_disputed_items_to_new_reviewers_only(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    item = items_of(project)["refund-policy"]
    run_cli(capsys, "resolve", item.item_id, "--verdict", "pass", "--reviewer", "ann")
    run_cli(capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "bo")
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    _, out, _ = run_cli(capsys, "walk", "--run", "latest", "--tier", "senior", "--reviewer", "ann")
    assert "nothing left for ann to review in the latest run" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("p\n\n\n"))
    _, out, _ = run_cli(capsys, "walk", "--run", "latest", "--tier", "senior", "--reviewer", "cy")
    assert "  - ann: pass on " in out  # earlier decisions are shown
    assert "decision now" not in out
    assert "reviewers disagree (ann: pass, bo: fail, cy: pass)" in out


# --- pure functions and the file ----------------------------------------------------------------


def res(reviewer: str, verdict: str, score: int | None = None, minutes: int = 0) -> Resolution:
    return Resolution(
        item_id="i1",
        case_id="c1",
        verdict=verdict,
        score=score,
        reviewer=reviewer,
        resolved_at=T0 + dt.timedelta(minutes=minutes),
        run_id=RUN_NEW,
        rubric="correctness",
        rubric_version="rv1",
        tier="annotator",
    )


@pytest.mark.parametrize(
    ("resolutions", "expected"),
    [
        ([res("ann", "pass")], ("pass", None)),
        ([res("ann", "pass", 4), res("bo", "pass", 5)], ("pass", 4)),
        ([res("ann", "fail", 1), res("bo", "fail"), res("cy", "fail", 3)], ("fail", 1)),
        ([res("ann", "fail", 2), res("bo", "fail", 3), res("cy", "fail", 3)], ("fail", 3)),
        ([res("ann", "pass", 5), res("bo", "fail", 2)], ("disagree", None)),
        # a reviewer's later (hand-corrected) line replaces their earlier one
        ([res("ann", "pass", 5), res("bo", "fail"), res("Ann", "fail", 1, 5)], ("fail", 1)),
    ],
)
def test_human_decision(resolutions: list[Resolution], expected: tuple[str, int | None]) -> None:
    assert human_decision(resolutions) == expected


def test_human_decision_needs_a_resolution() -> None:
    with pytest.raises(ValueError, match="at least one"):
        human_decision([])


@pytest.mark.parametrize(
    ("verdict", "score", "existing", "message"),
    [
        ("pass", None, [], None),
        ("pass", 4, [], None),
        ("fail", 3, [res("bo", "pass")], None),
        ("pass", 6, [], "outside the scale 1-5"),
        ("pass", 3, [], "passes at 4 or more"),
        ("fail", 5, [], "of 4 or more passes"),
        ("fail", None, [res("ANN", "pass")], "ANN already resolved item i1"),
    ],
)
def test_validate_resolution(
    verdict: str, score: int | None, existing: list[Resolution], message: str | None
) -> None:
    item = make_item("c1", ident="i1")
    resolution = res("ann", verdict, score)
    if message is None:
        validate_resolution(item, resolution, existing)
    else:
        with pytest.raises(ResolutionError, match=message):
            validate_resolution(item, resolution, existing)


def test_validate_resolution_without_scale_or_threshold() -> None:
    no_rubric = make_item("c1", ident="i1", rubric=None, scale=None, pass_threshold=None)
    validate_resolution(no_rubric, res("ann", "fail"), [])
    with pytest.raises(ResolutionError, match="has no rubric scale"):
        validate_resolution(no_rubric, res("ann", "fail", 2), [])
    no_threshold = make_item("c1", ident="i1", pass_threshold=None)
    validate_resolution(no_threshold, res("ann", "pass", 1), [])
    with pytest.raises(ResolutionError, match="for item i1, not i2"):
        validate_resolution(make_item("c1", ident="i2"), res("ann", "pass"), [])


def test_resolution_model_checks_reviewer_and_timezone() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        res(" ", "pass")
    with pytest.raises(ValueError, match="needs a timezone"):
        Resolution(
            item_id="i1",
            case_id="c",
            verdict="pass",
            reviewer="ann",
            resolved_at=dt.datetime(2026, 1, 1, 12),
        )
    record = res("ann", "pass").model_dump() | {"resolved_at": "2026-01-01T13:00:00+01:00"}
    parsed = Resolution.model_validate(record)
    assert parsed.resolved_at == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert parsed.resolved_at.tzinfo == dt.UTC


def test_load_resolutions_missing_blank_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert load_resolutions(path) == []
    naive = res("ann", "pass").model_dump(mode="json") | {"resolved_at": "2026-01-01T12:00:00"}
    path.write_text("\n" + res("bo", "fail").model_dump_json() + "\n  \n" + json.dumps(naive))
    with pytest.raises(ResolutionError, match=r"r\.jsonl:4: not a valid resolution.*timezone"):
        load_resolutions(path)
    path.write_text(res("bo", "fail").model_dump_json() + "\n[1]\n")
    with pytest.raises(ResolutionError, match=r"r\.jsonl:2: expected a JSON object"):
        load_resolutions(path)
    path.write_text(res("bo", "fail").model_dump_json() + "\n\n")
    assert [r.reviewer for r in load_resolutions(path)] == ["bo"]


def test_appends_from_many_threads_stay_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "r.jsonl"

    def worker(n: int) -> None:
        for k in range(20):
            append_resolution(path, res(f"r{n}-{k}", "pass", 4 + n % 2))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = load_resolutions(path)
    assert len(loaded) == 120
    assert len({r.reviewer for r in loaded}) == 120
    assert len(resolutions_by_item(loaded)["i1"]) == 120


def test_store_all_runs_newest_occurrence_wins_and_pending(tmp_path: Path) -> None:
    shared = make_item("shared", run_id=RUN_OLD)
    write_run(
        tmp_path,
        RUN_OLD,
        [shared, make_item("only-old", run_id=RUN_OLD)],
        incomplete=["interrupted"],
    )
    write_run(tmp_path, RUN_NEW, [make_item("shared", run_id=RUN_NEW)])
    runs = runs_folder(tmp_path)
    store = RunStore(runs)
    everything = load_items(store, "all")
    assert [(i.case_id, i.run_id) for i in everything] == [
        ("shared", RUN_NEW),
        ("only-old", RUN_OLD),
    ]
    assert [i.case_id for i in load_items(store)] == ["shared"]
    assert [i.case_id for i in load_items(store, None)] == ["shared"]
    assert find_item(everything, shared.item_id[:5]).run_id == RUN_NEW
    with pytest.raises(ItemLookupError):
        find_item(everything, "zzz")
    decided = Resolution.for_item(shared, verdict="pass", reviewer="ann", resolved_at=T0)
    assert [i.case_id for i in pending(everything, [decided])] == ["only-old"]
    with pytest.raises(RunReferenceError, match="--run 20300101T000000Z-000000: no results file"):
        load_items(store, "20300101T000000Z-000000")
    # `LATEST` naming a run that is gone: `latest` is the newest complete run, as for a baseline
    (runs / "LATEST").write_text("20300101T000000Z-000000\n")
    assert [i.run_id for i in load_items(store)] == [RUN_NEW]
