"""Scripted loopback HTTP server speaking the OpenAI and Anthropic wire formats.

Serves ``POST /v1/chat/completions`` (OpenAI Chat Completions) and ``POST /v1/messages``
(Anthropic Messages) on 127.0.0.1 well enough for the official async SDKs to parse the
replies.  A *responder* callable decides what each request gets back.  Standard library only.

``structured`` makes it refuse structured output the way real servers do: ``"json_object"``
answers a ``json_schema`` ``response_format`` with llama-cpp-python's own HTTP 500 (its
server's pydantic model only has ``'text' | 'json_object'``) and, like that server, honours
``{"type": "json_object", "schema": ...}``; ``"text"`` also refuses ``json_object`` (HTTP 400)
and Anthropic's ``output_config``, like servers without JSON modes.

``Call.schema`` is the JSON Schema the server would constrain the reply with (a grammar, in
llama.cpp's servers), in whichever form it honours, or None: ``tiny_model`` answers like the
135M model behind llama-cpp-python, with a verdict only when a schema constrains it.

Run as a script to serve ``default_responder``::

    python tests/loopback.py [--port 0] [--latency 0.05] [--batches [--batch-hold N] ...]

It prints ``http://127.0.0.1:PORT`` on one line and serves until SIGTERM/SIGINT. With
``--batches`` it also serves the provider batch APIs (``loopback_batches.py``).

``faults`` (a :class:`Faults`) injects 500s, 429s, hangs, dropped connections and malformed
judge replies into a share of requests, drawn per request from a seed, the request body and its
attempt number, so a run against it is reproducible; ``LoopbackLLM.injected`` counts each kind
and ``LoopbackLLM.answered`` the replies that were not faults, per request body.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import itertools
import json
import select
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LLAMA_CPP_REFUSAL",
    "MALFORMED_VERDICT",
    "Call",
    "FaultKind",
    "Faults",
    "LoopbackLLM",
    "Reply",
    "Responder",
    "default_responder",
    "tiny_model",
    "verdict",
]

Api = Literal["openai", "anthropic"]
Structured = Literal["json_schema", "json_object", "text"]
FaultKind = Literal["server_error", "rate_limit", "hang", "drop", "malformed"]

# llama-cpp-python 0.3's server, verbatim (FastAPI's RequestValidationError, caught by its
# route handler and answered as an internal server error).
LLAMA_CPP_REFUSAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
    "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", "
    "line 376, in create_chat_completion\n    POST /v1/chat/completions"
)
TEXT_ONLY_REFUSAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
    "'type'), 'msg': \"Input should be 'text'\"}"
)

_PATHS: dict[str, Api] = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
}

_OPENAI_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}

_ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class Call:
    """One recorded API request."""

    api: Api
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    model: str
    system: str
    prompt: str
    last_user: str
    is_judge: bool
    attempt: int
    schema: dict[str, Any] | None = None  # what the reply is constrained to, if anything
    digest: str = ""  # a short hash of the body, the same for every attempt (with faults only)


@dataclass
class Reply:
    """What the server sends back for one call."""

    text: str | None = None
    status: int = 200
    error_message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float = 0.0
    hang: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    logprobs: list[dict[str, Any]] | None = None


Responder = Callable[[Call], "Reply | str | dict[str, Any]"]

# what a judge gets instead of a verdict under `Faults.malformed`
MALFORMED_VERDICT = "I would give this answer a four out of five."


@dataclass(frozen=True)
class Faults:
    """Faults to inject, each a share of requests (together at most 1).

    Which request gets which fault is drawn from `seed`, the request body and its attempt number
    (a retry of the same body draws again), so a run is reproducible. `malformed` applies to
    judge requests only: a target drawn for it is answered normally.
    """

    server_error: float = 0.0  # HTTP 500
    rate_limit: float = 0.0  # HTTP 429 with a short retry-after
    hang: float = 0.0  # no reply until the client gives up (its timeout bounds it)
    drop: float = 0.0  # the connection closed without a reply
    malformed: float = 0.0  # a judge gets 200 with `MALFORMED_VERDICT`, not a verdict
    seed: int = 0

    def __post_init__(self) -> None:
        if sum(share for _, share in self.shares()) > 1:
            raise ValueError(f"fault shares add up to more than 1: {self}")

    def shares(self) -> tuple[tuple[FaultKind, float], ...]:
        """Each fault kind and its share of requests."""
        return (
            ("server_error", self.server_error),
            ("rate_limit", self.rate_limit),
            ("hang", self.hang),
            ("drop", self.drop),
            ("malformed", self.malformed),
        )

    def draw(self, digest: str, attempt: int, is_judge: bool) -> FaultKind | None:
        """The fault for attempt `attempt` of the request whose body hashes to `digest`."""
        seeded = hashlib.sha256(f"{self.seed}:{attempt}:{digest}".encode()).digest()
        point = int.from_bytes(seeded[:8], "big") / 2**64
        for kind, share in self.shares():
            if point < share:
                return None if kind == "malformed" and not is_judge else kind
            point -= share
        return None


def verdict(score: int, confidence: float = 0.9, rationale: str = "scripted") -> str:
    """Return a judge verdict as JSON text."""
    return json.dumps({"score": score, "rationale": rationale, "confidence": confidence})


def default_responder(call: Call) -> str:
    """Echo the last user message for targets; a passing verdict for judges."""
    if call.is_judge:
        return json.dumps({"score": 4, "rationale": "looks right", "confidence": 0.9})
    return f"Answer: {call.last_user}"


def tiny_model(call: Call) -> str:
    """A model too small to follow a schema written in the prompt: a judge gets a verdict only
    when the server constrains the reply with the verdict's schema, else some other JSON (what
    SmolLM2-135M wrote in JSON mode without one); a target gets "Paris"."""
    if not call.is_judge:
        return "Paris"
    properties = (call.schema or {}).get("properties", {})
    if "score" in properties:
        return verdict(4, rationale="constrained")
    return json.dumps({"answer": "Paris", "correct": True})


# --------------------------------------------------------------------------- request parsing


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a string or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def _make_call(api: Api, path: str, headers: dict[str, str], body: dict[str, Any]) -> Call:
    """Build a :class:`Call` (``attempt`` is filled in by the server)."""
    raw_messages = body.get("messages")
    messages = raw_messages if isinstance(raw_messages, list) else []
    texts: list[str] = []
    system_parts: list[str] = []
    last_user = ""
    if api == "anthropic":
        system = _text_of(body.get("system"))
        if system:
            texts.append(system)
            system_parts.append(system)
        output_config = body.get("output_config")
        is_judge = (
            isinstance(output_config, dict) and output_config.get("format") is not None
        ) or body.get("output_format") is not None
    else:
        is_judge = "response_format" in body
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _text_of(message.get("content"))
        role = message.get("role")
        texts.append(text)
        if api == "openai" and role in ("system", "developer"):
            system_parts.append(text)
        elif role == "user":
            last_user = text
    model = body.get("model")
    is_judge = is_judge or "<<<ANSWER " in last_user  # judges in `prompt` mode
    schema = _schema_of(api, body)
    return Call(
        api=api,
        path=path,
        headers=headers,
        body=body,
        model=model if isinstance(model, str) else "",
        system="\n".join(system_parts),
        prompt="\n".join(texts),
        last_user=last_user,
        is_judge=bool(is_judge),
        attempt=0,
        schema=schema,
    )


def _schema_of(api: Api, body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a request asks the reply to follow, in the forms servers read: OpenAI's
    `json_schema.schema`, llama.cpp's `json_object` + `schema`, Anthropic's `output_config`."""
    if api == "anthropic":
        config = body.get("output_config")
        fmt = config.get("format") if isinstance(config, dict) else None
        found = fmt.get("schema") if isinstance(fmt, dict) else None
    else:
        response_format = body.get("response_format")
        found = None
        if isinstance(response_format, dict):
            found = response_format.get("schema")
            inner = response_format.get("json_schema")
            if found is None and isinstance(inner, dict):
                found = inner.get("schema")
    return found if isinstance(found, dict) else None


# --------------------------------------------------------------------------- response bodies


def _coerce(result: Reply | str | dict[str, Any]) -> Reply:
    if isinstance(result, Reply):
        return result
    if isinstance(result, str):
        return Reply(text=result)
    if isinstance(result, dict):
        return Reply(text=json.dumps(result))
    raise TypeError(f"responder returned {type(result).__name__}; expected Reply, str or dict")


def _norm_logprobs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill in ``bytes``/``top_logprobs`` defaults on logprob entries."""
    out = []
    for entry in entries:
        e = dict(entry)
        token = str(e.get("token", ""))
        e.setdefault("bytes", list(token.encode()))
        tops = []
        for top in e.get("top_logprobs") or []:
            t = dict(top)
            t.setdefault("bytes", list(str(t.get("token", "")).encode()))
            tops.append(t)
        e["top_logprobs"] = tops
        out.append(e)
    return out


def _success_body(call: Call, reply: Reply, request_id: str) -> dict[str, Any]:
    text = reply.text or ""
    input_tokens = (
        reply.input_tokens if reply.input_tokens is not None else len(call.prompt) // 4 + 1
    )
    output_tokens = reply.output_tokens if reply.output_tokens is not None else len(text) // 4 + 1
    if call.api == "anthropic":
        return {
            "id": f"msg_{request_id}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    logprobs = None
    if call.body.get("logprobs") is True and reply.logprobs is not None:
        logprobs = {"content": _norm_logprobs(reply.logprobs), "refusal": None}
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _error_body(api: Api, status: int, message: str) -> dict[str, Any]:
    if api == "anthropic":
        err_type = _ANTHROPIC_ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {"type": "error", "error": {"type": err_type, "message": message}}
    err_type, code = _OPENAI_ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def _refusal(structured: Structured, api: Api, body: dict[str, Any]) -> tuple[int, str] | None:
    """(status, message) when the server refuses the request's structured output."""
    if structured == "json_schema":
        return None
    if api == "anthropic":
        if "output_config" in body or "output_format" in body:
            return 400, "output_config: Extra inputs are not permitted"
        return None
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        return (500, LLAMA_CPP_REFUSAL) if structured == "json_object" else (400, TEXT_ONLY_REFUSAL)
    if kind == "json_object" and structured == "text":
        return 400, TEXT_ONLY_REFUSAL
    return None


# --------------------------------------------------------------------------- HTTP plumbing


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "loopback-llm/1"
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        extra = headers or {}
        if not any(name.lower() == "content-type" for name in extra):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error_json(
        self, api: Api, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(_error_body(api, status, message)).encode(), headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _batch_api(self, method: str, raw: bytes) -> bool:
        """Answer a batch API request when a `loopback_batches.BatchDesk` is attached."""
        desk = self.server.owner.batches
        fault = desk and desk.api_fault(method, self.path)
        if fault:  # the batch API call itself fails (`BatchDesk.api_faults`)
            self._inject("anthropic" if "/messages/" in self.path else "openai", fault)
            return True
        answer = desk and desk.handle(
            method, self.path, {k.lower(): v for k, v in self.headers.items()}, raw
        )
        if not answer:
            return False
        status, body, content_type = answer
        self._send(status, body, content_type=content_type)
        return True

    def do_GET(self) -> None:
        raw = self._read_body()
        if self._batch_api("GET", raw):
            return
        self._send_error_json("openai", 404, f"unknown path: GET {self.path}")

    def do_DELETE(self) -> None:
        raw = self._read_body()
        if not self._batch_api("DELETE", raw):
            self._send_error_json("openai", 404, f"unknown path: DELETE {self.path}")

    def do_POST(self) -> None:
        raw = self._read_body()
        if self.server.owner.batches is not None and self._batch_api("POST", raw):
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        api = _PATHS.get(path)
        if api is None:
            guess: Api = "anthropic" if path.endswith("/messages") else "openai"
            self._send_error_json(guess, 404, f"unknown path: POST {self.path}")
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("request body is not a JSON object")
        except ValueError as exc:
            self._send_error_json(api, 400, f"invalid JSON body: {exc}")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner = self.server.owner
        call = owner._record(_make_call(api, path, headers, body), raw)
        request_id = owner._next_id()
        refusal = _refusal(owner.structured, api, body)
        if refusal is not None:
            self._send_refusal(api, *refusal)
            return
        fault = owner._fault(call)
        if fault is not None and fault != "malformed":
            self._inject(api, fault)
            return
        try:
            reply = Reply(text=MALFORMED_VERDICT) if fault else _coerce(owner.responder(call))
        except BaseException as exc:  # incl. pytest.fail(); must not kill the handler
            self._send_error_json(api, 500, f"responder raised {type(exc).__name__}: {exc}")
            return
        if reply.hang:
            self._hang()
            return
        wait = owner.latency + reply.delay
        if wait > 0 and owner._stopping.wait(wait):
            self.close_connection = True
            return
        if reply.raw is not None:
            self._send(reply.status, reply.raw, reply.headers)
            return
        headers_out = {"x-request-id": request_id, "request-id": request_id, **reply.headers}
        if reply.status >= 400:
            self._send_error_json(api, reply.status, reply.error_message, headers_out)
            return
        payload = _success_body(call, reply, request_id)
        self._send(reply.status, json.dumps(payload).encode(), headers_out)
        if fault is None:
            owner._answered(call)

    def _inject(self, api: Api, fault: FaultKind) -> None:
        """Fail the request the way `fault` says (see `Faults`)."""
        if fault == "hang":
            self._hang()
        elif fault == "drop":
            self.close_connection = True  # the handler returns; the socket closes, no reply
        elif fault == "rate_limit":
            self._send_error_json(api, 429, "injected fault: rate limited", {"retry-after-ms": "5"})
        else:
            self._send_error_json(api, 500, "injected fault: server error")

    def _send_refusal(self, api: Api, status: int, message: str) -> None:
        if api == "openai" and status == 500:  # llama-cpp-python's shape for it
            error = {"message": message, "type": "internal_server_error", "param": None}
            self._send(status, json.dumps({"error": {**error, "code": None}}).encode())
        else:
            self._send_error_json(api, status, message)

    def _hang(self) -> None:
        """Block until the peer disconnects or the server stops; never reply."""
        self.close_connection = True
        sock = self.connection
        stopping = self.server.owner._stopping
        while not stopping.is_set():
            try:
                # Readable means EOF (client gave up) or unexpected bytes: either way, done.
                if select.select([sock], [], [], 0.05)[0]:
                    return
            except (OSError, ValueError):
                return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LoopbackLLM) -> None:
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection (wakes idle keep-alive handlers)."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # client went away; nothing worth reporting
        super().handle_error(request, client_address)


class LoopbackLLM:
    """Scripted OpenAI/Anthropic-compatible server on a loopback port."""

    def __init__(
        self,
        responder: Responder | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        structured: Structured = "json_schema",
        faults: Faults | None = None,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.structured: Structured = structured  # what it accepts; see the module docstring
        self.latency = latency
        # A long-lived server (benchmarks) keeps no history: with it, its heap grew by GBs and
        # its garbage collections stalled replies for seconds, which made timings noise.
        self.record = record
        self.batches: Any = None  # a `loopback_batches.BatchDesk` serves the batch APIs when set
        self.faults = faults
        self.injected: Counter[FaultKind] = Counter()  # faults injected, by kind
        self.answered: Counter[str] = Counter()  # replies that were no fault, by body digest
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._id_prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._server = _Server((host, port), self)
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.openai_base_url = self.url + "/v1"
        self.anthropic_base_url = self.url

    def start(self) -> LoopbackLLM:
        """Serve in a daemon thread; returns self."""
        if self._stopped:
            raise RuntimeError("LoopbackLLM cannot be restarted after stop()")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"loopback-llm-{self.url}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down, release hanging handlers and close the socket; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> LoopbackLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Clear recorded calls, attempt counters and fault counts."""
        with self._lock:
            self.calls.clear()
            self._attempts.clear()
            self.injected.clear()
            self.answered.clear()

    def count(
        self,
        *,
        api: Api | None = None,
        model: str | None = None,
        judge: bool | None = None,
    ) -> int:
        """Number of recorded calls matching every given filter."""
        with self._lock:
            calls = list(self.calls)
        return sum(
            1
            for c in calls
            if (api is None or c.api == api)
            and (model is None or c.model == model)
            and (judge is None or c.is_judge == judge)
        )

    def tally(self) -> tuple[Counter[FaultKind], Counter[str]]:
        """Copies of `injected` and `answered`, safe to read while the server serves."""
        with self._lock:
            return Counter(self.injected), Counter(self.answered)

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):012x}"

    def _record(self, call: Call, raw: bytes) -> Call:
        """Assign the attempt number and append to ``calls`` (unless not recording)."""
        if not self.record and self.faults is None:
            call.attempt = 1
            return call
        try:
            key = json.dumps(call.body, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            key = raw.decode("utf-8", "replace")
        if self.faults is not None:
            call.digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        with self._lock:
            call.attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = call.attempt
            if self.record:
                self.calls.append(call)
        return call

    def _fault(self, call: Call) -> FaultKind | None:
        """The fault drawn for this request, counted, or None."""
        if self.faults is None:
            return None
        fault = self.faults.draw(call.digest, call.attempt, call.is_judge)
        if fault is not None:
            with self._lock:
                self.injected[fault] += 1
        return fault

    def _answered(self, call: Call) -> None:
        """Count a reply that was no fault (by body, when faults are on)."""
        if self.faults is not None:
            with self._lock:
                self.answered[call.digest] += 1


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Serve ``default_responder`` until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--batches", action="store_true", help="serve the batch APIs too")
    parser.add_argument("--batch-hold", type=int, default=0, help="retrieves before a batch runs")
    parser.add_argument("--batch-expire", type=float, default=0.0, help="share of expired requests")
    parser.add_argument("--batch-reject", type=int, default=0, help="creates refused for the limit")
    parser.add_argument("--batch-fail", type=int, default=0, help="OpenAI batches failed for it")
    parser.add_argument("--batch-in-order", action="store_true", help="results not shuffled")
    args = parser.parse_args(argv)

    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server = LoopbackLLM(latency=args.latency, host=args.host, port=args.port, record=False)
    if args.batches:
        sys.path.insert(0, str(Path(__file__).parent))
        from loopback_batches import BatchDesk

        BatchDesk(
            server,
            shuffle=not args.batch_in_order,
            hold=args.batch_hold,
            expire=args.batch_expire,
            reject_creates=args.batch_reject,
            fail_creates=args.batch_fail,
        )
    server.start()
    try:
        print(server.url, flush=True)
        while not done.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
