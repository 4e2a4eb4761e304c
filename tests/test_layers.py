"""The package's shape: no import circle, imports only point down the layers, small modules.

The layers are declared once, here, top to bottom (the README's module map follows them). Every
import is read with `ast`, those inside functions included; `TYPE_CHECKING` imports count too.
A module may import its own layer or any layer below it, never one above. No module is over
`MAX_LINES` lines: one that grows past it has more than one job, and is split by job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_hybridjudge

PACKAGE = Path(pytest_hybridjudge.__file__).parent
MAX_LINES = 400

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("faces", ("cli", "web", "__init__")),
    (
        "pytest glue",
        (
            "plugin",
            "session",
            "session_setup",
            "session_batches",
            "xdist_worker",
            "xdist_groups",
            "worker_calls",
            "recorder",
            "collect",
            "report",
            "summary_text",
            "ci_summary",
        ),
    ),
    (
        "analyses",
        (
            "gate", "passrates", "exports", "importers", "review.calibration_report",
            "review.labelled", "stats", "selective", "ppi", "paired", "health",
        ),
    ),
    (
        "the case pipeline",
        (
            "evaluate", "plan", "jobs", "pairwise", "judge", "panel", "confidence", "escalation",
            "estimate", "targets", "verifiers", "verifier_policy", "explain", "scheduler",
            "goldset", "gold", "safeload", "rubric", "sandbox", "rubrics",
        ),
    ),
    ("records", ("runs", "runs_prune", "runstore", "review", "verdict", "summary", "calibration")),
    (
        "providers",
        (
            *("providers", "batches", "registry", "calls", "call_settings", "answered"),
            *("structured", "cache", "redact", "cost"),
        ),
    ),
    (
        "foundation",
        (
            "config", "config_models", "config_review", "config_gate", "config_batch", "configfile",
            "errors", "files", "paths", "preflight", "terminal", "heap", "words",
        ),
    ),
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer_of(module: str) -> int:
    """The index of the layer holding `module` (the longest declared prefix wins)."""
    best = (-1, -1)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                best = max(best, (len(prefix), index))
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
    return best[1]


def imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at the top or inside a function)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = found.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{stem}.{alias.name}" if stem else alias.name
                    targets.add(full if _exists(full) else stem)
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for n in names:
                    if n and n.startswith("pytest_hybridjudge."):
                        targets.add(n.removeprefix("pytest_hybridjudge."))
        targets.discard(name)
        targets.discard("")
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_import_points_down_the_layers() -> None:
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in sorted(imports().items())
        for target in sorted(targets)
        if layer_of(target) < layer_of(module)
    ]
    assert upward == []


def test_there_is_no_import_circle() -> None:
    graph = imports()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_layers_see_every_module() -> None:
    assert all(layer_of(module) >= 0 for module in imports())


def test_no_module_is_over_max_lines() -> None:
    lines = {
        module_name(path): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")
    }
    over = {module: n for module, n in lines.items() if n > MAX_LINES}
    assert over == {}, f"over {MAX_LINES} lines: split each by job (README, 'The modules by layer')"
