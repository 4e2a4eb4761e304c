"""`hybridjudge review walk`: go through pending items one by one, interactively."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Literal

from ..words import counted
from .common import ID_WIDTH, Project, Reader, filtered, reviewer_name, say, where
from .render import decision_status, render_item

if TYPE_CHECKING:
    from ..review.manifest import ReviewItem

# --- walk ----------------------------------------------------------------------------------

_VERDICT_ANSWERS = {
    "p": "pass",
    "pass": "pass",
    "f": "fail",
    "fail": "fail",
    "s": "skip",
    "skip": "skip",
    "q": "quit",
    "quit": "quit",
}


def _ask_verdict(read: Reader) -> str:
    while True:
        answer = read("verdict [p]ass/[f]ail/[s]kip/[q]uit: ").strip().lower()
        if answer in _VERDICT_ANSWERS:
            return _VERDICT_ANSWERS[answer]
        say("  answer p (pass), f (fail), s (skip this item) or q (quit)")


def _score_range(item: ReviewItem, verdict: str) -> tuple[int, int] | None:
    """The scores consistent with `verdict` on the item's scale, or None if it takes none."""
    if item.scale is None:
        return None
    low, high = item.scale
    if item.pass_threshold is not None:
        low, high = (
            (item.pass_threshold, high) if verdict == "pass" else (low, item.pass_threshold - 1)
        )
    return (low, high) if low <= high else None


def _ask_score(read: Reader, item: ReviewItem, verdict: str) -> int | None:
    allowed = _score_range(item, verdict)
    if allowed is None:
        return None
    low, high = allowed
    while True:
        answer = read(f"score {low}-{high} (enter for none): ").strip()
        if not answer:
            return None
        try:
            score = int(answer)
        except ValueError:
            say(f"  {answer!r} is not a whole number; give a score from {low} to {high}")
            continue
        if low <= score <= high:
            return score
        say(f"  a '{verdict}' takes a score from {low} to {high} on this rubric")


def walk(project: Project, args: argparse.Namespace, read: Reader) -> int:
    """Show each pending item this reviewer has not resolved, ask for a decision, record it."""
    reviewer = reviewer_name(args)
    run = args.run or "all"
    desk = project.desk
    queue = desk.queue(filtered(desk.pending(desk.items(run)), args, project), reviewer)
    if not queue:
        say(f"nothing left for {reviewer} to review in {where(run)}")
        return 0
    items_left = counted(len(queue), "item")
    say(f"{items_left} for {reviewer} in {where(run)}; answer q to stop at any item")
    resolved = skipped = 0
    try:
        for number, item in enumerate(queue, start=1):
            say(f"\n=== item {number} of {len(queue)} " + "=" * 50)
            earlier = desk.decision(item.item_id)
            say(render_item(item, earlier.resolutions if earlier else ()))
            say()
            answer = _ask_verdict(read)
            if answer == "quit":
                break
            if answer == "skip":
                skipped += 1
                continue
            verdict: Literal["pass", "fail"] = "pass" if answer == "pass" else "fail"
            score = _ask_score(read, item, verdict)
            note = read("note (enter for none): ").strip() or None
            done = desk.resolve(item, verdict, reviewer, score=score, note=note)
            resolved += 1
            say(
                f"recorded {verdict} for {item.item_id[:ID_WIDTH]} in "
                f"{project.shown(desk.path)}; {decision_status(done.decision)}"
            )
    except EOFError:
        say("\nend of input: stopping")
    except KeyboardInterrupt:
        say(f"\ninterrupted: {resolved} resolved, {skipped} skipped")
        return 130
    left = len(queue) - resolved
    say(f"{resolved} resolved, {skipped} skipped, {left} left for {reviewer}")
    return 0
