"""Which files are gold files: a gold suffix, under a `gold` entry, and never a file the tool
writes (resolutions, calibration, the cache, a run's files). Asked by collection and the
recorder alike, from the settings and the project root alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .paths import configured

if TYPE_CHECKING:
    from .config import HybridJudgeConfig


def tool_owned(settings: HybridJudgeConfig, root: Path, path: Path) -> bool:
    """Whether the tool writes the file `path`: resolutions, calibration, history, the cache and
    its side files, or a file in a run folder. Only files: never a whole folder, so a cache or
    runs folder in the project root hides no gold file."""
    from .calibration import calibration_paths
    from .review.resolutions import legacy_files
    from .runs import RunStore

    resolutions = configured(root, settings.resolutions).resolve()
    owned = [resolutions, *calibration_paths(resolutions)]
    owned += [old for old, _ in legacy_files(resolutions, root=root)]  # older versions' place
    cache = configured(root, settings.cache_path).resolve()
    owned += [cache, *(cache.with_name(cache.name + end) for end in ("-wal", "-shm", "-journal"))]
    if path in (p.resolve() for p in owned):
        return True
    return RunStore.configured(root, settings).owns(path)


def is_gold(settings: HybridJudgeConfig, root: Path, file_path: Path) -> bool:
    """Whether `file_path` is a gold file: a gold suffix, under a `gold` entry, not the tool's."""
    from .gold import GOLD_SUFFIXES

    if file_path.suffix not in GOLD_SUFFIXES:
        return False
    path = file_path.resolve()
    if tool_owned(settings, root, path):
        return False  # files the tool writes are never read back as cases
    for entry in settings.gold:
        folder = configured(root, entry).resolve()
        if path == folder or folder in path.parents:
            return True
    return False
