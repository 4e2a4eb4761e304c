"""`hybridjudge migrate`: move the files the tool kept in `gold/` to where they live now."""

from __future__ import annotations

import argparse

from .common import Project, add_root_option, fail, say


def add_migrate_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `migrate` on `subparsers`."""
    migrate = subparsers.add_parser(
        "migrate",
        help="Move resolutions and calibration files out of gold/ to the configured place",
        description="Older versions kept resolutions.jsonl, calibration.json and "
        "calibration-history.jsonl in gold/, where gold files are collected. This moves them "
        "beside the configured `resolutions` file (default review/resolutions.jsonl).",
    )
    add_root_option(migrate)
    return migrate


def run_migrate(args: argparse.Namespace) -> int:
    """Move the legacy files; refuse (exit 2) when a destination already exists."""
    from ..errors import HybridJudgeError
    from ..review.resolutions import ResolutionError, legacy_files

    try:
        project = Project.from_args(args)
        moves = legacy_files(project.resolutions)
        if not moves:
            say(f"nothing to migrate: no tool files in {project.resolutions.parent.parent}/gold")
            return 0
        for old, new in moves:
            if new.exists():
                raise ResolutionError(
                    f"both {project.shown(old)} and {project.shown(new)} exist; merge them by "
                    f"hand (append the old lines to the new file), then delete {old}"
                )
        for old, new in moves:
            new.parent.mkdir(parents=True, exist_ok=True)
            old.rename(new)
            say(f"moved {project.shown(old)} -> {project.shown(new)}")
    except HybridJudgeError as exc:
        return fail("migrate", exc)
    say("commit the move (git add -A) so everyone's runs read the decisions from the new place")
    return 0
