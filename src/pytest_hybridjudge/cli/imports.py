"""`hybridjudge import FORMAT SOURCE`: another tool's gold set as an ordinary gold file."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from .common import fail, say


def add_import_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `import` on `subparsers`."""
    from ..importers import FORMATS

    parser = subparsers.add_parser(
        "import",
        help="Write a gold file from a promptfoo, Inspect, DeepEval, LangSmith or OpenAI Evals set",
    )
    parser.add_argument("format", choices=FORMATS, help="The tool that wrote SOURCE")
    parser.add_argument("source", help="The file (or promptfoo project folder) to import")
    parser.add_argument(
        "--out", metavar="PATH", help="Gold file to write (default: gold/NAME.yaml)"
    )
    parser.add_argument(
        "--rubrics",
        metavar="DIR",
        default="rubrics",
        help="Folder for rubric files (default: rubrics)",
    )
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="GOLD=SOURCE",
        help="Take a case's id, input, messages, reference or output from the SOURCE field",
    )
    parser.add_argument("--force", action="store_true", help="Overwrite files with other content")
    return parser


def run_import(args: argparse.Namespace) -> int:
    """Import, write, and print what was mapped and what was not (with file and line)."""
    from ..importers import SourceError, import_source
    from ..importers.common import GOLD_FIELDS
    from ..importers.writing import write_all

    fields: dict[str, str] = {}
    for spec in args.field:
        gold, sep, source_field = spec.partition("=")
        if not sep or gold not in GOLD_FIELDS or not source_field:
            return fail(
                "import",
                f"--field {spec!r}: write GOLD=SOURCE with GOLD one of {', '.join(GOLD_FIELDS)} "
                "(e.g. --field input=question)",
            )
        fields[gold] = source_field
    source = Path(args.source)
    name = (
        source.stem if source.stem not in ("", "promptfooconfig") else source.resolve().parent.name
    )
    if source.is_dir():
        name = source.resolve().name
    out = Path(args.out) if args.out else Path("gold") / f"{name}.yaml"
    if out.suffix not in (".yaml", ".yml"):
        return fail("import", f"--out {out}: write a .yaml gold file")
    words = ["hybridjudge", "import", args.format, args.source]
    words += [f"--field={f}" for f in args.field]
    try:
        imported = import_source(args.format, source, out.stem, fields)
        if not imported.cases:
            _report(imported)
            return fail("import", f"{source}: no case could be imported (see above)")
        written = write_all(imported, out, Path(args.rubrics), shlex.join(words), args.force)
    except SourceError as exc:
        return fail("import", exc)
    _report(imported)
    for file in written:
        say(f"{'unchanged' if file.unchanged else 'wrote'} {file.path}")
    return 0


def _report(imported: object) -> None:
    from ..importers import Imported

    assert isinstance(imported, Imported)
    say(f"imported {len(imported.cases)} case(s) from {imported.source} ({imported.format})")
    for what, count in sorted(imported.mapped.items()):
        say(f"  {what}: {count}")
    for note in imported.notes:
        say(f"{note}")
    for hint in dict.fromkeys(imported.hints):
        say(f"config hint, [tool.hybridjudge] {hint}")
