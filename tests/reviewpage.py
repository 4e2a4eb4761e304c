"""A project with runs to review, and the review page over it, for the web tests."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

import helpers
from pytest_hybridjudge.config import load_config
from pytest_hybridjudge.review.manifest import ReviewItem, item_id
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict
from pytest_hybridjudge.web.app import create_app
from pytest_hybridjudge.web.records import Records
from pytest_hybridjudge.web.security import Guard

RUN = "20260102T090000Z-bbbbbb"
HOST, PORT = "127.0.0.1", 8765
JUDGE_TEXT = "JUDGE-RATIONALE-MARKER the answer matches"
JUDGES = ("openai/gpt-4.1", "anthropic/claude-sonnet-4-5")
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


def write_project(
    root: Path,
    items: Sequence[ReviewItem],
    table: str = "",
    results: Sequence[CaseResult] = (),
) -> Path:
    """A project folder whose runs escalated `items` (and recorded `results`, in the newest),
    written through the run store as `pytest --judge` writes them."""
    helpers.write_project(root, table)
    by_run: dict[str, list[ReviewItem]] = {}
    for item in items:
        by_run.setdefault(item.run_id, []).append(item)
    for run_id in sorted(by_run):
        newest = run_id == max(by_run)
        helpers.write_run(root, run_id, by_run[run_id], results=results if newest else ())
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


START = dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)
"""When the demo project's reviewers began; they decide one item every six hours or so."""


def judged_project(root: Path, cases: int = 80, seed: int = 7) -> tuple[Path, list[ReviewItem]]:
    """A project whose run judged `cases` cases on two rubrics with two judges, escalated the
    unsure ones and audited some sure ones, and whose reviewers (two per item on the first
    half, disagreeing now and then, every other dispute adjudicated) resolved most of them over
    some weeks. Returns the root and the items
    still open."""
    import random

    from pytest_hybridjudge.calibration import CalibrationFile, RubricCalibration
    from pytest_hybridjudge.review.resolutions import Resolution
    from pytest_hybridjudge.verdict import PolicyInForce

    rng = random.Random(seed)
    results, items, resolutions = [], [], []
    for n in range(cases):
        rubric = "correctness" if n % 3 else "tone"
        truth = rng.random() < 0.6
        confidence = round(rng.uniform(0.45, 0.99), 2)
        right = rng.random() < confidence
        judged_pass = truth if right else not truth
        scores = [rng.choice([4, 5]) if judged_pass else rng.choice([1, 2, 3]) for _ in range(2)]
        escalated = confidence < 0.7
        audit = not escalated and n % 5 == 0
        item = review_item(f"case-{n:03d}", rubric=rubric, audit=audit, output=f"Answer {n}")
        verdicts = [
            JudgeVerdict(
                judge=judge, model=judge, score=score, passed=score >= 4,
                rationale=f"{judge} on case {n}", confidence=confidence,
            )
            for judge, score in zip(JUDGES, scores, strict=True)
        ]  # fmt: skip
        panel = PanelVerdict(
            score=sum(scores) / 2, passed=judged_pass, votes_pass=2 * judged_pass,
            votes_fail=2 * (not judged_pass), confidence=confidence,
        )  # fmt: skip
        item = item.model_copy(update={"verdicts": verdicts, "panel": panel})
        outcome = "escalated" if escalated else ("passed" if judged_pass else "failed")
        results.append(
            CaseResult(
                case_id=item.case_id, target=item.target, rubric=rubric, rubric_version="rv1",
                outcome=outcome, verdicts=verdicts, panel=panel, item_id=item.item_id,
                audit=audit, tier="annotator", scale=(1, 5), pass_threshold=4,
                policy=PolicyInForce(min_confidence=0.7, audit_rate=0.2, seed=0),
                inclusion_probability=1.0 if escalated else 0.2 if audit else None,
            )
        )  # fmt: skip
        if not (escalated or audit):
            continue
        items.append(item)
        if n >= cases * 0.85:
            continue  # still open
        reviewers = ("ana", "bo") if n < cases / 2 else ("ana",)
        for k, who in enumerate(reviewers):
            verdict = truth if (k == 0 or rng.random() < 0.85) else not truth
            resolutions.append(
                Resolution.for_item(
                    item, verdict="pass" if verdict else "fail", reviewer=who,
                    resolved_at=START + dt.timedelta(hours=6 * n, seconds=k),
                ).model_copy(update={"lead_time_s": rng.uniform(40, 200), "blind": audit})
            )  # fmt: skip
        split = len({r.verdict for r in resolutions[-len(reviewers) :]}) > 1
        if split and n % 2:  # every other dispute settled by the senior reviewer, dee
            resolutions.append(
                Resolution.for_item(
                    item, verdict="pass" if truth else "fail", reviewer="dee", adjudicate=True,
                    resolved_at=START + dt.timedelta(hours=6 * n + 1),
                )
            )  # fmt: skip
    write_project(root, items, "[tool.hybridjudge.review]\nreviews_per_item = 2", results)
    path = root / "review" / "resolutions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in resolutions), "utf-8")
    fitted = RubricCalibration(
        min_confidence=0.8, target=0.8, delta=0.1, coverage=0.4, n=20, lower_bound=0.82
    )
    (path.parent / "calibration.json").write_text(
        CalibrationFile(rubrics={"correctness": fitted}).model_dump_json(), "utf-8"
    )
    return root, items


CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP attacker.example 127.0.0.1",
]
WAIT_MS = 15_000


class Served:
    """A review page served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, root: Path) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.guard = Guard("127.0.0.1", self.port)
        self.root = root
        app = create_app(Records(root, load_config(root)), self.guard)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            time.sleep(0.01)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def resolutions(self) -> list[dict[str, Any]]:
        path = self.root / "review" / "resolutions.jsonl"
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
