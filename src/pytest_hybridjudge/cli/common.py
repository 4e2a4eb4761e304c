"""Plumbing shared by the `hybridjudge` commands: options, the project, paths, errors, output.

Everything a command prints that came from a run, a gold file or a reviewer goes through `say`
(or `printable`), so escape sequences and bidi controls in untrusted text never reach the
terminal as control characters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import terminal
from ..errors import HybridJudgeError
from ..paths import configured, find_project_root

if TYPE_CHECKING:
    from ..config import HybridJudgeConfig
    from ..runs import RunStore

EXIT_ERROR = 2
"""Exit code of a usage error (argparse's), printed as one line without a traceback."""


class CommandError(HybridJudgeError):
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

    def shown(self, path: Path) -> str:
        """`path` relative to the project folder when it is inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)
