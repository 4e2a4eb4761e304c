"""`hybridjudge review`: list, show and resolve escalated items, walk through them, or import
decisions made elsewhere.

Heavy imports (pydantic models, config) happen inside `run_review`, so building the parser costs
nothing for the other sub-commands.
"""

from __future__ import annotations

import argparse

from ..terminal import safe_json
from ..words import counted
from .common import (
    ID_WIDTH,
    REVIEWER_ENV,
    Project,
    Reader,
    add_root_option,
    fail,
    filtered,
    reviewer_name,
    say,
    where,
)
from .render import cell as _cell
from .render import decision_status, render_item, who_said
from .review_import import add_review_import_parser, run_review_import


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
    commands = review.add_subparsers(
        dest="review_command", metavar="{show,resolve,walk,serve,import}"
    )

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
    resolve.add_argument(
        "--amend", action="store_true", help="Replace your own earlier decision on the item"
    )
    resolve.add_argument(
        "--adjudicate",
        action="store_true",
        help="Settle a disagreement as a reviewer of a higher tier (your decision wins)",
    )
    _common_options(resolve, top=False)

    walk = commands.add_parser("walk", help="Go through pending items one by one, interactively")
    _reviewer_option(walk)
    _common_options(walk, top=False)
    _filter_options(walk, top=False)

    from .serve import add_serve_parser

    add_serve_parser(commands)
    _common_options(add_review_import_parser(commands), top=False)
    return review


def _common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Repeated on each sub-command so they may follow it; SUPPRESS keeps a value given before.
    default = None if top else argparse.SUPPRESS
    add_root_option(parser, default=default)
    parser.add_argument(
        "--run",
        metavar="RUN",
        default=default,
        help="`latest`, `all` or a run id (default: all; an item pending in several runs is "
        "listed once, newest first)",
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
    from ..errors import HybridJudgeError

    try:
        project = Project.from_args(args)
        command = args.review_command
        if command == "show":
            return _show(project, args)
        if command == "resolve":
            return _resolve(project, args)
        if command == "import":
            return run_review_import(project, args)
        if command == "walk":
            from .walk import walk

            return walk(project, args, read)
        if command == "serve":
            from .serve import serve

            return serve(project, args)
        return _list(project, args)
    except HybridJudgeError as exc:
        return fail("review", exc)


# --- list ----------------------------------------------------------------------------------


def _list(project: Project, args: argparse.Namespace) -> int:
    run = args.run or "all"
    desk = project.desk
    items = desk.items(run)
    todo = filtered(desk.pending(items), args, project)
    if args.json:
        for item in todo:
            print(safe_json(item.model_dump_json()))
        return 0
    if not todo:
        say(f"no pending review items in {where(run)} ({counted(len(items), 'item')} in all)")
        return 0
    rows = [("ID", "TIER", "RUBRIC", "CASE", "REASONS")]
    for item in todo:
        reasons = [*item.reasons]
        if item.audit:
            reasons.insert(0, "audit")
        earlier = desk.decision(item.item_id)
        if earlier is not None and earlier.pending:
            reasons.insert(0, "reviewers disagree (" + who_said(earlier) + ")")
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
        say(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
        )
    say(f"\n{len(todo)} pending in {where(run)}; show one with `hybridjudge review show ID`")
    return 0


# --- show ----------------------------------------------------------------------------------


def _show(project: Project, args: argparse.Namespace) -> int:
    desk = project.desk
    item = desk.find(args.item, args.run or "all")
    if args.json:
        print(safe_json(item.model_dump_json(indent=2)))
        return 0
    earlier = desk.decision(item.item_id)
    say(render_item(item, earlier.resolutions if earlier else ()))
    return 0


# --- resolve -------------------------------------------------------------------------------


def _resolve(project: Project, args: argparse.Namespace) -> int:
    reviewer = reviewer_name(args)
    item = project.desk.find(args.item, args.run or "all")
    done = project.desk.resolve(
        item,
        args.verdict,
        reviewer,
        score=args.score,
        note=args.note,
        amend=args.amend,
        adjudicate=args.adjudicate,
    )
    resolution = done.resolution
    score = "" if resolution.score is None else f", score {resolution.score}"
    how = "adjudicated" if resolution.adjudicate else "amended" if resolution.amend else "resolved"
    say(
        f"{how} {item.item_id[:ID_WIDTH]} ({_cell(item.case_id)}) as {resolution.verdict}"
        f"{score} by {resolution.reviewer} -> {project.shown(project.desk.path)}; "
        f"{decision_status(done.decision)}"
    )
    return 0
