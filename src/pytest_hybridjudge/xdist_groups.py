"""Cases in groups under `pytest -n N --judge`: which worker runs which case, known in advance.

A case's group is a stable hash of its node id (`group_of`); there are `GROUPS_PER_WORKER`
groups per worker, and at the first distribution group g is reserved for worker `gw{g % N}`
(`owner_of`), which is sent its groups one after another as it runs short. The controller's
scheduler (`JudgeGroupScheduling`, built by the plugin's `pytest_xdist_make_scheduler`) and
each worker (`worker_share`) compute the same plan from the same collection, so a worker
starts every case it will get before its first item arrives.

No work is stolen: a worker starts all its cases at once, so an idle worker taking a slow
one's groups would pay again for calls already made. A crashed worker's unfinished groups go,
whole, to the next node with room (its replacement, usually), which starts a group when its
first item arrives and takes the results the crashed worker left in its part of the run
folder instead of calling again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest
    from xdist.remote import Producer
    from xdist.workermanage import WorkerController

GROUPS_PER_WORKER = 8
_WORKER_ID = re.compile(r"gw(\d+)")


def group_count(workers: int) -> int:
    """How many groups the cases of a run with `workers` workers fall into."""
    return max(1, workers) * GROUPS_PER_WORKER


def group_of(nodeid: str, groups: int) -> int:
    """The group of a node id: a stable hash (the same in every process, unlike `hash`)."""
    digest = hashlib.blake2b(nodeid.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % groups


def owner_of(group: int, workers: int) -> int:
    """The index of the worker a group goes to at the first distribution."""
    return group % max(1, workers)


def worker_index(workerid: str, workers: int) -> int | None:
    """The index of an original worker (`gw0` .. `gw{N-1}`); None for a replacement worker
    (`gw{N}` and up, started after a crash) or an id of another shape."""
    match = _WORKER_ID.fullmatch(workerid)
    if match is None or int(match[1]) >= workers:
        return None
    return int(match[1])


def plan(nodeids: Iterable[str], workers: int) -> dict[int, list[str]]:
    """Group -> its node ids in collection order, groups in ascending order (the order in
    which a worker receives them)."""
    groups = group_count(workers)
    grouped: dict[int, list[str]] = {}
    for nodeid in nodeids:
        grouped.setdefault(group_of(nodeid, groups), []).append(nodeid)
    return dict(sorted(grouped.items()))


def worker_share(nodeids: Iterable[str], index: int, workers: int) -> list[str]:
    """The node ids worker `index` receives at the first distribution, in the order it runs
    them."""
    return [
        nodeid
        for group, members in plan(nodeids, workers).items()
        if owner_of(group, workers) == index
        for nodeid in members
    ]


def group_members(nodeids: Sequence[str], nodeid: str, workers: int) -> list[str]:
    """The node ids of `nodeid`'s group (it included), in collection order."""
    groups = group_count(workers)
    group = group_of(nodeid, groups)
    return [other for other in nodeids if group_of(other, groups) == group]


class JudgeGroupScheduling:
    """An xdist scheduler (`xdist.scheduler.protocol.Scheduling`) that hands out whole groups.

    At the first distribution every group is reserved for its owner (`owner_of`) and sent to it
    a group at a time, the next one when fewer than `LOW` of its items wait (so `-x` and
    `--maxfail` still stop a node after its current group; the cases it started ahead and
    finished are in its part). A reserved group never goes to another node, which would pay
    again for calls its owner made. A group whose owner is not up, and a crashed node's
    unfinished groups (minus the item it crashed on, reported failed by xdist as its own
    schedulers do), go to the first node with room, which starts each when its first item
    arrives and takes what the crashed node left in its part.
    """

    LOW = 2  # a node is sent its next group when fewer of its items than this wait

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        from xdist.remote import Producer
        from xdist.workermanage import parse_tx_spec_config

        self.config = config
        self.numnodes = len(parse_tx_spec_config(config))
        self.log = log.judgegroupsched if log is not None else Producer("judgegroupsched")
        self.collection: list[str] | None = None
        self.queue: dict[int, list[str]] = {}  # groups any node may take
        self.reserved: dict[WorkerController, list[list[str]]] = {}  # a node's groups to send
        self.assigned: dict[WorkerController, dict[str, bool]] = {}  # node -> nodeid -> done
        self.collections: dict[WorkerController, list[str]] = {}
        self.waiting: dict[WorkerController, int] = {}  # items sent to a node, not complete

    # -- the protocol's questions --------------------------------------------------------

    @property
    def nodes(self) -> list[WorkerController]:
        """The nodes taking part now."""
        return list(self.assigned)

    @property
    def collection_is_completed(self) -> bool:
        """Whether every initial node has sent its collection."""
        return len(self.collections) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        """Whether every item was run (an item is complete once the next one started)."""
        if not self.collection_is_completed or self.queue or any(self.reserved.values()):
            return False
        return all(waiting < 2 for waiting in self.waiting.values())

    @property
    def has_pending(self) -> bool:
        """Whether any item is queued, reserved or sent and not run yet."""
        if self.queue or any(self.reserved.values()):
            return True
        return any(self.waiting.values())

    # -- nodes come and go ---------------------------------------------------------------

    def add_node(self, node: WorkerController) -> None:
        """A node is up; it gets work once its collection is in."""
        assert node not in self.assigned
        self.assigned[node] = {}
        self.waiting[node] = 0

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        """Keep a node's collection; a late node's must match the run's."""
        assert node in self.assigned
        late = self.collection_is_completed and self.collection is not None
        if late and list(collection) != self.collection:
            from xdist.report import report_collection_diff

            assert self.collection is not None
            first = next(iter(self.collections))
            self.log(
                report_collection_diff(
                    self.collection, collection, first.gateway.id, node.gateway.id
                )
            )
            return
        self.collections[node] = list(collection)

    def remove_node(self, node: WorkerController) -> str | None:
        """Drop a node; if it crashed, queue its unfinished and unsent groups for any node and
        return the item it crashed on (the first one not complete)."""
        work = self.assigned.pop(node)
        self.waiting.pop(node, None)
        unsent = [nodeid for group in self.reserved.pop(node, []) for nodeid in group]
        unfinished = [nodeid for nodeid, done in work.items() if not done]
        if not unfinished:
            self._queue(unsent)
            return None
        self._queue(unfinished[1:] + unsent)
        for other in self.nodes:
            self._reschedule(other)
        return unfinished[0]

    # -- work ----------------------------------------------------------------------------

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        """An item finished on `node`: send it its next group if it runs short."""
        work, nodeid = self.assigned[node], self.collections[node][item_index]
        if not work.get(nodeid, True):
            work[nodeid] = True
            self.waiting[node] -= 1
        self._reschedule(node)

    def mark_test_pending(self, item: str) -> None:
        """Not used: items are never taken back from a node (see the class docstring)."""
        raise NotImplementedError

    def remove_pending_tests_from_node(
        self, node: WorkerController, indices: Sequence[int]
    ) -> None:
        """Not used: this scheduler never asks a node to give items back."""
        raise NotImplementedError

    def schedule(self) -> None:
        """The first distribution (each group reserved for its owner), or, later, work for a
        node that came up (a crashed node's replacement)."""
        assert self.collection_is_completed
        if self.collection is None:
            collections = list(self.collections.values())
            if any(c != collections[0] for c in collections[1:]):
                self._report_different_collections()
                return
            self.collection = collections[0]
            workers = max(1, self.numnodes)
            by_index = {worker_index(n.gateway.id, workers): n for n in self.nodes}
            for group, members in plan(self.collection, workers).items():
                owner = by_index.get(owner_of(group, workers))
                if owner is None:
                    self.queue[group] = members
                else:
                    self.reserved.setdefault(owner, []).append(members)
        for node in self.nodes:
            self._reschedule(node)

    def _reschedule(self, node: WorkerController) -> None:
        """Send `node` groups while fewer than `LOW` of its items wait: its own first, then
        any queued; shut it down once nothing is left for it."""
        if node.shutting_down or node not in self.collections:
            return
        own = self.reserved.get(node, [])
        while self.waiting[node] < self.LOW and (own or self.queue):
            self._send(node, own.pop(0) if own else self.queue.pop(min(self.queue)))
        if not own and not self.queue:
            node.shutdown()  # its last items are sent: it ends after them

    def _queue(self, nodeids: Sequence[str]) -> None:
        for group, members in plan(nodeids, max(1, self.numnodes)).items():
            self.queue.setdefault(group, []).extend(members)

    def _send(self, node: WorkerController, nodeids: Sequence[str]) -> None:
        where = {nodeid: index for index, nodeid in enumerate(self.collections[node])}
        work = self.assigned[node]
        for nodeid in nodeids:
            work[nodeid] = False
        self.waiting[node] += len(nodeids)
        node.send_runtest_some([where[nodeid] for nodeid in nodeids])

    def _report_different_collections(self) -> None:
        """As xdist's own schedulers do: a collection report per node that differs."""
        import pytest
        from xdist.report import report_collection_diff

        (first, col), *others = self.collections.items()
        for node, collection in others:
            msg = report_collection_diff(col, collection, first.gateway.id, node.gateway.id)
            if msg:
                self.log(msg)
                report = pytest.CollectReport(node.gateway.id, "failed", longrepr=msg, result=[])
                self.config.hook.pytest_collectreport(report=report)
