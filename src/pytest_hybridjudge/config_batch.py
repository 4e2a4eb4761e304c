"""`[tool.hybridjudge.batch]`: how `--judge-batch` runs provider batches."""

from __future__ import annotations

from pydantic import Field

from .config_models import Strict


class BatchSpec(Strict):
    """Provider batch APIs (OpenAI Batch, Anthropic Message Batches), used with `--judge-batch`."""

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
