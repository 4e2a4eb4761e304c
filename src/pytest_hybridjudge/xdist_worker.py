"""An xdist worker's side of `pytest -n N --judge`: its cases started ahead, its part written.

The controller tells each worker (`workerinput`) the run folder and whether it hands out
groups (`xdist_groups`). A worker then starts every case of the groups it will get before its
first item arrives, writes each finished result to its part of the run folder (`RunStore`,
merged by the controller at the end; the reports then carry only the outcome), and, when it
replaces a crashed worker, takes the results the crashed one left in its part instead of
calling the providers again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .xdist_groups import group_members, worker_index, worker_share

if TYPE_CHECKING:
    from .jobs import Job
    from .runs import RunStore
    from .runstore import RunPart
    from .verdict import CaseResult

RUN_DIR_KEY = "hybridjudge_run_dir"  # workerinput: the run folder a worker writes its part in
GROUPS_KEY = "hybridjudge_groups"  # workerinput: the controller hands out groups (xdist_groups)

Evaluate = Callable[["Job"], Awaitable["CaseResult"]]


@dataclass
class WorkerShare:
    """What one xdist worker knows of its share of the run (see the module docstring)."""

    store: RunStore
    workerid: str
    workers: int
    run_dir: Path | None
    grouped: bool  # the controller hands out groups: the worker knows its cases in advance
    part: RunPart | None = None
    item_ids: list[str] = field(default_factory=list)  # the worker's collection, in order
    announced: set[str] = field(default_factory=set)  # cases started ahead or with their group
    earlier: dict[str, CaseResult] | None = None  # results a crashed worker left in its part
    in_parts: set[str] = field(default_factory=set)  # cases whose result some part holds

    @classmethod
    def open(cls, store: RunStore, workerinput: Mapping[str, Any]) -> WorkerShare:
        """The worker's share, its part opened in the run folder the controller named."""
        run_dir = workerinput.get(RUN_DIR_KEY)
        share = cls(
            store=store,
            workerid=str(workerinput.get("workerid", "")),
            workers=int(workerinput.get("workercount", 1)),
            run_dir=Path(run_dir) if run_dir else None,
            grouped=bool(workerinput.get(GROUPS_KEY)),
        )
        if share.run_dir is not None:
            try:
                share.part = store.parts(share.run_dir).open(share.workerid)
            except OSError as exc:
                raise pytest.UsageError(
                    f"hybridjudge: cannot write worker {share.workerid}'s part of the run in "
                    f"{share.run_dir} ({exc.strerror or exc}); free disk space there and run again"
                ) from None
        return share

    def evaluating(self, evaluate: Evaluate) -> Evaluate:
        """`evaluate` through the part: a result a crashed worker left is taken, not paid for
        again; each finished result is appended to the part as it finishes."""

        async def through_part(job: Job) -> CaseResult:
            if self.earlier and (done := self.earlier.pop(job.nodeid, None)) is not None:
                self.in_parts.add(job.nodeid)  # the crashed worker's part holds it
                return done
            result = await evaluate(job)
            if self.part is not None:
                try:
                    self.part.add(result)
                    self.in_parts.add(job.nodeid)
                except OSError:  # the result travels whole on its report; only the part stops
                    self.part = None
            return result

        return through_part

    def holds(self, nodeid: str) -> bool:
        """Whether a part of the run holds the case's result: its report then carries only
        the outcome, and the controller reads the result from the parts once, at the end."""
        return nodeid in self.in_parts

    def ahead(self, item_ids: Sequence[str]) -> list[str]:
        """The node ids to start now: every case of the groups this worker gets at the first
        distribution (`xdist_groups.worker_share`); none for a replacement worker or under a
        --dist the user chose (each case then starts when its item arrives)."""
        self.item_ids = list(item_ids)
        index = worker_index(self.workerid, self.workers)
        if not self.grouped or index is None:
            return []
        mine = worker_share(self.item_ids, index, self.workers)
        self.announced.update(mine)
        return mine

    def unannounced_group(self, nodeid: str) -> list[str]:
        """The cases to start with `nodeid`, if its group reached this worker unannounced (a
        crashed worker's, handed to its replacement): the group's cases not started yet. The
        crashed worker's results are read from the parts then, once."""
        if not self.grouped or nodeid in self.announced:
            return []
        if self.earlier is None:
            self.earlier = {}
            if self.run_dir is not None:
                parts = self.store.parts(self.run_dir).each()
                self.earlier.update((r.nodeid, r) for _, r in parts if r.nodeid)
        members = group_members(self.item_ids, nodeid, self.workers)
        fresh = [n for n in members if n not in self.announced]
        self.announced.update(fresh)
        return fresh

    def close(self) -> None:
        """Close the part."""
        if self.part is not None:
            self.part.close()
            self.part = None
