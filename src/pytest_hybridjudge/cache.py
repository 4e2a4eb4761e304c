"""SQLite cache of provider completions, shared safely by several processes (WAL mode)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
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


class CompletionCache:
    """Completions by request hash. `mode` is `use`, `refresh` (write only) or `off`."""

    def __init__(self, path: Path, mode: str = "use"):
        self.path, self.mode = path, mode
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
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
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            completion = Completion(**data)
            if not isinstance(completion.text, str):
                return None
        except (ValueError, TypeError):
            return None  # an unreadable row is a miss; the next put replaces it
        completion.cached = True
        completion.requests = 0
        return completion

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
