"""The batch ledger: each batch's requests are on disk before it is created, its id right after,
and a rerun collects what an interrupted run submitted instead of paying for it again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batch_memory import MemoryBatches, chat_body, read_chat
from pytest_hybridjudge.batches import site
from pytest_hybridjudge.batches.broker import BatchBroker
from pytest_hybridjudge.batches.ledger import BatchLedger, read_entry, uncollected
from pytest_hybridjudge.batches.transport import BatchRequest, BatchResult, custom_id
from test_batch_broker import FAST, key

RUN = "20260101T000000Z-aaaaaa"
LATER = "20260102T000000Z-bbbbbb"


@dataclass
class WatchedBatches(MemoryBatches):
    """Records what the ledger held at the moment `create` was called."""

    ledger: BatchLedger | None = None
    seen_at_create: list[list[dict[str, object]]] = field(default_factory=list)

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        assert self.ledger is not None
        lines = self.ledger.path_of(key).read_text().splitlines()
        self.seen_at_create.append([json.loads(line) for line in lines])
        return await super().create(requests, key)


async def ask(broker: BatchBroker, transport: MemoryBatches, case: str, text: str) -> str:
    site.enter(case=case, role="target")
    completion = await broker.call("openai", transport, key(text), chat_body(text), read_chat)
    return completion.text


def test_the_requests_are_written_and_synced_before_create_and_the_id_right_after(
    tmp_path: Path,
) -> None:
    ledger = BatchLedger(tmp_path / RUN)
    transport = WatchedBatches(ledger=ledger)
    broker = BatchBroker(FAST, lambda: 1, ledger=ledger)

    assert asyncio.run(ask(broker, transport, "case", "q")) == "answer to q"

    (before,) = transport.seen_at_create
    assert len(before) == 1 and before[0]["provider"] == "openai"
    (request,) = before[0]["requests"]  # type: ignore[misc]
    assert request["request_key"] == key("q") and request["body"] == chat_body("q")
    assert request["custom_id"] == custom_id("case", "target", "", "", 0, key("q"))
    (path,) = ledger.folder.glob("*.jsonl")
    assert [sorted(json.loads(line)) for line in path.read_text().splitlines()[1:]] == [
        ["batch_id"],
        ["ended"],
    ]
    assert [e.batch_id for e in uncollected(tmp_path)] == ["batch_1"]  # until the run closes
    ledger.close()
    assert uncollected(tmp_path) == []
    assert read_entry(path).collected


def test_a_rerun_after_a_kill_between_create_and_the_id_finds_the_batch_and_pays_nothing_more(
    tmp_path: Path,
) -> None:
    transport = MemoryBatches(busy_polls=1)
    killed = BatchLedger(tmp_path / RUN)
    cid = custom_id("case", "target", "", "", 0, key("q"))
    killed.write_ahead("k1", "openai", [(cid, key("q"), chat_body("q"))])
    asyncio.run(transport.create([transport.request(cid, chat_body("q"))], "k1"))
    # ... killed here: the batch exists at the provider, its id is nowhere on disk

    (entry,) = uncollected(tmp_path)
    assert entry.batch_id is None and entry.requests == ((cid, key("q")),)
    rerun = BatchLedger(tmp_path / LATER)
    broker = BatchBroker(FAST, lambda: 1, ledger=rerun)

    async def main() -> str:
        broker.adopt(entry, transport)
        answer = await ask(broker, transport, "case", "q")
        await broker.aclose()
        return answer

    assert asyncio.run(main()) == "answer to q"
    assert len(transport.batches) == 1  # no batch created for work already submitted
    assert broker.stats.adopted == 1 and broker.stats.batches == 0
    assert read_entry(entry.path).batch_id == "batch_1"  # found by its key, written down
    rerun.close()
    assert uncollected(tmp_path) == []


def test_a_batch_that_was_never_created_is_sent_again_on_the_rerun(tmp_path: Path) -> None:
    transport = MemoryBatches()
    killed = BatchLedger(tmp_path / RUN)
    cid = custom_id("case", "target", "", "", 0, key("q"))
    killed.write_ahead("k1", "openai", [(cid, key("q"), chat_body("q"))])
    (entry,) = uncollected(tmp_path)
    broker = BatchBroker(FAST, lambda: 1, ledger=BatchLedger(tmp_path / LATER))

    async def main() -> str:
        broker.adopt(entry, transport)
        return await ask(broker, transport, "case", "q")

    assert asyncio.run(main()) == "answer to q"
    assert len(transport.batches) == 1 and broker.stats.adopted == 0


def test_a_line_torn_by_a_kill_is_ignored_and_a_file_without_requests_is_skipped(
    tmp_path: Path,
) -> None:
    ledger = BatchLedger(tmp_path / RUN)
    ledger.write_ahead("k1", "openai", [("c", "r", {})])
    ledger.created("k1", "batch_9")
    with ledger.path_of("k1").open("a") as handle:
        handle.write('{"end')
    (ledger.folder / "k2.jsonl").write_text('{"key": "k2", "prov')

    (entry,) = uncollected(tmp_path)
    assert entry.batch_id == "batch_9" and not entry.ended


def test_answers_of_a_collected_batch_no_call_asked_for_are_kept(tmp_path: Path) -> None:
    transport = MemoryBatches()
    killed = BatchLedger(tmp_path / RUN)
    asked = [(custom_id(c, "target", "", "", 0, key(c)), key(c), chat_body(c)) for c in "ab"]
    killed.write_ahead("k1", "openai", asked)
    requests = [transport.request(cid, body) for cid, _, body in asked]
    asyncio.run(transport.create(requests, "k1"))
    (entry,) = uncollected(tmp_path)
    rerun = BatchLedger(tmp_path / LATER)
    broker = BatchBroker(FAST, lambda: 1, ledger=rerun)
    kept: dict[str, str] = {}
    broker.keep_answers(lambda provider, k, result: bool(kept.setdefault(k, provider)))

    async def main() -> str:
        broker.adopt(entry, transport)
        answer = await ask(broker, transport, "a", "a")  # a rerun with `-k a`
        await broker.aclose()
        return answer

    assert asyncio.run(main()) == "answer to a"
    assert kept == {key("b"): "openai"}  # b's paid answer is kept; a's goes the caller's way
    assert broker.stats.kept == 1 and len(transport.batches) == 1
    rerun.close()
    assert uncollected(tmp_path) == []


@dataclass
class FirstAttemptFails(MemoryBatches):
    """Answers a request's first attempt (custom_id of attempt 0) with a server error."""

    failing: set[str] = field(default_factory=set)

    def _answer(self, request: BatchRequest) -> BatchResult | None:
        if request.custom_id in self.failing:
            return BatchResult(request.custom_id, "server", error="HTTP 500")
        return super()._answer(request)


@pytest.mark.parametrize("first_read", ["first wave", "later wave"])
def test_a_request_the_killed_run_retried_in_a_later_wave_takes_that_waves_answer(
    tmp_path: Path, first_read: str
) -> None:
    """The killed run's first batch answered q with a server error and its next wave's batch
    held the retry: the rerun collects both and takes the retry's answer, whichever batch is
    read first, instead of sending q a third time."""
    first, retry = (custom_id("case", "target", "", "", n, key("q")) for n in (0, 1))
    transport = FirstAttemptFails(failing={first})
    killed = BatchLedger(tmp_path / RUN)
    waves = [("k1", first), ("k2", retry)]
    for batch_key, cid in waves if first_read == "first wave" else waves[::-1]:
        killed.write_ahead(batch_key, "openai", [(cid, key("q"), chat_body("q"))])
        asyncio.run(transport.create([transport.request(cid, chat_body("q"))], batch_key))
    entries = sorted(uncollected(tmp_path), key=lambda e: e.batch_id or "")
    broker = BatchBroker(FAST, lambda: 1, ledger=BatchLedger(tmp_path / LATER))

    async def main() -> str:
        for entry in entries:
            broker.adopt(entry, transport)
        answer = await ask(broker, transport, "case", "q")
        await broker.aclose()
        return answer

    assert asyncio.run(main()) == "answer to q"
    assert len(transport.batches) == 2 and broker.stats.batches == 0  # no batch sent anew
    assert broker.stats.adopted == 2
