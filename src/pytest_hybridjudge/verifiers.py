"""Deterministic checks that run before any judge; a failed one is a confident fail.

A verifier is a function `(arg, output, case)` returning a `VerifierResult`, a bool, or
`(passed, detail)`; the key in a case's `verify:` mapping names it in the registry (built-ins
below, or a package's `pytest_hybridjudge.verifiers` entry point).
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InputError
from .gold import GoldCase
from .registry import VERIFIERS
from .verdict import VerifierResult
from .verifier_policy import approve, check_python_function, check_python_module

KINDS = (
    "exact",
    "contains",
    "contains_case",
    "starts_with",
    "regex",
    "is_json",
    "contains_json",
    "json_schema",
    "numeric",
    "python",
    "not",
    "all",
)
NESTED = ("not", "all")
"""Kinds whose argument is more checks: a mapping `{kind: arg}` or a list of such mappings."""


class VerifierError(InputError):
    """A `verify` block is malformed; the message names the key and the fix."""


def check_spec(
    verify: dict[str, Any], root: Path | None = None, allowed: Sequence[str] = ()
) -> None:
    """Validate a case's `verify` block at collection time.

    `python:` may only name functions in modules under the project `root` or listed in
    `allowed` (the `python_verifiers` setting): a gold file that names one runs it.
    """
    for kind, arg in verify.items():
        if kind in NESTED:
            for inner in _nested(kind, arg):
                check_spec(inner, root, allowed)
            continue
        if kind in ("is_json", "contains_json") and arg not in (None, True):
            _check_schema(arg)
        if kind not in KINDS:  # a plugin's: its name is checked, its module loads when it runs
            if kind not in VERIFIERS:
                raise VerifierError(VERIFIERS.unknown(kind))
            continue
        if kind == "regex":
            try:
                re.compile(str(arg))
            except re.error as exc:
                raise VerifierError(f"verify.regex {arg!r} does not compile: {exc}") from None
        if kind == "numeric":
            spec = arg if isinstance(arg, dict) else {"value": arg}
            tolerance = spec.get("tolerance", 0)
            if (
                set(spec) - {"value", "tolerance"}
                or not _is_number(spec.get("value"))
                or not _is_number(tolerance)
                or tolerance < 0
            ):
                raise VerifierError(
                    "verify.numeric needs a number or {value: N, tolerance: T} with T >= 0"
                )
        if kind == "python":
            module, _, func = str(arg).partition(":") if isinstance(arg, str) else ("", "", "")
            if not module or not func:
                raise VerifierError("verify.python must be `module:function`")
            problem = check_python_module(module, root, allowed)
            if problem:
                raise VerifierError(f"verify.python {arg!r}: {problem}")
            approve(str(arg), root, allowed)
        if kind == "json_schema":
            _check_schema(arg)


def _nested(kind: str, arg: Any) -> list[dict[str, Any]]:
    """The checks inside `not`/`all`: a mapping, or a list of mappings; else VerifierError."""
    items = arg if isinstance(arg, list) else [arg]
    if not items or not all(isinstance(i, dict) and i for i in items):
        raise VerifierError(
            f"verify.{kind} needs checks: a mapping such as {{contains: 'x'}}, or a list of them"
        )
    return items


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_schema(schema: Any) -> None:
    import jsonschema

    if not isinstance(schema, dict):
        raise VerifierError("verify.json_schema must be a JSON Schema mapping")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise VerifierError(f"verify.json_schema is not a valid schema: {exc.message}") from None


def run_verifiers(case: GoldCase, output: str) -> list[VerifierResult]:
    """Run every verifier of the case on the output, in the order written."""
    return [_run(kind, arg, output, case) for kind, arg in (case.verify or {}).items()]


def _run(kind: str, arg: Any, output: str, case: GoldCase) -> VerifierResult:
    """One verifier from the registry; a plugin's bool or (passed, detail) becomes a result."""
    try:
        result = VERIFIERS.get(kind)(arg, output, case)
    except BaseException as exc:  # SystemExit from argparse too: it fails the case, not the run
        return VerifierResult(name=kind, passed=False, detail=f"{kind} raised {exc!r}")
    if isinstance(result, VerifierResult):
        return result
    ok, detail = result if isinstance(result, tuple) else (bool(result), "")
    return VerifierResult(name=kind, passed=bool(ok), detail=str(detail) or kind)


def exact_verifier(expected: Any, output: str, case: GoldCase) -> VerifierResult:
    ok = output.strip() == str(expected).strip()
    return VerifierResult(name="exact", passed=ok, detail=f"expected exactly {expected!r}")


def contains_verifier(expected: Any, output: str, case: GoldCase) -> VerifierResult:
    needles = expected if isinstance(expected, list) else [expected]
    missing = [n for n in needles if str(n).lower() not in output.lower()]
    detail = f"missing {missing!r}" if missing else f"contains {needles!r}"
    return VerifierResult(name="contains", passed=not missing, detail=detail)


def regex_verifier(pattern: Any, output: str, case: GoldCase) -> VerifierResult:
    ok = re.search(str(pattern), output) is not None
    return VerifierResult(name="regex", passed=ok, detail=f"pattern {pattern!r}")


def numeric_verifier(spec: Any, output: str, case: GoldCase) -> VerifierResult:
    spec = spec if isinstance(spec, dict) else {"value": spec}
    expected, tolerance = float(spec["value"]), float(spec.get("tolerance", 0.0))
    numbers = re.findall(r"[-+]?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?", output)
    found = [float(n.replace(",", "")) for n in numbers]
    ok = any(math.isclose(v, expected, abs_tol=tolerance) for v in found)
    return VerifierResult(
        name="numeric", passed=ok, detail=f"expected {expected} ± {tolerance}, found {found[:5]}"
    )


def json_schema_verifier(schema: Any, output: str, case: GoldCase) -> VerifierResult:
    import jsonschema

    try:
        value = json.loads(output)
    except json.JSONDecodeError as exc:
        return VerifierResult(name="json_schema", passed=False, detail=f"not JSON: {exc.msg}")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    if error is None:
        return VerifierResult(name="json_schema", passed=True, detail="valid")
    where = error.json_path
    return VerifierResult(name="json_schema", passed=False, detail=f"{where}: {error.message}")


def python_verifier(path: Any, output: str, case: GoldCase) -> VerifierResult:
    module_name, _, func_name = str(path).partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        problem = check_python_function(str(path), func)
        if problem is not None:
            detail = f"{path} not run: it {problem}"
            return VerifierResult(name="python", passed=False, detail=detail)
        result = func(output, case)
    except BaseException as exc:  # an imported setup.py's SystemExit fails the case only
        return VerifierResult(name="python", passed=False, detail=f"{path} raised {exc!r}")
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        detail = f"{path} returned an awaitable; a verifier must be a plain (sync) function"
        return VerifierResult(name="python", passed=False, detail=detail)
    ok, detail = result if isinstance(result, tuple) else (bool(result), "")
    return VerifierResult(name="python", passed=bool(ok), detail=str(detail) or str(path))


def contains_case_verifier(expected: Any, output: str, case: GoldCase) -> VerifierResult:
    """Like `contains`, but case-sensitive: every listed text appears exactly as written."""
    needles = expected if isinstance(expected, list) else [expected]
    missing = [n for n in needles if str(n) not in output]
    detail = f"missing {missing!r}" if missing else f"contains {needles!r}"
    return VerifierResult(name="contains_case", passed=not missing, detail=detail)


def starts_with_verifier(expected: Any, output: str, case: GoldCase) -> VerifierResult:
    """The output (leading whitespace ignored) starts with the text, case-sensitive."""
    ok = output.lstrip().startswith(str(expected))
    return VerifierResult(name="starts_with", passed=ok, detail=f"starts with {expected!r}")


def is_json_verifier(schema: Any, output: str, case: GoldCase) -> VerifierResult:
    """The whole output is JSON (and valid against `schema` when one is given)."""
    try:
        value = json.loads(output)
    except json.JSONDecodeError as exc:
        return VerifierResult(name="is_json", passed=False, detail=f"not JSON: {exc.msg}")
    return _against_schema("is_json", value, schema)


def contains_json_verifier(schema: Any, output: str, case: GoldCase) -> VerifierResult:
    """Some JSON object or array inside the output parses (and fits `schema` if given)."""
    decoder = json.JSONDecoder()
    found = None
    for start, char in enumerate(output):
        if char in "{[":
            try:
                found = [decoder.raw_decode(output, start)[0]]
            except json.JSONDecodeError:
                continue
            result = _against_schema("contains_json", found[0], schema)
            if result.passed:
                return result
    if found is None:
        return VerifierResult(name="contains_json", passed=False, detail="no JSON in the output")
    return _against_schema("contains_json", found[0], schema)


def _against_schema(name: str, value: Any, schema: Any) -> VerifierResult:
    if schema in (None, True):
        return VerifierResult(name=name, passed=True, detail="valid JSON")
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    if error is None:
        return VerifierResult(name=name, passed=True, detail="valid JSON, fits the schema")
    return VerifierResult(name=name, passed=False, detail=f"{error.json_path}: {error.message}")


def not_verifier(checks: Any, output: str, case: GoldCase) -> VerifierResult:
    """Passes when none of the listed checks passes (`not: {contains: x}` = not contains x)."""
    results = [_run(k, a, output, case) for c in _nested("not", checks) for k, a in c.items()]
    held = [r for r in results if r.passed]
    detail = "; ".join(f"{r.name} held ({r.detail})" for r in held) or "none of the checks held"
    return VerifierResult(name="not", passed=not held, detail=detail)


def all_verifier(checks: Any, output: str, case: GoldCase) -> VerifierResult:
    """Passes when every listed check passes: several checks of one kind (two regexes)."""
    results = [_run(k, a, output, case) for c in _nested("all", checks) for k, a in c.items()]
    failed = [r for r in results if not r.passed]
    detail = "; ".join(f"{r.name}: {r.detail}" for r in failed) or f"{len(results)} checks held"
    return VerifierResult(name="all", passed=not failed, detail=detail)
