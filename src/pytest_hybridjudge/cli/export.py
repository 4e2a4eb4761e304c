"""`hybridjudge export`: a run's decided preferences (TRL, OpenAI or KTO JSONL), its results as
CSV, pending review items as Label Studio tasks."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from ..exports.preferences import PreferenceFormat, PreferencePair, reviewed_output, rows
from ..terminal import printable, safe_json
from .common import Project, add_root_option, fail, say
from .export_labelstudio import add_labelstudio_parser, export_labelstudio

if TYPE_CHECKING:
    from ..verdict import CaseResult

CSV_COLUMNS = (
    "case_id",
    "target",
    "outcome",
    "score",
    "rubric",
    "tags",
    "decided_by",
    "outage",
    "reasons",
    "error",
    "source",
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list, and the
full-width forms some spreadsheets also read as `=`, `+`, `-`, `@`)."""


def add_export_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `export preferences`, `export results` and `export labelstudio`."""
    export = subparsers.add_parser(
        "export", help="Export a run's preferences or results, or review items for Label Studio"
    )
    kinds = export.add_subparsers(dest="export_kind", metavar="{preferences,results,labelstudio}")
    prefs = kinds.add_parser(
        "preferences",
        help="Decided pairwise comparisons as JSONL for TRL (DPO), OpenAI or KTO",
    )
    prefs.add_argument(
        "--format",
        choices=("trl", "openai", "kto"),
        default="trl",
        help="trl: {prompt, chosen, rejected}; openai: {input.messages, preferred_output, "
        "non_preferred_output}; kto: {prompt, completion, label} (default: trl)",
    )
    prefs.add_argument(
        "--conversational", action="store_true", help="trl, kto: prompts and replies as messages"
    )
    add_labelstudio_parser(kinds)
    results = kinds.add_parser("results", help="One row per case")
    results.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="Output format")
    for sub in (prefs, results):
        add_root_option(sub)
        sub.add_argument("--run", default="latest", help="`latest` or a run id (default: latest)")
        sub.add_argument("--out", metavar="PATH", help="Write to PATH instead of standard output")
    return export


def run_export(args: argparse.Namespace) -> int:
    """Run `hybridjudge export`; clear errors go to stderr with exit code 2."""
    from ..errors import HybridJudgeError
    from ..runs import RESULTS_FIX

    if args.export_kind not in ("preferences", "results", "labelstudio"):
        return fail("export", "name what to export: `preferences`, `results` or `labelstudio`")
    try:
        project = Project.from_args(args)
        if args.export_kind == "labelstudio":
            return export_labelstudio(project, args)
        store = project.store
        records = store.results(
            store.resolve(args.run, "--run"), RESULTS_FIX.format(option="--run")
        )
        with _output(args.out) as out:
            if args.export_kind == "preferences":
                count = _preferences(records, project, out, args.format, args.conversational)
            else:
                count = _results(records, args.format, out)
    except HybridJudgeError as exc:
        return fail("export", exc)
    if args.out:
        say(f"{count} {args.export_kind} written to {args.out}", file=sys.stderr)
    return 0


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        yield out


def preference(
    record: CaseResult, human: str | None, reviewer: str | None = None
) -> dict[str, Any] | None:
    """A pairwise record as a preference pair, or None when it is not decided both ways.

    `human` is the reviewers' decision on the item (`pass`: the candidate is at least as good,
    `fail`: the baseline is better); it takes precedence over the judges. The judges' decision
    counts only if every judge kept its preference when the order was swapped.
    """
    pairwise = record.pairwise
    if pairwise is None or record.output is None:
        return None
    candidate, baseline = record.output, pairwise.baseline_output
    if human in ("pass", "fail"):
        chosen_is_candidate, source = human == "pass", f"review:{reviewer or 'reviewers'}"
    else:
        judgments = pairwise.judgments
        if not judgments or not all(j.consistent for j in judgments):
            return None  # a flip, or a missing verdict: not a preference anyone stands by
        if pairwise.preferred not in ("candidate", "baseline"):
            return None  # a tie says nothing about which is better
        chosen_is_candidate, source = pairwise.preferred == "candidate", "judges"
    chosen, rejected = (candidate, baseline) if chosen_is_candidate else (baseline, candidate)
    return {
        "prompt": record.input,
        "chosen": chosen,
        "rejected": rejected,
        "source": source,
        "case_id": record.case_id,
    }


def _preferences(
    records: list[CaseResult],
    project: Project,
    out: TextIO,
    fmt: PreferenceFormat = "trl",
    conversational: bool = False,
) -> int:
    desk = project.desk
    count = 0
    for record in records:
        human, reviewer = None, None
        if record.resolved_by and record.outcome in ("passed", "failed"):
            human = "pass" if record.outcome == "passed" else "fail"
            reviewer = ",".join(record.resolved_by)
        elif (found := desk.decision(record.item_id or "")) is not None:  # since the run
            human = found.verdict
            reviewer = ",".join(sorted({r.reviewer for r in found.resolutions}))
        pair = preference(record, human, reviewer)
        if pair is None and fmt == "kto":
            single = reviewed_output(record, human, reviewer, conversational)
            lines = [single] if single is not None else []
        else:
            lines = (
                [] if pair is None else rows(PreferencePair.from_mapping(pair), fmt, conversational)
            )
        for line in lines:
            out.write(safe_json(json.dumps(line, ensure_ascii=False)) + "\n")
        count += len(lines)
    return count


def _results(records: list[CaseResult], fmt: str, out: TextIO) -> int:
    from ..verdict import decided_by

    rows = [
        {
            **{key: getattr(record, key, None) for key in CSV_COLUMNS},
            "tags": " ".join(record.tags),
            "reasons": "; ".join(record.reasons),
            "decided_by": decided_by(record),
        }
        for record in records
    ]
    if fmt == "jsonl":
        out.writelines(safe_json(json.dumps(row, ensure_ascii=False)) + "\n" for row in rows)
    else:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: spreadsheet_cell(value) for key, value in r.items()} for r in rows)
    return len(rows)


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as the text it holds and a terminal prints harmlessly.

    Control, escape-sequence and bidi characters are shown as `\\x1b` / `\\u202e` (newlines and
    tabs are kept; the CSV quotes them), and text a spreadsheet would run as a formula (it starts
    with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, which spreadsheets
    read as "this is text" (OWASP's advice on CSV injection). Numbers and booleans stay as they are.
    """
    if not isinstance(value, str):
        return value
    text = printable(value, block=True)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


__all__ = ["add_export_parser", "preference", "run_export", "spreadsheet_cell"]
