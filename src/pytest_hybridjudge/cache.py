"""SQLite cache of provider completions, shared safely by several processes (WAL mode)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from .providers.base import Completion

MIGRATIONS = [
    """
    CREATE TABLE IF NOT EXISTS completions (
        key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        response TEXT NOT NULL,
        created REAL NOT NULL
    )
    """,
]


_KEYS_PER_QUERY = 500  # well under SQLite's limit on bound parameters (999 before 3.32)


def _completion(response: str) -> Completion | None:
    """A cached completion from its stored JSON; None for a row that cannot be read (a miss:
    the next put replaces it)."""
    try:
        data = json.loads(response)
        completion = Completion(**data)
        if not isinstance(completion.text, str):
            return None
    except (ValueError, TypeError):
        return None
    completion.cached = True
    completion.requests = 0
    return completion


class CompletionCache:
    """Completions by request hash. `mode` is `use`, `refresh` (write only) or `off`."""

    def __init__(self, path: Path, mode: str = "use"):
        self.path, self.mode = path, mode
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        # look-ups asked for in this turn of the event loop, read together by `_read_pending`
        # (each caller waits on a future of its own: cancelling one leaves the others theirs)
        self._pending: dict[str, list[asyncio.Future[str | None]]] = {}
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        if mode != "off":
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()

    def _migrate(self) -> None:
        assert self._db is not None
        with self._db:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, statement in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    def get(self, key: str) -> Completion | None:
        """The stored completion for `key`, or None (always None unless mode is `use`)."""
        if self._db is None or self.mode != "use":
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM completions WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _completion(row[0])

    async def lookup(self, key: str) -> Completion | None:
        """`get`, with every look-up of one turn of the event loop read in one query (a cached
        run asks for the target calls of all the cases in flight at once, then their judges)."""
        if self._db is None or self.mode != "use":
            return None
        response = await self._enqueue(key)
        return None if response is None else _completion(response)

    async def lookup_many(self, keys: Sequence[str]) -> list[Completion | None]:
        """`lookup` of several keys with one wait: a case's judges are looked up together."""
        if self._db is None or self.mode != "use":
            return [None] * len(keys)
        waiting = [self._enqueue(key) for key in keys]
        try:  # the first wait reads them all: the others are done when it returns
            responses = [await future for future in waiting]
        except BaseException:  # the read failed, or this caller was cancelled
            for future in waiting:
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # the same error, raised once below
            raise
        return [None if r is None else _completion(r) for r in responses]

    def _enqueue(self, key: str) -> asyncio.Future[str | None]:
        """A future for `key`'s stored response, read with the rest of this turn's look-ups."""
        loop = asyncio.get_running_loop()
        if not self._pending or self._pending_loop is not loop:  # (a closed loop's are dropped)
            self._pending, self._pending_loop = {}, loop
            loop.call_soon(self._read_pending)
        waiting: asyncio.Future[str | None] = loop.create_future()
        self._pending.setdefault(key, []).append(waiting)
        return waiting

    def _read_pending(self) -> None:
        pending, self._pending = self._pending, {}
        try:
            found = self._responses(pending)
        except Exception as exc:  # each caller waiting gets the error `get` would raise
            for futures in pending.values():
                for waiting in futures:
                    if not waiting.done():  # (a cancelled caller's is done)
                        waiting.set_exception(exc)
            return
        for key, futures in pending.items():
            response = found.get(key)
            for waiting in futures:
                if not waiting.done():
                    waiting.set_result(response)

    def _responses(self, keys: Collection[str]) -> dict[str, str]:
        """The stored responses of those of `keys` that have one, by key."""
        assert self._db is not None
        keys = list(keys)
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT key, response FROM completions WHERE key IN ({marks})", chunk
                    ).fetchall()
                )
        return found

    def put(self, key: str, provider: str, model: str, completion: Completion) -> None:
        """Store a completion (no-op when the cache is off)."""
        if self._db is None:
            return
        payload = json.dumps(completion.to_json())
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)",
                (key, provider, model, payload, time.time()),
            )

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
            self._db = None
