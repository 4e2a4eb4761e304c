"""`hybridjudge review`: list, show and resolve escalated items, or walk through them.

Heavy imports (pydantic models, config) happen inside `run_review`, so building the parser costs
nothing for the other sub-commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..config import HybridJudgeConfig
    from ..manifest import ReviewItem
    from .resolutions import Resolution

REVIEWER_ENV = "HYBRIDJUDGE_REVIEWER"
ROOT_MARKERS = ("pyproject.toml", "hybridjudge.toml")
ID_WIDTH = 12
EXIT_ERROR = 2

Reader = Callable[[str], str]


def add_review_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `review` and its sub-commands (`show`, `resolve`, `walk`) on `subparsers`."""
    review = subparsers.add_parser(
        "review",
        help="List, show and resolve the items escalated to people",
        description="List pending review items (the default), or show, resolve or walk through "
        "them. Resolutions are appended to the resolutions file and never rewritten.",
    )
    _common_options(review, top=True)
    _filter_options(review, top=True)
    review.add_argument("--json", action="store_true", help="Print the items as JSON lines")
    commands = review.add_subparsers(dest="review_command", metavar="{show,resolve,walk}")

    show = commands.add_parser("show", help="Show everything a reviewer needs about one item")
    show.add_argument("item", metavar="ID", help="Item id, or a unique prefix of it")
    _common_options(show, top=False)
    show.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="Print the item as JSON"
    )

    resolve = commands.add_parser("resolve", help="Record a decision on one item (for scripts)")
    resolve.add_argument("item", metavar="ID", help="Item id, or a unique prefix of it")
    resolve.add_argument("--verdict", required=True, choices=("pass", "fail"), help="The decision")
    resolve.add_argument("--score", type=int, help="Score on the item's rubric scale")
    _reviewer_option(resolve)
    resolve.add_argument("--note", help="Why, in a sentence")
    _common_options(resolve, top=False)

    walk = commands.add_parser("walk", help="Go through pending items one by one, interactively")
    _reviewer_option(walk)
    _common_options(walk, top=False)
    _filter_options(walk, top=False)
    return review


def _common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Repeated on each sub-command so they may follow it; SUPPRESS keeps a value given before.
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=default,
        help="Project folder (default: nearest folder up with pyproject.toml or hybridjudge.toml)",
    )
    parser.add_argument(
        "--run",
        metavar="RUN",
        default=default,
        help="`latest`, `all` or a run id (default: latest for lists, all for an item id)",
    )


def _filter_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--tier", default=default, help="Only items routed to this tier")
    parser.add_argument("--rubric", default=default, help="Only items graded on this rubric")


def _reviewer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reviewer", metavar="NAME", help=f"Who decides (default: ${REVIEWER_ENV})"
    )


def run_review(args: argparse.Namespace, read: Reader = input) -> int:
    """Run `hybridjudge review ...`; clear errors go to stderr with exit code 2, no traceback.

    `read` prompts for and returns one line of input (raising `EOFError` at end of input); the
    interactive walk uses it.
    """
    from ..config import ConfigError
    from .resolutions import ReviewError

    try:
        context = _Context.from_args(args)
        command = args.review_command
        if command == "show":
            return _show(context, args)
        if command == "resolve":
            return _resolve(context, args)
        if command == "walk":
            return _walk(context, args, read)
        return _list(context, args)
    except (ReviewError, ConfigError) as exc:
        print(f"hybridjudge review: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


class _Context:
    """Where the project's runs and resolutions are."""

    def __init__(self, root: Path, config: HybridJudgeConfig) -> None:
        self.root = root
        self.runs_dir = _under(root, config.runs_dir)
        self.resolutions = _under(root, config.resolutions)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _Context:
        from ..config import load_config
        from .resolutions import ReviewError

        if args.root is not None:
            root = Path(args.root).resolve()
            if not root.is_dir():
                raise ReviewError(f"--root {args.root}: no such folder")
        else:
            root = find_project_root(Path.cwd())
        return cls(root, load_config(root))

    def shown(self, path: Path) -> str:
        """`path` relative to the project folder when it is inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def find_project_root(start: Path) -> Path:
    """The nearest folder from `start` upwards holding pyproject.toml or hybridjudge.toml.

    Falls back to `start` when there is none.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in ROOT_MARKERS):
            return folder
    return start


def _under(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _where(run: str) -> str:
    return "all runs" if run == "all" else "the latest run" if run == "latest" else f"run {run}"


def _check_tier(tier: str | None) -> None:
    import typing

    from ..manifest import ReviewItem
    from .resolutions import ReviewError

    known = typing.get_args(ReviewItem.model_fields["tier"].annotation)
    if tier is not None and known and tier not in known:
        raise ReviewError(f"unknown tier {tier!r}; use one of: {', '.join(known)}")


def _filtered(items: list[ReviewItem], args: argparse.Namespace) -> list[ReviewItem]:
    _check_tier(args.tier)
    return [
        i
        for i in items
        if (args.tier is None or i.tier == args.tier)
        and (args.rubric is None or i.rubric == args.rubric)
    ]


def _reviewer(args: argparse.Namespace) -> str:
    from .resolutions import ReviewError

    name = args.reviewer if args.reviewer is not None else os.environ.get(REVIEWER_ENV)
    if name is None:
        raise ReviewError(f"who is reviewing? Pass --reviewer NAME or set {REVIEWER_ENV}")
    if not name.strip():
        raise ReviewError("the reviewer name is empty; pass --reviewer NAME")
    return name.strip()


# --- list ----------------------------------------------------------------------------------


def _list(context: _Context, args: argparse.Namespace) -> int:
    from .resolutions import human_decision, load_resolutions, resolutions_by_item
    from .store import load_items, pending

    run = args.run or "latest"
    items = load_items(context.runs_dir, run)
    resolutions = load_resolutions(context.resolutions)
    todo = _filtered(pending(items, resolutions), args)
    if args.json:
        for item in todo:
            print(item.model_dump_json())
        return 0
    if not todo:
        print(f"no pending review items in {_where(run)} ({len(items)} escalated in all)")
        return 0
    by_item = resolutions_by_item(resolutions)
    rows = [("ID", "TIER", "RUBRIC", "CASE", "REASONS")]
    for item in todo:
        reasons = [*item.reasons]
        if item.audit:
            reasons.insert(0, "audit")
        earlier = by_item.get(item.item_id)
        if earlier and human_decision(earlier)[0] == "disagree":
            reasons.insert(0, "reviewers disagree (" + _who_said(earlier) + ")")
        rows.append(
            (
                item.item_id[:ID_WIDTH],
                item.tier,
                item.rubric or "-",
                _cell(item.case_id),
                _cell("; ".join(reasons) or "-"),
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
        )
    print(f"\n{len(todo)} pending in {_where(run)}; show one with `hybridjudge review show ID`")
    return 0


def _who_said(resolutions: list[Resolution]) -> str:
    from .resolutions import latest_per_reviewer

    return ", ".join(f"{r.reviewer}: {r.verdict}" for r in latest_per_reviewer(resolutions))


def _cell(text: str) -> str:
    return printable(text).replace("\n", " ").replace("\t", " ")


# --- show ----------------------------------------------------------------------------------


def _show(context: _Context, args: argparse.Namespace) -> int:
    from .resolutions import load_resolutions, resolutions_by_item
    from .store import find_item, load_items

    item = find_item(load_items(context.runs_dir, args.run or "all"), args.item)
    if args.json:
        print(item.model_dump_json(indent=2))
        return 0
    earlier = resolutions_by_item(load_resolutions(context.resolutions)).get(item.item_id, [])
    print(render_item(item, earlier))
    return 0


_INVISIBLE = frozenset("\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters, bidi overrides and line separators other
    than newline and tab are shown as escapes (`\\x1b`, `\\u202e`) instead of acting."""
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _block(text: str, indent: str = "  ") -> list[str]:
    """Text as lines behind a `| ` gutter: what is between the bars is the text, nothing else."""
    return [f"{indent}|" + (f" {line}" if line else "") for line in printable(text).split("\n")]


def _data(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_item(item: ReviewItem, resolutions: Sequence[Resolution] = ()) -> str:
    """The item as a reviewer reads it: facts first, then input, reference, output, rubric and
    each judge's verdict. Text from the run is shown behind a `| ` gutter, escaped."""
    lines = [
        f"item        {item.item_id}",
        f"run         {item.run_id}",
        f"case        {_cell(item.case_id)}",
        f"source      {_cell(item.source)}",
        f"target      {_cell(item.target)}",
    ]
    rubric = item.rubric or "(none)"
    facts = []
    if item.rubric_version:
        facts.append(f"version {item.rubric_version[:12]}")
    if item.scale:
        facts.append(f"scale {item.scale[0]}-{item.scale[1]}")
    if item.pass_threshold is not None:
        facts.append(f"passes at {item.pass_threshold} or more")
    lines.append(f"rubric      {rubric}" + (f"  ({', '.join(facts)})" if facts else ""))
    lines.append(f"tier        {item.tier}  (expected {item.review_minutes:g} min)")
    if item.audit:
        lines.append("audit       yes: a confident case sampled to check the judges")
    if item.tags:
        lines.append(f"tags        {_cell(', '.join(item.tags))}")
    lines.append("reasons" + ("" if item.reasons else "     (none recorded)"))
    lines.extend(f"  - {_cell(reason)}" for reason in item.reasons)
    if item.panel is not None:
        p = item.panel
        lines.append(
            f"panel       score {_number(p.score)}, {p.votes_pass} pass / {p.votes_fail} fail, "
            f"{p.errors} errored, spread {_number(p.spread)}, confidence {_number(p.confidence)}"
        )
    if resolutions:
        lines.append("resolved by")
        for r in resolutions:
            score = "" if r.score is None else f" (score {r.score})"
            note = f": {_cell(r.note)}" if r.note else ""
            when = r.resolved_at.strftime("%Y-%m-%d %H:%M")
            lines.append(f"  - {_cell(r.reviewer)}: {r.verdict}{score} on {when}{note}")

    lines += ["", "INPUT", *_block(_data(item.input))]
    lines += ["", "REFERENCE"]
    lines += ["  (none)"] if item.reference is None else _block(_data(item.reference))
    lines.append("")
    if item.output is None:
        lines += ["OUTPUT", "  (no output: the target produced none)"]
    else:
        count = item.output.count("\n") + 1
        lines.append(f"OUTPUT  (plain text, {len(item.output)} chars, {count} lines) " + "-" * 20)
        lines += _block(item.output) if item.output else ["  (empty string)"]
        lines.append("END OF OUTPUT " + "-" * 40)
    lines += ["", "RUBRIC AS THE JUDGES SAW IT"]
    lines += ["  (none)"] if item.rendered_rubric is None else _block(item.rendered_rubric)
    lines += ["", "JUDGES"]
    if not item.verdicts:
        lines.append("  (none)")
    for v in item.verdicts:
        head = f"  {_cell(v.judge)}"
        if v.model != v.judge:
            head += f" ({_cell(v.model)})"
        passed = "" if v.passed is None else (", pass" if v.passed else ", fail")
        head += f": score {_number(v.score)}{passed}, confidence {_number(v.confidence)}"
        lines.append(head)
        if v.error:
            lines.append(f"    error: {_cell(v.error)}")
        if v.rationale:
            lines += _block(v.rationale, indent="    ")
    if item.verifiers:
        lines += ["", "VERIFIERS"]
        for check in item.verifiers:
            state = "passed" if check.passed else "failed"
            detail = f": {_cell(check.detail)}" if check.detail else ""
            lines.append(f"  {_cell(check.name)} {state}{detail}")
    return "\n".join(lines)


# --- resolve -------------------------------------------------------------------------------


def _make_resolution(
    item: ReviewItem,
    verdict: Literal["pass", "fail"],
    reviewer: str,
    score: int | None,
    note: str | None,
) -> Resolution:
    from pydantic import ValidationError

    from .jsonl import describe_validation_error
    from .resolutions import Resolution, ResolutionError

    try:
        return Resolution.for_item(item, verdict=verdict, reviewer=reviewer, score=score, note=note)
    except ValidationError as exc:
        raise ResolutionError(describe_validation_error(exc)) from None


def _record(context: _Context, item: ReviewItem, resolution: Resolution) -> str:
    """Validate against the file under its lock, append; return what people now decided."""
    from .resolutions import (
        append_resolution,
        human_decision,
        load_resolutions,
        resolutions_by_item,
        validate_resolution,
    )

    def check(existing: list[Resolution]) -> None:
        validate_resolution(item, resolution, existing)

    check(load_resolutions(context.resolutions))  # before the file is even opened for append
    append_resolution(context.resolutions, resolution, validate=check)
    mine = resolutions_by_item(load_resolutions(context.resolutions)).get(item.item_id, [])
    decision, score = human_decision(mine)
    if decision == "disagree":
        return f"reviewers disagree ({_who_said(mine)}): the item stays pending"
    return f"decision now: {decision}" + ("" if score is None else f", score {score}")


def _resolve(context: _Context, args: argparse.Namespace) -> int:
    from .store import find_item, load_items

    reviewer = _reviewer(args)
    item = find_item(load_items(context.runs_dir, args.run or "all"), args.item)
    resolution = _make_resolution(item, args.verdict, reviewer, args.score, args.note)
    status = _record(context, item, resolution)
    score = "" if resolution.score is None else f", score {resolution.score}"
    print(
        f"resolved {item.item_id[:ID_WIDTH]} ({_cell(item.case_id)}) as {resolution.verdict}"
        f"{score} by {resolution.reviewer} -> {context.shown(context.resolutions)}; {status}"
    )
    return 0


# --- walk ----------------------------------------------------------------------------------

_VERDICT_ANSWERS = {
    "p": "pass",
    "pass": "pass",
    "f": "fail",
    "fail": "fail",
    "s": "skip",
    "skip": "skip",
    "q": "quit",
    "quit": "quit",
}


def _ask_verdict(read: Reader) -> str:
    while True:
        answer = read("verdict [p]ass/[f]ail/[s]kip/[q]uit: ").strip().lower()
        if answer in _VERDICT_ANSWERS:
            return _VERDICT_ANSWERS[answer]
        print("  answer p (pass), f (fail), s (skip this item) or q (quit)")


def _score_range(item: ReviewItem, verdict: str) -> tuple[int, int] | None:
    """The scores consistent with `verdict` on the item's scale, or None if it takes none."""
    if item.scale is None:
        return None
    low, high = item.scale
    if item.pass_threshold is not None:
        low, high = (
            (item.pass_threshold, high) if verdict == "pass" else (low, item.pass_threshold - 1)
        )
    return (low, high) if low <= high else None


def _ask_score(read: Reader, item: ReviewItem, verdict: str) -> int | None:
    allowed = _score_range(item, verdict)
    if allowed is None:
        return None
    low, high = allowed
    while True:
        answer = read(f"score {low}-{high} (enter for none): ").strip()
        if not answer:
            return None
        try:
            score = int(answer)
        except ValueError:
            print(f"  {answer!r} is not a whole number; give a score from {low} to {high}")
            continue
        if low <= score <= high:
            return score
        print(f"  a '{verdict}' takes a score from {low} to {high} on this rubric")


def _walk(context: _Context, args: argparse.Namespace, read: Reader) -> int:
    from .resolutions import load_resolutions, resolutions_by_item
    from .store import load_items, pending

    reviewer = _reviewer(args)
    run = args.run or "latest"
    items = load_items(context.runs_dir, run)
    existing = load_resolutions(context.resolutions)
    by_item = resolutions_by_item(existing)
    me = reviewer.casefold()
    queue = [
        item
        for item in _filtered(pending(items, existing), args)
        if not any(r.reviewer.casefold() == me for r in by_item.get(item.item_id, []))
    ]
    if not queue:
        print(f"nothing left for {reviewer} to review in {_where(run)}")
        return 0
    print(f"{len(queue)} item(s) for {reviewer} in {_where(run)}; answer q to stop at any item")
    resolved = skipped = 0
    try:
        for number, item in enumerate(queue, start=1):
            print(f"\n=== item {number} of {len(queue)} " + "=" * 50)
            print(render_item(item, by_item.get(item.item_id, [])))
            print()
            answer = _ask_verdict(read)
            if answer == "quit":
                break
            if answer == "skip":
                skipped += 1
                continue
            verdict: Literal["pass", "fail"] = "pass" if answer == "pass" else "fail"
            score = _ask_score(read, item, verdict)
            note = read("note (enter for none): ").strip() or None
            resolution = _make_resolution(item, verdict, reviewer, score, note)
            status = _record(context, item, resolution)
            resolved += 1
            print(
                f"recorded {verdict} for {item.item_id[:ID_WIDTH]} in "
                f"{context.shown(context.resolutions)}; {status}"
            )
    except EOFError:
        print("\nend of input: stopping")
    except KeyboardInterrupt:
        print(f"\ninterrupted: {resolved} resolved, {skipped} skipped")
        return 130
    left = len(queue) - resolved
    print(f"{resolved} resolved, {skipped} skipped, {left} left for {reviewer}")
    return 0
