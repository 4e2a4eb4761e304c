"""The review desk: decisions read once, and the one `resolve` that validates under the lock."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from helpers import RUN_NEW, RUN_OLD, make_item, resolutions_file, write_project, write_run
from pytest_hybridjudge.config import HybridJudgeConfig, ReviewSpec
from pytest_hybridjudge.errors import RecordError
from pytest_hybridjudge.review.decisions import ReviewDesk
from pytest_hybridjudge.review.resolutions import ResolutionError, load_resolutions

ITEM = make_item("capital-france")
OTHER = make_item("refund-policy", rubric="policy-faithfulness")
REVIEW = ReviewSpec.model_validate({"reviewers": {"Kim": "senior"}, "adjudicators": ["Lee"]})


def desk_at(path: Path) -> ReviewDesk:
    return ReviewDesk(path, REVIEW)


def test_resolve_returns_the_new_decision_and_pending_follows(tmp_path: Path) -> None:
    desk = desk_at(tmp_path / "resolutions.jsonl")
    assert desk.pending([ITEM, OTHER]) == [ITEM, OTHER]
    assert desk.decision(ITEM.item_id) is None and desk.reviewers(ITEM.item_id) == ()
    done = desk.resolve(ITEM, "pass", " ann ", score=5, note="matches")
    assert done.resolution.reviewer == "ann" and done.resolution.note == "matches"
    assert (done.decision.verdict, done.decision.score) == ("pass", 5)
    assert desk.score(ITEM.item_id) == 5 and desk.reviewers(ITEM.item_id) == ("ann",)
    assert desk.pending([ITEM, OTHER]) == [OTHER]
    split = desk.resolve(ITEM, "fail", "bo", score=2)
    assert split.decision.pending and split.decision.passed is None
    assert desk.pending([ITEM, OTHER]) == [ITEM, OTHER]  # reviewers disagree: open again
    assert desk.queue([ITEM, OTHER], "ANN") == [OTHER]  # not handed back to who decided it
    assert desk.decided_items() == frozenset()


def test_a_refused_decision_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "review" / "resolutions.jsonl"
    desk = desk_at(path)
    with pytest.raises(ResolutionError, match="outside the scale 1-5"):
        desk.resolve(ITEM, "pass", "ann", score=9)
    with pytest.raises(ResolutionError, match="reviewer"):
        desk.resolve(ITEM, "pass", "   ")
    assert not path.parent.exists()


def test_resolve_validates_against_the_file_under_its_lock_not_what_it_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "resolutions.jsonl"
    early, other = desk_at(path), desk_at(path)
    assert early.decision(ITEM.item_id) is None  # read: the file is empty
    other.resolve(ITEM, "fail", "Ann")
    assert early.decision(ITEM.item_id) is None  # read once: it does not see the new line
    with pytest.raises(ResolutionError, match="already resolved item"):
        early.resolve(ITEM, "pass", "ann")  # the same reviewer, found under the lock
    assert len(load_resolutions(path)) == 1
    # Its own write refreshes it from the file as the lock showed it: the other line included.
    early.resolve(OTHER, "pass", "bo")
    assert early.reviewers(ITEM.item_id) == ("Ann",)
    assert early.decided_items() == {ITEM.item_id, OTHER.item_id}


def test_two_reviewers_resolving_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "resolutions.jsonl"
    reviewers = [f"reviewer-{n}" for n in range(8)]
    start = threading.Barrier(len(reviewers) + 2)
    refused: list[str] = []

    def resolve(name: str) -> None:
        desk = desk_at(path)
        start.wait()
        try:
            desk.resolve(ITEM, "pass", name)
        except ResolutionError:
            refused.append(name)

    # Eight reviewers at once, and the same reviewer twice at once: one of those two is refused.
    names = [*reviewers, "twice", "TWICE"]
    threads = [threading.Thread(target=resolve, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = load_resolutions(path)
    assert len(refused) == 1 and refused[0] in ("twice", "TWICE")
    assert sorted(r.reviewer for r in written) == sorted(n for n in names if n not in refused)
    decision = desk_at(path).decision(ITEM.item_id)
    assert decision is not None and decision.verdict == "pass" and len(decision.reviewers) == 9


def test_amend_and_adjudicate_through_the_desk(tmp_path: Path) -> None:
    desk = desk_at(tmp_path / "resolutions.jsonl")
    with pytest.raises(ResolutionError, match="nothing to amend"):
        desk.resolve(ITEM, "pass", "ann", amend=True)
    desk.resolve(ITEM, "fail", "ann")
    assert desk.resolve(ITEM, "pass", "ANN", amend=True).decision.verdict == "pass"
    assert desk.resolve(ITEM, "fail", "bo").decision.pending
    with pytest.raises(ResolutionError, match="cannot adjudicate"):
        desk.resolve(ITEM, "pass", "cy", adjudicate=True)  # no tier, not named
    settled = desk.resolve(ITEM, "fail", "kim", adjudicate=True)  # senior, from the settings
    assert settled.resolution.reviewer_tier == "senior"
    assert (settled.decision.verdict, settled.decision.pending) == ("fail", False)
    with pytest.raises(ResolutionError, match="no disagreement to settle"):
        desk.resolve(ITEM, "pass", "Lee", adjudicate=True)  # named, but nothing is disputed
    assert desk.reviewers(ITEM.item_id) == ("ANN", "bo", "kim")  # as last spelled


def test_blind_and_lead_time_round_trip_and_stay_out_of_lines_without_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "resolutions.jsonl"
    desk = desk_at(path)
    desk.resolve(ITEM, "pass", "ann")
    blind = desk.resolve(OTHER, "fail", "ann", blind=True, lead_time_s=42.5).resolution
    plain_line, blind_line = (json.loads(line) for line in path.read_text().splitlines())
    assert "blind" not in plain_line and "lead_time_s" not in plain_line  # older versions read it
    assert (blind_line["blind"], blind_line["lead_time_s"]) == (True, 42.5)
    again = {r.item_id: r for r in load_resolutions(path)}
    assert again[OTHER.item_id] == blind
    assert (again[ITEM.item_id].blind, again[ITEM.item_id].lead_time_s) == (False, None)
    with pytest.raises(ResolutionError, match="lead_time_s"):
        desk.resolve(ITEM, "pass", "bo", lead_time_s=-1)


def test_the_desk_of_a_project_and_finding_items_newest_run_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_project(tmp_path, 'resolutions = "~/decisions.jsonl"')
    old = make_item("old-case", run_id=RUN_OLD)
    write_run(tmp_path, RUN_OLD, [old])
    write_run(tmp_path, RUN_NEW, [ITEM])
    from pytest_hybridjudge.config import load_config

    desk = ReviewDesk.for_project(tmp_path, load_config(tmp_path))
    assert desk.path == tmp_path / "home" / "decisions.jsonl"
    assert desk.find(old.item_id[:12]) == old
    # A damaged older manifest is never read to find an item of the newest run by its shown id;
    # a shorter prefix is matched against every run, so it reads (and reports) that one.
    (tmp_path / ".hybridjudge" / "runs" / RUN_OLD / "manifest.jsonl").write_text("{oops\n")
    assert desk.find(ITEM.item_id[:12]) == ITEM
    with pytest.raises(RecordError, match=r"manifest\.jsonl:1"):
        desk.find(ITEM.item_id[:6])
    desk.resolve(ITEM, "pass", "ann")
    assert not resolutions_file(tmp_path).exists()
    assert [r.item_id for r in load_resolutions(desk.path)] == [ITEM.item_id]


def test_one_reviewer_identity_everywhere() -> None:
    from pytest_hybridjudge.review.resolutions import reviewer_key, same_reviewer

    assert reviewer_key("  Ann ") == "ann" and same_reviewer("STRASSE", "strasse")
    assert ReviewDesk(Path("unused"), REVIEW).reviewer_tier(" kim ") == "senior"
    settings = HybridJudgeConfig.model_validate({"review": {"reviewers": {"ann": "senior"}}})
    assert ReviewDesk(Path("unused"), settings.review).reviewer_tier("ANN") == "senior"
