"""Pieces the record-based importers share: `--field` look-ups, chat messages, joined lists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .report import Imported

GOLD_FIELDS = ("id", "input", "messages", "reference", "output")
"""Gold case keys `--field GOLD=SOURCE` may fill."""

_MISSING = object()


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """`{"inputs": {"q": 1}}` -> `{"inputs.q": 1}` (one level), other keys as they are."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and key in ("inputs", "outputs", "metadata"):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def pick(record: Mapping[str, Any], fields: Mapping[str, str], gold: str, *names: str) -> Any:
    """The value for gold key `gold`: the `--field` column if given, else the first of `names`
    present (None if none is)."""
    if gold in fields:
        source = fields[gold]
        for key in (source, f"inputs.{source}", f"outputs.{source}"):
            if key in record:
                return record[key]
        return _MISSING
    for name in names:
        if name in record and record[name] not in (None, ""):
            return record[name]
    return None


def missing(value: Any) -> bool:
    """Whether `pick` found no column for a `--field` mapping."""
    return value is _MISSING


def add_dataset_case(
    imported: Imported, case: dict[str, Any], metadata: dict[str, Any], wanted: Any, stem: str
) -> None:
    """Finish one dataset record's case: its metadata (when any), counted, and added with the id
    `pick` found (else `<stem>-<n>`)."""
    if metadata:
        case["metadata"] = metadata
    imported.count("cases")
    fallback = f"{stem}-{len(imported.cases) + 1}"
    imported.add_case(case, None if missing(wanted) else wanted, fallback)


def to_messages(value: Any, where: str, imported: Imported) -> list[dict[str, str]] | None:
    """Chat messages as the gold format takes them ({role, content}); None, reported, when a
    message cannot be sent as it is (a tool message, an image, an unknown role)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if not isinstance(value, list) or not value:
        return None
    out = []
    for message in value:
        if not isinstance(message, dict):
            imported.note(where, "a chat message is not a mapping; case left out")
            return None
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant"):
            imported.note(where, f"chat role {role!r} cannot be sent as it is; case left out")
            return None
        if isinstance(content, list):
            texts = [
                p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"
            ]
            if len(texts) != len(content):
                imported.note(where, "a message has non-text content (image, audio); case left out")
                return None
            content = "\n".join(str(t) for t in texts)
        if not isinstance(content, str):
            imported.note(where, "a message has no text content; case left out")
            return None
        if message.get("tool_calls"):
            imported.note(where, "a message's tool calls are not imported (its text is)")
        out.append({"role": role, "content": content})
    return out


def split_list(value: Any, separator: str) -> list[Any] | None:
    """A list field: a list, a JSON list in a string, or text joined by `separator`."""
    if value in (None, ""):
        return None
    if isinstance(value, list):
        return value
    text = str(value)
    if text.lstrip().startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    return [part for part in text.split(separator)]


def json_mapping(value: Any) -> dict[str, Any]:
    """A mapping field: a mapping, or JSON text of one; else empty."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def references(value: Any) -> Any:
    """A reference or several: a one-item list is that item."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value
