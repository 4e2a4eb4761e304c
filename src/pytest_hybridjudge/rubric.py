"""Rubrics: Markdown files with YAML front matter whose body is a sandboxed Jinja template."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import TracebackType
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import TIERS, Tier
from .errors import InputError, describe_validation_error
from .safeload import InvalidYAML, UnsafeInput, decode_utf8, load_yaml
from .sandbox import BoundedEnvironment, RenderLimit, render_bounded
from .terminal import printable

BUILTIN_DIR = Path(__file__).parent / "rubrics"


class RubricError(InputError):
    """A rubric cannot be loaded or rendered; the message names the file, line and fix."""

    def __init__(self, message: str):
        super().__init__(printable(message))  # printed as a collection error


class FrontMatter(BaseModel):
    """The YAML block between the leading `---` lines of a rubric file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scale: tuple[int, int] = Field((1, 5), description="Lowest and highest score")
    pass_threshold: int = Field(4, description="A score at or above this passes")
    description: str = Field("", description="What the rubric grades, shown to judges")
    tier: Tier | None = Field(
        None, description="Who reviews escalations of this rubric: a built-in or configured tier"
    )
    review_minutes: float | None = Field(None, gt=0, description="Minutes one review takes")
    criteria: list[str] = Field(default_factory=list, description="Points the judge must weigh")
    always_review: bool = Field(False, description="Every case of this rubric goes to review")
    kind: Literal["pointwise", "pairwise"] = Field(
        "pointwise",
        description="`pairwise`: judges say which of two outputs (baseline, candidate) is better",
    )

    @model_validator(mode="after")
    def _threshold_on_scale(self) -> FrontMatter:
        low, high = self.scale
        if low >= high:
            raise ValueError(f"scale {list(self.scale)} must be [low, high] with low < high")
        if not low <= self.pass_threshold <= high:
            raise ValueError(f"pass_threshold {self.pass_threshold} is outside scale {[low, high]}")
        return self


@dataclass(frozen=True)
class Rubric:
    """A loaded rubric: its settings, template source and version."""

    name: str
    path: Path
    meta: FrontMatter
    source: str
    body_line: int  # 1-based file line where the template body starts
    version: str
    _template: jinja2.Template = field(repr=False, compare=False)

    @property
    def scale(self) -> tuple[int, int]:
        """Lowest and highest score."""
        return self.meta.scale

    def passes(self, score: float) -> bool:
        """Whether a score passes this rubric."""
        return score >= self.meta.pass_threshold

    def render(self, variables: Mapping[str, Any], case_id: str = "") -> str:
        """Render the body with the case's variables; errors name the file, line and case.

        Rendering is bounded (see `sandbox`): a bound that is hit is a `RubricError` naming it.
        """
        try:
            return render_bounded(self._template, variables)
        except Exception as exc:  # also 1/0, a sandbox range limit: name the line, not a traceback
            line = _template_line(exc.__traceback__, str(self.path))
            where = f"{self.path}:{self.body_line + line - 1}" if line else str(self.path)
            who = f" (case '{case_id}')" if case_id else ""
            problem = (
                (exc.message or str(exc))
                if isinstance(exc, jinja2.TemplateError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise RubricError(f"{where}: {problem}{who}; {_fix_for(exc)}") from None


_UNDEFINED = re.compile(r"^'([A-Za-z_]\w*)' is undefined$|has no attribute '([A-Za-z_]\w*)'$")


def _fix_for(exc: Exception) -> str:
    if isinstance(exc, RenderLimit):
        return "a rubric renders one prompt: keep its loops and values small"
    if isinstance(exc, jinja2.UndefinedError):
        # undefined values are errors here (StrictUndefined): `{% if x %}` fails too
        found = _UNDEFINED.search(str(exc.message or ""))
        name = (found.group(1) or f"value.{found.group(2)}") if found else "value"
        return (
            "give the case that variable (in `input` or `metadata`), or use it only where it is "
            f"defined: `{{% if {name} is defined %}}...{{% endif %}}` or "
            f"`{{{{ {name} | default('') }}}}`"
        )
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return "rubric templates run in a sandbox; remove the unsafe expression"
    return "fix the template expression"


def _template_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _environment() -> BoundedEnvironment:
    return BoundedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def parse_rubric(path: Path, name: str | None = None, tiers: Collection[str] = TIERS) -> Rubric:
    """Load one rubric file, validating its front matter (its `tier` among `tiers`) and
    compiling its template."""
    raw = path.read_bytes()
    try:
        text = decode_utf8(raw)
    except UnsafeInput as exc:
        raise RubricError(f"{path}:{exc.line}: {exc.problem}") from None
    meta_text, body, body_line = _split_front_matter(path, text)
    try:
        data = load_yaml(meta_text)[1] if meta_text.strip() else {}
    except UnsafeInput as exc:  # lines counted from the file's, where front matter is line 2
        at = f":{exc.line + 1}" if exc.line else ""
        how = "valid" if isinstance(exc, InvalidYAML) else "usable"
        raise RubricError(f"{path}{at}: front matter is not {how} YAML: {exc.problem}") from None
    try:
        meta = FrontMatter.model_validate(data or {})
    except ValidationError as exc:
        problems = describe_validation_error(exc, whole="front matter", model=FrontMatter)
        raise RubricError(f"{path}:2: invalid front matter: {problems}") from None
    if meta.tier is not None and meta.tier not in tiers:
        raise RubricError(
            f"{path}:2: invalid front matter: unknown tier '{meta.tier}'; known tiers: "
            f"{', '.join(tiers)}. Name one of them, or define it under "
            f"[tool.hybridjudge.review.tier.{meta.tier}] (rate, minutes, rank)"
        )
    env = _environment()
    try:
        code = env.compile(body, name=path.name, filename=str(path))
    except jinja2.TemplateSyntaxError as exc:
        line = body_line + (exc.lineno or 1) - 1
        raise RubricError(f"{path}:{line}: template syntax error: {exc.message}") from None
    template = env.template_class.from_code(env, code, env.make_globals(None))
    return Rubric(
        name=name or path.stem,
        path=path,
        meta=meta,
        source=body,
        body_line=body_line,
        version=hashlib.sha256(raw).hexdigest()[:16],
        _template=template,
    )


def _split_front_matter(path: Path, text: str) -> tuple[str, str, int]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return "", text, 1
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise RubricError(f"{path}:1: front matter opened with '---' is never closed; add a '---' line")


class RubricLibrary:
    """Rubrics by name: the project's folder first, then the built-in ones."""

    def __init__(self, folder: Path | None, tiers: Collection[str] = TIERS):
        """`tiers`: the reviewer tiers a rubric's front matter may name."""
        self.folder = folder
        self.tiers = tuple(tiers)
        self._cache: dict[str, Rubric] = {}

    def names(self) -> list[str]:
        """Every rubric name available."""
        found = {p.stem for p in BUILTIN_DIR.glob("*.md")}
        if self.folder and self.folder.is_dir():
            found |= {p.stem for p in self.folder.glob("*.md")}
        return sorted(found)

    def path_of(self, name: str) -> Path | None:
        """The file a rubric name resolves to, or None; `RubricError` for a path that leaves."""
        self._check_name(name)
        for folder in (self.folder, BUILTIN_DIR):
            if folder is not None and (folder / f"{name}.md").is_file():
                return folder / f"{name}.md"
        return None

    def _check_name(self, name: str) -> None:
        """Refuse names that would load a file outside the rubrics folder (`../x`, `/etc/x`)."""
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not parts or parts[0] == "/" or ".." in parts or PureWindowsPath(name).drive:
            where = self.folder or "the rubrics folder"
            raise RubricError(
                f"rubric '{name}' is not a name inside the rubrics folder {where}: name a rubric "
                f"file in it without its .md suffix (e.g. 'correctness' for {where}/correctness.md)"
            )

    def get(self, name: str) -> Rubric:
        """Load (once) the rubric called `name`; unknown names list what exists."""
        if name not in self._cache:
            path = self.path_of(name)
            if path is None:
                where = self.folder or "the rubrics folder"
                if self.folder is not None and not self.folder.is_dir():
                    raise RubricError(
                        f"unknown rubric '{name}': the rubrics folder {where} does not exist; "
                        f"create it with {name}.md in it, or point `rubrics` in "
                        "[tool.hybridjudge] at the folder that holds your rubrics "
                        f"(built-in rubrics: {self.names()})"
                    )
                raise RubricError(
                    f"unknown rubric '{name}': add {where}/{name}.md or use one of {self.names()}"
                )
            self._cache[name] = parse_rubric(path, name, self.tiers)
        return self._cache[name]
