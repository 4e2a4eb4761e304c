"""The one resolver of configured paths, used alike by the pytest session and the CLI.

`runs_dir`, `cache_path`, `resolutions`, `rubrics` and `gold` entries are written relative to the
project root; `~` means the user's home folder everywhere. Nothing here touches the disk except
`find_project_root`, which looks for the root's marker files.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_MARKERS = ("pyproject.toml", "hybridjudge.toml")


def configured(root: Path, value: str | os.PathLike[str]) -> Path:
    """A configured path: `~` expanded; absolute as given, else relative to `root`."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def find_project_root(start: Path) -> Path:
    """The nearest folder from `start` upwards holding pyproject.toml or hybridjudge.toml.

    Falls back to `start` when there is none.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in ROOT_MARKERS):
            return folder
    return start


def lexical(path: Path) -> Path:
    """`path` made absolute with `..` folded away, symlinks left as they are."""
    return Path(os.path.abspath(path))


def inside(root: Path, path: Path) -> bool:
    """Whether `path` is `root` or below it: by name (`..` folded, links kept), or once both
    are resolved (so a root reached through a link still contains its own files)."""
    for base, full in ((lexical(root), lexical(path)), (root.resolve(), path.resolve())):
        if full == base or base in full.parents:
            return True
    return False
