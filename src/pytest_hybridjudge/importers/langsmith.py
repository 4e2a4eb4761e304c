"""LangSmith dataset exports: CSV or JSONL examples with `inputs.*` and `outputs.*` fields."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import flatten, missing, pick, references, to_messages
from .records import records
from .report import Imported, SourceError


def import_langsmith(
    source: Path, imported: Imported, stem: str, fields: Mapping[str, str]
) -> None:
    """One input field becomes `input`, several an input mapping; outputs the reference.

    `--field input=question` (or `reference=answer`, `id=…`) picks the fields by name.
    """
    for record in records(source):
        if not isinstance(record.data, dict):
            imported.note(record.where, "an example must be a mapping; left out")
            continue
        data, where = flatten(record.data), record.where
        for gold in fields:
            if missing(pick(data, fields, gold)):
                raise SourceError(
                    f"{where}: --field {gold}={fields[gold]}: no such field; the example has "
                    f"{', '.join(sorted(data))}"
                )
        inputs = {k.removeprefix("inputs."): v for k, v in data.items() if k.startswith("inputs.")}
        outputs = {
            k.removeprefix("outputs."): v for k, v in data.items() if k.startswith("outputs.")
        }
        case: dict[str, Any] = {}
        chat = pick(data, fields, "messages", "inputs.messages")
        value = pick(data, fields, "input")
        if value is None and chat is not None:
            messages = to_messages(chat, where, imported)
            if messages is None:
                continue
            case["messages"] = messages
        elif value is not None:
            case["input"] = value if isinstance(value, str | dict) else str(value)
        elif len(inputs) == 1:
            case["input"] = str(next(iter(inputs.values())))
        elif inputs:
            case["input"] = inputs
        else:
            imported.note(where, "example has no inputs; left out")
            continue
        reference = pick(data, fields, "reference")
        if reference is None and outputs:
            reference = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        if reference not in (None, ""):
            case["reference"] = references(reference)
            imported.count("references")
        output = pick(data, fields, "output")
        if output not in (None, ""):
            case["output"] = str(output)
            imported.count("fixed outputs")
        metadata = {
            k.removeprefix("metadata."): v for k, v in data.items() if k.startswith("metadata.")
        }
        if metadata:
            case["metadata"] = metadata
        imported.count("cases")
        wanted = pick(data, fields, "id", "id", "example_id")
        imported.add_case(case, wanted, f"{stem}-{len(imported.cases) + 1}")
