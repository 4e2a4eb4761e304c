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
    from ..files import move_file
    from ..paths import inside
    from ..review.resolutions import LEGACY_FOLDER, ResolutionError, legacy_files

    try:
        project = Project.from_args(args)
        moves = legacy_files(project.resolutions, root=project.root)
        if not moves:
            old_folder = project.resolutions.parent.parent / LEGACY_FOLDER
            where = (
                project.shown(old_folder)
                if inside(project.root, old_folder)
                else f"the project ({old_folder} is outside {project.root}: never read or moved)"
            )
            say(f"nothing to migrate: no tool files in {where}")
            return 0
        for old, new in moves:
            if new.exists():
                raise ResolutionError(
                    f"both {project.shown(old)} and {project.shown(new)} exist; merge them by "
                    f"hand (append the old lines to the new file), then delete {old}"
                )
        for old, new in moves:
            try:
                move_file(old, new)
            except OSError as exc:
                raise ResolutionError(
                    f"cannot move {project.shown(old)} to {project.shown(new)} "
                    f"({exc.strerror or exc}); nothing else was moved after it: fix that and "
                    "run `hybridjudge migrate` again"
                ) from None
            say(f"moved {project.shown(old)} -> {project.shown(new)}")
    except HybridJudgeError as exc:
        return fail("migrate", exc)
    say("commit the move (git add -A) so everyone's runs read the decisions from the new place")
    return 0
