"""An in-memory provider batch API: a real `BatchTransport` (no network), for the broker's tests.

Requests are answered like a chat completion echoing the last user message; `fates` scripts
how a request with a given last user message ends, one entry per time it is sent (then it
succeeds). Result lines come back shuffled, as both providers' do.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_hybridjudge.batches.transport import (
    OPENAI_LIMITS,
    BatchLimits,
    BatchProgress,
    BatchRequest,
    BatchResult,
    BatchUnsupported,
    EnqueuedLimit,
    ResultKind,
)
from pytest_hybridjudge.providers.base import Completion, MalformedResponse


def chat_body(text: str) -> dict[str, Any]:
    """The request body a direct chat call would send."""
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def read_chat(body: Mapping[str, Any]) -> Completion:
    """A chat completion body as a Completion (the providers' readers do the same)."""
    try:
        usage = body.get("usage") or {}
        return Completion(
            text=body["choices"][0]["message"]["content"],
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
        )
    except (LookupError, TypeError) as exc:
        raise MalformedResponse(f"not a chat completion: {body}") from exc


@dataclass
class _Batch:
    key: str
    requests: list[BatchRequest]
    polls: int = 0
    canceled: bool = False


@dataclass
class MemoryBatches:
    """One provider's batch API, in memory."""

    limits: BatchLimits = OPENAI_LIMITS
    fates: dict[str, list[ResultKind | str]] = field(default_factory=dict)  # text -> fates
    busy_polls: int = 0  # polls a batch stays in progress
    refuse_creates: int = 0  # creates refused with EnqueuedLimit first
    fail_enqueued: int = 0  # batches that fail at validation for the enqueued-token limit
    fail_batches: int = 0  # batches that fail at validation for another reason
    gone_after: int | None = None  # polls answered before the batch API answers 404
    stray_lines: int = 0  # extra result lines per batch, for custom_ids it was never sent
    # the first calls to create (after it created the batch: its reply lost), progress and
    # results that fail with a dropped connection, per name
    drops: dict[str, int] = field(default_factory=dict)
    batches: dict[str, _Batch] = field(default_factory=dict)
    refused: int = 0
    seed: int = 7

    @property
    def created(self) -> list[list[BatchRequest]]:
        """Every batch created, in order."""
        return [b.requests for b in self.batches.values()]

    def request(self, custom_id: str, body: Mapping[str, Any]) -> BatchRequest:
        return BatchRequest(custom_id, body)

    def size(self, request: BatchRequest) -> int:
        return len(json.dumps({"custom_id": request.custom_id, "body": request.body}))

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        if self.refuse_creates:
            self.refuse_creates -= 1
            self.refused += 1
            raise EnqueuedLimit("enqueued token limit reached")
        assert len(requests) <= self.limits.max_requests
        assert sum(map(self.size, requests)) <= self.limits.max_bytes
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = _Batch(key, list(requests))
        self._drop("create")
        return batch_id

    async def find(self, key: str) -> str | None:
        return next((i for i, b in self.batches.items() if b.key == key), None)

    async def progress(self, batch_id: str) -> BatchProgress:
        self._drop("progress")
        if self.gone_after is not None:
            if not self.gone_after:
                raise BatchUnsupported("the batch API answered 404: run without --judge-batch")
            self.gone_after -= 1
        batch = self.batches[batch_id]
        batch.polls += 1
        if batch.polls == 1 and self.fail_batches:
            self.fail_batches -= 1
            errors = ["line 1: model 'm' is not available in the Batch API"]
            return BatchProgress(batch_id, "failed", extra={"errors": errors})
        if batch.polls == 1 and self.fail_enqueued:
            self.fail_enqueued -= 1
            return BatchProgress(batch_id, "failed", extra={"enqueued_limit": True})
        if batch.polls <= self.busy_polls and not batch.canceled:
            return BatchProgress(batch_id, "in_progress", processing=len(batch.requests))
        return BatchProgress(batch_id, "ended", succeeded=len(batch.requests))

    async def results(self, batch_id: str) -> list[BatchResult]:
        self._drop("results")
        lines = [self._answer(r) for r in self.batches[batch_id].requests]
        lines += [
            BatchResult(f"stray-{i}", "succeeded", body={"choices": []})
            for i in range(self.stray_lines)
        ]
        random.Random(self.seed).shuffle(lines)
        return [line for line in lines if line is not None]

    async def cancel(self, batch_id: str) -> None:
        self.batches[batch_id].canceled = True

    def transient(self, exc: BaseException) -> bool:
        return isinstance(exc, ConnectionError)

    def _drop(self, name: str) -> None:
        if self.drops.get(name):
            self.drops[name] -= 1
            raise ConnectionError(f"{name}: the connection was closed without a reply")

    def _answer(self, request: BatchRequest) -> BatchResult | None:
        text = request.body["messages"][-1]["content"]
        fates = self.fates.get(text)
        fate = fates.pop(0) if fates else "succeeded"
        if fate == "missing":
            return None
        if fate == "malformed":
            return BatchResult(request.custom_id, "succeeded", body={"choices": []})
        if fate != "succeeded":
            return BatchResult(request.custom_id, fate, error=f"the provider says: {fate}")  # type: ignore[arg-type]
        body = {
            "choices": [{"message": {"content": f"answer to {text}"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        }
        return BatchResult(request.custom_id, "succeeded", body=body)
