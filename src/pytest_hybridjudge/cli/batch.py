"""`hybridjudge batch cancel RUN`: cancel the provider batches a run left uncollected.

An interrupted `pytest --judge --judge-batch` leaves its batches running at the provider (a
rerun collects them without paying twice); this is the other way out.
"""

from __future__ import annotations

import argparse
import asyncio

from .common import Project, add_root_option, fail, say


def add_batch_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `batch cancel` on `subparsers`."""
    batch = subparsers.add_parser("batch", help="Cancel a run's uncollected provider batches")
    commands = batch.add_subparsers(dest="batch_command", metavar="{cancel}", required=True)
    cancel = commands.add_parser(
        "cancel",
        help="Cancel the provider batches a run submitted and never collected",
        description="Asks the provider to cancel every batch RUN created whose results no run "
        "collected, and marks them collected. `pytest --judge --judge-batch` collects them "
        "instead, without paying twice.",
    )
    add_root_option(cancel)
    cancel.add_argument("run", metavar="RUN", help="The run's id (see `hybridjudge runs`)")
    return batch


def run_batch(args: argparse.Namespace) -> int:
    """Run `hybridjudge batch cancel`; clear errors go to stderr with exit code 2."""
    from ..batches.ledger import BatchLedger, uncollected
    from ..errors import HybridJudgeError

    try:
        project = Project.from_args(args)
        store = project.store
        run = store.resolve(args.run)
        entries = uncollected(store.folder, run.run_id)
        if not entries:
            say(f"run {run.run_id}: no uncollected provider batches")
            return 0
        for entry in entries:
            batch_id = asyncio.run(_cancel(project, entry.provider, entry.batch_id, entry.key))
            BatchLedger(entry.path.parent.parent).collected(entry.key, path=entry.path)
            shown = batch_id or f"(key {entry.key}: never created)"
            say(f"run {run.run_id}: {entry.provider} batch {shown} cancelled")
    except HybridJudgeError as exc:
        return fail("batch", exc)
    return 0


async def _cancel(
    project: Project, provider_name: str, batch_id: str | None, key: str
) -> str | None:
    """Cancel one batch (found by its key when its id was never written); its id, if any."""
    from ..errors import ProviderError
    from ..providers import make_provider

    provider = make_provider(provider_name, project.config.providers, project.root)
    batches = getattr(provider, "batches", None)
    if batches is None:
        raise ProviderError(f"provider '{provider_name}' has no batch API to cancel in")
    transport = batches()
    try:
        batch_id = batch_id or await transport.find(key)
        if batch_id is not None:
            await transport.cancel(batch_id)
        return batch_id
    finally:
        await provider.aclose()
