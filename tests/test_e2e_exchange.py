"""Round trip: export the pending items to Label Studio, decide there, import, the next run takes
the decisions."""

from __future__ import annotations

import json

import pytest

from conftest import Project
from helpers import CAPITALS, split_on_france
from loopback import LoopbackLLM
from pytest_hybridjudge.cli import main as hybridjudge
from pytest_hybridjudge.review.resolutions import load_resolutions


def as_label_studio_exports_it(
    tasks: list[dict], decisions: dict[str, tuple[str, int]]
) -> list[dict]:
    """The tasks as Label Studio's JSON export gives them back after annotators decided
    `decisions` (case id -> verdict, score): ids added, an annotation per decided task."""
    exported = []
    for number, task in enumerate(tasks, start=1):
        verdict_, score = decisions[task["data"]["case_id"]]
        annotation = {
            "id": 100 + number,
            "completed_by": 7,
            "result": [
                {
                    "id": "a",
                    "from_name": "verdict",
                    "to_name": "output",
                    "type": "choices",
                    "value": {"choices": [verdict_]},
                    "origin": "manual",
                },
                {
                    "id": "b",
                    "from_name": "score",
                    "to_name": "output",
                    "type": "number",
                    "value": {"number": score},
                    "origin": "manual",
                },
            ],
            "was_cancelled": False,
            "ground_truth": False,
            "created_at": "2026-02-01T10:00:00.000000Z",
            "updated_at": "2026-02-01T10:00:30.000000Z",
            "lead_time": 30.25,
            "task": number,
            "project": 1,
        }
        exported.append(
            {
                "id": number,
                "data": task["data"],
                "annotations": [annotation],
                "predictions": task.get("predictions", []),
                "meta": {},
                "project": 1,
            }
        )
    return exported


def test_label_studio_round_trip_leaves_resolutions_equal_to_the_changes(
    project: Project,
    llm: LoopbackLLM,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm.responder = split_on_france
    project.config(escalation={"audit_rate": 1.0})
    project.gold("g.yaml", CAPITALS)
    project.run("--judge")
    items = {item["case_id"]: item for item in project.manifest()}
    assert items["capital-spain"]["audit"] and not items["capital-france"]["audit"]

    monkeypatch.chdir(project.path)
    assert hybridjudge(["export", "labelstudio", "--out", "ls/tasks.json"]) == 0
    tasks = json.loads((project.path / "ls" / "tasks.json").read_text())
    by_case = {t["data"]["case_id"]: t for t in tasks}
    assert len(by_case["capital-france"]["predictions"]) == 3
    assert "predictions" not in by_case["capital-spain"]  # the audit is not anchored on judges
    assert (project.path / "ls" / "tasks.xml").is_file()

    changes = {"capital-france": ("fail", 2), "capital-spain": ("fail", 1)}
    export = project.path / "ls" / "export.json"
    export.write_text(json.dumps(as_label_studio_exports_it(tasks, changes), indent=2))
    capsys.readouterr()
    assert hybridjudge(["review", "import", "labelstudio", str(export), "--user", "7=ann"]) == 0
    resolutions = load_resolutions(project.path / "review" / "resolutions.jsonl")
    assert {r.case_id: (r.verdict, r.score) for r in resolutions} == changes
    assert {r.item_id for r in resolutions} == {i["item_id"] for i in items.values()}
    blind = {r.case_id: r.blind for r in resolutions}
    assert blind == {"capital-france": False, "capital-spain": True}
    assert all(r.reviewer == "ann" and r.lead_time_s == 30.25 for r in resolutions)

    assert hybridjudge(["review", "import", "labelstudio", str(export), "--user", "7=ann"]) == 0
    assert len(load_resolutions(project.path / "review" / "resolutions.jsonl")) == 2

    project.run("--judge", "--judge-cache", "off")
    results = project.results()
    assert results["capital-france"]["outcome"] == "failed"
    assert results["capital-france"]["resolved_by"] == ["ann"]
    assert results["capital-france"]["score"] == 2
    capsys.readouterr()
