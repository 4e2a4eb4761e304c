"""OpenAI's Batch API (`/v1/files` + `/v1/batches`) behind `BatchTransport`, through the SDK.

A batch is a JSONL file uploaded with purpose `batch`, one line per request
(`{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`); the batch carries the
idempotency key in its metadata, so `find` can list the organisation's batches for one whose id
was never saved. Results come back as two JSONL files (output and errors) in any order.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import openai

from ..providers.base import status_is_retryable
from .transport import (
    OPENAI_LIMITS,
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

ENDPOINT: Final = "/v1/chat/completions"
KEY_FIELD = "hybridjudge_key"  # the metadata field that carries the idempotency key
LIST_PAGE = 100  # the most batches one list call returns
FIND_SECONDS = 30 * 86400  # `find` looks no further back: a batch's files are gone by then

_STATES: dict[str, BatchState] = {
    "validating": "validating",
    "in_progress": "in_progress",
    "finalizing": "finalizing",
    "completed": "ended",
    "expired": "ended",  # partial results: what did not run has `batch_expired` lines
    "cancelled": "ended",
    "cancelling": "cancelling",
    "failed": "failed",
}
ENQUEUED_CODES = ("token_limit_exceeded", "request_limit_exceeded")


class OpenAIBatches:
    """The Batch API of one OpenAI(-compatible) provider, on its `AsyncOpenAI` client."""

    limits: BatchLimits = OPENAI_LIMITS

    def __init__(self, client: openai.AsyncOpenAI, provider: str, base_url: str):
        self.client, self.provider, self.base_url = client, provider, base_url

    def request(self, custom_id: str, body: Mapping[str, Any]) -> BatchRequest:
        """The request as a batch line carries it (`body` is the Chat Completions body)."""
        return BatchRequest(check_custom_id(custom_id), body)

    def size(self, request: BatchRequest) -> int:
        """Bytes of its line in the input file, newline included."""
        return len(batch_line(request)) + 1

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        """Upload the input file, then create the batch with `key` in its metadata."""
        data = b"".join(batch_line(r) + b"\n" for r in requests)
        try:
            upload = await self.client.files.create(
                file=(f"hybridjudge-{key}.jsonl", data, "application/jsonl"), purpose="batch"
            )
        except openai.NotFoundError as exc:
            raise self._unsupported("POST /v1/files") from exc
        try:
            batch = await self.client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={KEY_FIELD: key},
            )
        except openai.APIStatusError as exc:
            await self._forget(upload.id)  # a refused batch leaves no file behind
            if isinstance(exc, openai.NotFoundError):
                raise self._unsupported("POST /v1/batches") from exc
            if exc.status_code in (400, 429) and is_enqueued_limit(exc.code, exc.message):
                raise EnqueuedLimit(f"provider '{self.provider}': {exc.message}") from exc
            raise
        return batch.id

    async def _forget(self, file_id: str) -> None:
        """Delete an uploaded input file no batch will read (best effort)."""
        with contextlib.suppress(openai.APIError):
            await self.client.files.delete(file_id)

    async def find(self, key: str) -> str | None:
        """The newest batch whose metadata carries `key` and that did not fail, if any; the
        list is newest first, and read back 30 days at most."""
        since = time.time() - FIND_SECONDS
        try:
            async for batch in self.client.batches.list(limit=LIST_PAGE):
                if batch.created_at < since:
                    break
                if (batch.metadata or {}).get(KEY_FIELD) == key and batch.status != "failed":
                    return batch.id
        except openai.NotFoundError as exc:
            raise self._unsupported("GET /v1/batches") from exc
        return None

    async def progress(self, batch_id: str) -> BatchProgress:
        """The batch's state and counts; a batch failed for the enqueued-token limit says so in
        `extra["enqueued_limit"]`, any failure's messages are in `extra["errors"]`."""
        batch = await self._retrieve(batch_id)
        return read_progress(batch.to_dict())

    async def results(self, batch_id: str) -> list[BatchResult]:
        """Every line of the batch's output and error files, typed."""
        batch = await self._retrieve(batch_id)
        found: list[BatchResult] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self.client.files.content(file_id)
                found.extend(read_result_lines(content.content))
        return found

    async def cancel(self, batch_id: str) -> None:
        """Ask OpenAI to cancel the batch (it keeps what already ran)."""
        try:
            await self.client.batches.cancel(batch_id)
        except openai.NotFoundError:
            await self._probe("POST /v1/batches/{id}/cancel")
            raise

    def transient(self, exc: BaseException) -> bool:
        """A dropped connection or timeout, 429 or 5xx: worth asking again."""
        if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one
            return True
        return isinstance(exc, openai.APIStatusError) and status_is_retryable(exc.status_code)

    async def _retrieve(self, batch_id: str) -> Any:
        try:
            return await self.client.batches.retrieve(batch_id)
        except openai.NotFoundError:
            await self._probe("GET /v1/batches/{id}")
            raise  # the API is there; this batch is not

    async def _probe(self, what: str) -> None:
        """After a 404 on one batch: BatchUnsupported if the server has no batch list at all."""
        try:
            await self.client.batches.list(limit=1)
        except openai.NotFoundError as exc:
            raise self._unsupported(what) from exc

    def _unsupported(self, what: str) -> BatchUnsupported:
        return BatchUnsupported(
            f"provider '{self.provider}' at {self.base_url} has no Batch API ({what} answered "
            "404): run without --judge-batch to call it directly"
        )


def batch_line(request: BatchRequest) -> bytes:
    """A request's line in the input file (without the newline)."""
    line = {"custom_id": request.custom_id, "method": "POST", "url": ENDPOINT}
    line["body"] = request.body  # type: ignore[assignment]
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode()


def is_enqueued_limit(code: str | None, message: str | None) -> bool:
    """Whether an error is the organisation's enqueued-token (or request) limit."""
    text = (message or "").lower()
    return code in ENQUEUED_CODES or ("enqueued" in text and "limit" in text)


def read_progress(batch: Mapping[str, Any]) -> BatchProgress:
    """A batch object (as JSON) as `BatchProgress`.

    OpenAI counts only completed and failed requests: while the batch runs, the rest are
    processing; once it ended expired (or cancelled), the rest are expired (or canceled).
    """
    status = str(batch.get("status"))
    state = _STATES.get(status, "in_progress")
    counts = batch.get("request_counts") or {}
    total, done, failed = (int(counts.get(k) or 0) for k in ("total", "completed", "failed"))
    rest = max(0, total - done - failed)
    errors = [e for e in ((batch.get("errors") or {}).get("data") or []) if isinstance(e, dict)]
    extra: dict[str, Any] = {"status": status}
    if errors:
        extra["errors"] = [str(e.get("message") or e.get("code")) for e in errors]
    if state == "failed" and any(
        is_enqueued_limit(e.get("code"), e.get("message")) for e in errors
    ):
        extra["enqueued_limit"] = True
    return BatchProgress(
        batch_id=str(batch.get("id")),
        state=state,
        processing=rest if state not in ("ended", "failed") else 0,
        succeeded=done,
        errored=failed,
        expired=rest if status == "expired" else 0,
        canceled=rest if status == "cancelled" else 0,
        extra=extra,
    )


def read_result_lines(data: bytes) -> list[BatchResult]:
    """The lines of an output or error file, typed; a line without a usable custom_id is left
    out (the broker treats its request as expired)."""
    found = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
            found.append(read_result(line))
    return found


def read_result(line: Mapping[str, Any]) -> BatchResult:
    """One result line as a `BatchResult`: `error.code` batch_expired / batch_cancelled, or
    the request's own `response.status_code` and body."""
    custom_id = str(line["custom_id"])
    error = line.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), str(error.get("message") or error.get("code"))
        kind: ResultKind = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(
            str(code), "server"
        )  # type: ignore[assignment]
        return BatchResult(custom_id, kind, error=message)
    response = line.get("response")
    if not isinstance(response, dict):
        return BatchResult(custom_id, "server", error=f"result line has no response: {line}")
    status, body = response.get("status_code"), response.get("body")
    if status == 200 and isinstance(body, dict):
        return BatchResult(custom_id, "succeeded", body=body)
    code, message = _error_code(body), _error_message(body, status)
    return BatchResult(custom_id, status_kind(status, code, message), error=message)


def status_kind(status: Any, code: str | None, message: str) -> ResultKind:
    """A failed request's class from its HTTP status and error code."""
    billing = code == "insufficient_quota" or "billing" in f"{code} {message}".lower()
    if status == 402 or billing:
        return "billing"
    if status in (401, 403):
        return "auth"
    if status in (400, 404, 422):
        return "invalid"
    return "server"  # 5xx, 429, a 200 that is not a body: retried like a direct call's outage


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code is not None else None


def _error_message(body: Any, status: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return f"HTTP {status}: {json.dumps(body)[:200]}"
