"""What the review page reads and the one place it writes: items, resolutions, leases.

Every decision the page records goes through `Records.resolve`, the same operation as
`hybridjudge review resolve`, so the next `pytest --judge` takes the page's decisions exactly as
it takes the CLI's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import HybridJudgeConfig
from ..paths import configured
from ..review.leases import LeaseBook
from ..review.manifest import ReviewItem
from ..review.resolutions import Resolution, load_resolutions, resolutions_by_item
from ..review.store import load_items, upgrade_legacy

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Records:
    """The project's runs, resolutions and leases, as the page sees them."""

    root: Path
    config: HybridJudgeConfig
    clock: Clock = utc_now
    runs_dir: Path = field(init=False)
    resolutions_path: Path = field(init=False)
    leases: LeaseBook = field(init=False)
    _items: tuple[tuple[object, ...], list[ReviewItem]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.runs_dir = configured(self.root, self.config.runs_dir)
        self.resolutions_path = configured(self.root, self.config.resolutions)
        self.leases = LeaseBook.beside(self.resolutions_path, self.config.review.lease_minutes)

    def fingerprint(self) -> tuple[object, ...]:
        """What changes when a run or a decision is added: file sizes and times."""
        paths = [self.resolutions_path, self.runs_dir]
        if self.runs_dir.is_dir():
            for run in sorted(self.runs_dir.iterdir()):
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
            self._items = (key, load_items(self.runs_dir, "all"))
        return self._items[1]

    def resolutions(self) -> dict[str, list[Resolution]]:
        """Resolutions by item id (schema-1 ones also under today's ids)."""
        recorded = load_resolutions(self.resolutions_path, root=self.root)
        return resolutions_by_item(upgrade_legacy(recorded, self.runs_dir))

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
        """Record a decision through the review desk's one operation; validated under the
        file's lock. Returns what people now decide about the item; raises `ReviewError`."""
        from ..cli.common import Project
        from ..cli.review import make_resolution, record

        project = Project(self.root, self.config)
        resolution = make_resolution(
            item, verdict, reviewer, score, note, project, amend=amend, adjudicate=adjudicate
        )
        resolution = resolution.model_copy(update={"blind": blind, "lead_time_s": lead_time_s})
        return record(project, item, resolution)
