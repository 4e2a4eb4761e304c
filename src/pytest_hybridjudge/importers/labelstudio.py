"""Reviewers' decisions from a Label Studio JSON export (`Export` → `JSON`).

The export is a list of tasks; each task has its `data` (the item: `hybridjudge export
labelstudio` puts `item_id` there) and its `annotations`, each with a `result` list of
`{from_name, to_name, type, value}` regions, `completed_by`, `was_cancelled`, `ground_truth`,
`lead_time`, `created_at` and `updated_at`. One annotation is one decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .decision_sources import (
    ReadDecisions,
    Skipped,
    SourceDecision,
    note_of,
    score_of,
    time_of,
    verdict_of,
)
from .records import Record, read_text, records
from .report import SourceError

VALUE_KEYS = ("choices", "number", "rating", "text", "taxonomy", "labels")
"""Where a result region's `value` holds the answer, by control tag (Choices, Number, Rating,
TextArea, ...)."""


def read_labelstudio(
    path: Path, roles: Mapping[str, str], users: Mapping[str, str]
) -> ReadDecisions:
    """The decisions of a Label Studio JSON export (a list of tasks, or one task as cloud
    storage writes it). `roles` maps verdict/score/note to the config's `from_name`s; `users`
    maps `completed_by` ids (or emails) to reviewer names."""
    read = ReadDecisions()
    for task in _tasks(path):
        if not isinstance(task.data, dict):
            raise SourceError(f"{task.where}: a task must be a JSON object")
        annotations = task.data.get("annotations")
        if annotations is None:
            if "annotator" in task.data or "annotation_id" in task.data:
                raise SourceError(
                    f"{task.where}: this is Label Studio's JSON-MIN export; export as JSON "
                    "(the full format, with `annotations`) and import that"
                )
            annotations = []
        data = task.data.get("data") or {}
        meta = task.data.get("meta") or {}
        ref = str(data.get("item_id") or meta.get("item_id") or "").strip()
        shown = f"{task.where} (task {task.data.get('id', '?')})"
        if not ref:
            read.skipped.append(
                Skipped(
                    shown,
                    "the task's data has no item_id; export tasks with `hybridjudge export "
                    "labelstudio`, which puts it there",
                )
            )
            continue
        # A reviewer saw no judge when the task was exported blind and no prediction was
        # added to it since (a machine-learning backend could have).
        blind = data.get("blind") is True and not task.data.get("predictions")
        for number, annotation in enumerate(annotations, start=1):
            where = f"{shown}, annotation {number}"
            decision = _decision(annotation, where, ref, roles, users, blind)
            if isinstance(decision, Skipped):
                read.skipped.append(decision)
            else:
                read.decisions.append(decision)
    return read


def _tasks(path: Path) -> list[Record]:
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        if "data" not in data:
            raise SourceError(f"{path}:1: expected Label Studio's JSON export (a list of tasks)")
        return [Record(f"{path}:1", 1, data)]
    return list(records(path, "json"))


def _decision(
    annotation: Any,
    where: str,
    ref: str,
    roles: Mapping[str, str],
    users: Mapping[str, str],
    blind: bool,
) -> SourceDecision | Skipped:
    if not isinstance(annotation, dict):
        return Skipped(where, "an annotation must be a JSON object")
    if annotation.get("was_cancelled"):
        return Skipped(where, "skipped in Label Studio (was_cancelled)")
    answers = _answers(annotation.get("result") or [])
    try:
        verdict_value = answers.get(roles["verdict"])
        verdict = verdict_of(verdict_value) if verdict_value not in (None, [], "") else None
        score = score_of(answers.get(roles["score"]))
        lead = annotation.get("lead_time")
        lead_time_s = float(lead) if isinstance(lead, int | float) and lead >= 0 else None
    except ValueError as exc:
        return Skipped(where, f"{exc} (from_name {roles['verdict']!r}/{roles['score']!r})")
    if verdict is None and score is None:
        fields = ", ".join(sorted(answers)) or "none"
        return Skipped(
            where,
            f"no answer in from_name {roles['verdict']!r} or {roles['score']!r} (the "
            f"annotation answers: {fields}); map the config's fields with --map "
            "FIELD=verdict / FIELD=score",
        )
    return SourceDecision(
        where,
        ref,
        verdict,
        score=score,
        reviewer=_reviewer(annotation, users),
        note=note_of(answers.get(roles["note"])),
        lead_time_s=lead_time_s,
        resolved_at=time_of(annotation.get("updated_at")) or time_of(annotation.get("created_at")),
        adjudicate=bool(annotation.get("ground_truth")),
        blind=blind,
    )


def _answers(result: list[Any]) -> dict[str, Any]:
    """Each control's answer by `from_name` (the first region of each)."""
    answers: dict[str, Any] = {}
    for region in result:
        if not isinstance(region, dict) or not isinstance(region.get("value"), dict):
            continue
        value = region["value"]
        key = next((k for k in VALUE_KEYS if k in value), None)
        if key is not None:
            answers.setdefault(str(region.get("from_name")), value[key])
    return answers


def _reviewer(annotation: Mapping[str, Any], users: Mapping[str, str]) -> str | None:
    """`completed_by`: a user id (newer exports) or `{id, email, ...}` (older ones)."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        for key in ("id", "email"):
            if str(who.get(key)) in users:
                return users[str(who.get(key))]
        return str(who.get("email") or f"labelstudio-user-{who.get('id')}")
    if who is None:
        return None
    return users.get(str(who), f"labelstudio-user-{who}")
