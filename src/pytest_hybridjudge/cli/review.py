"""`hybridjudge review`: list, show and resolve escalated items, or walk through them.

Heavy imports (pydantic models, config) happen inside `run_review`, so building the parser costs
nothing for the other sub-commands.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from ..terminal import safe_json
from ..words import counted
from .common import Project, add_root_option, fail, say
from .render import cell as _cell
from .render import render_item

if TYPE_CHECKING:
    from ..config import Tier
    from ..review.manifest import ReviewItem
    from ..review.resolutions import Resolution

REVIEWER_ENV = "HYBRIDJUDGE_REVIEWER"
ID_WIDTH = 12

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
        if command == "walk":
            from .walk import walk

            return walk(project, args, read)
        return _list(project, args)
    except HybridJudgeError as exc:
        return fail("review", exc)


def where(run: str) -> str:
    """`--run` in words: "all runs", "the latest run" or "run ID"."""
    return "all runs" if run == "all" else "the latest run" if run == "latest" else f"run {run}"


def _check_tier(tier: str | None, known: Sequence[str]) -> None:
    from ..review.resolutions import ReviewError

    if tier is not None and tier not in known:
        raise ReviewError(
            f"unknown tier {tier!r}; use one of: {', '.join(known)} (a team's own tiers are "
            "defined under [tool.hybridjudge.review.tier.<name>])"
        )


def filtered(
    items: list[ReviewItem], args: argparse.Namespace, project: Project
) -> list[ReviewItem]:
    """The items matching `--tier` and `--rubric` (a tier neither built in nor configured, nor
    on any item, is an error)."""
    _check_tier(args.tier, [*project.config.review.tier_names, *{i.tier for i in items}])
    return [
        i
        for i in items
        if (args.tier is None or i.tier == args.tier)
        and (args.rubric is None or i.rubric == args.rubric)
    ]


def _reviewer_tier(project: Project, reviewer: str) -> Tier | None:
    """The reviewer's tier from `[tool.hybridjudge.review] reviewers` (names case-insensitive)."""
    tiers = {
        name.strip().casefold(): tier for name, tier in project.config.review.reviewers.items()
    }
    return tiers.get(reviewer.strip().casefold())


def reviewer_name(args: argparse.Namespace) -> str:
    """Who is reviewing: `--reviewer`, else $HYBRIDJUDGE_REVIEWER; an error when neither."""
    from ..review.resolutions import ReviewError

    name = args.reviewer if args.reviewer is not None else os.environ.get(REVIEWER_ENV)
    if name is None:
        raise ReviewError(f"who is reviewing? Pass --reviewer NAME or set {REVIEWER_ENV}")
    if not name.strip():
        raise ReviewError("the reviewer name is empty; pass --reviewer NAME")
    return name.strip()


# --- list ----------------------------------------------------------------------------------


def _list(project: Project, args: argparse.Namespace) -> int:
    from ..review.resolutions import human_decision, load_resolutions, resolutions_by_item
    from ..review.store import load_items, pending, upgrade_legacy

    run = args.run or "all"
    items = load_items(project.store, run)
    resolutions = upgrade_legacy(load_resolutions(project.resolutions), project.store)
    todo = filtered(pending(items, resolutions), args, project)
    if args.json:
        for item in todo:
            print(safe_json(item.model_dump_json()))
        return 0
    if not todo:
        say(f"no pending review items in {where(run)} ({counted(len(items), 'item')} in all)")
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
        say(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
        )
    say(f"\n{len(todo)} pending in {where(run)}; show one with `hybridjudge review show ID`")
    return 0


def _who_said(resolutions: list[Resolution]) -> str:
    from ..review.resolutions import latest_per_reviewer

    return ", ".join(f"{r.reviewer}: {r.verdict}" for r in latest_per_reviewer(resolutions))


# --- show ----------------------------------------------------------------------------------


def _show(project: Project, args: argparse.Namespace) -> int:
    from ..review.resolutions import load_resolutions, resolutions_by_item
    from ..review.store import find_item, load_items

    item = find_item(load_items(project.store, args.run or "all"), args.item)
    if args.json:
        print(safe_json(item.model_dump_json(indent=2)))
        return 0
    earlier = resolutions_by_item(load_resolutions(project.resolutions)).get(item.item_id, [])
    say(render_item(item, earlier))
    return 0


# --- resolve -------------------------------------------------------------------------------


def make_resolution(
    item: ReviewItem,
    verdict: Literal["pass", "fail"],
    reviewer: str,
    score: int | None,
    note: str | None,
    project: Project,
    *,
    amend: bool = False,
    adjudicate: bool = False,
) -> Resolution:
    """The reviewer's resolution of `item`, with their tier from the config; a field pydantic
    rejects (a blank reviewer) raises `ResolutionError`."""
    from pydantic import ValidationError

    from ..errors import describe_validation_error
    from ..review.resolutions import Resolution, ResolutionError

    try:
        return Resolution.for_item(
            item,
            verdict=verdict,
            reviewer=reviewer,
            score=score,
            note=note,
            amend=amend,
            adjudicate=adjudicate,
            reviewer_tier=_reviewer_tier(project, reviewer),
        )
    except ValidationError as exc:
        raise ResolutionError(describe_validation_error(exc)) from None


def record(project: Project, item: ReviewItem, resolution: Resolution) -> str:
    """Validate against the file under its lock, append; return what people now decided."""
    from ..review.resolutions import (
        append_resolution,
        human_decision,
        load_resolutions,
        resolutions_by_item,
        validate_resolution,
    )

    def check(existing: list[Resolution]) -> None:
        validate_resolution(item, resolution, existing, project.config.review)

    check(load_resolutions(project.resolutions))  # before the file is even opened for append
    append_resolution(project.resolutions, resolution, validate=check)
    mine = resolutions_by_item(load_resolutions(project.resolutions)).get(item.item_id, [])
    decision, score = human_decision(mine)
    if decision == "disagree":
        return f"reviewers disagree ({_who_said(mine)}): the item stays pending"
    return f"decision now: {decision}" + ("" if score is None else f", score {score}")


def _resolve(project: Project, args: argparse.Namespace) -> int:
    from ..review.store import find_item, load_items

    reviewer = reviewer_name(args)
    item = find_item(load_items(project.store, args.run or "all"), args.item)
    resolution = make_resolution(
        item,
        args.verdict,
        reviewer,
        args.score,
        args.note,
        project,
        amend=args.amend,
        adjudicate=args.adjudicate,
    )
    status = record(project, item, resolution)
    score = "" if resolution.score is None else f", score {resolution.score}"
    how = "adjudicated" if resolution.adjudicate else "amended" if resolution.amend else "resolved"
    say(
        f"{how} {item.item_id[:ID_WIDTH]} ({_cell(item.case_id)}) as {resolution.verdict}"
        f"{score} by {resolution.reviewer} -> {project.shown(project.resolutions)}; {status}"
    )
    return 0
