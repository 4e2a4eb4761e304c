"""What the review page reads and the one place it writes: items, resolutions, leases.

Every decision the page records goes through `Records.resolve`, the review desk's one
`resolve`, the operation `hybridjudge review resolve` uses too, so the next `pytest --judge`
takes the page's decisions exactly as it takes the CLI's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import HybridJudgeConfig
from ..paths import configured
from ..review.decisions import ReviewDesk
from ..review.leases import LeaseBook
from ..review.manifest import ReviewItem
from ..review.resolutions import Resolution
from ..review.store import load_items
from ..runs import RunStore

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Records:
    """The project's runs, resolutions and leases, as the page sees them."""

    root: Path
    config: HybridJudgeConfig
    clock: Clock = utc_now
    store: RunStore = field(init=False)
    resolutions_path: Path = field(init=False)
    leases: LeaseBook = field(init=False)
    _items: tuple[tuple[object, ...], list[ReviewItem]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.store = RunStore.configured(self.root, self.config)
        self.resolutions_path = configured(self.root, self.config.resolutions)
        self.leases = LeaseBook.beside(self.resolutions_path, self.config.review.lease_minutes)

    def fingerprint(self) -> tuple[object, ...]:
        """What changes when a run or a decision is added: file sizes and times."""
        paths = [self.resolutions_path, self.store.folder]
        if self.store.folder.is_dir():
            for run in sorted(self.store.folder.iterdir()):
                paths += [run / "manifest.jsonl", run / "results.jsonl"]
        stamps: list[object] = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                stamps.append(None)
                continue
            stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def items(self) -> list[ReviewItem]:
        """Every item of every run, one per item id, newest run first (read again only when a
        manifest changed)."""
        key = self.fingerprint()[1:]
        if self._items is None or self._items[0] != key:
            self._items = (key, load_items(RunStore(self.store.folder), "all"))
        return self._items[1]

    def desk(self) -> ReviewDesk:
        """The project's review desk, reading the resolutions afresh (the server outlives
        many decisions, its own and others')."""
        return ReviewDesk.for_project(self.root, self.config)

    def resolutions(self) -> dict[str, list[Resolution]]:
        """Resolutions by item id (those of an older item id also under today's id)."""
        return {item: list(d.resolutions) for item, d in self.desk().decisions.items()}

    def resolve(
        self,
        item: ReviewItem,
        verdict: Literal["pass", "fail"],
        reviewer: str,
        *,
        score: int | None = None,
        note: str = "",
        amend: bool = False,
        adjudicate: bool = False,
        blind: bool = False,
        lead_time_s: float | None = None,
    ) -> str:
        """Record a decision through the review desk's one `resolve` (validated under the
        file's lock, as `hybridjudge review resolve` does). Returns what people now decide;
        raises `ReviewError`."""
        done = self.desk().resolve(
            item, verdict, reviewer, score=score, note=note, amend=amend,
            adjudicate=adjudicate, blind=blind, lead_time_s=lead_time_s,
        )  # fmt: skip
        decision = done.decision
        if decision.pending:
            who = ", ".join(f"{r.reviewer}: {r.verdict}" for r in decision.counted)
            return f"reviewers disagree ({who}): the item stays open"
        score_text = "" if decision.score is None else f", score {decision.score}"
        return f"decision now: {decision.verdict}{score_text}"
