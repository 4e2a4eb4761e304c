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
    disputed = next(i for i, rs in by_item.items() if len({r.verdict for r in rs}) > 1)
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
