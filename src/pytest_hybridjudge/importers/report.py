"""What an import produced: the cases and rubrics to write, and a report of what was mapped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import HybridJudgeError

NoteKind = Literal["warning", "unsupported", "info"]


class SourceError(HybridJudgeError):
    """The source cannot be imported at all; the message names the file, line and the fix."""


@dataclass(frozen=True)
class Note:
    """One thing the report says: where in the source, and what was not mapped or why."""

    where: str
    message: str
    kind: NoteKind = "unsupported"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class Imported:
    """The gold cases (plain mappings in gold-file order) and rubric files an import made."""

    source: str
    format: str
    cases: list[dict[str, Any]] = field(default_factory=list)
    rubrics: dict[str, str] = field(default_factory=dict)  # name -> file text
    notes: list[Note] = field(default_factory=list)
    mapped: dict[str, int] = field(default_factory=dict)  # what was mapped -> how many times
    hints: list[str] = field(default_factory=list)  # config the user should add

    def note(self, where: str, message: str, kind: NoteKind = "unsupported") -> None:
        """Add a line to the report."""
        self.notes.append(Note(where, message, kind))

    def count(self, what: str, n: int = 1) -> None:
        """Count one more `what` mapped (e.g. `verify.regex`, `reference`)."""
        self.mapped[what] = self.mapped.get(what, 0) + n

    def add_case(self, case: dict[str, Any], wanted_id: str | None, fallback: str) -> None:
        """Append `case` with a unique, usable id (from `wanted_id`, else `fallback`)."""
        base = case_id(wanted_id) or case_id(fallback) or "case"
        taken = {c["id"] for c in self.cases}
        new, n = base, 1
        while new in taken:
            n += 1
            new = f"{base}-{n}"
        self.cases.append({"id": new, **{k: v for k, v in case.items() if k != "id"}})


_UNSAFE = re.compile(r"[^\w.@+-]+")


def case_id(text: Any) -> str:
    """A case id from source text: printable, no `::`, runs of other characters as '-'."""
    if text is None:
        return ""
    slug = _UNSAFE.sub("-", str(text).strip()).strip("-.")
    return slug[:80].rstrip("-.")
