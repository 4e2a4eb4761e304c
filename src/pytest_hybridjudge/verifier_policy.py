"""Which modules a gold file's `verify: {python: "module:function"}` may call.

A gold file that names a function runs it on the model's output, so a name is allowed only if
its module lives under the project root (not in a virtualenv or site-packages there) or is on
the `python_verifiers` allow-list. Nothing is imported to decide at collection; when it runs,
the function itself must have been *defined* there (`check_python_function`): a project module
doing `from shutil import rmtree` does not make `helpers:rmtree` a project function.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_INSTALLED = ("site-packages", "dist-packages")
# `module:function` -> (project root, allow-list) it was approved under at collection
_APPROVED: dict[str, tuple[Path | None, tuple[str, ...]]] = {}


def approve(spec: str, root: Path | None, allowed: Sequence[str]) -> None:
    """Remember that collection checked `spec` for project `root` (the run checks again)."""
    _APPROVED[spec] = (root, tuple(allowed))


def check_python_function(spec: str, func: Any) -> str | None:
    """None if `func`, imported for `spec`, was defined in a module the project may call: the
    module named by its own `__module__` and the file of its code, not where it was looked up.
    """
    if spec not in _APPROVED:
        return "was not checked when the gold file was collected"
    root, allowed = _APPROVED[spec]
    defined_in = getattr(func, "__module__", None)
    code = getattr(func, "__code__", None)
    if not isinstance(defined_in, str) or code is None:
        return (
            f"is a {type(func).__name__}, not a Python function defined in the project; "
            "name a function written in a project module"
        )
    if _listed(defined_in, allowed):
        return None
    where = Path(code.co_filename).resolve()
    if (
        root is not None
        and check_python_module(defined_in, root, ()) is None
        and _inside_project(where, root)
    ):
        return None
    return (
        f"names {defined_in}.{getattr(func, '__qualname__', '?')}, defined in {where}, not in "
        "the project: only functions written in the project's own modules (or modules listed "
        "in python_verifiers) may be named, not ones they import"
    )


def _listed(module: str, allowed: Sequence[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in allowed)


def check_python_module(module: str, root: Path | None, allowed: Sequence[str]) -> str | None:
    """None if `module` may be called (a project module: the root is put on sys.path so that
    it imports when the verifier runs); else what is wrong and how to allow it."""
    if _listed(module, allowed):
        return None
    top = module.split(".")[0]
    location = _location(top, root)
    if location is not None and root is not None and _inside_project(location, root):
        if str(root) not in sys.path:  # importable when it runs, as for callable targets
            sys.path.insert(0, str(root))
        return None
    where = f"under the project root {root}" if root is not None else "in the project"
    found = f" (found at {location})" if location is not None else " (not found)"
    return (
        f"module {module!r} is not a module {where}{found}; gold files may only call verifiers "
        f'in the project, or add it to [tool.hybridjudge] python_verifiers = ["{module}"] '
        "if you trust it"
    )


def _location(top: str, root: Path | None) -> Path | None:
    """Where importing the top-level module `top` would load it from, without importing it:
    the loaded module, else the first on sys.path, else the project root."""
    loaded = sys.modules.get(top)
    if loaded is not None:
        path = getattr(loaded, "__file__", None)
        return Path(path).resolve() if path else None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None and root is not None:  # the root is put on sys.path before runs
        spec = importlib.machinery.PathFinder.find_spec(top, [str(root)])
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def _inside_project(location: Path, root: Path) -> bool:
    """Under `root`, and not in an installed environment that happens to live there."""
    root = root.resolve()
    if root not in location.parents:
        return False
    if any(part in _INSTALLED for part in location.parts):
        return False
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return not any(p == location or p in location.parents for p in prefixes)
