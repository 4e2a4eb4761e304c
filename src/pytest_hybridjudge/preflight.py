"""Every path a run will write, checked before the first paid call: a bad one names its key."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError

SQLITE_HEADER = b"SQLite format 3\x00"


class UnwritablePath(InputError):
    """A path the run must write cannot be written; the message names the setting and the fix."""


def check_cache(path: Path, key: str = "cache_path") -> None:
    """The cache is a new file, an empty file or an SQLite database, in a writable folder."""
    if path.is_dir():
        raise UnwritablePath(f"`{key}` = {path} is a folder; name a file such as cache.sqlite")
    if path.is_file():
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
        if head and head != SQLITE_HEADER:
            raise UnwritablePath(
                f"`{key}` = {path} is not an SQLite database; point `{key}` at a new file "
                "or delete this one"
            )
        if not os.access(path, os.W_OK):
            raise UnwritablePath(f"`{key}` = {path} is read-only; make it writable or move it")
        if head and (problem := _sqlite_problem(path)):
            raise UnwritablePath(
                f"`{key}` = {path} is a damaged SQLite database ({problem}); delete it (the "
                f"cache fills again as the run calls the providers) or point `{key}` at a new file"
            )
        return
    check_folder(path.parent, key)


def _sqlite_problem(path: Path) -> str | None:
    """What SQLite's quick check finds wrong with the database at `path`, or None."""
    import contextlib
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    found = [str(row[0]) for row in rows if row and row[0] != "ok"]
    return "; ".join(found[:3]) or None


def check_folder(folder: Path, key: str) -> None:
    """`folder` exists or can be made, and a file can be written in it."""
    if folder.exists() and not folder.is_dir():
        raise UnwritablePath(f"`{key}`: {folder} is a file, not a folder; choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UnwritablePath(
            f"`{key}`: cannot write in {folder} ({exc.strerror or exc}); choose a writable path"
        ) from None


def check_file(path: Path, key: str) -> None:
    """`path` can be (re)written: not a folder, in a writable folder."""
    if path.is_dir():
        raise UnwritablePath(f"`{key}` = {path} is a folder; name a file")
    check_folder(path.parent, key)
