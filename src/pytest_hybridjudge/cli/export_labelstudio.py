"""`hybridjudge export labelstudio`: the pending review items as Label Studio tasks, and the
labelling config to paste into the project."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..files import write_text_atomic
from ..terminal import safe_json
from ..words import counted
from .common import Project, add_root_option, say, where


def add_labelstudio_parser(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `export labelstudio` on the `export` kinds."""
    parser = kinds.add_parser(
        "labelstudio",
        help="Pending review items as Label Studio tasks (judges as predictions, none on audits)",
    )
    add_root_option(parser)
    parser.add_argument("--run", default="all", help="`latest`, `all` or a run id (default: all)")
    parser.add_argument("--out", metavar="PATH", help="Write the tasks to PATH (JSON)")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="Write the labelling config (XML) to PATH (default: beside --out, as .xml)",
    )
    return parser


def export_labelstudio(project: Project, args: argparse.Namespace) -> int:
    """Write the tasks (standard output or `--out`) and the config (`--config`, or beside
    `--out`); say on stderr how many and where."""
    from ..exports.labelstudio import labelling_config, tasks

    desk = project.desk
    pending = desk.pending(desk.items(args.run))
    text = safe_json(json.dumps(tasks(pending), ensure_ascii=False, indent=2)) + "\n"
    config_path = Path(args.config) if args.config else None
    if args.out:
        write_text_atomic(Path(args.out), text)
        config_path = config_path or Path(args.out).with_suffix(".xml")
    else:
        sys.stdout.write(text)
    audits = sum(item.audit for item in pending)
    summary = (
        f"{counted(len(pending), 'pending item')} of {where(args.run)} as Label Studio tasks"
        f"{' in ' + args.out if args.out else ''} ({audits} random-audit without predictions)"
    )
    say(summary, file=sys.stderr)
    if config_path is not None:
        write_text_atomic(config_path, labelling_config(pending))
        say(
            f"labelling config in {config_path}: paste it under Settings > Labeling Interface "
            "> Code; import the decisions back with `hybridjudge review import labelstudio "
            "EXPORT.json`",
            file=sys.stderr,
        )
    return 0
