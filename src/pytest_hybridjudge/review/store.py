"""Review items as the runs left them: reading manifests, finding pending items and ids."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..files import parse_jsonl
from ..summary import recorded_path
from ..words import counted
from .manifest import ReviewItem, current_item_id
from .resolutions import (
    Resolution,
    ReviewError,
    human_decision,
    resolutions_by_item,
)


class ManifestError(ReviewError):
    """A run or its manifest cannot be found or read; the message names the file and line."""


class ItemLookupError(ReviewError):
    """An item id (or prefix) matches no item, or more than one."""


SHOWN_ID = 12
"""Characters of an item id that `hybridjudge review` shows; a prefix this long names one item."""


def run_ids(runs_dir: Path) -> list[str]:
    """The run folders under `runs_dir`, oldest first (run ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    return sorted(p.name for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def latest_run_id(runs_dir: Path) -> str:
    """The id in `runs_dir/LATEST`, written at the end of every `pytest --judge` run."""
    latest = runs_dir / "LATEST"
    try:
        run_id = latest.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ManifestError(
            f"no complete run under {runs_dir} ({latest}, which names the newest complete run, "
            "is missing); run `pytest --judge` on the whole gold set, or pass --run RUN_ID "
            "(`hybridjudge runs` lists the runs)"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{latest}: cannot read ({exc.strerror})") from None
    if not run_id:
        raise ManifestError(f"{latest} is empty; run `pytest --judge` again, or pass --run RUN_ID")
    return run_id


def manifest_path(runs_dir: Path, run_id: str) -> Path:
    """Where run `run_id` wrote its manifest.

    Normally `runs_dir/run_id/manifest.jsonl`; a run started with `--judge-manifest PATH`
    records the path it used in its `summary.json`.
    """
    return recorded_path(runs_dir, run_id, "manifest")


def read_manifest(path: Path) -> list[ReviewItem]:
    """The review items in one manifest file; a bad line raises `ManifestError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            f"{path} is missing; the run did not finish writing its files. "
            "Run `pytest --judge` again, or pick another run with --run RUN_ID"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read ({exc})") from None
    fix = "the manifest is written by `pytest --judge`: run it again, or fix that line"
    return parse_jsonl(text, path, ReviewItem, ManifestError, "a review item", fix)


def _check_run_id(runs_dir: Path, run_id: str) -> None:
    if run_id in ("", ".", "..") or "/" in run_id or "\\" in run_id:
        raise ManifestError(f"{run_id!r} is not a run id; list the runs with `hybridjudge runs`")
    if not (runs_dir / run_id).is_dir():
        known = run_ids(runs_dir)
        hint = f"known runs: {', '.join(known[-5:])}" if known else "run `pytest --judge` first"
        raise ManifestError(f"no run {run_id!r} under {runs_dir}; {hint}")


def load_items(runs_dir: Path, run: str | None = "latest") -> list[ReviewItem]:
    """Review items from the runs' manifests.

    `run` is `"latest"` (or None) for the run named in `runs_dir/LATEST`, `"all"` for every run
    (newest run first; an item id that recurs is listed once, as its newest run has it), or a run
    id. Missing runs and malformed manifest lines raise `ManifestError`.
    """
    if run is None or run == "latest":
        run_id = latest_run_id(runs_dir)
        _check_run_id(runs_dir, run_id)
        return read_manifest(manifest_path(runs_dir, run_id))
    if run == "all":
        runs = run_ids(runs_dir)
        if not runs:
            raise ManifestError(f"no runs under {runs_dir}; run `pytest --judge` first")
        found: dict[str, ReviewItem] = {}
        for run_id in reversed(runs):
            path = manifest_path(runs_dir, run_id)
            if not path.is_file():  # an interrupted run: nothing to review there
                continue
            for item in read_manifest(path):
                found.setdefault(item.item_id, item)
        return list(found.values())
    _check_run_id(runs_dir, run)
    return read_manifest(manifest_path(runs_dir, run))


def upgrade_legacy(resolutions: Iterable[Resolution], runs_dir: Path) -> list[Resolution]:
    """The resolutions, each schema-1 one also under the id its item has today.

    A schema-1 item id covered the case id, output and rubric version, not the input or the
    reference. Its resolution is looked up in the manifest of the run that escalated the item
    (`run_id`); the id the item would have now is computed from what that manifest holds (input,
    reference, output, rubric version), and the resolution is added under it. A case whose input
    or reference changed since has another id, so the old decision does not apply to it. A
    resolution whose item cannot be found (the run was removed) cannot be checked and is not
    carried over.
    """
    result = list(resolutions)
    manifests: dict[str, dict[str, ReviewItem]] = {}
    for resolution in [r for r in result if r.schema_version == 1]:
        run_id = resolution.run_id or ""
        if run_id not in manifests:
            manifests[run_id] = _manifest_items(runs_dir, run_id)
        item = manifests[run_id].get(resolution.item_id)
        if item is None or item.schema_version != 1:
            continue
        now = current_item_id(item)
        if now != resolution.item_id:
            result.append(resolution.model_copy(update={"item_id": now, "schema_version": 2}))
    return result


def _manifest_items(runs_dir: Path, run_id: str) -> dict[str, ReviewItem]:
    """Items of one run's manifest by id; none when the run or its manifest is gone or bad."""
    try:
        _check_run_id(runs_dir, run_id)
        return {i.item_id: i for i in read_manifest(manifest_path(runs_dir, run_id))}
    except ReviewError:
        return {}


def pending(items: Iterable[ReviewItem], resolutions: Iterable[Resolution]) -> list[ReviewItem]:
    """Items still needing people: no resolution yet, or reviewers who disagree."""
    by_item = resolutions_by_item(resolutions)
    result = []
    for item in items:
        decided = by_item.get(item.item_id)
        if not decided or human_decision(decided)[0] == "disagree":
            result.append(item)
    return result


def find_item(items: Iterable[ReviewItem], prefix: str) -> ReviewItem:
    """The one item whose id is `prefix` or starts with it (case-insensitive).

    Raises `ItemLookupError` when no item matches, or when several do (listing them).
    """
    wanted = prefix.strip().lower()
    items = list(items)
    if not wanted:
        raise ItemLookupError("empty item id; copy one from `hybridjudge review`")
    exact = [i for i in items if i.item_id == wanted]
    if exact:
        return exact[0]
    matches = [i for i in items if i.item_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ItemLookupError(
            f"no review item with id {prefix!r} among {counted(len(items), 'item')}; list them "
            "with `hybridjudge review --run all` and copy an id (a unique prefix is enough)"
        )
    shown = "\n".join(f"  {i.item_id}  {i.case_id}  (run {i.run_id})" for i in matches[:10])
    more = f"\n  ... and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise ItemLookupError(
        f"item id {prefix!r} is ambiguous: it starts {len(matches)} ids; give more characters "
        f"of one of:\n{shown}{more}"
    )


def find_in_runs(runs_dir: Path, prefix: str, run: str | None = "all") -> ReviewItem:
    """The one item of `run` (`latest`, `all` or a run id) whose id is `prefix` or starts with it.

    For `all`, an id of at least `SHOWN_ID` characters (as `hybridjudge review` shows them) is
    looked for in the runs newest first, and reading stops at the first run holding it; a shorter
    prefix is matched against every run's items, so it cannot pick one of two items silently.
    Raises `ItemLookupError` (see `find_item`) or `ManifestError`.
    """
    wanted = prefix.strip().lower()
    runs = run_ids(runs_dir) if run == "all" else []
    if run != "all" or len(wanted) < SHOWN_ID or not runs:
        return find_item(load_items(runs_dir, run), prefix)
    seen: dict[str, ReviewItem] = {}
    for run_id in reversed(runs):
        path = manifest_path(runs_dir, run_id)
        if not path.is_file():  # an interrupted run: nothing to review there
            continue
        items = read_manifest(path)
        if any(item.item_id.startswith(wanted) for item in items):
            return find_item(items, prefix)
        for item in items:
            seen.setdefault(item.item_id, item)
    return find_item(seen.values(), prefix)  # not found: says among how many items
