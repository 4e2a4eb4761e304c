"""Importers: gold sets other tools wrote (promptfoo, Inspect, DeepEval, LangSmith, OpenAI
Evals) as ordinary gold files, with a report of what was mapped and what could not be."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .report import Imported, Note, SourceError

FORMATS = ("promptfoo", "inspect", "deepeval", "langsmith", "openai-evals")

__all__ = ["FORMATS", "Imported", "Note", "SourceError", "import_source"]


def import_source(
    fmt: str, source: Path, stem: str, fields: Mapping[str, str] | None = None
) -> Imported:
    """Read `source` in format `fmt`; `stem` names generated ids and rubrics. Never runs code
    from the source. Raises `SourceError` when nothing can be imported."""
    fields = dict(fields or {})
    imported = Imported(source=str(source), format=fmt)
    if fmt == "promptfoo":
        from .promptfoo import import_promptfoo

        if fields:
            raise SourceError("--field does not apply to promptfoo: its `vars` are the input")
        import_promptfoo(source, imported, stem)
    elif fmt == "inspect":
        from .inspect_dataset import import_inspect

        import_inspect(source, imported, stem, fields)
    elif fmt == "deepeval":
        from .deepeval import import_deepeval

        import_deepeval(source, imported, stem, fields)
    elif fmt == "langsmith":
        from .langsmith import import_langsmith

        import_langsmith(source, imported, stem, fields)
    elif fmt == "openai-evals":
        from .openai_evals import import_openai_evals

        import_openai_evals(source, imported, stem, fields)
    else:
        raise SourceError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return imported
