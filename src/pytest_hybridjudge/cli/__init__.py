"""The `hybridjudge` command: review items, calibrate judges, list runs, export, import, print
schemas."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .batch import add_batch_parser, run_batch
from .calibrate import add_calibrate_parser, run_calibrate
from .export import add_export_parser, run_export
from .imports import add_import_parser, run_import
from .migrate import add_migrate_parser, run_migrate
from .review import add_review_parser, run_review
from .runs import add_runs_parser, run_runs
from .schema import add_schema_parser, run_schema

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hybridjudge` console script."""
    parser = argparse.ArgumentParser(prog="hybridjudge", description=__doc__)
    parser.add_argument("--version", action="store_true", help="Print the version and exit")
    commands = parser.add_subparsers(dest="command")
    add_schema_parser(commands)
    add_runs_parser(commands)
    add_review_parser(commands)
    add_calibrate_parser(commands)
    add_migrate_parser(commands)
    add_export_parser(commands)
    add_import_parser(commands)
    add_batch_parser(commands)
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("pytest-hybridjudge"))
        return 0
    commands_run = {
        "schema": run_schema,
        "runs": run_runs,
        "review": run_review,
        "calibrate": run_calibrate,
        "migrate": run_migrate,
        "export": run_export,
        "import": run_import,
        "batch": run_batch,
    }
    if args.command not in commands_run:
        parser.print_help()
        return 2
    try:
        code = commands_run[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        # The reader went away (`hybridjudge review --json | head -1`): stop quietly, and point
        # stdout at devnull so Python's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
