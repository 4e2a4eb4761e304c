"""`hybridjudge review import FORMAT FILE`: decisions made in a CSV, Label Studio or Argilla,
recorded through the review desk (one lock, the validation of `review resolve`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..words import counted
from .common import ID_WIDTH, REVIEWER_ENV, CommandError, Project, say
from .render import cell


def add_review_import_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `review import` on the `review` sub-commands."""
    from ..importers.decisions import DECISION_FORMATS

    parser = commands.add_parser(
        "import",
        help="Record decisions made elsewhere (a CSV, a Label Studio or an Argilla export)",
        description="Append the reviewers' decisions in FILE to the resolutions file, each "
        "validated as `review resolve` validates one. A decision already recorded the same "
        "way is left alone, so importing a file again adds nothing.",
    )
    parser.add_argument("format", choices=DECISION_FORMATS, help="The tool that wrote FILE")
    parser.add_argument("file", help="The export to import")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=ROLE",
        help="Read the verdict, score or note from the labelling config's FIELD "
        "(default: the fields named verdict, score, note)",
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="ID=NAME",
        help="Record the tool's user ID (Label Studio's completed_by, Argilla's user_id) as NAME",
    )
    parser.add_argument(
        "--reviewer",
        metavar="NAME",
        help=f"Reviewer of decisions that name none (default: ${REVIEWER_ENV})",
    )
    parser.add_argument(
        "--amend",
        action="store_true",
        help="A decision that differs from the reviewer's recorded one replaces it",
    )
    return parser


def run_review_import(project: Project, args: argparse.Namespace) -> int:
    """Import, then print each decision imported, unchanged, skipped or refused, with where in
    the file it came from. Exit code 1 when the desk refused any, else 0."""
    from ..importers.decision_sources import role_map
    from ..importers.decisions import import_decisions, read_decisions

    users: dict[str, str] = {}
    for spec in args.user:
        user, sep, name = spec.partition("=")
        if not sep or not user.strip() or not name.strip():
            raise CommandError(f"--user {spec!r}: write ID=NAME (e.g. --user 10=ann)")
        users[user.strip()] = name.strip()
    read = read_decisions(args.format, Path(args.file), role_map(args.map), users)
    desk = project.desk
    items = desk.items(getattr(args, "run", None) or "all")
    reviewer = args.reviewer if args.reviewer is not None else os.environ.get(REVIEWER_ENV)
    done = import_decisions(desk, items, read, reviewer=reviewer, amend=args.amend)
    for source, resolved in done.imported:
        r = resolved.resolution
        how = "adjudicated" if r.adjudicate else "amended" if r.amend else "resolved"
        score = "" if r.score is None else f", score {r.score}"
        say(
            f"imported   {source.where}: {r.item_id[:ID_WIDTH]} ({cell(r.case_id)}) {how} "
            f"{r.verdict}{score} by {r.reviewer}"
        )
    for source, earlier in done.unchanged:
        when = earlier.resolved_at.strftime("%Y-%m-%d %H:%M UTC")
        say(f"unchanged  {source.where}: already recorded by {earlier.reviewer} on {when}")
    for skipped in done.skipped:
        say(f"skipped    {skipped.where}: {skipped.why}")
    for source, why in done.refused:
        say(f"refused    {source.where}: {why}")
    say(
        f"{counted(len(done.imported), 'decision')} imported from {args.file} into "
        f"{project.shown(desk.path)}; {len(done.unchanged)} already recorded, "
        f"{len(done.skipped)} skipped, {len(done.refused)} refused"
    )
    return 1 if done.refused else 0
