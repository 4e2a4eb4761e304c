"""Reviewers' decisions from Argilla records (`dataset.records.to_json`, `to_list`, or the
flattened columns `to_datasets`/`to_hub` write).

A record has an `id` (or `metadata.item_id`: the review item) and its `responses`, either
nested, `{question: [{value, user_id, status}]}`, or flattened, `question.responses`,
`question.responses.users`, `question.responses.status` (lists in step). One user's answers
to the questions of one record are one decision; only `submitted` responses count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .decision_sources import ReadDecisions, Skipped, SourceDecision, note_of, score_of, verdict_of
from .records import Record, read_text, records
from .report import SourceError


def read_argilla(path: Path, roles: Mapping[str, str], users: Mapping[str, str]) -> ReadDecisions:
    """The submitted decisions of Argilla records in `path` (a JSON list, `{"records": [...]}`
    or JSONL). `roles` maps verdict/score/note to question names; `users` maps `user_id`s to
    reviewer names."""
    read = ReadDecisions()
    for record in _records(path):
        data = record.data
        if not isinstance(data, dict):
            raise SourceError(f"{record.where}: a record must be a JSON object")
        metadata = data.get("metadata") or {}
        ref = str(metadata.get("item_id") or data.get("id") or "").strip()
        if not ref:
            read.skipped.append(Skipped(record.where, "the record has no id or metadata.item_id"))
            continue
        for user, (status, answers) in _by_user(data).items():
            where = f"{record.where}, user {user}"
            if status != "submitted":
                why = (
                    f"response {status}, not submitted"
                    if status
                    else "the response has no status (only submitted responses are imported; "
                    "export with a version of Argilla that writes `status`)"
                )
                read.skipped.append(Skipped(where, why))
                continue
            try:
                raw_verdict = answers.get(roles["verdict"])
                verdict = verdict_of(raw_verdict) if raw_verdict not in (None, "") else None
                score = score_of(answers.get(roles["score"]))
            except ValueError as exc:
                read.skipped.append(Skipped(where, str(exc)))
                continue
            if verdict is None and score is None:
                asked = ", ".join(sorted(answers)) or "none"
                read.skipped.append(
                    Skipped(
                        where,
                        f"no answer to question {roles['verdict']!r} or {roles['score']!r} "
                        f"(answered: {asked}); map them with --map QUESTION=verdict",
                    )
                )
                continue
            read.decisions.append(
                SourceDecision(
                    where,
                    ref,
                    verdict,
                    score=score,
                    reviewer=users.get(user, user),
                    note=note_of(answers.get(roles["note"])),
                )
            )
    return read


def _records(path: Path) -> list[Record]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return list(records(path, "jsonl"))
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict) and not isinstance(data.get("records"), list):
        raise SourceError(f"{path}:1: expected a list of Argilla records (or {{'records': [...]}})")
    return list(records(path, "json"))


def _by_user(record: Mapping[str, Any]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """{user id: (status, {question: value})} from nested or flattened responses."""
    found: dict[str, tuple[str | None, dict[str, Any]]] = {}

    def add(question: str, user: Any, value: Any, status: Any) -> None:
        previous, answers = found.get(str(user), (None, {}))
        answers[question] = value
        state = str(status) if status is not None else None
        # One user's responses share a status in Argilla; keep the first unless it is missing.
        found[str(user)] = (previous or state, answers)

    nested = record.get("responses")
    if isinstance(nested, dict):
        for question, responses in nested.items():
            for response in responses or []:
                if isinstance(response, dict):
                    add(question, response.get("user_id"), response.get("value"), _status(response))
    for key, values in record.items():
        if not key.endswith(".responses") or not isinstance(values, list):
            continue
        question = key.removesuffix(".responses")
        users = record.get(f"{key}.users") or []
        statuses = record.get(f"{key}.status") or [None] * len(values)
        for value, user, status in zip(values, users, statuses, strict=False):
            add(question, user, value, status)
    return found


def _status(response: Mapping[str, Any]) -> Any:
    status = response.get("status")
    return status.get("value") if isinstance(status, dict) else status
