"""Reading the source files importers take: JSON, JSONL and CSV records with their lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..safeload import UnsafeInput, decode_utf8, load_json_line
from .report import SourceError

LFS_POINTER = "version https://git-lfs.github.com/spec/v1"


@dataclass(frozen=True)
class Record:
    """One record of a source file and where it starts (`file:line`)."""

    where: str
    line: int
    data: Any


def read_text(path: Path) -> str:
    """UTF-8 text of `path` (a BOM dropped); SourceError for a missing file, bad bytes or an
    unfetched Git LFS pointer."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a folder; name a file") from None
    try:
        text = decode_utf8(raw).removeprefix("\ufeff")
    except UnsafeInput as exc:
        raise SourceError(f"{path}:{exc.line}: {exc.problem}") from None
    if text.startswith(LFS_POINTER):
        raise SourceError(
            f"{path}:1: is a Git LFS pointer, not the data (the file was never fetched from "
            "LFS storage); run `git lfs pull` (or `git lfs fetch --all`) in its repository, "
            "then import the real file"
        )
    return text


def records(path: Path, kind: str | None = None) -> Iterator[Record]:
    """The records of a `.json` (a list), `.jsonl` or `.csv`/`.tsv` file, by suffix or `kind`."""
    kind = kind or path.suffix.lower().lstrip(".")
    text = read_text(path)
    if kind in ("jsonl", "ndjson"):
        yield from _jsonl(path, text)
    elif kind == "json":
        yield from _json(path, text)
    elif kind in ("csv", "tsv"):
        yield from csv_records(path, text, delimiter="\t" if kind == "tsv" else None)
    else:
        raise SourceError(f"{path}: cannot read a .{kind} file; give a .json, .jsonl or .csv file")


def _jsonl(path: Path, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = load_json_line(line)
        except (UnsafeInput, json.JSONDecodeError) as exc:
            problem = exc.problem if isinstance(exc, UnsafeInput) else exc.msg
            raise SourceError(f"{path}:{number}: not valid JSON ({problem})") from None
        yield Record(f"{path}:{number}", number, data)


def _json(path: Path, text: str) -> Iterator[Record]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):  # {"goldens": [...]}, {"samples": [...]}: the one list inside
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list):
        raise SourceError(f"{path}:1: expected a JSON list of records")
    lines = _item_lines(text, len(data))
    for index, item in enumerate(data):
        yield Record(f"{path}:{lines[index]}", lines[index], item)


def _item_lines(text: str, count: int) -> list[int]:
    """The line each top-level item of a JSON list starts on (found by decoding item by item)."""
    decoder, lines = json.JSONDecoder(), []
    start = text.index("[") + 1 if "[" in text else 0
    pos = start
    for _ in range(count):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        lines.append(text.count("\n", 0, pos) + 1)
        try:
            pos = decoder.raw_decode(text, pos)[1]
        except json.JSONDecodeError:
            lines += [lines[-1]] * (count - len(lines))
            break
    return lines


def csv_records(path: Path, text: str, delimiter: str | None = None) -> Iterator[Record]:
    """Rows of a CSV as mappings by header, each with the line it starts on.

    Reads both of Inspect's dialects (`unix`: every field quoted, `\\n` line ends; `excel`:
    quoted only where needed, `\\r\\n`) and tab-separated files (sniffed from the header).
    """
    header = text.split("\n", 1)[0]
    if delimiter is None:
        delimiter = "\t" if "\t" in header and "," not in header else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        names = next(reader)
    except StopIteration:
        return
    names = [n.strip() for n in names]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SourceError(f"{path}:1: column(s) {duplicated} appear twice; rename one")
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            raise SourceError(
                f"{path}:{line}: {len(row)} cells but {len(names)} columns; quote cells "
                "that contain the delimiter"
            )
        yield Record(
            f"{path}:{line}",
            line,
            dict(zip(names, row + [""] * (len(names) - len(row)), strict=False)),
        )
