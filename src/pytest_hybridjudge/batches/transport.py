"""What the broker needs of a provider's batch API, and the typed shapes that cross it.

A transport knows one provider's wire format and nothing of cases, waves or ledgers: it turns a
list of `BatchRequest`s into a batch, says how far the batch is, and reads back one
`BatchResult` per request, mapped by `custom_id` (never by position: both providers return
result lines in any order).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..providers.base import Completion, CompletionRequest

CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what both providers accept as a custom_id

# How a request ended. `expired`/`canceled` are resubmitted (only those); `invalid`, `auth`
# and `billing` reach the case as its error, never retried; `server` (a 5xx or a reply that
# is not the API's shape) is retried like a direct call's outage.
ResultKind = Literal["succeeded", "expired", "canceled", "invalid", "auth", "billing", "server"]
BatchState = Literal["validating", "in_progress", "finalizing", "ended", "failed", "cancelling"]


def custom_id(case: str, role: str, judge: str, order: str, attempt: int, request_key: str) -> str:
    """A request's id inside its batch: a hash of (case, role, judge, order, attempt) and the
    request's cache key (so an edited request never adopts an earlier batch's answer); 64
    characters of `[0-9a-f]`."""
    text = "\x1f".join((case, role, judge, order, str(attempt), request_key))
    return hashlib.sha256(text.encode()).hexdigest()


def check_custom_id(value: str) -> str:
    """`value` if both providers accept it as a custom_id, else ValueError naming it."""
    if not CUSTOM_ID.match(value):
        raise ValueError(f"custom_id {value!r} is not 1-64 characters of [A-Za-z0-9_-]")
    return value


@dataclass(frozen=True)
class BatchLimits:
    """Where a provider splits batches."""

    max_requests: int
    max_bytes: int


OPENAI_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
ANTHROPIC_LIMITS = BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch: its id and the provider's request body (the JSON a direct call
    would POST, without timeout or stream)."""

    custom_id: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class BatchResult:
    """How one request of a batch ended.

    `body` is the provider's response body (a chat completion, or a message) when `kind` is
    `succeeded`; `error` the provider's own message otherwise.
    """

    custom_id: str
    kind: ResultKind
    body: Mapping[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchProgress:
    """A batch's state and its request counts, as the provider reports them."""

    batch_id: str
    state: BatchState
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    canceled: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """Whether results can be read (or never will be)."""
        return self.state in ("ended", "failed")


class EnqueuedLimit(Exception):
    """`create` was refused because the organisation's enqueued-token limit is reached: hold
    further batches until one ends, then try again."""


class BatchUnsupported(Exception):
    """The server has no batch API (a 404 on its batch endpoints): the message names the fix."""


class BatchTransport(Protocol):
    """One provider's batch API, driven by the broker."""

    limits: BatchLimits

    def request(self, custom_id: str, body: Mapping[str, Any]) -> BatchRequest:
        """The request as this provider's batch carries it."""
        ...

    def size(self, request: BatchRequest) -> int:
        """Bytes the request takes in the batch (what the limits count)."""
        ...

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        """Create a batch of `requests` and return its id; `key` is the idempotency key (OpenAI
        carries it in the batch's metadata). Raises EnqueuedLimit, BatchUnsupported, or the
        SDK's error."""
        ...

    async def find(self, key: str) -> str | None:
        """The id of a batch created with `key` whose id was never saved (a kill between create
        and the ledger's write), if the API can list batches by metadata; else None."""
        ...

    async def progress(self, batch_id: str) -> BatchProgress:
        """The batch's state and counts."""
        ...

    async def results(self, batch_id: str) -> list[BatchResult]:
        """The typed results of an ended batch, one per line the provider returned (the broker
        treats a request with no line as expired)."""
        ...

    async def cancel(self, batch_id: str) -> None:
        """Ask the provider to cancel the batch."""
        ...

    def transient(self, exc: BaseException) -> bool:
        """Whether a call to the batch API that raised `exc` is worth asking again (a dropped
        connection, a timeout, 429, 5xx; see retrying.py)."""
        ...


@runtime_checkable
class BatchingProvider(Protocol):
    """A provider whose calls can go through its batch API (the built-in `openai` and
    `anthropic` kinds): the body a direct call sends, the transport, and the reader of a
    succeeded result's body."""

    name: str

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The request body a direct call sends (a batch request carries the same)."""
        ...

    def batches(self) -> BatchTransport:
        """The provider's batch API on its own client."""
        ...

    def read_body(self, body: Mapping[str, Any]) -> Completion:
        """A succeeded result's body as a `Completion`; MalformedResponse if it is not one."""
        ...


def said(exc: BaseException) -> str:
    """An SDK's error as one short line: its type and message."""
    return f"{type(exc).__name__}: {exc}"[:300]
