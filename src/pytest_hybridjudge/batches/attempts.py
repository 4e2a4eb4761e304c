"""What a batch result means for the call that waits on it: its answer, another attempt in the
next wave, or its error for good.

Partial failure is typed (`transport.ResultKind`): expired and cancelled requests are sent again
(a new attempt, so a new `custom_id`) up to `resubmits` times, then the call fails with kind
`expired`; invalid, auth and billing errors fail the call with the provider's message; server
errors and malformed replies are retried in a later wave like a direct call's outage (up to
`retries` times), and so is every request of a batch that failed as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ProviderError
from ..providers.base import Completion, MalformedResponse
from .site import BATCH_EXPIRED
from .stats import BatchStats
from .transport import BatchResult, ResultKind

RESUBMITTED: tuple[ResultKind, ...] = ("expired", "canceled")
Read = Callable[[Mapping[str, Any]], Completion]


@dataclass
class CallAttempts:
    """One batched call's attempts so far; `settle` reads each result it gets."""

    provider: str
    resubmits_allowed: int
    retries_allowed: int
    stats: BatchStats
    attempt: int = 0  # results read so far: the next request's attempt number
    resubmits: int = 0
    retries: int = 0

    def settle(self, result: BatchResult, read: Read) -> Completion | None:
        """The call's completion, or None when it goes again in the next wave; ProviderError
        when it failed for good (`kind` expired, outage, or the provider's refusal)."""
        self.attempt += 1
        if result.kind == "succeeded" and result.body is None:
            result = BatchResult(result.custom_id, "server", error="no response body")
        if result.kind == "succeeded" and result.body is not None:
            try:
                completion = read(result.body)
            except MalformedResponse as exc:
                result = BatchResult(result.custom_id, "server", error=str(exc))
                self.stats.count("malformed")
            else:
                self.stats.count("succeeded")
                completion.requests = self.attempt
                return completion
        else:
            self.stats.count(result.kind)
        self._again_or_fail(result)
        return None

    def _again_or_fail(self, result: BatchResult) -> None:
        """Count one more resubmission or retry, or raise the call's error for good."""
        why, attempt, provider = result.error or result.kind, self.attempt, self.provider
        if result.kind in RESUBMITTED:
            if self.resubmits >= self.resubmits_allowed:
                raise ProviderError(
                    f"{BATCH_EXPIRED}: {provider} {result.kind} the request {attempt} times "
                    f"({why})",
                    requests=attempt,
                    kind="expired",
                )
            self.resubmits += 1
            self.stats.resubmitted += 1
        elif result.kind == "server":
            if self.retries >= self.retries_allowed:
                raise ProviderError(
                    f"{provider}: batch request failed {attempt} times: {why}",
                    requests=attempt,
                    kind="outage",
                )
            self.retries += 1
        else:  # invalid, auth, billing: the provider's word, never retried
            raise ProviderError(
                f"{provider} refused the batch request ({result.kind}): {why}", requests=attempt
            )
