"""Writing an import: the gold file and rubric files, the same bytes for the same source."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..gold import GoldError, load_gold_file
from ..rubric import RubricError, parse_rubric
from .report import Imported, SourceError


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as `|` blocks so prompts stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and value == value.strip(" ") and "\r" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def gold_text(imported: Imported, command: str) -> str:
    """The gold file: a header naming the command, then `cases:` in source order."""
    body = yaml.dump(
        {"cases": imported.cases},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return f"# Imported from {imported.format} by `{command}`; edit freely.\n{body}"


@dataclass(frozen=True)
class Written:
    """A file an import wrote, or found already holding the same bytes."""

    path: Path
    unchanged: bool


def write_all(
    imported: Imported, out: Path, rubrics_dir: Path, command: str, force: bool
) -> list[Written]:
    """Check every file loads, refuse to overwrite a different file without `force`, write."""
    files = {out: gold_text(imported, command)}
    files |= {rubrics_dir / f"{name}.md": text for name, text in imported.rubrics.items()}
    changed = {
        path: text
        for path, text in files.items()
        if not (path.is_file() and path.read_bytes() == text.encode())
    }
    clobbered = [p for p in changed if p.exists()]
    if clobbered and not force:
        names = ", ".join(str(p) for p in clobbered)
        raise SourceError(
            f"{names} already exist(s) with other content; pass --force to overwrite, or "
            "choose another --out"
        )
    for path, text in changed.items():
        _check_loads(path, text)
    for path, text in changed.items():
        _write_atomic(path, text)
    return [Written(p, p not in changed) for p in files]


def _check_loads(path: Path, text: str) -> None:
    """What is written must load as the tool loads it; a failure here is an importer bug."""
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / path.name
        probe.write_text(text, encoding="utf-8")
        try:
            if path.suffix == ".md":
                parse_rubric(probe, path.stem)
            else:
                load_gold_file(probe, str(path))
        except (GoldError, RubricError) as exc:
            raise SourceError(
                f"the imported {path} would not load ({exc}); please report this"
            ) from None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rubric_text(meta: dict[str, Any], body: str) -> str:
    """A rubric file: YAML front matter, then the template body."""
    front = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{front}---\n{body.rstrip()}\n"
