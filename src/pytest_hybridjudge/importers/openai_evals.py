"""OpenAI Evals `samples.jsonl`: `input` (chat messages or text) and `ideal` answers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import add_dataset_case, missing, pick, references, to_messages
from .records import records
from .report import Imported


def import_openai_evals(
    source: Path, imported: Imported, stem: str, fields: Mapping[str, str]
) -> None:
    """One case per sample; `ideal` (a list: several references). Few-shot `name` fields on
    system messages (`example_user`, `example_assistant`) are dropped, as the API sends them."""
    for record in records(source, "jsonl"):
        data, where = record.data, record.where
        if not isinstance(data, dict):
            imported.note(where, "a sample must be a mapping; left out")
            continue
        value = pick(data, fields, "input", "input")
        case: dict[str, Any] = {}
        if isinstance(value, str) and value:
            case["input"] = value
        elif isinstance(value, list):
            named = [str(m["name"]) for m in value if isinstance(m, dict) and m.get("name")]
            if named:
                imported.note(where, f"message names {sorted(set(named))} dropped", "info")
            messages = to_messages(value, where, imported)
            if messages is None:
                continue
            case["messages"] = messages
            imported.count("chat inputs")
        else:
            imported.note(where, "sample has no `input`; left out")
            continue
        ideal = pick(data, fields, "reference", "ideal")
        if not missing(ideal) and ideal not in (None, "", []):
            case["reference"] = references(ideal)
            imported.count("references")
        metadata = {k: v for k, v in data.items() if k not in ("input", "ideal", *fields.values())}
        wanted = pick(data, fields, "id", "id")
        add_dataset_case(imported, case, metadata, wanted, stem)
