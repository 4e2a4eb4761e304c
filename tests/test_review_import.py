"""`hybridjudge review import`: decisions from a CSV, Label Studio and Argilla, through the desk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import make_item, resolutions_file, run_cli, write_project, write_run
from pytest_hybridjudge import files
from pytest_hybridjudge.review.resolutions import load_resolutions

FRANCE = make_item("capital-france")
REFUND = make_item("refund-policy", rubric="policy-faithfulness")
AUDIT = make_item("audit-case", audit=True)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_project(tmp_path, '[tool.hybridjudge.review]\nreviewers = { lee = "senior" }')
    write_run(tmp_path, "20260102T090000Z-bbbbbb", [FRANCE, REFUND, AUDIT])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYBRIDJUDGE_REVIEWER", raising=False)
    return tmp_path


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_imports_refuses_with_the_desks_message_and_reimport_adds_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(
        root / "decisions.csv",
        "item_id,verdict,score,reviewer,note\n"
        f"{FRANCE.item_id},pass,5,ann,matches the reference\n"
        f"{REFUND.item_id[:12]},fail,,bo,\n"
        f"{FRANCE.item_id},pass,9,bo,\n"
        "ffffffffffff,pass,,ann,\n"
        f"{REFUND.item_id},maybe,,ann,\n",
    )
    code, out, _ = run_cli(capsys, "import", "csv", source)
    assert code == 1  # one refused
    lines = load_resolutions(resolutions_file(root))
    assert [(r.item_id, r.verdict, r.score, r.reviewer, r.note) for r in lines] == [
        (FRANCE.item_id, "pass", 5, "ann", "matches the reference"),
        (REFUND.item_id, "fail", None, "bo", None),
    ]
    assert f"refused    {source}:4: score 9 is outside the scale 1-5" in out
    assert f"skipped    {source}:5: item 'ffffffffffff' is in no run's review manifest" in out
    assert f"skipped    {source}:6: verdict 'maybe' is neither 'pass' nor 'fail'" in out
    assert "2 decisions imported" in out

    before = resolutions_file(root).read_bytes()
    code, out, _ = run_cli(capsys, "import", "csv", source)
    assert resolutions_file(root).read_bytes() == before
    assert "0 decisions imported" in out and "2 already recorded" in out
    assert f"unchanged  {source}:2: already recorded by ann" in out


def test_a_changed_decision_is_refused_unless_amend(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(
        root / "a.csv", f"item_id,verdict,score,reviewer,note\n{FRANCE.item_id},pass,5,ann,\n"
    )
    second = write(
        root / "b.csv", f"item_id,verdict,score,reviewer,note\n{FRANCE.item_id},fail,2,ann,\n"
    )
    assert run_cli(capsys, "import", "csv", first)[0] == 0
    code, out, _ = run_cli(capsys, "import", "csv", second)
    assert code == 1 and "already resolved item" in out and "--amend" in out
    assert run_cli(capsys, "import", "csv", second, "--amend")[0] == 0
    last = load_resolutions(resolutions_file(root))[-1]
    assert (last.verdict, last.score, last.amend) == ("fail", 2, True)


def test_a_csv_without_the_columns_is_an_error_naming_them(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(root / "d.csv", "id,decision\nx,pass\n")
    code, _, err = run_cli(capsys, "import", "csv", source)
    assert code == 2 and f"{source}:1: no column item_id, verdict" in err


def labelstudio_task(task_id: int, item_item_id: str, annotations: list[Any]) -> dict[str, Any]:
    """A task as Label Studio's JSON export writes it (fields as its task-format page lists)."""
    return {
        "id": task_id,
        "created_at": "2026-01-02T09:00:00.000000Z",
        "updated_at": "2026-01-02T10:00:00.000000Z",
        "project": 3,
        "data": {"item_id": item_item_id, "output": "Paris", "blind": False},
        "meta": {},
        "annotations": annotations,
        "predictions": [],
        "inner_id": task_id,
        "total_annotations": len(annotations),
        "cancelled_annotations": 0,
        "total_predictions": 0,
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": None,
        "updated_by": [],
        "file_upload": None,
        "comment_authors": [],
    }


def annotation(
    number: int, user: Any, verdict: str | None, score: int | None = None, **extra: Any
) -> dict[str, Any]:
    result: list[dict[str, Any]] = []
    if verdict is not None:
        result.append(
            {
                "value": {"choices": [verdict]},
                "id": f"v{number}",
                "from_name": "verdict",
                "to_name": "output",
                "type": "choices",
                "origin": "manual",
            }
        )
    if score is not None:
        result.append(
            {
                "value": {"number": score},
                "id": f"s{number}",
                "from_name": "score",
                "to_name": "output",
                "type": "number",
                "origin": "manual",
            }
        )
    result.append(
        {
            "value": {"text": [f"note {number}"]},
            "id": f"n{number}",
            "from_name": "note",
            "to_name": "output",
            "type": "textarea",
            "origin": "manual",
        }
    )
    return {
        "id": number,
        "completed_by": user,
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": "2026-01-03T12:00:00.000000Z",
        "updated_at": "2026-01-03T12:00:05.000000Z",
        "draft_created_at": None,
        "lead_time": 42.5,
        "prediction": {},
        "result_count": 0,
        "unique_id": f"u{number}",
        "import_id": None,
        "last_action": None,
        "bulk_created": False,
        "task": 1,
        "project": 3,
        "updated_by": user,
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
        **extra,
    }


def test_labelstudio_export_annotations_become_resolutions(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = [
        labelstudio_task(
            1,
            FRANCE.item_id,
            [
                annotation(1, 10, "pass", 5),
                annotation(2, {"id": 11, "email": "bo@example.com"}, "fail", 2),
                annotation(3, 12, "fail", 1, ground_truth=True),  # lee settles it
                annotation(4, 13, "pass", was_cancelled=True),
            ],
        ),
        labelstudio_task(2, REFUND.item_id, [annotation(5, 10, None, 4)]),  # verdict from score
    ]
    source = write(root / "export.json", json.dumps(export, indent=1))
    code, out, _ = run_cli(
        capsys, "import", "labelstudio", source, "--user", "10=ann", "--user", "12=lee"
    )
    assert code == 0, out
    lines = load_resolutions(resolutions_file(root))
    assert [(r.item_id, r.reviewer, r.verdict, r.score, r.adjudicate) for r in lines] == [
        (FRANCE.item_id, "ann", "pass", 5, False),
        (FRANCE.item_id, "bo@example.com", "fail", 2, False),
        (REFUND.item_id, "ann", "pass", 4, False),
        (FRANCE.item_id, "lee", "fail", 1, True),  # adjudications after the dispute
    ]
    assert lines[0].lead_time_s == 42.5 and lines[0].note == "note 1"
    assert lines[0].resolved_at.isoformat() == "2026-01-03T12:00:05+00:00"
    assert lines[-1].reviewer_tier == "senior"
    assert "annotation 4: skipped in Label Studio (was_cancelled)" in out
    assert run_cli(capsys, "import", "labelstudio", source, "--user", "10=ann", "--user", "12=lee")[
        1
    ].endswith("4 already recorded, 1 skipped, 0 refused\n")


def test_labelstudio_map_reads_the_configs_own_field_names(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = annotation(1, 10, None)
    ann["result"] = [
        {"from_name": "quality", "to_name": "text", "type": "rating", "value": {"rating": 2}},
        {"from_name": "ok", "to_name": "text", "type": "choices", "value": {"choices": ["Fail"]}},
    ]
    source = write(root / "export.json", json.dumps([labelstudio_task(1, FRANCE.item_id, [ann])]))
    code, out, _ = run_cli(capsys, "import", "labelstudio", source)
    assert (
        "no answer in from_name 'verdict' or 'score' (the annotation answers: ok, quality)" in out
    )
    code, out, _ = run_cli(
        capsys, "import", "labelstudio", source, "--map", "ok=verdict", "--map", "quality=score"
    )
    assert code == 0
    (line,) = load_resolutions(resolutions_file(root))
    assert (line.verdict, line.score, line.reviewer) == ("fail", 2, "labelstudio-user-10")


def test_argilla_records_only_submitted_responses_count(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, bo, cy = (
        "3f1e0a52-0000-4000-8000-000000000001",
        "3f1e0a52-0000-4000-8000-000000000002",
        "3f1e0a52-0000-4000-8000-000000000003",
    )
    nested = {  # `dataset.records.to_json` (to_list(flatten=False))
        "id": FRANCE.item_id,
        "fields": {"input": "Question?", "output": "Paris"},
        "metadata": {},
        "suggestions": {},
        "responses": {
            "verdict": [
                {"value": "pass", "user_id": ann, "status": "submitted"},
                {"value": "fail", "user_id": bo, "status": "draft"},
                {"value": "fail", "user_id": cy, "status": "discarded"},
            ],
            "score": [{"value": 5, "user_id": ann, "status": "submitted"}],
        },
        "vectors": {},
        "_server_id": "9c0b6a2e-0000-4000-8000-00000000000a",
        "status": "completed",
    }
    flat = {  # `to_list(flatten=True)`, the columns `to_datasets` / `to_hub` write
        "id": "any-external-id",
        "_server_id": "9c0b6a2e-0000-4000-8000-00000000000b",
        "input": "Question?",
        "item_id": REFUND.item_id,
        "verdict.responses": ["fail"],
        "verdict.responses.users": [bo],
        "verdict.responses.status": ["submitted"],
        "note.responses": ["cites the wrong policy"],
        "note.responses.users": [bo],
        "note.responses.status": ["submitted"],
    }
    flat["metadata"] = {"item_id": REFUND.item_id}
    source = write(root / "records.json", json.dumps([nested, flat]))
    code, out, _ = run_cli(capsys, "import", "argilla", source, "--user", f"{ann}=ann")
    assert code == 0, out
    lines = load_resolutions(resolutions_file(root))
    assert [(r.item_id, r.reviewer, r.verdict, r.score, r.note) for r in lines] == [
        (FRANCE.item_id, "ann", "pass", 5, None),
        (REFUND.item_id, bo, "fail", None, "cites the wrong policy"),
    ]
    assert f"user {bo}: response draft, not submitted" in out
    assert f"user {cy}: response discarded, not submitted" in out


def test_500_decisions_take_one_process_and_one_exclusive_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    items = [make_item(f"case-{n}", output=f"answer {n}") for n in range(500)]
    write_run(tmp_path, "20260102T090000Z-bbbbbb", items)
    rows = "".join(f"{item.item_id},pass,4,ann,\n" for item in items)
    source = write(tmp_path / "many.csv", "item_id,verdict,score,reviewer,note\n" + rows)
    monkeypatch.chdir(tmp_path)
    locks: list[bool] = []
    real_lock = files._lock

    def counting_lock(handle: Any, exclusive: bool) -> None:
        locks.append(exclusive)
        real_lock(handle, exclusive)

    monkeypatch.setattr(files, "_lock", counting_lock)
    code, out, _ = run_cli(capsys, "import", "csv", source)
    assert code == 0 and "500 decisions imported" in out
    assert locks.count(True) == 1  # one lock for the batch, not one per decision
    assert len(load_resolutions(resolutions_file(tmp_path))) == 500
