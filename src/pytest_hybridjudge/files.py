"""The one file layer: atomic writes, JSONL reading and a locked append.

Every file the tool writes goes through here, so that an interrupted run never leaves a half-written
file behind, concurrent appends never interleave, and new files follow the user's umask.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import describe_validation_error

if sys.platform != "win32":
    import fcntl

M = TypeVar("M", bound=BaseModel)


# --- atomic writes -------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[str]]:
    """A text handle on a temporary file beside `path`; on a clean exit it is fsynced, given the
    mode a new file would get under the umask, and renamed over `path`. On error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: readers see the old file or the new one, never half."""
    with atomic_writer(path) as handle:
        handle.write(text)


def json_line(record: dict[str, Any]) -> str:
    """One compact JSON object and its newline."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One compact JSON object per line, written atomically."""
    write_text_atomic(path, "".join(json_line(r) for r in records))


def write_json_atomic(path: Path, data: Any) -> None:
    """Pretty JSON, written atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --- JSONL reading -------------------------------------------------------------------------


def jsonl_lines(text: str) -> Iterable[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, split on `\\n` only.

    `str.splitlines` would also split on U+2028 and friends, which JSON strings may hold raw.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def jsonl_objects(
    text: str, path: Path, error: type[Exception], fix: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per line; a line that is not a JSON object raises `error` naming
    `path:line` and the fix."""
    for number, line in jsonl_lines(text):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{number}: not valid JSON ({exc.msg}); {fix}") from None
        if not isinstance(data, dict):
            raise error(f"{path}:{number}: expected a JSON object; {fix}")
        yield number, data


def parse_jsonl(
    text: str, path: Path, model: type[M], error: type[Exception], what: str, fix: str
) -> list[M]:
    """One `model` per line; the first bad line raises `error` naming `path:line` and the fix."""
    records = []
    for number, data in jsonl_objects(text, path, error, fix):
        try:
            records.append(model.model_validate(data))
        except ValidationError as exc:
            raise error(
                f"{path}:{number}: not {what}: {describe_validation_error(exc)}; {fix}"
            ) from None
    return records


# --- locked reading and appending ----------------------------------------------------------


def _lock(handle: IO[bytes], exclusive: bool) -> None:
    if sys.platform != "win32":
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unlock(handle: IO[bytes]) -> None:
    if sys.platform != "win32":
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_locked(path: Path) -> bytes | None:
    """The bytes of `path`, read under a shared lock (so never half an append); None if missing."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        _lock(handle, exclusive=False)
        try:
            return handle.read()
        finally:
            _unlock(handle)


def append_jsonl(
    path: Path,
    records: Iterable[dict[str, Any]],
    *,
    check: Callable[[bytes], None] | None = None,
) -> None:
    """Append compact JSON lines to `path`; the bytes already there never change.

    The file is held under an exclusive `flock` while it is read, checked and appended, then
    flushed and fsynced. Parent folders are created. If the file does not end with a newline
    (edited by hand), one is written first. `check`, if given, is called under the lock with the
    file's current bytes and may raise to abandon the append (so two writers appending at once
    cannot slip past a check such as a duplicate test).
    """
    lines = [json_line(r) for r in records]
    if not lines:
        return

    def build(existing: bytes) -> list[dict[str, Any]] | list[str]:
        if check is not None:
            check(existing)
        return lines

    append_jsonl_built(path, build)


def append_jsonl_built(
    path: Path, build: Callable[[bytes], list[dict[str, Any]] | list[str]]
) -> None:
    """Append the lines `build` returns, `build` being called under the exclusive lock with the
    file's current bytes (see `append_jsonl`): it decides what to write from what is there, in
    one lock for the whole batch. It may return records or ready `json_line`s; nothing is written
    when it returns none (a missing file is created empty); it may raise to abandon the append."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        _lock(handle, exclusive=True)
        try:
            handle.seek(0)
            existing = handle.read()
            lines = build(existing)
            data = "".join(r if isinstance(r, str) else json_line(r) for r in lines)
            if data:
                if existing and not existing.endswith(b"\n"):
                    data = "\n" + data
                handle.write(data.encode("utf-8"))  # "a" mode: always at the end
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            _unlock(handle)


# --- moving a file -------------------------------------------------------------------------


def move_file(old: Path, new: Path) -> None:
    """Move `old` to `new` (which must not exist), across filesystems too.

    A rename where it can be one; otherwise the bytes are copied to a temporary file beside
    `new`, fsynced, renamed into place, and only then is `old` removed: an interruption leaves
    the file at its old place, or at both, never half of it.
    """
    import shutil

    new.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(old, new)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    with old.open("rb") as source, atomic_writer_bytes(new) as target:
        shutil.copyfileobj(source, target)
    shutil.copystat(old, new)
    old.unlink()


@contextlib.contextmanager
def atomic_writer_bytes(path: Path) -> Iterator[IO[bytes]]:
    """As `atomic_writer`, for bytes."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- a file of whole lines ------------------------------------------------------------------


class LineSpool:
    """A file appended one whole line at a time; a failed write leaves only whole lines.

    Each line goes out in one unbuffered write (continued if the system writes it short), so a
    killed run keeps every line it finished. If a write fails (disk full, a file size limit),
    the file is cut back to its last whole line and the `OSError` is raised again.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lines = 0
        self._size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb", buffering=0)

    def write(self, line: str) -> None:
        """Append `line` (which ends with a newline) whole, or not at all."""
        data = memoryview(line.encode("utf-8"))
        written = 0
        try:
            while written < len(data):
                written += self._file.write(data[written:]) or 0
        except OSError:
            with contextlib.suppress(OSError):
                self._file.truncate(self._size)
            raise
        self._size += len(data)
        self.lines += 1

    def close(self, sync: bool = True) -> None:
        """fsync (unless `sync` is False) and close."""
        if sync:
            os.fsync(self._file.fileno())
        self._file.close()
