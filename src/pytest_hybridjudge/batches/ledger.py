"""The write-ahead record of a run's provider batches: `runs/<run>/batches/<key>.jsonl`.

One file per batch, appended and fsynced at each step, so a kill at any point leaves a record a
rerun can act on:

1. before `create`: the idempotency key, the provider and every request (custom_id, request
   cache key, body);
2. right after: the batch id (a kill between 1 and 2 is what `transport.find(key)` is for);
3. `ended` once its results were read; `collected` once the run that read them finished (or
   when nothing was created: a refused or failed `create`).

A batch is uncollected until step 3's `collected`: a rerun collects it instead of paying again,
`hybridjudge batch cancel RUN` cancels it, and `hybridjudge runs prune` keeps its run folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RecordError

FOLDER = "batches"


@dataclass(frozen=True)
class LedgerEntry:
    """One batch as its ledger file tells it."""

    path: Path
    key: str  # the idempotency key
    provider: str
    requests: tuple[tuple[str, str], ...]  # (custom_id, request cache key)
    batch_id: str | None  # None: killed before the id was written (or create never returned)
    ended: bool
    collected: bool

    @property
    def run_id(self) -> str:
        """The run that created it."""
        return self.path.parent.parent.name


class BatchLedger:
    """Writes one run's batch records (in `run_dir/batches`)."""

    def __init__(self, run_dir: Path):
        self.folder = run_dir / FOLDER
        self._ended: list[Path] = []

    def path_of(self, key: str) -> Path:
        """The record of the batch with idempotency key `key`."""
        return self.folder / f"{key}.jsonl"

    def write_ahead(
        self, key: str, provider: str, requests: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> None:
        """The batch's requests, before it is created (fsynced, with its folder)."""
        fresh = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        head = {
            "key": key,
            "provider": provider,
            "requests": [
                {"custom_id": cid, "request_key": rkey, "body": body}
                for cid, rkey, body in requests
            ],
        }
        _append(self.path_of(key), head)
        _sync_folder(self.folder)
        if fresh:
            _sync_folder(self.folder.parent)

    def created(self, key: str, batch_id: str, path: Path | None = None) -> None:
        """The provider's id of the batch, right after `create` returned it."""
        _append(path or self.path_of(key), {"batch_id": batch_id})

    def ended(self, key: str, path: Path | None = None) -> None:
        """Its results were read; it is marked collected when this run closes."""
        target = path or self.path_of(key)
        _append(target, {"ended": True})
        self._ended.append(target)

    def collected(self, key: str, path: Path | None = None) -> None:
        """Nothing more to fetch from it (or it was never created)."""
        _append(path or self.path_of(key), {"collected": True})

    def close(self) -> None:
        """The run finished: every batch whose results it read is collected (their answers
        are in the cache)."""
        for path in self._ended:
            _append(path, {"collected": True})
        self._ended.clear()


def read_entry(path: Path) -> LedgerEntry:
    """One ledger file; RecordError naming `path:line` if a line is not the ledger's JSON (a
    torn last line, from a kill mid-write, is ignored)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                break  # torn by a kill
            raise RecordError(
                f"{path}:{number}: not a batch ledger line; remove the file if its batch is "
                "done (`hybridjudge batch cancel` reads it first)"
            ) from None
    if not records or "requests" not in records[0]:
        raise RecordError(f"{path}:1: no batch request list; it was cut before it was written")
    head = records[0]
    batch_id = next((r["batch_id"] for r in records if "batch_id" in r), None)
    return LedgerEntry(
        path=path,
        key=str(head["key"]),
        provider=str(head["provider"]),
        requests=tuple((r["custom_id"], r["request_key"]) for r in head["requests"]),
        batch_id=batch_id,
        ended=any(r.get("ended") for r in records),
        collected=any(r.get("collected") for r in records),
    )


def uncollected(runs_dir: Path, run_id: str | None = None) -> list[LedgerEntry]:
    """Every uncollected batch of the runs in `runs_dir` (or of one run), oldest run first.
    A file cut before its request list was written is skipped: that batch was never created."""
    if not runs_dir.is_dir():
        return []
    entries = []
    for run_dir in sorted(runs_dir.iterdir()):  # run ids sort by time
        if (run_id is not None and run_dir.name != run_id) or run_dir.is_symlink():
            continue
        for path in sorted((run_dir / FOLDER).glob("*.jsonl")):
            try:
                entry = read_entry(path)
            except RecordError:
                continue
            if not entry.collected:
                entries.append(entry)
    return entries


def _append(path: Path, record: Mapping[str, Any]) -> None:
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a new file's name durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
