"""Changing a decision: `review resolve --amend`, and `--adjudicate` by a higher tier."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_hybridjudge.review.resolutions import (
    Resolution,
    ResolutionError,
    human_decision,
    load_resolutions,
    validate_resolution,
)
from test_review import T0, make_item, resolutions_file, run_cli, write_project, write_run

ITEM = make_item("capital-france")


def res(reviewer: str, verdict: str, minutes: int = 0, **flags: object) -> Resolution:
    return Resolution.for_item(
        ITEM,
        verdict=verdict,  # type: ignore[arg-type]
        reviewer=reviewer,
        resolved_at=T0 + dt.timedelta(minutes=minutes),
        **flags,  # type: ignore[arg-type]
    )


def test_an_amending_line_supersedes_the_reviewers_earlier_one() -> None:
    first, amended = res("ann", "fail"), res("ann", "pass", 1, amend=True)
    with pytest.raises(ResolutionError, match="--amend"):
        validate_resolution(ITEM, res("ann", "pass", 1), [first])
    validate_resolution(ITEM, amended, [first])
    assert human_decision([first, amended]) == ("pass", None)
    with pytest.raises(ResolutionError, match="nothing to amend"):
        validate_resolution(ITEM, res("bo", "pass", 1, amend=True), [first])


def test_a_higher_tier_settles_a_disagreement_and_wins() -> None:
    split = [res("ann", "pass"), res("bo", "fail", 1)]
    assert human_decision(split) == ("disagree", None)
    senior = res("kim", "fail", 2, adjudicate=True, reviewer_tier="senior")
    validate_resolution(ITEM, senior, split)
    assert human_decision([*split, senior]) == ("fail", None)
    # A later opinion from someone else does not reopen a settled item.
    assert human_decision([*split, senior, res("cy", "pass", 3)]) == ("fail", None)


@pytest.mark.parametrize(
    ("earlier", "tier", "message"),
    [
        ([res("ann", "pass")], "senior", "no disagreement to settle"),
        ([res("ann", "pass"), res("bo", "fail", 1)], "annotator", "only a reviewer of a higher"),
        ([res("ann", "pass"), res("bo", "fail", 1)], None, "kim \\(no tier\\)"),
    ],
)
def test_adjudication_needs_a_dispute_and_a_higher_tier(
    earlier: list[Resolution], tier: str | None, message: str
) -> None:
    attempt = res("kim", "fail", 2, adjudicate=True, reviewer_tier=tier)
    with pytest.raises(ResolutionError, match=message):
        validate_resolution(ITEM, attempt, earlier)


def test_resolve_amend_and_adjudicate_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, item = tmp_path, ITEM
    write_project(root, '[tool.hybridjudge.review]\nreviewers = { Kim = "senior" }\n')
    write_run(root, item.run_id, [item])
    monkeypatch.chdir(root)
    run_cli(capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "ann")
    code, out, _ = run_cli(
        capsys, "resolve", item.item_id, "--verdict", "pass", "--reviewer", "ann", "--amend"
    )
    assert code == 0 and out.startswith("amended ") and "decision now: pass" in out
    run_cli(capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "bo")
    code, out, _ = run_cli(capsys)
    assert "reviewers disagree (ann: pass, bo: fail)" in out
    code, _, err = run_cli(
        capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "cy", "--adjudicate"
    )
    assert code == 2 and "cy (no tier) cannot adjudicate" in err
    code, out, _ = run_cli(
        capsys, "resolve", item.item_id, "--verdict", "fail", "--reviewer", "kim", "--adjudicate"
    )
    assert code == 0 and "decision now: fail" in out
    lines = load_resolutions(resolutions_file(root))
    assert [(r.reviewer, r.amend, r.adjudicate, r.reviewer_tier) for r in lines] == [
        ("ann", False, False, None),
        ("ann", True, False, None),
        ("bo", False, False, None),
        ("kim", False, True, "senior"),
    ]
    _, out, _ = run_cli(capsys, "--json")
    assert item.item_id not in out
