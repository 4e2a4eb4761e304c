"""A project with runs to review, and the review page over it, for the web tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from starlette.testclient import TestClient

from pytest_hybridjudge.config import load_config
from pytest_hybridjudge.review.manifest import ReviewItem, item_id
from pytest_hybridjudge.verdict import JudgeVerdict, PanelVerdict
from pytest_hybridjudge.web.app import create_app
from pytest_hybridjudge.web.records import Records
from pytest_hybridjudge.web.security import Guard

RUN = "20260102T090000Z-bbbbbb"
HOST, PORT = "127.0.0.1", 8765
JUDGE_TEXT = "JUDGE-RATIONALE-MARKER the answer matches"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror="alert(1)">'


def review_item(
    case_id: str,
    *,
    output: str = "Paris is the capital.",
    tier: str = "annotator",
    rubric: str = "correctness",
    audit: bool = False,
    run_id: str = RUN,
    reasons: Sequence[str] = ("judges split on pass/fail",),
) -> ReviewItem:
    """An escalated item as `pytest --judge` writes it, with one judge's verdict."""
    question = f"What is the capital for {case_id}?"
    return ReviewItem(
        item_id=item_id(case_id, output, "rv1", input=question, reference="Paris"),
        run_id=run_id,
        case_id=case_id,
        source="gold/capitals.yaml",
        target="openai/gpt-4.1-mini",
        rubric=rubric,
        rubric_version="rv1",
        scale=(1, 5),
        pass_threshold=4,
        input=question,
        reference="Paris",
        output=output,
        rendered_rubric=f"Grade the answer for {case_id}.",
        verdicts=[
            JudgeVerdict(
                judge="openai/gpt-4.1",
                model="openai/gpt-4.1",
                score=5,
                passed=True,
                rationale=JUDGE_TEXT,
                confidence=0.83,
            )
        ],
        panel=PanelVerdict(score=5, passed=True, votes_pass=1, confidence=0.83),
        reasons=list(reasons),
        tier=tier,
        review_minutes=3.0,
        audit=audit,
    )


def write_project(root: Path, items: Sequence[ReviewItem], table: str = "") -> Path:
    """A project folder whose one run escalated `items`."""
    (root / "pyproject.toml").write_text(
        f"[project]\nname = 'demo'\n\n[tool.hybridjudge]\n{table}\n", encoding="utf-8"
    )
    runs = root / ".hybridjudge" / "runs"
    by_run: dict[str, list[ReviewItem]] = {}
    for item in items:
        by_run.setdefault(item.run_id, []).append(item)
    for run_id, run_items in by_run.items():
        manifest = runs / run_id / "manifest.jsonl"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("".join(i.model_dump_json() + "\n" for i in run_items), "utf-8")
    (runs / "LATEST").write_text(max(by_run) + "\n", encoding="utf-8")
    return root


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += dt.timedelta(minutes=minutes)


def page_client(root: Path, clock: Clock | None = None) -> tuple[TestClient, Guard]:
    """A test client of the review page over `root`, not yet signed in."""
    guard = Guard(HOST, PORT)
    records = Records(root, load_config(root), clock=clock or Clock())
    client = TestClient(create_app(records, guard), base_url=f"http://{HOST}:{PORT}")
    return client, guard


def sign_in(client: TestClient, guard: Guard, reviewer: str | None = "ana") -> None:
    """Spend the link's token (the cookie lands in the client) and say who reviews."""
    response = client.get(f"/review?token={guard.token}", follow_redirects=False)
    assert response.status_code == 303
    if reviewer is not None:
        said = client.post("/api/name", json={"name": reviewer}, headers=csrf(guard))
        assert said.json()["ok"], said.text


def csrf(guard: Guard) -> dict[str, str]:
    return {"X-CSRF-Token": guard.csrf}
