"""`hybridjudge schema KIND`: print the JSON Schema of one of the files the tool reads or writes."""

from __future__ import annotations

import argparse
import json

KINDS = ("manifest", "results", "summary", "config")


def add_schema_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `schema` on `subparsers`."""
    schema = subparsers.add_parser("schema", help="Print the JSON Schema of a file format")
    schema.add_argument("kind", choices=KINDS)
    return schema


def run_schema(args: argparse.Namespace) -> int:
    """Print the schema of `args.kind`."""
    from pydantic import BaseModel

    from ..config import HybridJudgeConfig
    from ..review.manifest import ReviewItem
    from ..summary import RunSummary
    from ..verdict import CaseResult

    models: dict[str, type[BaseModel]] = {
        "manifest": ReviewItem,
        "results": CaseResult,
        "summary": RunSummary,
        "config": HybridJudgeConfig,
    }
    print(json.dumps(models[args.kind].model_json_schema(), indent=2))
    return 0
