"""The loop through the review page: a run escalates, reviewers decide in the page (blind for
an audit, two of them), the charts' numbers move, and the next `pytest --judge` takes it all."""

from __future__ import annotations

from typing import Any

from conftest import Project
from helpers import CAPITALS, split_on_france
from loopback import LoopbackLLM
from reviewpage import csrf, page_client, sign_in


def resolve(client: Any, guard: Any, item_id: str, verdict_: str) -> dict[str, Any]:
    done = client.post(
        "/api/resolve",
        json={"item_id": item_id, "verdict": verdict_, "score": "", "note": ""},
        headers=csrf(guard),
    ).json()
    assert done["ok"], done
    return dict(done)


def test_decisions_made_in_the_page_are_taken_by_the_next_run(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = split_on_france
    project.config(
        escalation={"audit_rate": 1.0},  # every confident case is also drawn for audit
        review={"audit_reviews_per_item": 2},
    )
    project.gold("g.yaml", CAPITALS)
    project.run("--judge").assert_outcomes(passed=1)  # France escalated, Spain passed + audit
    items = {item["case_id"]: item for item in project.manifest()}
    france, spain = items["capital-france"], items["capital-spain"]
    assert spain["audit"] and not france["audit"]

    # ana resolves the escalation and, blind, the audit; bo labels the audit too.
    ana, guard = page_client(project.path)
    sign_in(ana, guard, "ana")
    assert ana.get("/api/charts/reliability.json").json()["rows"] == []  # nothing labelled yet
    resolve(ana, guard, france["item_id"], "fail")
    blind_page = ana.get(f"/item/{spain['item_id']}").text
    assert "judge-a" not in blind_page and "judge-b" not in blind_page  # judges hidden
    resolve(ana, guard, spain["item_id"], "pass")
    bo, guard_b = page_client(project.path)
    sign_in(bo, guard_b, "bo")
    resolve(bo, guard_b, spain["item_id"], "pass")

    labelled = [row[3] for row in bo.get("/api/charts/reliability.json").json()["rows"]]
    assert sum(labelled) == 2  # the audit (panel confident) and the split escalation
    agreement = bo.get("/api/charts/reviewers.json").json()
    rows = [dict(zip(agreement["columns"], row, strict=True)) for row in agreement["rows"]]
    assert [(r["reviewer"], r["against"], r["items"], r["agreement"]) for r in rows] == [
        ("ana", "bo", 1, 1.0)
    ]
    lines = (project.path / "review" / "resolutions.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 3 and sum('"blind":true' in line.replace(" ", "") for line in lines) == 2

    again = project.run("--judge")
    again.assert_outcomes(passed=1, failed=1)
    again.stdout.fnmatch_lines(["*FAILED*capital-france*"])
    assert project.results()["capital-france"]["resolved_by"] == ["ana"]
    assert project.results()["capital-france"]["outcome"] == "failed"
