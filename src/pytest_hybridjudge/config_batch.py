"""`[tool.hybridjudge.batch]`: how `--judge-batch` runs provider batches."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from .config_models import ProviderSpec, Strict

BATCH_KINDS = ("openai", "anthropic")  # provider kinds with a batch API


class BatchSpec(Strict):
    """Provider batch APIs (OpenAI Batch, Anthropic Message Batches), used with `--judge-batch`."""

    enabled: bool = Field(
        False,
        description="Send OpenAI and Anthropic calls through their batch APIs at half price "
        "(`--judge-batch` turns it on for one run); other providers are called directly",
    )
    poll: float = Field(
        5.0, gt=0, description="Seconds before a batch's state is first asked for again"
    )
    poll_max: float = Field(
        60.0, gt=0, description="Longest wait between two questions about a batch, in seconds"
    )
    resubmits: int = Field(
        2,
        ge=0,
        description="Times an expired or cancelled request is sent again before its case is "
        "escalated with reason `batch expired`",
    )
    gather: float = Field(
        2.0,
        gt=0,
        description="Seconds without a new request after which the waiting requests are sent, "
        "even if some cases are still busy (otherwise a wave goes when every case waits on it)",
    )


def batches(model: str, enabled: bool, providers: Mapping[str, ProviderSpec]) -> bool:
    """Whether calls to `provider/model` go in batches: batch mode is on and the provider is
    of a kind with a batch API (a configured provider by its `kind`, a built-in by its name)."""
    if not enabled:
        return False
    name = model.split("/", 1)[0]
    spec = providers.get(name)
    return (spec.kind if spec is not None else name) in BATCH_KINDS
