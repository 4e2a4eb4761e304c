"""Reading the plugin's JSONL files (manifests, results, resolutions) into validated models."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """The pydantic errors as one short phrase per field: `'score': Input should be ...`."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        parts.append(f"'{key}': {err['msg']}" if key else str(err["msg"]))
    return "; ".join(parts)


def jsonl_lines(text: str) -> Iterable[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, split on `\\n` only.

    `str.splitlines` would also split on U+2028 and friends, which JSON strings may hold raw.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def parse_jsonl(
    text: str, path: Path, model: type[M], error: type[Exception], what: str, fix: str
) -> list[M]:
    """One `model` per line; the first bad line raises `error` naming `path:line` and the fix."""
    records = []
    for number, line in jsonl_lines(text):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{number}: not valid JSON ({exc.msg}); {fix}") from None
        if not isinstance(data, dict):
            raise error(f"{path}:{number}: expected a JSON object; {fix}")
        try:
            records.append(model.model_validate(data))
        except ValidationError as exc:
            raise error(
                f"{path}:{number}: not {what}: {describe_validation_error(exc)}; {fix}"
            ) from None
    return records


def recorded_path(runs_dir: Path, run_id: str, key: str, default_name: str) -> Path:
    """Where run `run_id` wrote a file: the default name in its folder, or the path its
    `summary.json` recorded (a run started with `--judge-report` / `--judge-manifest`)."""
    run_dir = runs_dir / run_id
    default = run_dir / default_name
    if default.is_file():
        return default
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        recorded = summary["paths"][key]
    except (OSError, ValueError, KeyError, TypeError):
        return default
    return Path(recorded) if isinstance(recorded, str) else default
