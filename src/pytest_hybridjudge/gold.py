"""Gold sets: YAML and JSONL files of cases, parsed with the line of every case kept."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InputError, describe_validation_error
from .safeload import InvalidYAML, UnsafeInput, decode_utf8, load_json_line, load_yaml
from .terminal import first_unprintable, printable

GOLD_SUFFIXES = (".yaml", ".yml", ".jsonl")


class GoldError(InputError):
    """A gold file cannot be used; the message names the file, line and case, and the fix."""

    def __init__(self, path: Path, message: str, line: int | None = None, case: str | None = None):
        self.path, self.line, self.case = path, line, case
        where = f"{path}:{line}" if line else str(path)
        who = f" case '{case}'" if case else ""
        super().__init__(printable(f"{where}:{who} {message}"))  # printed as a collection error


class Message(BaseModel):
    """One chat message sent as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal["system", "user", "assistant"] = Field(description="Who speaks")
    content: str = Field(description="What is said")


class GoldCase(BaseModel):
    """One input with its optional reference, rubric, tags and verifiers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1, description="Unique across the whole gold set")
    input: str | dict[str, Any] | None = Field(
        None, description="The prompt, or a mapping of prompt variables"
    )
    messages: tuple[Message, ...] | None = Field(None, description="Chat messages sent as they are")
    reference: Any = Field(None, description="The expected or exemplary answer")
    rubric: str | None = Field(None, description="Rubric name; defaults to the file's `rubric`")
    tags: tuple[str, ...] = Field((), description="Labels; each becomes a pytest marker")
    verify: dict[str, Any] | None = Field(None, description="Deterministic checks, run first")
    output: str | None = Field(
        None, description="A fixed output, judged as it is: the target is not called for it"
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form, for templates")
    source: str = Field("", exclude=True, description="File the case came from")
    line: int | None = Field(None, exclude=True, description="1-based line of the case")

    @model_validator(mode="after")
    def _has_input(self) -> GoldCase:
        if self.input is None and not self.messages:
            raise ValueError("needs `input` (a string or mapping) or `messages`")
        return self

    def variables(self) -> dict[str, Any]:
        """Template variables: the mapping input spread, plus input, reference, metadata."""
        values: dict[str, Any] = {}
        if isinstance(self.input, dict):
            values.update(self.input)
        values.update(
            input=self.input if self.input is not None else self.last_user_text(),
            reference=self.reference,
            metadata=self.metadata,
            tags=list(self.tags),
            case_id=self.id,
            messages=[m.model_dump() for m in self.messages or ()],
        )
        return values

    def last_user_text(self) -> str:
        """The last user message's text, or '' when the case has none."""
        for message in reversed(self.messages or ()):
            if message.role == "user":
                return message.content
        return ""


def load_gold_file(path: Path, source: str | None = None) -> list[GoldCase]:
    """Parse one gold file; raise `GoldError` naming file, line and case on the first problem.

    `source` is how records name the file (the plugin passes the path from the project root).
    """
    try:
        text = decode_utf8(path.read_bytes())
    except UnsafeInput as exc:
        raise GoldError(path, exc.problem, exc.line) from None
    raw = _jsonl_cases(path, text) if path.suffix == ".jsonl" else _yaml_cases(path, text)
    cases: list[GoldCase] = []
    seen: dict[str, int | None] = {}
    for line, data, default_rubric in raw:
        case_id = str(data.get("id")) if isinstance(data, dict) and data.get("id") else None
        if not isinstance(data, dict):
            raise GoldError(path, "a case must be a mapping with `id` and `input`", line)
        if default_rubric and "rubric" not in data:
            data = {**data, "rubric": default_rubric}
        try:
            case = GoldCase.model_validate({**data, "source": source or str(path), "line": line})
        except ValidationError as exc:
            problem = describe_validation_error(exc, whole="case", allowed=CASE_KEYS)
            raise GoldError(path, problem, line, case_id) from None
        unusable = _id_problem(case.id) or _tag_problem(case.tags)
        if unusable:
            raise GoldError(path, unusable, line, case.id)
        if case.id in seen:
            first = seen[case.id]
            raise GoldError(
                path,
                f"duplicate id (first at line {first}); give each case its own id",
                line,
                case.id,
            )
        seen[case.id] = line
        cases.append(case)
    return cases


CASE_KEYS = (
    "id",
    "input",
    "messages",
    "reference",
    "output",
    "rubric",
    "tags",
    "verify",
    "metadata",
)


def _id_problem(case_id: str) -> str | None:
    """Why a case id cannot become part of a pytest node id, or None."""
    if "::" in case_id:
        return (
            "id contains '::', which separates the parts of a pytest node id, so the case could "
            "not be selected by node id; use another separator such as '-'"
        )
    bad = first_unprintable(case_id)  # pytest prints node ids as they are, escapes and all
    if bad is not None:
        return (
            f"id contains the control or bidi character U+{ord(bad):04X}, which pytest "
            "would print raw to the terminal; use printable characters only"
        )
    return None


# pytest's own marks: as tags they would skip, xfail or parametrize the case after it was paid for
BUILTIN_MARKS = ("skip", "skipif", "xfail", "usefixtures", "filterwarnings", "parametrize")


# a word `-m` can select: a letter or digit first, then letters, digits, `_`, `-`, `.`
_TAG = re.compile(r"[^\W_][\w.-]*")
_TAG_FIX = (
    "a tag is a word `-m` can select: a letter or digit first, then letters, digits, '_', '-' "
    "or '.' (e.g. 'geography', 'safety-critical', 'v2.1')"
)


def _tag_problem(tags: tuple[str, ...]) -> str | None:
    """Why a tag cannot become the case's marker, or None."""
    for tag in tags:
        if not _TAG.fullmatch(tag) or tag in ("and", "or", "not"):
            return f"tag {_quoted(tag)} cannot be a pytest marker; {_TAG_FIX}"
        if tag in BUILTIN_MARKS:
            return (
                f"tag '{tag}' is one of pytest's built-in marks, which would change the case's "
                f"outcome after its calls were paid for; rename the tag (e.g. '{tag}-case') "
                "or deselect cases with -k / -m instead"
            )
    return None


def _quoted(tag: str) -> str:
    return "'' (empty)" if not tag else f"'{tag}'"


def _jsonl_cases(path: Path, text: str) -> list[tuple[int | None, Any, str | None]]:
    out: list[tuple[int | None, Any, str | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, load_json_line(line), None))
        except UnsafeInput as exc:
            raise GoldError(path, f"not usable JSON: {exc.problem}", number) from None
        except json.JSONDecodeError as exc:
            raise GoldError(
                path, f"not valid JSON ({exc.msg} at column {exc.colno})", number
            ) from None
    return out


def _yaml_cases(path: Path, text: str) -> list[tuple[int | None, Any, str | None]]:
    try:
        node, data = load_yaml(text)
    except InvalidYAML as exc:
        raise GoldError(path, f"not valid YAML: {exc.problem}", exc.line) from None
    except UnsafeInput as exc:
        raise GoldError(path, f"not usable YAML: {exc.problem}", exc.line) from None
    if data is None:
        return []
    fix = "write `cases:` followed by a list of cases (each with `id` and `input`)"
    if isinstance(data, list):
        data, cases_node = {"cases": data}, node
    elif isinstance(data, dict):
        cases_node = next(
            (v for k, v in getattr(node, "value", []) if getattr(k, "value", None) == "cases"), None
        )
        unknown = set(data) - {"cases", "rubric"}
        if unknown:
            raise GoldError(path, f"unknown top-level key(s) {sorted(unknown)}; {fix}", 1)
    else:
        raise GoldError(path, f"expected a mapping; {fix}", 1)
    cases = data.get("cases")
    if not isinstance(cases, list):
        raise GoldError(path, f"`cases` must be a list; {fix}", 1)
    rubric = data.get("rubric")
    if rubric is not None and not isinstance(rubric, str):
        raise GoldError(path, "file-level `rubric` must be a rubric name", 1)
    items = getattr(cases_node, "value", [])
    return [
        (items[i].start_mark.line + 1 if i < len(items) else None, case, rubric)
        for i, case in enumerate(cases)
    ]
