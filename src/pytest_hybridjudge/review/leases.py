"""Leases: who is reviewing which item right now, in a locked file beside the resolutions.

The review page hands an item out with a lease (`lease_minutes`, default 10); nobody else is
given it while the lease holds, and an expired lease frees it. A skip releases the lease and
moves the item to the end of that reviewer's own queue. The file (`leases.jsonl` beside the
resolutions file) is an append-only log of events, so two `serve` processes, or the CLI and the
page, see the same leases; every change is checked against the file under its lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..files import append_jsonl, parse_jsonl, read_locked
from .resolutions import ReviewError

LEASES_NAME = "leases.jsonl"
Action = Literal["take", "release", "skip"]


class LeaseError(ReviewError):
    """The leases file cannot be read, or an item is held by someone else."""


class LeaseEvent(BaseModel):
    """One line of the leases file: a reviewer took, released or skipped an item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str = Field(min_length=1, description="The review item")
    reviewer: str = Field(min_length=1, description="Who took, released or skipped it")
    action: Action = Field(description="take: leased until `until`; release; skip")
    at: dt.datetime = Field(description="When, timezone-aware")
    until: dt.datetime | None = Field(None, description="A take's expiry")


@dataclass(frozen=True)
class Lease:
    """An item held by a reviewer since `since` until `until`."""

    item_id: str
    reviewer: str
    since: dt.datetime
    until: dt.datetime


def _who(name: str) -> str:
    return name.strip().casefold()


@dataclass
class Leases:
    """The state the events add up to at one moment: live leases and each reviewer's skips."""

    held: dict[str, Lease] = field(default_factory=dict)
    skipped: dict[str, dict[str, dt.datetime]] = field(default_factory=dict)

    def holder(self, item_id: str) -> Lease | None:
        """The live lease on `item_id`, if any."""
        return self.held.get(item_id)

    def held_by(self, reviewer: str) -> Lease | None:
        """The reviewer's live lease (the latest taken, if several)."""
        mine = [lease for lease in self.held.values() if _who(lease.reviewer) == _who(reviewer)]
        return max(mine, key=lambda lease: lease.since) if mine else None

    def free_for(self, item_id: str, reviewer: str) -> bool:
        """No one but `reviewer` holds `item_id`."""
        lease = self.held.get(item_id)
        return lease is None or _who(lease.reviewer) == _who(reviewer)

    def order(self, item_ids: Sequence[str], reviewer: str) -> list[str]:
        """`item_ids` in the reviewer's order: the ones they skipped last, earliest skip first."""
        skips = self.skipped.get(_who(reviewer), {})
        kept = [i for i in item_ids if i not in skips]
        later = sorted((i for i in item_ids if i in skips), key=lambda i: skips[i])
        return kept + later


def fold(events: Sequence[LeaseEvent], now: dt.datetime) -> Leases:
    """The leases live at `now` and the skips, from the events in file order. Pure."""
    state = Leases()
    for event in events:
        current = state.held.get(event.item_id)
        mine = current is not None and _who(current.reviewer) == _who(event.reviewer)
        if event.action == "take" and event.until is not None:
            if current is None or mine or current.until <= event.at:
                state.held[event.item_id] = Lease(
                    event.item_id,
                    event.reviewer,
                    current.since if mine and current else event.at,
                    event.until,
                )
        elif mine:
            del state.held[event.item_id]
        if event.action == "skip":
            state.skipped.setdefault(_who(event.reviewer), {})[event.item_id] = event.at
    state.held = {k: v for k, v in state.held.items() if v.until > now}
    return state


@dataclass(frozen=True)
class LeaseBook:
    """The leases file of a project: read it, and change it under its lock."""

    path: Path
    minutes: float = 10.0

    @classmethod
    def beside(cls, resolutions: Path, minutes: float = 10.0) -> LeaseBook:
        """The leases file in the folder of the resolutions file."""
        return cls(resolutions.parent / LEASES_NAME, minutes)

    def _parse(self, data: bytes | None) -> list[LeaseEvent]:
        if not data:
            return []
        fix = "the file only holds who is reviewing what; delete it to free every item"
        return parse_jsonl(
            data.decode("utf-8", "replace"), self.path, LeaseEvent, LeaseError, "a lease", fix
        )

    def state(self, now: dt.datetime) -> Leases:
        """Live leases and skips at `now`."""
        try:
            data = read_locked(self.path)
        except OSError as exc:
            raise LeaseError(f"{self.path}: cannot read ({exc.strerror})") from None
        return fold(self._parse(data), now)

    def _append(self, event: LeaseEvent, now: dt.datetime, *, must_be_free: bool) -> None:
        def check(existing: bytes) -> None:
            if not must_be_free:
                return
            lease = fold(self._parse(existing), now).holder(event.item_id)
            if lease is not None and _who(lease.reviewer) != _who(event.reviewer):
                raise LeaseError(
                    f"item {event.item_id[:12]} is being reviewed by {lease.reviewer} until "
                    f"{lease.until:%H:%M} UTC; take the next one"
                )

        try:
            append_jsonl(self.path, [event.model_dump(mode="json")], check=check)
        except OSError as exc:
            raise LeaseError(f"{self.path}: cannot write ({exc.strerror})") from None

    def take(self, item_id: str, reviewer: str, now: dt.datetime) -> Lease:
        """Lease `item_id` to `reviewer` from `now` (renewing their own lease); `LeaseError`
        when someone else holds it."""
        until = now + dt.timedelta(minutes=self.minutes)
        event = LeaseEvent(item_id=item_id, reviewer=reviewer, action="take", at=now, until=until)
        self._append(event, now, must_be_free=True)
        lease = self.state(now).holder(item_id)
        return lease if lease is not None else Lease(item_id, reviewer, now, until)

    def next(self, item_ids: Sequence[str], reviewer: str, now: dt.datetime) -> Lease | None:
        """Lease the first of `item_ids` (in the reviewer's order) that nobody else holds; the
        reviewer's own live lease among them comes first. None when every item is held."""
        for _ in range(20):  # another reviewer may take the same item between read and write
            state = self.state(now)
            own = state.held_by(reviewer)
            if own is not None and own.item_id in item_ids:
                return own
            free = [i for i in state.order(item_ids, reviewer) if state.free_for(i, reviewer)]
            if not free:
                return None
            try:
                return self.take(free[0], reviewer, now)
            except LeaseError:
                continue
        return None

    def release(self, item_id: str, reviewer: str, now: dt.datetime) -> None:
        """End the reviewer's lease on `item_id` (after a decision)."""
        self._append(
            LeaseEvent(item_id=item_id, reviewer=reviewer, action="release", at=now),
            now,
            must_be_free=False,
        )

    def skip(self, item_id: str, reviewer: str, now: dt.datetime) -> None:
        """Release `item_id` and move it to the end of the reviewer's own queue."""
        self._append(
            LeaseEvent(item_id=item_id, reviewer=reviewer, action="skip", at=now),
            now,
            must_be_free=False,
        )
