"""`pytest -n N --judge`: no duplicate work, one run folder, a crashed worker's cases kept.

Real xdist workers, the official SDKs against the loopback server (requests counted there), real
run folders; the grouping itself is checked as the pure functions it is.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from conftest import Project
from loopback import Call, LoopbackLLM, verdict
from pytest_hybridjudge.xdist_groups import (
    group_count,
    group_members,
    group_of,
    plan,
    worker_index,
    worker_share,
)

NODEIDS = [f"gold/g{i % 3}.yaml::case-{i}" for i in range(200)]


def test_group_of_is_a_stable_hash_not_pythons_salted_one() -> None:
    import hashlib

    digest = hashlib.blake2b(b"gold/a.yaml::c1", digest_size=8).digest()
    assert group_of("gold/a.yaml::c1", 16) == int.from_bytes(digest, "big") % 16


def test_the_workers_shares_split_every_case_once_in_the_order_they_are_sent() -> None:
    shares = [worker_share(NODEIDS, index, 2) for index in range(2)]
    assert sorted(shares[0] + shares[1]) == sorted(NODEIDS)
    assert not set(shares[0]) & set(shares[1])
    sent = [n for group, members in plan(NODEIDS, 2).items() if group % 2 == 0 for n in members]
    assert shares[0] == sent
    assert min(map(len, shares)) > 0.35 * len(NODEIDS)  # a hash, but a fair one
    assert len(plan(NODEIDS, 2)) <= group_count(2)


def test_a_replacement_worker_knows_no_share_in_advance() -> None:
    assert worker_index("gw1", 2) == 1
    assert worker_index("gw2", 2) is None  # started after a crash
    assert worker_index("local", 2) is None
    members = group_members(NODEIDS, NODEIDS[5], 2)
    assert NODEIDS[5] in members
    assert {group_of(n, group_count(2)) for n in members} == {group_of(NODEIDS[5], 16)}


def _gold(project: Project, cases: int) -> None:
    lines = ["cases:"]
    for i in range(cases):
        lines += [f"  - id: c{i}", f"    input: question {i}?", "    reference: Paris"]
    project.gold("g.yaml", "\n".join(lines) + "\n")


def _split_judges(call: Call) -> str:
    """Target answers Paris; judge-b fails every third case (a split panel: escalated)."""
    if not call.is_judge:
        return "Paris"
    third = any(f"question {i}?" in call.last_user for i in range(0, 30, 3))
    return verdict(2 if call.model == "judge-b" and third else 5)


def _outcomes(project: Project) -> dict[str, str]:
    return {case: record["outcome"] for case, record in project.results().items()}


def _timeless(value: Any) -> Any:
    """A record without its measured latencies (the only fields two equal runs differ in)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "latency"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


REPORTS_SEEN = """
import json, os, pathlib

def pytest_runtest_logreport(report):
    if report.when == "call" and "hybridjudge" in report.keywords:
        seen = {"worker": os.environ.get("PYTEST_XDIST_WORKER"),
                "whole": hasattr(report, "hybridjudge_result"),
                "in_part": getattr(report, "hybridjudge_in_part", False),
                "outcome": getattr(report, "hybridjudge_outcome", None)}
        with pathlib.Path("reports_seen.jsonl").open("a") as f:
            f.write(json.dumps(seen) + "\\n")
"""


def test_two_workers_make_as_many_requests_as_one_process_with_the_same_outcomes(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = _split_judges
    project.config(cache="off", escalation={"audit_rate": 0})
    _gold(project, 24)
    project.run("--judge")
    alone, alone_records = len(llm.calls), project.results()
    alone_outcomes = _outcomes(project)
    assert alone == 24 * 4
    llm.reset()
    project.pytester.makeconftest(REPORTS_SEEN)
    result = project.run("--judge", "-n", "2", "-v")
    result.stdout.fnmatch_lines(["*scheduling tests via JudgeGroupScheduling*"])
    result.stdout.fnmatch_lines(["*ESCALATED*", "*PASSED*"])  # the outcome still shows
    assert len(llm.calls) == alone  # not one request more
    assert Counter(c.last_user for c in llm.calls if not c.is_judge) == Counter(
        f"question {i}?" for i in range(24)
    )
    assert _outcomes(project) == alone_outcomes
    assert _timeless(project.results()) == _timeless(alone_records)  # record for record
    seen = [json.loads(line) for line in (project.path / "reports_seen.jsonl").open()]
    controller = [s for s in seen if s["worker"] is None]  # what reached the controller
    assert len(controller) == 24
    assert {(s["whole"], s["in_part"]) for s in controller} == {(False, True)}  # read from parts
    assert Counter(s["outcome"] for s in controller) == {"passed": 16, "escalated": 8}
    assert Counter(alone_outcomes.values()) == {"passed": 16, "escalated": 8}
    run_dir = project.run_dir()
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == [
        "manifest.jsonl",
        "results.jsonl",
        "summary.json",
        "summary.md",
    ]  # one run folder: the workers' parts were merged and removed
    assert len(project.manifest()) == 8
    runs = list((project.path / ".hybridjudge" / "runs").glob("*/summary.json"))
    assert len(runs) == 2  # one per session, none per worker


CRASH_ONCE = """
import os
import pathlib
import time

PARTS = pathlib.Path({runs!r})
MARK = pathlib.Path({mark!r})


def answer(case):
    if case.id == "boom" and not MARK.exists():
        MARK.write_text("crashed once")
        worker = os.environ["PYTEST_XDIST_WORKER"]
        for _ in range(400):  # wait until this worker has finished two other cases
            parts = PARTS.glob(f"*/parts/{{worker}}.jsonl")
            if sum(len(p.read_text().splitlines()) for p in parts) >= 2:
                break
            time.sleep(0.05)
        os._exit(1)
    return "Paris"
"""


def test_a_crashed_workers_finished_cases_are_merged_and_the_missing_ones_listed(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = lambda call: verdict(5)
    project.config(target="app:answer", judges=["openai/judge-a"], escalation={"audit_rate": 0})
    runs, mark = project.path / ".hybridjudge" / "runs", project.path / "crashed.txt"
    project.pytester.makepyfile(app=CRASH_ONCE.format(runs=str(runs), mark=str(mark)))
    lines = ["cases:"]
    for name in ["boom", *(f"c{i}" for i in range(15))]:
        lines += [f"  - id: {name}", f"    input: question {name}?", "    reference: Paris"]
    project.gold("g.yaml", "\n".join(lines) + "\n")
    nodeids = [f"gold/g.yaml::{line.split(': ')[1]}" for line in lines if "- id:" in line]
    crashed = next(i for i in range(2) if "gold/g.yaml::boom" in worker_share(nodeids, i, 2))
    share = [n.split("::")[1] for n in worker_share(nodeids, crashed, 2) if "boom" not in n]

    result = project.run("--judge", "-n", "2", "--max-worker-restart", "0")

    assert mark.exists()  # the worker did crash
    records = project.results()
    assert set(records) == {n.split("::")[1] for n in nodeids}  # every selected case ends
    finished = [c for c in share if records[c]["outcome"] == "passed"]
    assert len(finished) >= 2  # what the crashed worker finished is recorded, not lost
    missing = sorted(c for c, r in records.items() if r["outcome"] != "passed")
    assert missing and all(records[c]["reasons"] for c in missing)  # each says why
    if "boom" in missing:  # xdist's report on the item the worker was running
        assert records["boom"]["outcome"] == "failed"
        assert "crashed while running" in records["boom"]["reasons"][0]
    result.stdout.fnmatch_lines(
        [
            f"*xdist worker gw{crashed} crashed (*); * recorded from its part of the run",
            f"*{len(missing)} case* no worker finished: *",
        ]
    )
    listed = result.stdout.str().split("no worker finished: ")[1].splitlines()[0]
    assert all(f"gold/g.yaml::{case}" in listed for case in missing)
    summary = project.summary()
    assert f"xdist 1 worker crashed: gw{crashed}" in summary["incomplete_because"]
    judged = Counter(re.search(r"question (\w+)\?", c.last_user)[1] for c in llm.calls)  # type: ignore[index]
    assert max(judged.values()) == 1  # no case judged twice, whoever finished it
    assert not list(runs.glob("*/parts"))


def test_a_users_own_dist_mode_is_left_alone(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = _split_judges
    project.config(cache="off", escalation={"audit_rate": 0})
    _gold(project, 9)
    result = project.run("--judge", "-n", "2", "--dist", "loadfile", "-v")
    result.stdout.fnmatch_lines(["*scheduling tests via LoadFileScheduling*"])
    assert len(llm.calls) == 9 * 4
    assert Counter(_outcomes(project).values()) == {"passed": 6, "escalated": 3}


@pytest.mark.parametrize("workers", ["1", "3"])
def test_any_number_of_workers_runs_each_case_once(
    project: Project, llm: LoopbackLLM, workers: str
) -> None:
    llm.responder = _split_judges
    project.config(cache="off", judges=["openai/judge-a"], escalation={"audit_rate": 0})
    _gold(project, 10)
    project.run("--judge", "-n", workers)
    assert len(llm.calls) == 10 * 2
    assert set(_outcomes(project).values()) == {"passed"}
    assert json.loads((project.run_dir() / "summary.json").read_text())["cases"] == 10
