"""Inspect datasets: CSV and JSON/JSONL files of `Sample` records, as gold cases."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import add_dataset_case, json_mapping, missing, pick, references, to_messages
from .records import records
from .report import Imported

SAMPLE_FIELDS = ("input", "target", "choices", "id", "metadata", "sandbox", "files", "setup")
UNSUPPORTED = ("sandbox", "files", "setup")


def import_inspect(source: Path, imported: Imported, stem: str, fields: Mapping[str, str]) -> None:
    """One case per sample; `target` (a list: several references), `choices` into metadata."""
    is_csv = source.suffix.lower() in (".csv", ".tsv")
    for record in records(source):
        data, where = record.data, record.where
        if not isinstance(data, dict):
            imported.note(where, "a sample must be a mapping; left out")
            continue
        for key in UNSUPPORTED:
            if data.get(key) not in (None, "", [], {}):
                imported.note(
                    where, f"`{key}` is not supported (no sandbox here); sample imported without it"
                )
                imported.count(f"unsupported: {key}")
        value = pick(data, fields, "input", "input")
        if missing(value) or value in (None, ""):
            imported.note(where, "sample has no `input`; left out")
            continue
        case: dict[str, Any] = {}
        if isinstance(value, str) and not value.lstrip().startswith("[{"):
            case["input"] = value
        else:
            messages = to_messages(value, where, imported)
            if messages is None:
                continue
            case["messages"] = messages
            imported.count("chat inputs")
        target = pick(data, fields, "reference", "target")
        if not missing(target) and target not in (None, "", []):
            case["reference"] = references(target)
            imported.count(
                "references" if not isinstance(case["reference"], list) else "several references"
            )
        metadata = json_mapping(data.get("metadata"))
        if data.get("choices"):
            metadata["choices"] = data["choices"]
            imported.count("choices")
        extra = {
            k: v for k, v in data.items() if k not in SAMPLE_FIELDS and k not in fields.values()
        }
        if extra and is_csv:
            metadata.update(extra)  # other CSV columns: kept for templates
        elif extra:
            imported.note(where, f"{sorted(extra)} are not Sample fields; not imported")
        wanted = pick(data, fields, "id", "id")
        add_dataset_case(imported, case, metadata, wanted, stem)
