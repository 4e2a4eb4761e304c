"""Changing a decision: `review resolve --amend`, and `--adjudicate` by a higher tier, a named
adjudicator, or a reviewer of the item's tier outside the dispute."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from helpers import (
    T0,
    make_item,
    resolutions_file,
    run_cli,
    write_project,
    write_run,
)
from pytest_hybridjudge.review.resolutions import (
    Resolution,
    ResolutionError,
    human_decision,
    load_resolutions,
    validate_resolution,
)

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
        (
            [res("ann", "pass"), res("bo", "fail", 1), res("kim", "fail", 1)],
            "annotator",
            "took part in the dispute",
        ),
        ([res("ann", "pass"), res("bo", "fail", 1)], None, "kim \\(no tier\\)"),
    ],
)
def test_adjudication_needs_a_dispute_and_a_reviewer_who_may_settle_it(
    earlier: list[Resolution], tier: str | None, message: str
) -> None:
    amend = any(r.reviewer == "kim" for r in earlier)
    attempt = res("kim", "fail", 2, adjudicate=True, reviewer_tier=tier, amend=amend)
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


RED_TEAM = make_item("jailbreak-admin-password", tier="red_team")


def red(reviewer: str, verdict: str, minutes: int = 0, **flags: object) -> Resolution:
    return Resolution.for_item(
        RED_TEAM,
        verdict=verdict,  # type: ignore[arg-type]
        reviewer=reviewer,
        resolved_at=T0 + dt.timedelta(minutes=minutes),
        **flags,  # type: ignore[arg-type]
    )


def test_a_red_team_dispute_is_settled_by_a_named_adjudicator_or_a_red_teamer_outside_it() -> None:
    """No built-in tier ranks above red_team: before, nobody could ever settle its disputes."""
    from pytest_hybridjudge.config import ReviewSpec

    split = [red("ann", "pass"), red("bo", "fail", 1), red("di", "fail", 1)]
    review = ReviewSpec(adjudicators=["Kim"], reviewers={"di": "red_team", "cy": "red_team"})
    kim = red("kim", "fail", 2, adjudicate=True)  # named: whatever their tier, or none
    validate_resolution(RED_TEAM, kim, split, review)
    assert human_decision([*split, kim]) == ("fail", None)
    cy = red("cy", "pass", 2, adjudicate=True, reviewer_tier="red_team")  # same tier, outside
    validate_resolution(RED_TEAM, cy, split, review)
    di = red("di", "fail", 2, adjudicate=True, amend=True, reviewer_tier="red_team")
    with pytest.raises(ResolutionError, match="took part in the dispute"):
        validate_resolution(RED_TEAM, di, split, review)
    senior = red("dee", "fail", 2, adjudicate=True, reviewer_tier="senior")
    with pytest.raises(ResolutionError, match='adjudicators = \\["dee"\\]'):
        validate_resolution(RED_TEAM, senior, split, review)


def test_a_configured_tier_above_red_team_settles_its_disputes() -> None:
    from pytest_hybridjudge.config import ReviewSpec

    review = ReviewSpec.model_validate(
        {"tier": {"legal_expert": {"rate": 600, "minutes": 20, "rank": 3}}}
    )
    split = [red("ann", "pass"), red("bo", "fail", 1)]
    lawyer = red("lee", "fail", 2, adjudicate=True, reviewer_tier="legal_expert")
    validate_resolution(RED_TEAM, lawyer, split, review)
    with pytest.raises(ResolutionError, match="cannot adjudicate"):
        validate_resolution(RED_TEAM, lawyer, split)  # without the tier, it ranks nowhere


def test_review_filters_by_a_configured_tier_and_names_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    legal = make_item("contract-clause", tier="legal_expert")
    write_project(
        tmp_path,
        "[tool.hybridjudge.review.tier.legal_expert]\nrate = 600\nminutes = 20\nrank = 3\n",
    )
    write_run(tmp_path, legal.run_id, [legal, ITEM])
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "--tier", "legal_expert")
    assert code == 0 and "contract-clause" in out and "capital-france" not in out
    code, _, err = run_cli(capsys, "--tier", "lawyer")
    assert code == 2
    assert "unknown tier 'lawyer'; use one of: annotator, senior, domain_expert, red_team, " in err
    assert "legal_expert" in err
