"""The review page's charts: the numbers behind each, the same in the table and the JSON, drawn
as SVG with no script and the run's text escaped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_hybridjudge.review.labelled import labelled_cases
from pytest_hybridjudge.review.resolutions import Resolution, load_resolutions
from pytest_hybridjudge.runs import RunStore
from pytest_hybridjudge.web import chartdata as cd
from pytest_hybridjudge.web.charts import CHARTS
from reviewpage import csrf, judged_project, page_client, review_item, sign_in

T0 = dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return judged_project(tmp_path)[0]


def test_every_chart_has_a_table_and_the_same_numbers_as_json(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    page = client.get("/charts").text
    for name in CHARTS:
        data = client.get(f"/api/charts/{name}.json").json()
        assert data["rows"], name
        assert f'src="/charts/{name}.svg"' in page
        for value in data["rows"][0]:
            assert ("-" if value is None else str(value)) in page
        drawn = client.get(f"/charts/{name}.svg")
        assert drawn.headers["content-type"] == "image/svg+xml"
        assert drawn.text.lstrip().startswith("<?xml") and "<script" not in drawn.text


def test_reliability_bins_count_every_labelled_case_with_a_wilson_interval(root: Path) -> None:
    history = RunStore(root / ".hybridjudge" / "runs").judged_history()
    judged, sent = history.judged, history.sent
    dataset = labelled_cases(judged, load_resolutions(root / "review" / "resolutions.jsonl"), sent)
    table = cd.reliability(dataset)
    assert sum(row[3] for row in table.rows) == len(dataset.cases)  # type: ignore[misc]
    for _, low_edge, high_edge, _n, share, low, high in table.rows:
        assert low <= share <= high  # type: ignore[operator]
        assert low_edge < high_edge  # type: ignore[operator]
    assert cd.wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-3)


def test_judges_against_reviewers_counts_match_the_labelled_cases(root: Path) -> None:
    history = RunStore(root / ".hybridjudge" / "runs").judged_history()
    judged, sent = history.judged, history.sent
    dataset = labelled_cases(judged, load_resolutions(root / "review" / "resolutions.jsonl"), sent)
    table = cd.judge_confusion(dataset)
    for row in table.rows:
        cases = [c for c in dataset.cases if c.rubric == row[0]]
        assert sum(row[1:5]) == len(cases)  # type: ignore[arg-type]


def test_reviewer_pairs_get_kappa_and_each_reviewer_their_agreement_with_adjudication() -> None:
    verdicts = [("pass", "pass"), ("fail", "fail"), ("pass", "fail"), ("fail", "fail")]
    by_item = {}
    for n, (ana, bo) in enumerate(verdicts):
        item = review_item(f"case-{n}")
        by_item[item.item_id] = [
            Resolution.for_item(item, verdict=ana, reviewer="ana", resolved_at=T0),  # type: ignore[arg-type]
            Resolution.for_item(item, verdict=bo, reviewer="bo", resolved_at=T0),  # type: ignore[arg-type]
        ]
        if ana != bo:
            by_item[item.item_id].append(
                Resolution.for_item(
                    item, verdict="pass", reviewer="cy", adjudicate=True,
                    resolved_at=T0 + dt.timedelta(minutes=1),
                )
            )  # fmt: skip
    rows = {(r[1], r[2]): r for r in cd.reviewer_agreement(by_item).rows}
    pair = rows[("ana", "bo")]
    assert pair[3] == 4 and pair[4] == 0.75 and pair[5] == pytest.approx(0.5)
    assert rows[("ana", "adjudicated outcome")][4] == 1.0
    assert rows[("bo", "adjudicated outcome")][4] == 0.0


def test_reviewers_agreement_over_time_counts_each_iso_week_apart() -> None:
    week_1, week_2 = T0, T0 + dt.timedelta(days=7)  # 2026-W01 and 2026-W02
    plan = [  # (ana, bo, adjudicated outcome or None, when)
        ("pass", "pass", None, week_1),
        ("fail", "fail", None, week_1),
        ("pass", "fail", "pass", week_1),
        ("pass", "pass", None, week_2),
        ("pass", "fail", "fail", week_2),
        ("fail", "pass", "pass", week_2),
    ]
    by_item = {}
    for n, (ana, bo, outcome, when) in enumerate(plan):
        item = review_item(f"case-{n}")
        lines = [
            Resolution.for_item(item, verdict=ana, reviewer="ana", resolved_at=when),  # type: ignore[arg-type]
            Resolution.for_item(item, verdict=bo, reviewer="bo", resolved_at=when),  # type: ignore[arg-type]
        ]
        if outcome is not None:
            lines.append(
                Resolution.for_item(
                    item, verdict=outcome, reviewer="cy", adjudicate=True,  # type: ignore[arg-type]
                    resolved_at=when + dt.timedelta(days=1),
                )
            )  # fmt: skip
        by_item[item.item_id] = lines
    table = cd.reviewer_agreement_by_week(by_item)
    rows = {(r[0], r[2], r[3]): r[4:] for r in table.rows}
    assert rows[("2026-W01", "ana", "bo")][:2] == [3, round(2 / 3, 3)]
    assert rows[("2026-W01", "ana", "bo")][4] == pytest.approx(0.4)  # kappa of 2x2 [1 1; 0 1]
    assert rows[("2026-W02", "ana", "bo")][:2] == [3, round(1 / 3, 3)]
    assert rows[("2026-W01", "ana", "adjudicated outcome")][:2] == [1, 1.0]
    assert rows[("2026-W01", "bo", "adjudicated outcome")][:2] == [1, 0.0]
    assert rows[("2026-W02", "ana", "adjudicated outcome")][:2] == [2, 0.0]
    assert rows[("2026-W02", "bo", "adjudicated outcome")][:2] == [2, 1.0]
    for row in table.rows:
        items, share, low, high = row[4:8]
        assert low <= share <= high  # type: ignore[operator]
        assert (low, high) == tuple(round(x, 3) for x in cd.wilson(round(share * items), items))  # type: ignore[operator, arg-type]
        assert row[8] is None if row[3] == "adjudicated outcome" else True
    # the weeks together are the whole table of reviewers against each other
    whole = {(r[1], r[2]): r for r in cd.reviewer_agreement(by_item).rows}
    assert whole[("ana", "bo")][3] == 6 and whole[("ana", "adjudicated outcome")][3] == 3
    assert cd.iso_week(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == "2026-W01"
    assert cd.iso_week(dt.datetime(2025, 12, 29, tzinfo=dt.UTC)) == "2026-W01"


def test_the_demo_reviewers_agreement_over_time_has_a_chart_table_and_json(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    data = client.get("/api/charts/reviewers-over-time.json").json()
    weeks = {row[0] for row in data["rows"]}
    assert len(weeks) >= 2  # the demo's decisions span weeks
    assert {row[3] for row in data["rows"]} >= {"bo", "adjudicated outcome"}
    assert "Reviewers&#39; agreement over time" in client.get("/charts").text


def test_the_load_chart_uses_the_measured_median_once_there_are_enough(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    (row,) = client.get("/api/charts/load.json").json()["rows"]
    assert row[0] == "annotator" and row[4] == "measured median"
    assert "measured" in client.get("/").text


def test_an_adjudicated_item_counts_for_each_reviewers_agreement(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard, "cy")
    by_item = {}
    for r in load_resolutions(root / "review" / "resolutions.jsonl"):
        by_item.setdefault(r.item_id, []).append(r)
    disputed = next(
        i
        for i, rs in by_item.items()
        if len({r.verdict for r in rs}) > 1 and not any(r.adjudicate for r in rs)
    )
    assert disputed in client.get("/adjudicate").text
    response = client.post(
        "/api/resolve",
        json={"item_id": disputed, "verdict": "pass", "opened": 0, "adjudicate": True},
        headers=csrf(guard),
    )
    assert "cannot adjudicate" in response.json()["error"]  # cy has no tier: the rule holds


def test_the_coverage_curve_marks_the_fitted_threshold_and_its_certified_bound(
    root: Path,
) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    data = client.get("/api/charts/coverage.json").json()
    (fitted,) = [row for row in data["rows"] if row[5] == "yes"]
    assert fitted[0] == "correctness" and fitted[1] >= 0.8 and fitted[6] == 0.82
    assert "fitted threshold 0.800" in data["note"]
