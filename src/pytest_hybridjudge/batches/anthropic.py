"""Anthropic's Message Batches (`/v1/messages/batches`) behind `BatchTransport`, through the SDK.

A batch is created from its requests (`{"custom_id", "params"}`, `params` being the Messages
body a direct call sends); its results are a JSONL file at the batch's `results_url`, in any
order. Batches carry no metadata, so `find` cannot look one up by its idempotency key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic

from ..providers.base import status_is_retryable
from .transport import (
    ANTHROPIC_LIMITS,
    BatchLimits,
    BatchProgress,
    BatchRequest,
    BatchResult,
    BatchState,
    BatchUnsupported,
    EnqueuedLimit,
    ResultKind,
    check_custom_id,
)

_STATES: dict[str, BatchState] = {
    "in_progress": "in_progress",
    "canceling": "cancelling",
    "ended": "ended",
}
_ERROR_KINDS: dict[str, ResultKind] = {
    "invalid_request_error": "invalid",
    "not_found_error": "invalid",
    "request_too_large": "invalid",
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "billing",
}  # anything else (api_error, overloaded_error, rate_limit_error, ...) is the server's


class AnthropicBatches:
    """The Message Batches API of one Anthropic(-compatible) provider, on its client."""

    limits: BatchLimits = ANTHROPIC_LIMITS

    def __init__(self, client: anthropic.AsyncAnthropic, provider: str, base_url: str):
        self.client, self.provider, self.base_url = client, provider, base_url

    def request(self, custom_id: str, body: Mapping[str, Any]) -> BatchRequest:
        """The request as the batch carries it (`body` is its `params`)."""
        return BatchRequest(check_custom_id(custom_id), body)

    def size(self, request: BatchRequest) -> int:
        """Bytes of the request in the create call's JSON."""
        item = {"custom_id": request.custom_id, "params": request.body}
        return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) + 1

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        """Create the batch (`key` is not sent: the API has nowhere to keep it)."""
        items: Any = [{"custom_id": r.custom_id, "params": dict(r.body)} for r in requests]
        try:
            batch = await self.client.messages.batches.create(requests=items)
        except anthropic.NotFoundError as exc:
            raise self._unsupported("POST /v1/messages/batches") from exc
        except anthropic.APIStatusError as exc:
            if exc.status_code == 429 and is_queue_limit(exc.message):
                raise EnqueuedLimit(f"provider '{self.provider}': {exc.message}") from exc
            raise
        return batch.id

    async def find(self, key: str) -> str | None:
        """Always None: a Message Batch has no metadata to find it by."""
        return None

    async def progress(self, batch_id: str) -> BatchProgress:
        """The batch's processing status and request counts."""
        batch = await self._retrieve(batch_id)
        return read_progress(batch.to_dict())

    async def results(self, batch_id: str) -> list[BatchResult]:
        """Every line at the batch's `results_url`, typed."""
        try:
            lines = await self.client.messages.batches.results(batch_id)
        except anthropic.NotFoundError:
            await self._probe("GET /v1/messages/batches/{id}")
            raise
        return [read_result(line.to_dict()) async for line in lines]

    async def cancel(self, batch_id: str) -> None:
        """Ask Anthropic to cancel the batch (requests already done keep their results)."""
        try:
            await self.client.messages.batches.cancel(batch_id)
        except anthropic.NotFoundError:
            await self._probe("POST /v1/messages/batches/{id}/cancel")
            raise

    def transient(self, exc: BaseException) -> bool:
        """A dropped connection or timeout, 429, 529 or another 5xx: worth asking again."""
        if isinstance(exc, anthropic.APIConnectionError):  # APITimeoutError is one
            return True
        return isinstance(exc, anthropic.APIStatusError) and status_is_retryable(exc.status_code)

    async def _retrieve(self, batch_id: str) -> Any:
        try:
            return await self.client.messages.batches.retrieve(batch_id)
        except anthropic.NotFoundError:
            await self._probe("GET /v1/messages/batches/{id}")
            raise  # the API is there; this batch is not

    async def _probe(self, what: str) -> None:
        """After a 404 on one batch: BatchUnsupported if the server lists no batches at all."""
        try:
            await self.client.messages.batches.list(limit=1)
        except anthropic.NotFoundError as exc:
            raise self._unsupported(what) from exc

    def _unsupported(self, what: str) -> BatchUnsupported:
        return BatchUnsupported(
            f"provider '{self.provider}' at {self.base_url} has no Message Batches API ({what} "
            "answered 404): run without --judge-batch to call it directly"
        )


def is_queue_limit(message: str | None) -> bool:
    """Whether a 429 on create is the organisation's limit of batch requests in the queue."""
    text = (message or "").lower()
    return "queue" in text or "enqueued" in text


def read_progress(batch: Mapping[str, Any]) -> BatchProgress:
    """A Message Batch (as JSON) as `BatchProgress`."""
    status = str(batch.get("processing_status"))
    counts = batch.get("request_counts") or {}

    def count(name: str) -> int:
        return int(counts.get(name) or 0)

    return BatchProgress(
        batch_id=str(batch.get("id")),
        state=_STATES.get(status, "in_progress"),
        processing=count("processing"),
        succeeded=count("succeeded"),
        errored=count("errored"),
        expired=count("expired"),
        canceled=count("canceled"),
        extra={"status": status},
    )


def read_result(line: Mapping[str, Any]) -> BatchResult:
    """One results line (`{"custom_id", "result": {"type", ...}}`) as a `BatchResult`."""
    custom_id = str(line.get("custom_id"))
    result = line.get("result")
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded":
        message = result.get("message") if isinstance(result, dict) else None
        if isinstance(message, dict):
            return BatchResult(custom_id, "succeeded", body=message)
        return BatchResult(custom_id, "server", error=f"succeeded without a message: {line}")
    if kind in ("expired", "canceled"):
        return BatchResult(custom_id, kind, error=f"request {kind} before it ran")
    if kind == "errored" and isinstance(result, dict):
        outer = result.get("error")
        error = outer.get("error") if isinstance(outer, dict) else None
        if isinstance(error, dict):
            error_type = str(error.get("type"))
            message = str(error.get("message") or error_type)
            return BatchResult(custom_id, _ERROR_KINDS.get(error_type, "server"), error=message)
    return BatchResult(custom_id, "server", error=f"result line is not the API's shape: {line}")
