"""What the run summary says of a run's provider batches (`--judge-batch`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BatchStats:
    """What the run summary says of the batches."""

    waves: int = 0
    batches: int = 0  # batches created by this run
    adopted: int = 0  # uncollected batches of earlier runs this run collected
    kept: int = 0  # answers of those batches no call of this run asked for, kept in the cache
    held: int = 0  # creates refused for the enqueued-token limit, then held
    requests: int = 0  # requests sent in batches, resubmissions included
    deduplicated: int = 0  # calls answered by an identical request of the same wave
    resubmitted: int = 0
    failed: int = 0  # batches that ended `failed` (not for the enqueued-token limit)
    results: dict[str, int] = field(default_factory=dict)  # ResultKind -> requests ended so

    def count(self, kind: str) -> None:
        """One more request ended as `kind` (`malformed` for a reply the reader refused)."""
        self.results[kind] = self.results.get(kind, 0) + 1
