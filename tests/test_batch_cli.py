"""`hybridjudge batch cancel RUN` and `runs prune` with a run's uncollected provider batches."""

from __future__ import annotations

import asyncio

from conftest import Project
from loopback import LoopbackLLM
from loopback_batches import BatchDesk
from pytest_hybridjudge.batches.ledger import BatchLedger, uncollected
from pytest_hybridjudge.cli import main
from pytest_hybridjudge.providers.openai import OpenAIProvider

OLD, NEW = "20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"


def test_cancel_cancels_a_runs_uncollected_batches_and_prune_kept_them_until_then(
    project: Project, llm: LoopbackLLM, capsys: object
) -> None:
    desk = BatchDesk(llm, hold=1000)
    project.config()
    runs = project.path / ".hybridjudge" / "runs"
    for run in (OLD, NEW):
        (runs / run).mkdir(parents=True)
        (runs / run / "summary.json").write_text("{}")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    async def submit() -> str:
        provider = OpenAIProvider()
        transport = provider.batches()
        batch_id = await transport.create([transport.request("c1", body)], "k1")
        await provider.aclose()
        return batch_id

    ledger = BatchLedger(runs / OLD)
    ledger.write_ahead("k1", "openai", [("c1", "r1", body)])
    batch_id = asyncio.run(submit())  # killed before the id was written: cancel finds it

    assert main(["runs", "--root", str(project.path), "prune", "--keep", "1"]) == 0
    assert (runs / OLD).is_dir()  # kept: its batch was never collected

    assert main(["batch", "cancel", "--root", str(project.path), OLD]) == 0
    assert desk.batches[batch_id].cancel_requested
    assert uncollected(runs) == []
    assert main(["runs", "--root", str(project.path), "prune", "--keep", "1"]) == 0
    assert not (runs / OLD).exists()
