"""Helpers the test modules share: review items and runs on disk, the command line, a judge.

One home for them, so no test module imports another; run folders are written by the run
store itself (`write_run`), the one writer of the runs folder.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_hybridjudge.cli import main
from pytest_hybridjudge.report import RunReport
from pytest_hybridjudge.review.manifest import ReviewItem, item_id
from pytest_hybridjudge.runs import RunStore
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict, PanelVerdict

RUN_OLD = "20260101T090000Z-aaaaaa"
RUN_NEW = "20260102T090000Z-bbbbbb"
T0 = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)


def make_item(
    case_id: str,
    *,
    run_id: str = RUN_NEW,
    tier: str = "annotator",
    rubric: str | None = "correctness",
    output: str | None = "Paris",
    scale: tuple[int, int] | None = (1, 5),
    pass_threshold: int | None = 4,
    reasons: Sequence[str] = ("judges split on pass/fail",),
    ident: str | None = None,
    audit: bool = False,
) -> ReviewItem:
    """A review item as a run would write it, with two judges that disagree."""
    return ReviewItem(
        item_id=ident
        or item_id(case_id, output, "rv1", input=f"Question for {case_id}?", reference="Paris"),
        run_id=run_id,
        case_id=case_id,
        source="gold/capitals.yaml",
        target="openai/gpt-4.1-mini",
        rubric=rubric,
        rubric_version="rv1" if rubric else None,
        scale=scale,
        pass_threshold=pass_threshold,
        input=f"Question for {case_id}?",
        reference="Paris",
        output=output,
        rendered_rubric=f"Grade the answer for {case_id}.\nReference answer: Paris",
        verdicts=[
            JudgeVerdict(
                judge="openai/gpt-4.1",
                model="openai/gpt-4.1",
                score=5,
                passed=True,
                rationale="Matches the reference.",
                confidence=0.9,
            ),
            JudgeVerdict(
                judge="anthropic/claude-sonnet-4-5",
                model="anthropic/claude-sonnet-4-5",
                error="timed out after 60s",
            ),
        ],
        panel=PanelVerdict(score=5, passed=True, votes_pass=1, errors=1, confidence=0.9),
        reasons=list(reasons),
        tier=tier,
        review_minutes=5.0,
        audit=audit,
    )


def runs_folder(project: Path) -> Path:
    """The default runs folder of the project at `project`."""
    return project / ".hybridjudge" / "runs"


def write_run(
    project: Path,
    run_id: str,
    items: Sequence[ReviewItem] | None = None,
    *,
    results: Sequence[CaseResult] = (),
    incomplete: Sequence[str] = (),
    runs: Path | None = None,
) -> dict[str, Any]:
    """A finished run of the project at `project` (or in the folder `runs`), written through the
    run store, the one writer of run folders, as `pytest --judge` uses it: `results`, a summary,
    and as manifest `items` when given. A complete run becomes `LATEST`; one `incomplete` for a
    reason (stopped early, a subset) never does, so an older run written after a newer one gives
    a reason. Returns the summary as written."""
    store = RunStore(runs if runs is not None else runs_folder(project))
    run_id, paths = store.new_run(run_id)
    report = RunReport(run_id, paths, store=store)
    for result in results:
        report.add(result)
    report.incomplete = list(incomplete)
    summary = report.write()
    if items is not None:
        store.write_manifest(paths, items)
    return summary


def write_project(root: Path, table: str = "") -> None:
    """A pyproject.toml with `table` under [tool.hybridjudge]."""
    (root / "pyproject.toml").write_text(
        f"[project]\nname = 'demo'\n\n[tool.hybridjudge]\n{table}\n", encoding="utf-8"
    )


def resolutions_file(root: Path) -> Path:
    """The default resolutions file of the project at `root`."""
    return root / "review" / "resolutions.jsonl"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`hybridjudge review ARGV...` in this process: (exit code, stdout, stderr)."""
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def console_script() -> str:
    """The installed `hybridjudge` console script (beside this Python, else on PATH)."""
    beside = shutil.which("hybridjudge", path=str(Path(sys.executable).parent))
    found = beside or shutil.which("hybridjudge")
    assert found, "the hybridjudge console script is not installed"
    return found


def run_script(
    root: Path, *argv: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script `hybridjudge review ARGV...` run in `root`, with `stdin` as input."""
    environ = {k: v for k, v in os.environ.items() if k != "HYBRIDJUDGE_REVIEWER"}
    environ.update({"PYTHONIOENCODING": "utf-8", **(env or {})})
    return subprocess.run(
        [console_script(), "review", *argv],
        cwd=root,
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def run_one_judge(tmp_path: Any, replies: list[Any], samples: int) -> Any:
    """`run_judge` on a stand-in call that answers `replies` in order (an exception: fails)."""
    import asyncio

    from pytest_hybridjudge.config import ModelSpec
    from pytest_hybridjudge.judge import judge_asks, run_judge
    from pytest_hybridjudge.providers import Completion, ProviderError
    from pytest_hybridjudge.rubric import parse_rubric

    path = tmp_path / "r.md"
    path.write_text("---\nscale: [1, 5]\npass_threshold: 4\n---\nGrade it.\n", encoding="utf-8")
    rubric = parse_rubric(path)
    queue = list(replies)

    async def call(provider: str, request: Any, validate: Any = None) -> Completion:
        reply = queue.pop(0)
        if reply is None:
            raise ProviderError("timed out")
        return reply if isinstance(reply, Completion) else Completion(text=reply)

    judge = ModelSpec(model="openai/j", samples=samples)
    return asyncio.run(run_judge(call, judge, rubric, judge_asks(judge, rubric, "prompt")))


CAPITALS = """
    cases:
      - id: capital-france
        input: "What is the capital of France?"
        reference: "Paris"
      - id: capital-spain
        input: "What is the capital of Spain?"
        reference: "Madrid"
"""
"""Two cases for the review loops: France split by the judges, Spain passed by all."""


def split_on_france(call: Any) -> str:
    """Targets answer right; judge-b fails France (a split: escalated), every judge passes Spain."""
    from loopback import verdict

    if not call.is_judge:
        return "Paris" if "France" in call.last_user else "Madrid"
    if "France" in call.prompt and call.model == "judge-b":
        return verdict(2)
    return verdict(5)
