"""promptfoo assertions as gold checks: deterministic ones to verifiers, graded ones to a rubric.

Executable assertions (`javascript`, `python`, `webhook`, `file://…py|js|ts`) are never run,
loaded or imported: they are left out of the gold file and reported with their file and line.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import meta, nodes

from .report import Imported
from .writing import rubric_text

RUBRIC_TYPES = ("llm-rubric", "model-graded-closedqa", "factuality", "g-eval")
EXECUTABLE_TYPES = ("javascript", "python", "webhook", "ruby")
CODE_SUFFIXES = (".py", ".js", ".ts", ".mjs", ".cjs", ".mts", ".cts", ".rb")
# every type the `type(threshold):value` CSV shorthand names (promptfoo's list, graded ones too)
SHORTHAND_TYPES = (
    "answer-relevance|classifier|contains-all|contains-any|contains-json|contains-sql|"
    "contains-xml|contains|context-faithfulness|context-recall|context-relevance|cost|equals|"
    "factuality|g-eval|icontains-all|icontains-any|icontains|is-json|is-sql|is-valid-openai-"
    "function-call|is-valid-openai-tools-call|is-xml|javascript|latency|levenshtein|llm-rubric|"
    "meteor|bleu|model-graded-closedqa|model-graded-factuality|moderation|perplexity-score|"
    "perplexity|python|regex|rouge-n|similar|starts-with|webhook"
)
_SHORTHAND = re.compile(rf"^(not-)?({SHORTHAND_TYPES})(?:\((\d+(?:\.\d+)?)\))?(?::(.*))?$", re.S)

# Nunjucks filters Jinja does not have (Jinja's `tojson` is the nearest to `dump`)
_JINJA_FILTERS = frozenset(jinja2.Environment().filters)
_JINJA_TESTS = frozenset(jinja2.Environment().tests)
_ENV = jinja2.Environment()


def from_shorthand(text: str) -> dict[str, Any]:
    """An assertion from a CSV `__expected` cell: `type(threshold):value`, `grade:`, code
    prefixes, or plain text meaning `equals`."""
    for prefix, kind in (
        ("javascript:", "javascript"),
        ("fn:", "javascript"),
        ("eval:", "javascript"),
        ("python:", "python"),
        ("grade:", "llm-rubric"),
    ):
        if text.startswith(prefix):
            return {"type": kind, "value": text[len(prefix) :].strip()}
    if text.startswith("file://"):
        return {"type": "file", "value": text}
    found = _SHORTHAND.match(text)
    if not found:
        return {"type": "equals", "value": text}
    negate, kind, threshold, value = found.groups()
    assertion: dict[str, Any] = {"type": f"{negate or ''}{kind}"}
    if value is not None:
        value = value.strip()
        if kind.endswith(("-any", "-all")):
            assertion["value"] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            assertion["value"] = value
    if threshold is not None:
        assertion["threshold"] = float(threshold)
    return assertion


def is_executable(assertion: dict[str, Any]) -> bool:
    """Whether mapping the assertion would mean running or loading code."""
    kind = str(assertion.get("type", "")).removeprefix("not-")
    value = assertion.get("value")
    code_file = (
        isinstance(value, str)
        and value.startswith("file://")
        and value.split(":", 2)[1].split("?")[0].rstrip().lower().endswith(CODE_SUFFIXES)
    )
    return kind in EXECUTABLE_TYPES or kind == "file" or code_file or "transform" in assertion


@dataclass
class Checks:
    """What one case's assertions became."""

    verify: list[tuple[str, Any]] = field(default_factory=list)
    negated: list[tuple[str, Any]] = field(default_factory=list)
    criteria: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    thresholds: list[float] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)  # weight/metric/threshold records
    reference: Any = None

    def verify_block(self) -> dict[str, Any] | None:
        """The gold `verify:` mapping: one key per kind, repeats under `all`, negations `not`."""
        out: dict[str, Any] = {}
        repeats: list[dict[str, Any]] = []
        for kind, arg in self.verify:
            if kind not in out:
                out[kind] = arg
            elif kind in ("contains", "contains_case"):  # a list means all of them
                before = out[kind] if isinstance(out[kind], list) else [out[kind]]
                out[kind] = before + (arg if isinstance(arg, list) else [arg])
            else:
                repeats.append({kind: arg})
        if repeats:
            out["all"] = repeats
        if self.negated:
            inner = [{k: a} for k, a in self.negated]
            out["not"] = inner[0] if len(inner) == 1 else inner
        return out or None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def map_assertion(assertion: Any, where: str, checks: Checks, imported: Imported) -> None:
    """Add one promptfoo assertion to `checks`, or report why it cannot be."""
    if not isinstance(assertion, dict) or "type" not in assertion:
        imported.note(where, f"assertion {assertion!r} has no `type`; left out")
        return
    kind = str(assertion["type"])
    if is_executable(assertion):
        what = "a `transform`" if "transform" in assertion else f"`{kind}` code"
        imported.note(
            where,
            f"assertion `{kind}` runs {what}; not run and left out (importing never executes "
            "code): rewrite it as a verifier in a project module, `verify: {python: module:fn}`",
            "warning",
        )
        imported.count("left out: executable assertion")
        return
    negate, base = kind.startswith("not-"), kind.removeprefix("not-")
    value = assertion.get("value")
    mapped = _deterministic(base, value)
    extras = {k: assertion[k] for k in ("weight", "metric", "threshold") if k in assertion}
    if mapped is not None:
        (checks.negated if negate else checks.verify).append(mapped)
        imported.count(f"verify.{'not.' if negate else ''}{mapped[0]}")
        if base == "equals" and not negate and checks.reference is None:
            checks.reference = _text(value)
        if extras:
            checks.kept.append({"type": kind, **extras})
        return
    if base in RUBRIC_TYPES and not negate and value not in (None, ""):
        texts = value if isinstance(value, list) else [value]
        checks.criteria += [(base, _text(t)) for t in texts]
        threshold = assertion.get("threshold", 0.7 if base == "g-eval" else None)
        if isinstance(threshold, int | float):
            checks.thresholds.append(float(threshold))
        if base == "factuality" and checks.reference is None:
            checks.reference = _text(value)
        if extras:
            checks.kept.append({"type": kind, **extras})
        imported.count(f"rubric criterion ({base})")
        return
    why = (
        "a negated graded assertion has no rubric form"
        if base in RUBRIC_TYPES
        else "no verifier or rubric does the same"
    )
    imported.note(where, f"assertion `{kind}` not mapped: {why}; left out")
    imported.count(f"left out: {kind}")


def _deterministic(kind: str, value: Any) -> tuple[str, Any] | None:
    values = value if isinstance(value, list) else [value]
    if kind == "equals":
        return "exact", _text(value)
    if kind in ("contains", "contains-all") and value is not None:
        return "contains_case", value if isinstance(value, list) and len(values) > 1 else values[0]
    if kind in ("icontains", "icontains-all") and value is not None:
        return "contains", value if isinstance(value, list) and len(values) > 1 else values[0]
    if kind in ("contains-any", "icontains-any") and value is not None:
        pattern = "|".join(re.escape(str(v)) for v in values)
        return "regex", ("(?i)" if kind.startswith("i") else "") + f"(?:{pattern})"
    if kind == "regex" and value is not None:
        return "regex", str(value)
    if kind == "starts-with" and value is not None:
        return "starts_with", str(value)
    if kind in ("is-json", "contains-json"):
        schema = value if isinstance(value, dict) else None
        if value is not None and schema is None:
            return None  # a schema in a file or string: reported as not mapped
        return kind.replace("-", "_"), True if schema is None else schema
    return None


def template_problems(text: str) -> list[str]:
    """What in a Nunjucks template Jinja would not render the same (filters, tests, syntax)."""
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: not Jinja syntax ({exc.message})"]
    problems = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = _JINJA_FILTERS if isinstance(node, nodes.Filter) else _JINJA_TESTS
        if node.name not in known:
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            hint = " (Jinja's `tojson` is the nearest)" if node.name == "dump" else ""
            problems.append(f"Nunjucks-only {what} `{node.name}`{hint}")
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Getattr):  # JavaScript methods: {{ name.toUpperCase() }}
            problems.append(f"method call `.{call.node.attr}()` (JavaScript, not Jinja)")
    return sorted(set(problems))


def undeclared(text: str) -> set[str]:
    """Variables a (Jinja-compatible) template uses."""
    return set(meta.find_undeclared_variables(_ENV.parse(text)))


def rubric_for(
    checks: Checks, variables: set[str], stem: str, where: str, imported: Imported
) -> str:
    """Write (once) the rubric for a case's graded criteria; return its name."""
    lines, plain = [], []
    for kind, text in checks.criteria:
        plain.append(text)
        safe = _template_safe(text, variables, where, imported)
        lead = {
            "factuality": "The output is factually consistent with: ",
            "model-graded-closedqa": "The output meets this criterion: ",
        }.get(kind, "")
        lines.append(f"- ({kind}) {lead}{safe}")
    threshold = max(checks.thresholds) if checks.thresholds else 0.5
    body = "\n".join(
        [
            "Grade the output against every criterion below (imported from promptfoo).",
            "Test variables: {{ input }}",
            "",
            "Criteria:",
            *lines,
            "",
            "10 = meets every criterion fully; 5 = meets them only in part; 0 = meets none.",
        ]
    )
    front = {
        "scale": [0, 10],
        "pass_threshold": min(10, max(0, math.ceil(threshold * 10 - 1e-9))),
        "description": "Meets the criteria imported from promptfoo",
        "criteria": plain,
    }
    text = rubric_text(front, body)
    name = f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    imported.rubrics[name] = text
    return name


def _template_safe(text: str, variables: set[str], where: str, imported: Imported) -> str:
    """`text` as a rubric body line: `{{ var }}` kept for Jinja, else shown literally."""
    if "{" not in text:
        return text
    problems = template_problems(text)
    if not problems:
        missing = undeclared(text) - variables
        if not missing:
            return text
        problems = [f"variable(s) {sorted(missing)} the test does not set"]
    imported.note(
        where,
        f"rubric text kept literally, not rendered: {'; '.join(problems)}",
        "warning",
    )
    if "endraw" in text:
        return "{{ " + json.dumps(text) + " }}"
    return "{% raw %}" + text + "{% endraw %}"
