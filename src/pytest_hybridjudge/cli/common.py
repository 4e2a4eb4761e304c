"""Plumbing shared by the `hybridjudge` commands: options, the project, paths, errors, output.

Everything a command prints that came from a run, a gold file or a reviewer goes through `say`
(or `printable`), so escape sequences and bidi controls in untrusted text never reach the
terminal as control characters.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import terminal
from ..errors import InputError
from ..paths import configured, find_project_root

if TYPE_CHECKING:
    from ..config import HybridJudgeConfig
    from ..review.decisions import ReviewDesk
    from ..review.manifest import ReviewItem
    from ..runs import RunStore

EXIT_ERROR = 2
"""Exit code of a usage error (argparse's), printed as one line without a traceback."""
REVIEWER_ENV = "HYBRIDJUDGE_REVIEWER"
"""Who is reviewing, when `--reviewer` is not given."""
ID_WIDTH = 12
"""Characters of an item id the review commands show."""

Reader = Callable[[str], str]
"""Prompts for and returns one line of input (`input`), raising `EOFError` at its end."""


class CommandError(InputError):
    """A command-line argument is wrong; the message names the option and the fix."""


def printable(text: str) -> str:
    """`text` safe for a terminal, newlines and tabs kept (see `terminal.printable`)."""
    return terminal.printable(text, block=True)


def say(text: str = "", file: TextIO | None = None) -> None:
    """Print `text` with control characters escaped (`printable`)."""
    print(printable(text), file=file)


def fail(command: str, message: object) -> int:
    """Print `hybridjudge COMMAND: error: MESSAGE` to stderr; return `EXIT_ERROR`."""
    say(f"hybridjudge {command}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def add_root_option(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """`--root DIR`: the project folder (default: found upwards from the current folder)."""
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=default,
        help="Project folder (default: nearest folder up with pyproject.toml or hybridjudge.toml)",
    )


class Project:
    """The project a command works on: its folder, config, run store and resolutions file."""

    def __init__(self, root: Path, config: HybridJudgeConfig) -> None:
        self.root = root
        self.config = config
        self.resolutions = configured(root, config.resolutions)
        self._store: RunStore | None = None

    @property
    def store(self) -> RunStore:
        """The project's run store (`runs_dir`), built on first use."""
        if self._store is None:
            from ..runs import RunStore

            self._store = RunStore.configured(self.root, self.config)
        return self._store

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Project:
        """From `--root` (a folder that must exist), or found upwards from the current folder."""
        from ..config import load_config

        if getattr(args, "root", None) is not None:
            root = Path(args.root).resolve()
            if not root.is_dir():
                raise CommandError(f"--root {args.root}: no such folder")
        else:
            root = find_project_root(Path.cwd())
        return cls(root, load_config(root))

    @cached_property
    def desk(self) -> ReviewDesk:
        """The project's review desk: its reviewers' decisions, read once per command."""
        from ..review.decisions import ReviewDesk

        return ReviewDesk.for_project(self.root, self.config, self.store)

    def shown(self, path: Path) -> str:
        """`path` relative to the project folder when it is inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


# --- reviewing -----------------------------------------------------------------------------


def where(run: str) -> str:
    """`--run` in words: "all runs", "the latest run" or "run ID"."""
    return "all runs" if run == "all" else "the latest run" if run == "latest" else f"run {run}"


def _check_tier(tier: str | None, known: Sequence[str]) -> None:
    if tier is not None and tier not in known:
        raise CommandError(
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


def reviewer_name(args: argparse.Namespace) -> str:
    """Who is reviewing: `--reviewer`, else $HYBRIDJUDGE_REVIEWER; an error when neither."""
    name = args.reviewer if args.reviewer is not None else os.environ.get(REVIEWER_ENV)
    if name is None:
        raise CommandError(f"who is reviewing? Pass --reviewer NAME or set {REVIEWER_ENV}")
    if not name.strip():
        raise CommandError("the reviewer name is empty; pass --reviewer NAME")
    return name.strip()
