"""Structured output in three modes, and reading JSON back from whatever the model wrote.

`json_schema` sends the schema natively; `json_object` asks for JSON mode with the schema in the
form servers without `json_schema` read (llama.cpp's `response_format.schema`, a grammar there)
and in the prompt; `prompt` only puts the schema in the prompt. No fallback drops the schema.
The reply is read the same way in every mode (a bare object, or one inside a ```json fenced
block), then validated by the caller.
"""

from __future__ import annotations

import dataclasses
import json
import re

from .providers.base import CompletionRequest, StructuredMode

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)


def schema_instruction(schema: object) -> str:
    """The sentence that carries the schema when the server does not take it natively."""
    return (
        "Reply with only a JSON object (no prose, no code fence) that matches this JSON Schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def shape_request(request: CompletionRequest, mode: StructuredMode) -> CompletionRequest:
    """The request as `mode` sends it (unchanged when it asks for no structured output)."""
    if request.json_schema is None or request.structured_output == mode:
        return request
    if mode == "json_schema":
        return dataclasses.replace(request, structured_output=mode)
    note = schema_instruction(request.json_schema)
    messages = list(request.messages)
    if messages and messages[0][0] == "system":
        messages[0] = ("system", f"{messages[0][1]}\n\n{note}")
    else:
        messages.insert(0, ("system", note))
    return dataclasses.replace(request, messages=tuple(messages), structured_output=mode)


def extract_json(text: str) -> str:
    """The JSON object in a reply: a fenced block's content, else the outermost `{...}`."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        return stripped
    for match in _FENCE.finditer(text):
        block = match.group(1).strip()
        if block.startswith("{"):
            return block
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        return stripped[start : end + 1]
    return stripped
