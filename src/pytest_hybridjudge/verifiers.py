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

KINDS = ("exact", "contains", "regex", "json_schema", "numeric", "python")


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
