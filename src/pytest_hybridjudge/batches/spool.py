"""`pytest -n N --judge-batch`: a worker's batches handed to the controller as spool files.

A worker's broker keeps its waves, but its batch API is the spool in the run folder
(`<run>/spool/<worker>/`): a wave's requests are written to `<key>.requests.json` (as the
worker's write-ahead, with each request's cache key), the controller's desk (spool_desk.py)
gathers every worker's requests into one wave of provider batches, and writes the worker's
results back to `<key>.results.json`. `state.json` says whether the worker has cases in
progress, so a wave waits only for busy workers. Every file is written whole (atomically)
and read only once it is there: never half of one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import write_text_atomic
from .ledger import BatchLedger
from .transport import BatchLimits, BatchProgress, BatchRequest, BatchResult, BatchUnsupported

FOLDER = "spool"
REQUESTS = ".requests.json"
RESULTS = ".results.json"
STATE = "state.json"
TICK = 0.05  # seconds between two looks at the spool (a local file: cheap)
# the worker never splits: the controller splits the gathered wave at the provider's limits
UNLIMITED = BatchLimits(max_requests=2**31, max_bytes=2**62)


def spool_folder(run_dir: Path) -> Path:
    """Where the workers of the run in `run_dir` spool their batch requests."""
    return run_dir / FOLDER


@dataclass(frozen=True)
class SpooledWave:
    """One worker's batch, as it spooled it: its requests (custom_id, cache key, body)."""

    worker: str
    key: str
    provider: str
    requests: tuple[tuple[str, str, Mapping[str, Any]], ...]


def read_wave(path: Path) -> SpooledWave:
    """A `<key>.requests.json` file of the worker whose folder holds it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return SpooledWave(
        worker=path.parent.name,
        key=str(data["key"]),
        provider=str(data["provider"]),
        requests=tuple((r["custom_id"], r["request_key"], r["body"]) for r in data["requests"]),
    )


def write_results(
    folder: Path, key: str, results: Sequence[BatchResult], unsupported: str | None = None
) -> None:
    """The controller's answer to a worker's batch `key`; `unsupported`: the provider has no
    batch API (the message says the fix)."""
    data: dict[str, Any] = {
        "results": [
            {"custom_id": r.custom_id, "kind": r.kind, "body": r.body, "error": r.error}
            for r in results
        ]
    }
    if unsupported is not None:
        data["unsupported"] = unsupported
    write_text_atomic(folder / f"{key}{RESULTS}", json.dumps(data, separators=(",", ":")))


def read_state(folder: Path) -> bool | None:
    """Whether the worker is idle (no case in progress); None until it said."""
    try:
        return bool(json.loads((folder / STATE).read_text(encoding="utf-8"))["idle"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(folder: Path, idle: bool) -> None:
    """Say whether this worker has cases in progress."""
    write_text_atomic(folder / STATE, json.dumps({"idle": idle}))


async def report_state(folder: Path, pending: Callable[[], int]) -> None:
    """Keep `state.json` up to date with whether the worker has cases to run (until cancelled)."""
    said: bool | None = None
    while True:
        idle = pending() == 0
        if idle != said:
            write_state(folder, idle)
            said = idle
        await asyncio.sleep(TICK)


class SpoolLedger(BatchLedger):
    """A worker's write-ahead: each batch's requests spooled for the controller, which keeps
    the run's real ledger (ledger.py) of the provider batches it creates from them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._ended: list[Path] = []

    def write_ahead(
        self, key: str, provider: str, requests: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> None:
        """Spool the batch's requests (the controller takes the file once it is whole)."""
        data = {
            "key": key,
            "provider": provider,
            "requests": [
                {"custom_id": cid, "request_key": rkey, "body": body}
                for cid, rkey, body in requests
            ],
        }
        write_text_atomic(self.folder / f"{key}{REQUESTS}", json.dumps(data, separators=(",", ":")))

    def created(self, key: str, batch_id: str, path: Path | None = None) -> None:
        """Nothing to record: the controller's ledger holds the provider's batch id."""

    def ended(self, key: str, path: Path | None = None) -> None:
        """Nothing to record (the results were read and their files removed)."""

    def collected(self, key: str, path: Path | None = None) -> None:
        """Nothing to record."""

    def close(self) -> None:
        """Nothing to record."""


class SpoolTransport:
    """A worker's batch API: `create` confirms the spooled requests (SpoolLedger wrote them),
    `progress` and `results` read what the controller wrote back."""

    limits = UNLIMITED

    def __init__(self, folder: Path):
        self.folder = folder

    def request(self, custom_id: str, body: Mapping[str, Any]) -> BatchRequest:
        """The request as the worker spools it: the provider's body, wrapped by the controller."""
        return BatchRequest(custom_id, body)

    def size(self, request: BatchRequest) -> int:
        """The worker never splits (see UNLIMITED)."""
        return 1

    async def create(self, requests: Sequence[BatchRequest], key: str) -> str:
        """The spooled batch's id: its key."""
        if not (self.folder / f"{key}{REQUESTS}").exists():
            raise RuntimeError(f"batch {key}: no spooled request list in {self.folder}")
        return key

    async def find(self, key: str) -> str | None:
        """Never needed: the spool file is the batch."""
        return None

    async def progress(self, batch_id: str) -> BatchProgress:
        """Ended once the controller wrote the results."""
        if (self.folder / f"{batch_id}{RESULTS}").exists():
            return BatchProgress(batch_id, "ended")
        return BatchProgress(batch_id, "in_progress")

    async def results(self, batch_id: str) -> list[BatchResult]:
        """The controller's results for the batch (its files then removed); BatchUnsupported
        if the provider has no batch API."""
        path = self.folder / f"{batch_id}{RESULTS}"
        data = json.loads(path.read_text(encoding="utf-8"))
        if "unsupported" in data:
            raise BatchUnsupported(str(data["unsupported"]))
        results = [
            BatchResult(r["custom_id"], r["kind"], body=r["body"], error=r["error"])
            for r in data["results"]
        ]
        path.unlink(missing_ok=True)
        (self.folder / f"{batch_id}{REQUESTS}").unlink(missing_ok=True)
        return results

    async def cancel(self, batch_id: str) -> None:
        """Nothing: only the controller cancels provider batches."""

    def transient(self, exc: BaseException) -> bool:
        """Never: the spool is local files."""
        return False
