"""DeepEval goldens: JSON, JSONL and CSV files as written by `EvaluationDataset.save_as`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import add_dataset_case, json_mapping, missing, pick, split_list
from .records import records
from .report import Imported

MULTI_TURN = ("scenario", "turns", "expected_outcome", "user_description")


def import_deepeval(source: Path, imported: Imported, stem: str, fields: Mapping[str, str]) -> None:
    """Single-turn goldens become cases; `actual_output` a fixed output; multi-turn counted."""
    multi_turn = 0
    for record in records(source):
        data, where = record.data, record.where
        if not isinstance(data, dict):
            imported.note(where, "a golden must be a mapping; left out")
            continue
        if any(data.get(k) not in (None, "") for k in MULTI_TURN) and not data.get("input"):
            multi_turn += 1
            continue
        value = pick(data, fields, "input", "input")
        if missing(value) or value in (None, ""):
            imported.note(where, "golden has no `input`; left out")
            continue
        case: dict[str, Any] = {"input": str(value)}
        expected = pick(data, fields, "reference", "expected_output", "expectedOutput")
        if not missing(expected) and expected not in (None, ""):
            case["reference"] = expected
            imported.count("references")
        actual = pick(data, fields, "output", "actual_output", "actualOutput")
        if not missing(actual) and actual not in (None, ""):
            case["output"] = str(actual)
            imported.count("fixed outputs (actual_output)")
        metadata: dict[str, Any] = {}
        for key, alias, separator in (
            ("context", "context", "|"),
            ("retrieval_context", "retrievalContext", "|"),
            ("tools_called", "toolsCalled", ";"),
            ("expected_tools", "expectedTools", ";"),
        ):
            found = split_list(data.get(key, data.get(alias)), separator)
            if found:
                metadata[key] = found
                imported.count(key)
        metadata.update(
            json_mapping(data.get("additional_metadata", data.get("additionalMetadata")))
        )
        for key in ("comments", "source_file"):
            if data.get(key):
                metadata[key] = data[key]
        metadata.update(json_mapping(data.get("custom_column_key_values")))
        wanted = pick(data, fields, "id", "name")
        add_dataset_case(imported, case, metadata, wanted, stem)
    if multi_turn:
        imported.note(
            str(source),
            f"{multi_turn} multi-turn golden(s) (scenario/turns) not imported: a gold case is "
            "one turn; import their single-turn goldens, or write the turns as `messages`",
        )
        imported.count("unsupported: multi-turn goldens", multi_turn)
