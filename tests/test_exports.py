"""Exports: Label Studio tasks and config, preference data for TRL, OpenAI and KTO."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from helpers import make_item, write_project, write_run
from pytest_hybridjudge.cli import main
from pytest_hybridjudge.exports.labelstudio import labelling_config, tasks

SPLIT = make_item("capital-france")
AUDIT = make_item("audit-case", audit=True, reasons=())
CHAT = make_item("chat-case")
CHAT = CHAT.model_copy(update={"input": [{"role": "user", "content": "Capital of France?"}]})


def test_audit_items_go_without_predictions_or_the_judges_reasons() -> None:
    split, audit, chat = tasks([SPLIT, AUDIT, CHAT])
    assert split["data"]["item_id"] == SPLIT.item_id and split["data"]["blind"] is False
    (prediction,) = split["predictions"]  # the errored judge gives none
    assert prediction["model_version"] == "openai/gpt-4.1" and prediction["score"] == 0.9
    assert {r["from_name"]: r["value"] for r in prediction["result"]} == {
        "verdict": {"choices": ["pass"]},
        "score": {"number": 5},
    }
    assert "openai/gpt-4.1: 5 (pass)" in split["data"]["judges"]
    assert "predictions" not in audit
    assert audit["data"]["blind"] is True
    assert audit["data"]["judges"] == "" and audit["data"]["reasons"] == ""
    assert chat["data"]["input"] == "user: Capital of France?"


def test_the_config_names_every_field_and_control_the_tasks_use() -> None:
    exported = tasks([SPLIT, AUDIT])
    config = ET.fromstring(labelling_config([SPLIT, AUDIT]))
    controls = {el.get("name"): el.tag for el in config.iter() if el.get("toName")}
    assert controls == {"verdict": "Choices", "score": "Number", "note": "TextArea"}
    assert [c.get("value") for c in config.iter("Choice")] == ["pass", "fail"]
    objects = {el.get("name") for el in config.iter("Text")}
    assert {el.get("toName") for el in config.iter() if el.get("toName")} <= objects
    variables = set(re.findall(r"\$(\w+)", labelling_config([SPLIT])))
    assert variables <= set(exported[0]["data"])
    for result in exported[0]["predictions"][0]["result"]:
        assert controls[result["from_name"]].lower() == result["type"]
    number = next(config.iter("Number"))
    assert (number.get("min"), number.get("max")) == ("1", "5")


def test_label_studio_sdk_accepts_the_config_and_the_predictions() -> None:
    sdk = pytest.importorskip("label_studio_sdk.label_interface")
    interface = sdk.LabelInterface(labelling_config([SPLIT, AUDIT]))
    for task in tasks([SPLIT, AUDIT]):
        for prediction in task.get("predictions", []):
            assert interface.validate_prediction(prediction)


def test_export_labelstudio_writes_pending_tasks_and_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    write_run(tmp_path, "20260102T090000Z-bbbbbb", [SPLIT, AUDIT])
    (tmp_path / "review").mkdir()
    done = {
        "schema_version": 2,
        "item_id": AUDIT.item_id,
        "case_id": AUDIT.case_id,
        "verdict": "pass",
        "reviewer": "ann",
        "resolved_at": "2026-01-02T10:00:00Z",
    }
    (tmp_path / "review" / "resolutions.jsonl").write_text(json.dumps(done) + "\n")
    out = tmp_path / "ls" / "tasks.json"
    out.parent.mkdir()
    assert main(["export", "labelstudio", "--root", str(tmp_path), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    exported = json.loads(out.read_text())
    assert [t["data"]["case_id"] for t in exported] == ["capital-france"]  # pending only
    assert "1 pending item of all runs as Label Studio tasks" in err
    assert ET.fromstring((tmp_path / "ls" / "tasks.xml").read_text()).tag == "View"


# --- preferences -----------------------------------------------------------------------------


def pairwise_record(case_id: str, preferred: str, consistent: bool = True) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "target": "new",
        "outcome": "passed",
        "input": f"question {case_id}",
        "output": f"new answer {case_id}",
        "item_id": f"{case_id:0<16}"[:16],
        "pairwise": {
            "baseline_output": f"old answer {case_id}",
            "preferred": preferred,
            "judgments": [{"judge": "openai/judge-a", "consistent": consistent}],
        },
    }


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    write_project(tmp_path)
    records = [
        pairwise_record("p0", "candidate"),
        pairwise_record("p1", "baseline"),
        pairwise_record("p2", "candidate", consistent=False),  # flipped with the order
        {
            "case_id": "s0",
            "target": "new",
            "outcome": "failed",
            "input": [{"role": "user", "content": "Hi"}],
            "output": "Go away",
            "resolved_by": ["ann"],
        },
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def export(capsys: pytest.CaptureFixture[str], run_file: Path, *args: str) -> list[Any]:
    root, run = str(run_file.parent), str(run_file)
    code = main(["export", "preferences", "--root", root, "--run", run, *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_trl_stays_the_default_and_conversational_makes_messages(
    run_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = export(capsys, run_file)
    assert default == export(capsys, run_file, "--format", "trl")
    assert default[0] == {
        "prompt": "question p0",
        "chosen": "new answer p0",
        "rejected": "old answer p0",
        "source": "judges",
        "case_id": "p0",
    }
    assert [p["case_id"] for p in default] == ["p0", "p1"]  # no flipped pair, no single output
    chat = export(capsys, run_file, "--conversational")[1]
    assert chat["prompt"] == [{"role": "user", "content": "question p1"}]
    assert chat["chosen"] == [{"role": "assistant", "content": "old answer p1"}]
    assert chat["rejected"] == [{"role": "assistant", "content": "new answer p1"}]


def test_openai_rows_hold_only_the_preference_fine_tuning_keys(
    run_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = export(capsys, run_file, "--format", "openai")
    assert rows[0] == {
        "input": {"messages": [{"role": "user", "content": "question p0"}]},
        "preferred_output": [{"role": "assistant", "content": "new answer p0"}],
        "non_preferred_output": [{"role": "assistant", "content": "old answer p0"}],
    }
    assert len(rows) == 2


def test_kto_rows_are_unpaired_and_take_reviewed_single_outputs(
    run_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = export(capsys, run_file, "--format", "kto")
    assert [(r["case_id"], r["completion"], r["label"]) for r in rows] == [
        ("p0", "new answer p0", True),
        ("p0", "old answer p0", False),
        ("p1", "old answer p1", True),
        ("p1", "new answer p1", False),
        ("s0", "Go away", False),
    ]
    assert rows[-1]["source"] == "review:ann"
    assert rows[-1]["prompt"] == [{"role": "user", "content": "Hi"}]


def test_the_exports_load_with_datasets(
    run_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    for fmt, columns in (
        ("trl", {"prompt", "chosen", "rejected"}),
        ("openai", {"input", "preferred_output", "non_preferred_output"}),
        ("kto", {"prompt", "completion", "label"}),
    ):
        out = tmp_path / f"{fmt}.jsonl"
        args = ["--format", fmt, "--conversational", "--out", str(out)]
        assert (
            main(["export", "preferences", "--run", str(run_file), "--root", str(tmp_path), *args])
            == 0
        )
        loaded = datasets.load_dataset("json", data_files=str(out), split="train")
        assert columns <= set(loaded.column_names)
