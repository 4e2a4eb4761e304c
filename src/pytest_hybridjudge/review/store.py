"""Review items as the runs left them (read through the run store): pending items and ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import RecordError
from ..runs import RunReferenceError, read_manifest
from ..words import counted
from .manifest import ReviewItem, current_item_id
from .resolutions import (
    Resolution,
    ReviewError,
    human_decision,
    resolutions_by_item,
)

if TYPE_CHECKING:
    from ..runs import RunStore


class ItemLookupError(ReviewError):
    """An item id (or prefix) matches no item, or more than one."""


SHOWN_ID = 12
"""Characters of an item id that `hybridjudge review` shows; a prefix this long names one item."""


def load_items(store: RunStore, run: str | None = "latest") -> list[ReviewItem]:
    """Review items from the runs' manifests.

    `run` is `"latest"` (or None) for the newest complete run, `"all"` for every run (newest run
    first; an item id that recurs is listed once, as its newest run has it), or any other run
    reference the store resolves (a run id or folder). A run that cannot be found raises
    `RunReferenceError`, a missing or malformed manifest `RecordError`.
    """
    if run == "all":
        runs = store.run_ids()
        if not runs:
            raise RunReferenceError(f"no runs under {store.folder}; run `pytest --judge` first")
        found: dict[str, ReviewItem] = {}
        for run_id in reversed(runs):
            if not store.has_manifest(run_id):  # an interrupted run: nothing to review there
                continue
            for item in store.manifest(run_id):
                found.setdefault(item.item_id, item)
        return list(found.values())
    ref = store.resolve(run or "latest")
    if ref.manifest is None:
        raise RunReferenceError(
            f"--run {run}: a results file has no review items; pass a run id or `latest`"
        )
    return read_manifest(ref.manifest)


def upgrade_legacy(resolutions: Iterable[Resolution], store: RunStore) -> list[Resolution]:
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
            manifests[run_id] = _manifest_items(store, run_id)
        item = manifests[run_id].get(resolution.item_id)
        if item is None or item.schema_version != 1:
            continue
        now = current_item_id(item)
        if now != resolution.item_id:
            result.append(resolution.model_copy(update={"item_id": now, "schema_version": 2}))
    return result


def _manifest_items(store: RunStore, run_id: str) -> dict[str, ReviewItem]:
    """Items of one run's manifest by id; none when the run or its manifest is gone or bad."""
    if run_id in ("", ".", "..") or "/" in run_id or "\\" in run_id:
        return {}
    try:
        return {i.item_id: i for i in store.manifest(run_id)}
    except RecordError:
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


def find_in_runs(store: RunStore, prefix: str, run: str | None = "all") -> ReviewItem:
    """The one item of `run` (`latest`, `all` or a run id) whose id is `prefix` or starts with it.

    For `all`, an id of at least `SHOWN_ID` characters (as `hybridjudge review` shows them) is
    looked for in the runs newest first, and reading stops at the first run holding it; a shorter
    prefix is matched against every run's items, so it cannot pick one of two items silently.
    Raises `ItemLookupError` (see `find_item`), `RunReferenceError` or `RecordError`.
    """
    wanted = prefix.strip().lower()
    runs = store.run_ids() if run == "all" else []
    if run != "all" or len(wanted) < SHOWN_ID or not runs:
        return find_item(load_items(store, run), prefix)
    seen: dict[str, ReviewItem] = {}
    for run_id in reversed(runs):
        if not store.has_manifest(run_id):  # an interrupted run: nothing to review there
            continue
        items = store.manifest(run_id)
        if any(item.item_id.startswith(wanted) for item in items):
            return find_item(items, prefix)
        for item in items:
            seen.setdefault(item.item_id, item)
    return find_item(seen.values(), prefix)  # not found: says among how many items
