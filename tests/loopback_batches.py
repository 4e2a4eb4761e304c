"""The provider batch APIs on the loopback server: OpenAI's ``/v1/files`` + ``/v1/batches`` and
Anthropic's ``/v1/messages/batches``, well enough for the official SDKs.

A ``BatchDesk(server, ...)`` attaches itself to a ``LoopbackLLM`` (its ``batches``); without one
the server answers 404 on these paths, like a server with no batch API. Every request of a batch
is answered by the server's own responder (recorded and counted like a direct call; its
``Call.headers`` carry ``batch-id``) when the batch runs: on the first retrieve after ``hold``
retrieves that still find it in progress. Knobs:

- ``shuffle``: result lines in a (seeded) random order, as both providers may return them;
- ``hold``: retrieves a batch stays ``in_progress`` before it runs;
- ``expire``: the share of requests (chosen by a hash of their custom_id) that expire unanswered,
  ``expire_ids`` the custom_ids that do; a responder's ``Reply(hang=True)`` expires too;
- ``reject_creates``: the first K ``create`` calls are refused with an enqueued-token error
  (OpenAI: 429 ``token_limit_exceeded``; Anthropic: 429 about the processing queue);
- ``fail_creates``: the first K OpenAI batches fail at validation with ``token_limit_exceeded``;
- ``list_page``: the most batches one list call returns (to exercise pagination).
- ``hold_judges``: while true, a batch holding a judge request stays ``in_progress`` (a run
  stalls in its judges' wave, to be killed there); set it false to let such batches run;
- ``api_faults``: a :class:`loopback.Faults` for the batch API calls themselves (upload, create,
  retrieve, list, results, file content): a share answered 500, 429 or dropped before they are
  handled, drawn by the call's place in the sequence; ``api_injected`` counts them.

With the server's own ``faults``, each batch request draws its fault as a direct call would
(its body, its attempt) and gets what a batch really returns for it: a 500 or 429 result line,
an expired request for a hang, no line at all for a dropped connection, and a 200 whose text is
no verdict for a malformed judge reply; ``LoopbackLLM.injected`` and ``answered`` count them.

``created`` counts the batches created per API, ``rejected`` the refused creates, ``answered``
the batch requests the responder answered; ``GET /_loopback/batches`` returns the three as JSON,
for a server run as a subprocess (``loopback.py --batches``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import (
    MALFORMED_VERDICT,
    Api,
    FaultKind,
    Faults,
    LoopbackLLM,
    Reply,
    _coerce,
    _error_body,
    _make_call,
    _refusal,
    _success_body,
)

__all__ = ["BatchDesk"]

Answer = tuple[int, bytes, str]  # status, body, content type
DROPPED = object()  # a batch request whose result line is lost (a dropped connection's fault)
CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENDPOINT = "/v1/chat/completions"
OPENAI_LIMIT_MESSAGE = (
    "Enqueued token limit reached for {model} in organization org-loopback. Limit: 90,000 "
    "enqueued tokens. Please try again once some in_progress batches have been completed."
)
ANTHROPIC_LIMIT_MESSAGE = (
    "Number of batch requests in the processing queue would exceed your organization's limit "
    "of 100,000. Please try again once some batches have ended."
)


@dataclass
class _Batch:
    id: str
    api: Api
    requests: list[tuple[str, dict[str, Any]]]  # (custom_id, body)
    created_at: float
    holds: int
    metadata: dict[str, str] = field(default_factory=dict)
    input_file_id: str = ""
    status: str = "in_progress"  # OpenAI's words; Anthropic's are derived
    cancel_requested: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] | None = None  # the results, once it ran
    ended_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: Counter[str] = field(default_factory=Counter)


class BatchDesk:
    """The batch endpoints of one loopback server; see the module docstring for the knobs."""

    def __init__(
        self,
        server: LoopbackLLM,
        *,
        shuffle: bool = True,
        seed: int = 0,
        hold: int = 0,
        expire: float = 0.0,
        expire_ids: set[str] | frozenset[str] = frozenset(),
        reject_creates: int = 0,
        fail_creates: int = 0,
        list_page: int | None = None,
        hold_judges: bool = False,
        api_faults: Faults | None = None,
    ) -> None:
        self.server = server
        self.shuffle, self.hold, self.expire = shuffle, hold, expire
        self.expire_ids = set(expire_ids)
        self.reject_creates, self.fail_creates, self.list_page = (
            reject_creates,
            fail_creates,
            list_page,
        )
        self.hold_judges, self.api_faults = hold_judges, api_faults
        self.api_injected: Counter[FaultKind] = Counter()  # batch API calls failed, by kind
        self._api_calls: Counter[str] = Counter()  # batch API calls so far
        self.created: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()  # batch requests the responder answered
        self.batches: dict[str, _Batch] = {}
        self.files: dict[str, tuple[str, str, bytes]] = {}  # id -> (filename, purpose, data)
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        server.batches = self

    # ------------------------------------------------------------------ routing

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> Answer | None:
        """The answer to a batch API request, or None if the path is not one of them."""
        parts = urlsplit(target)
        path, query = parts.path.rstrip("/"), parse_qs(parts.query)
        segments = path.strip("/").split("/")
        with self._lock:
            if path == "/_loopback/batches" and method == "GET":
                stats = {
                    "created": dict(self.created),
                    "rejected": dict(self.rejected),
                    "answered": dict(self.answered),
                }
                return _json(200, stats)
            if segments[:2] == ["v1", "files"]:
                return self._files(method, segments[2:], headers, raw)
            if segments[:2] == ["v1", "batches"]:
                return self._openai(method, segments[2:], query, raw)
            if segments[:3] == ["v1", "messages", "batches"]:
                return self._anthropic(method, segments[3:], query, raw)
        return None

    def api_fault(self, method: str, target: str) -> FaultKind | None:
        """The fault drawn for this batch API call (counted), or None: not a batch API path,
        or no fault for it."""
        path = urlsplit(target).path.rstrip("/")
        batch_api = path.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))
        if self.api_faults is None or not batch_api:
            return None
        with self._lock:  # drawn by the call's place in the sequence (paths carry random ids)
            self._api_calls["all"] += 1
            fault = self.api_faults.draw("batch-api", self._api_calls["all"], False)
            if fault is not None:
                self.api_injected[fault] += 1
        return fault

    def _next_id(self, prefix: str) -> str:
        return (
            f"{prefix}{next(self._ids):06d}{hashlib.sha1(str(id(self)).encode()).hexdigest()[:8]}"
        )

    # ------------------------------------------------------------------ OpenAI: files

    def _files(self, method: str, rest: list[str], headers: dict[str, str], raw: bytes) -> Answer:
        if method == "POST" and not rest:
            fields = _multipart(headers.get("content-type", ""), raw)
            purpose = fields.get("purpose", ("", b""))[1].decode()
            if "file" not in fields or purpose != "batch":
                return _openai_error(400, "upload a `file` with purpose `batch`", "invalid_file")
            name, data = fields["file"]
            file_id = self._next_id("file-")
            self.files[file_id] = (name or "upload.jsonl", purpose, data)
            return _json(200, self._file_object(file_id))
        if method == "GET" and len(rest) == 2 and rest[1] == "content" and rest[0] in self.files:
            return 200, self.files[rest[0]][2], "application/octet-stream"
        if method == "GET" and len(rest) == 1 and rest[0] in self.files:
            return _json(200, self._file_object(rest[0]))
        if method == "DELETE" and len(rest) == 1 and rest[0] in self.files:
            del self.files[rest[0]]
            return _json(200, {"id": rest[0], "object": "file", "deleted": True})
        return _openai_error(404, f"No such File object: {'/'.join(rest)}", None)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        name, purpose, data = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }

    # ------------------------------------------------------------------ OpenAI: batches

    def _openai(
        self, method: str, rest: list[str], query: dict[str, list[str]], raw: bytes
    ) -> Answer:
        if method == "POST" and not rest:
            return self._openai_create(raw)
        if method == "GET" and not rest:
            return self._list("openai", query, "after")
        batch = self.batches.get(rest[0]) if rest else None
        if batch is None or batch.api != "openai":
            return _openai_error(404, f"No batch found with id '{'/'.join(rest)}'.", None)
        if method == "GET" and len(rest) == 1:
            self._advance(batch)
            return _json(200, self._openai_object(batch))
        if method == "POST" and rest[1:] == ["cancel"]:
            self._cancel(batch)
            return _json(200, self._openai_object(batch))
        return _openai_error(404, f"unknown path: {method} /v1/batches/{'/'.join(rest)}", None)

    def _openai_create(self, raw: bytes) -> Answer:
        try:
            body = json.loads(raw)
            file_id = body["input_file_id"]
        except (ValueError, LookupError, TypeError):
            return _openai_error(400, "input_file_id is required", None)
        if file_id not in self.files:
            return _openai_error(400, f"No file with id '{file_id}'", "invalid_file")
        if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            return _openai_error(400, "endpoint must be /v1/chat/completions, window 24h", None)
        requests, errors = _read_input(self.files[file_id][2])
        model = next((b.get("model") for _, b in requests), "the model")
        if self.reject_creates > 0:
            self.reject_creates -= 1
            self.rejected["openai"] += 1
            message = OPENAI_LIMIT_MESSAGE.format(model=model)
            return _openai_error(429, message, "token_limit_exceeded")
        batch = _Batch(
            id=self._next_id("batch_"),
            api="openai",
            requests=requests,
            created_at=time.time(),
            holds=self.hold,
            metadata=dict(body.get("metadata") or {}),
            input_file_id=file_id,
        )
        if not errors and self.fail_creates > 0:
            self.fail_creates -= 1
            message = OPENAI_LIMIT_MESSAGE.format(model=model)
            errors = [{"code": "token_limit_exceeded", "message": message, "line": None}]
        if errors:
            batch.status, batch.errors, batch.ended_at = "failed", errors, time.time()
        self.batches[batch.id] = batch
        self.created["openai"] += 1
        return _json(200, self._openai_object(batch))

    def _openai_object(self, batch: _Batch) -> dict[str, Any]:
        total = len(batch.requests) if batch.status != "failed" else 0
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at),
            "completed_at": int(batch.ended_at) if batch.status == "completed" else None,
            "failed_at": int(batch.ended_at) if batch.status == "failed" else None,
            "request_counts": {
                "total": total,
                "completed": batch.counts["succeeded"],
                "failed": batch.counts["errored"],
            },
            "metadata": batch.metadata or None,
        }

    # ------------------------------------------------------------------ Anthropic

    def _anthropic(
        self, method: str, rest: list[str], query: dict[str, list[str]], raw: bytes
    ) -> Answer:
        if method == "POST" and not rest:
            return self._anthropic_create(raw)
        if method == "GET" and not rest:
            return self._list("anthropic", query, "after_id")
        batch = self.batches.get(rest[0]) if rest else None
        if batch is None or batch.api != "anthropic":
            return _anthropic_error(404, f"message batch not found: {'/'.join(rest)}")
        if method == "GET" and len(rest) == 1:
            self._advance(batch)
            return _json(200, self._anthropic_object(batch))
        if method == "GET" and rest[1:] == ["results"]:
            if batch.lines is None:
                return _anthropic_error(400, "the message batch has not ended yet")
            lines = [
                {"custom_id": line["custom_id"], "result": line["result"]} for line in batch.lines
            ]
            return 200, _jsonl(lines), "application/binary"
        if method == "POST" and rest[1:] == ["cancel"]:
            self._cancel(batch)
            return _json(200, self._anthropic_object(batch))
        return _anthropic_error(404, f"unknown path: {method} /v1/messages/batches/{rest}")

    def _anthropic_create(self, raw: bytes) -> Answer:
        try:
            items = json.loads(raw)["requests"]
            requests = [(str(i["custom_id"]), dict(i["params"])) for i in items]
        except (ValueError, LookupError, TypeError):
            return _anthropic_error(400, "requests: a list of {custom_id, params} is required")
        ids = [custom_id for custom_id, _ in requests]
        bad = [i for i in ids if not CUSTOM_ID.match(i)]
        if bad or len(set(ids)) != len(ids) or not ids:
            return _anthropic_error(400, f"custom_id must be unique and match {CUSTOM_ID.pattern}")
        if self.reject_creates > 0:
            self.reject_creates -= 1
            self.rejected["anthropic"] += 1
            return _anthropic_error(429, ANTHROPIC_LIMIT_MESSAGE)
        batch = _Batch(
            id=self._next_id("msgbatch_"),
            api="anthropic",
            requests=requests,
            created_at=time.time(),
            holds=self.hold,
        )
        self.batches[batch.id] = batch
        self.created["anthropic"] += 1
        return _json(200, self._anthropic_object(batch))

    def _anthropic_object(self, batch: _Batch) -> dict[str, Any]:
        ended = batch.lines is not None
        status = "ended" if ended else "canceling" if batch.cancel_requested else "in_progress"
        counts = {k: batch.counts[k] for k in ("succeeded", "errored", "expired", "canceled")}
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {"processing": 0 if ended else len(batch.requests), **counts},
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + 86400),
            "ended_at": _rfc3339(batch.ended_at) if batch.ended_at else None,
            "cancel_initiated_at": _rfc3339(batch.created_at) if batch.cancel_requested else None,
            "archived_at": None,
            "results_url": (
                f"{self.server.url}/v1/messages/batches/{batch.id}/results" if ended else None
            ),
        }

    # ------------------------------------------------------------------ both

    def _list(self, api: Api, query: dict[str, list[str]], after_name: str) -> Answer:
        newest_first = [b for b in reversed(self.batches.values()) if b.api == api]
        after = (query.get(after_name) or [None])[0]
        if after is not None:
            ids = [b.id for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        limit = int((query.get("limit") or ["20"])[0])
        if self.list_page is not None:
            limit = min(limit, self.list_page)
        page, has_more = newest_first[:limit], len(newest_first) > limit
        render = self._openai_object if api == "openai" else self._anthropic_object
        data = [render(b) for b in page]
        first, last = (page[0].id, page[-1].id) if page else (None, None)
        listing: dict[str, Any] = {"data": data, "has_more": has_more}
        listing.update({"first_id": first, "last_id": last})
        if api == "openai":
            listing["object"] = "list"
        return _json(200, listing)

    def _cancel(self, batch: _Batch) -> None:
        if batch.lines is None and batch.status != "failed":
            batch.cancel_requested = True
            batch.status = "cancelling"

    def _advance(self, batch: _Batch) -> None:
        """One retrieve: a batch being cancelled ends canceled; one in progress runs once its
        holds are used up."""
        if batch.lines is not None or batch.status == "failed":
            return
        if not batch.cancel_requested and batch.holds > 0:
            batch.holds -= 1
            return
        if not batch.cancel_requested and self.hold_judges and self._has_judges(batch):
            return
        self._run(batch)

    def _has_judges(self, batch: _Batch) -> bool:
        path = ENDPOINT if batch.api == "openai" else "/v1/messages"
        return any(_make_call(batch.api, path, {}, body).is_judge for _, body in batch.requests)

    def _run(self, batch: _Batch) -> None:
        lines = []
        for custom_id, body in batch.requests:
            if batch.cancel_requested:
                kind, status, payload = "canceled", 0, None
            elif custom_id in self.expire_ids or _share(custom_id) < self.expire:
                kind, status, payload = "expired", 0, None
            else:
                answer = self._answer(batch, body)
                if answer is DROPPED:
                    continue
                if answer is None:  # the responder hung: it never ran within the window
                    kind, status, payload = "expired", 0, None
                else:
                    status, payload = answer  # type: ignore[misc]
                    kind = "succeeded" if status == 200 else "errored"
            batch.counts[kind] += 1
            lines.append(_result_line(batch.api, custom_id, kind, status, payload))
        if self.shuffle:
            self._random.shuffle(lines)
        batch.lines, batch.ended_at = lines, time.time()
        if batch.api == "openai":
            self._openai_files(batch)

    def _answer(self, batch: _Batch, body: dict[str, Any]) -> tuple[int, Any] | object | None:
        """(status, body) the server's responder gives this request, as a direct call would get
        it; None if it would hang; DROPPED if its line is lost (the server's `faults`)."""
        server = self.server
        api: Api = batch.api
        path = ENDPOINT if api == "openai" else "/v1/messages"
        raw = json.dumps(body).encode()
        call = server._record(_make_call(api, path, {"batch-id": batch.id}, body), raw)
        self.answered[api] += 1
        refusal = _refusal(server.structured, api, body)
        if refusal is not None:
            return refusal[0], _error_body(api, *refusal)
        fault = server._fault(call)
        if fault == "drop":
            return DROPPED
        if fault == "hang":
            return None
        if fault in ("server_error", "rate_limit"):
            status = 500 if fault == "server_error" else 429
            return status, _error_body(api, status, f"injected fault: {fault}")
        try:
            reply = Reply(text=MALFORMED_VERDICT) if fault else _coerce(server.responder(call))
        except BaseException as exc:  # incl. pytest.fail(); must not kill the handler
            return 500, _error_body(api, 500, f"responder raised {type(exc).__name__}: {exc}")
        if reply.hang:
            return None
        if reply.raw is not None:
            try:
                return reply.status, json.loads(reply.raw)
            except ValueError:
                return reply.status, reply.raw.decode("utf-8", "replace")
        if reply.status >= 400:
            return reply.status, _error_body(api, reply.status, reply.error_message)
        if fault is None:
            server._answered(call)
        return 200, _success_body(call, reply, server._next_id())

    def _openai_files(self, batch: _Batch) -> None:
        output = [line for line in batch.lines or () if line["_ok"]]
        errors = [line for line in batch.lines or () if not line["_ok"]]
        for lines, attr in ((output, "output_file_id"), (errors, "error_file_id")):
            if lines:
                file_id = self._next_id("file-")
                rows = [{k: v for k, v in line.items() if k != "_ok"} for line in lines]
                self.files[file_id] = (f"{batch.id}_{attr}.jsonl", "batch_output", _jsonl(rows))
                setattr(batch, attr, file_id)
        expired = batch.counts["expired"] > 0
        batch.status = (
            "cancelled" if batch.cancel_requested else "expired" if expired else "completed"
        )


# ---------------------------------------------------------------------- wire helpers


def _result_line(api: Api, custom_id: str, kind: str, status: int, payload: Any) -> dict[str, Any]:
    if api == "anthropic":
        if kind == "succeeded":
            if isinstance(payload, dict):
                return {"custom_id": custom_id, "result": {"type": kind, "message": payload}}
            kind, status = "errored", 500
            payload = _error_body("anthropic", 500, f"malformed message: {payload!r:.100}")
        if kind == "errored":
            if not (isinstance(payload, dict) and isinstance(payload.get("error"), dict)):
                payload = _error_body("anthropic", status, f"HTTP {status}: {payload!r:.100}")
            return {"custom_id": custom_id, "result": {"type": kind, "error": payload}}
        return {"custom_id": custom_id, "result": {"type": kind}}
    line_id = f"batch_req_{hashlib.sha1(custom_id.encode()).hexdigest()[:24]}"
    if kind in ("expired", "canceled"):
        code = "batch_expired" if kind == "expired" else "batch_cancelled"
        message = (
            "This request could not be executed before the completion window expired."
            if kind == "expired"
            else "This request was not executed because the batch was cancelled."
        )
        error = {"code": code, "message": message}
        return {
            "id": line_id,
            "custom_id": custom_id,
            "response": None,
            "error": error,
            "_ok": False,
        }
    response = {"status_code": status, "request_id": line_id[10:], "body": payload}
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": response,
        "error": None,
        "_ok": status == 200,
    }


def _read_input(data: bytes) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """An OpenAI batch input file's requests, and its validation errors (as the API words them)."""
    requests: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            custom_id, body = line["custom_id"], line["body"]
            ok = line.get("method") == "POST" and line.get("url") == ENDPOINT
        except (ValueError, LookupError, TypeError):
            errors.append({"code": "invalid_json_line", "message": "not a request", "line": number})
            continue
        if not ok or not isinstance(body, dict) or not isinstance(custom_id, str):
            errors.append(
                {"code": "invalid_request", "message": "bad method/url/body", "line": number}
            )
        elif custom_id in seen:
            errors.append({"code": "duplicate_custom_id", "message": custom_id, "line": number})
        else:
            seen.add(custom_id)
            requests.append((custom_id, body))
    if not requests and not errors:
        errors.append(
            {"code": "empty_file", "message": "the input file has no requests", "line": None}
        )
    return requests, errors


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, bytes)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if isinstance(name, str):
            fields[name] = (part.get_filename(), payload)
    return fields


def _share(custom_id: str) -> float:
    """Where a custom_id falls in [0, 1): the same every run."""
    return int(hashlib.sha256(custom_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def _json(status: int, payload: Any) -> Answer:
    return status, json.dumps(payload).encode(), "application/json"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _openai_error(status: int, message: str, code: str | None) -> Answer:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return _json(status, {"error": error})


def _anthropic_error(status: int, message: str) -> Answer:
    return _json(status, _error_body("anthropic", status, message))
