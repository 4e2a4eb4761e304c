"""The `hybridjudge` command: review escalated items, calibrate judges, list runs, print schemas."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .review.calibrate import add_calibrate_parser, run_calibrate
from .review.cli import add_review_parser, run_review


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hybridjudge` console script."""
    parser = argparse.ArgumentParser(prog="hybridjudge", description=__doc__)
    parser.add_argument("--version", action="store_true", help="Print the version and exit")
    commands = parser.add_subparsers(dest="command")
    schema = commands.add_parser("schema", help="Print the JSON Schema of a file format")
    schema.add_argument("kind", choices=("manifest", "results", "config"))
    runs = commands.add_parser("runs", help="List the runs under .hybridjudge/runs")
    runs.add_argument("--dir", default=".hybridjudge/runs", help="Runs folder")
    add_review_parser(commands)
    add_calibrate_parser(commands)
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("pytest-hybridjudge"))
        return 0
    if args.command == "schema":
        return _schema(args.kind)
    if args.command == "runs":
        return _runs(Path(args.dir))
    if args.command == "review":
        return run_review(args)
    if args.command == "calibrate":
        return run_calibrate(args)
    parser.print_help()
    return 2


def _schema(kind: str) -> int:
    from pydantic import BaseModel

    from .config import HybridJudgeConfig
    from .manifest import ReviewItem
    from .verdict import CaseResult

    models: dict[str, type[BaseModel]] = {
        "manifest": ReviewItem,
        "results": CaseResult,
        "config": HybridJudgeConfig,
    }
    model = models[kind]
    print(json.dumps(model.model_json_schema(), indent=2))
    return 0


def _runs(folder: Path) -> int:
    summaries = sorted(folder.glob("*/summary.json"))
    if not summaries:
        print(f"no runs under {folder}; run `pytest --judge` first", file=sys.stderr)
        return 1
    for path in summaries:
        try:
            s = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{path}: unreadable ({exc})", file=sys.stderr)
            continue
        o = s["outcomes"]
        print(
            f"{s['run_id']}  {s['cases']:>5} cases  {o['passed']:>5} passed  {o['failed']:>5} "
            f"failed  {o['escalated']:>5} escalated  {o['skipped']:>5} skipped"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
