"""promptfoo projects: `promptfooconfig.yaml` with its tests, as gold cases.

Each test becomes one case per combination of its vars (an array var expands, as promptfoo
does); `defaultTest` is merged into every test first. `vars` become the case's `input`
mapping, so a target prompt `{{ question }}` renders as promptfoo's would.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from ..safeload import UnsafeInput, load_yaml
from .promptfoo_asserts import (
    CODE_SUFFIXES,
    Checks,
    from_shorthand,
    map_assertion,
    rubric_for,
    template_problems,
)
from .records import csv_records, read_text, records
from .report import Imported, SourceError

TEST_KEYS = ("description", "vars", "assert", "providerOutput", "threshold", "metadata", "options")
CSV_KEYS = ("__description", "__metric", "__threshold", "__providerOutput", "__prefix", "__suffix")
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}


@dataclass(frozen=True)
class Test:
    """One promptfoo test as written, with where it is and where each assertion is."""

    data: dict[str, Any]
    where: str
    assert_where: tuple[str, ...] = ()


def import_promptfoo(source: Path, imported: Imported, stem: str) -> None:
    """Read a promptfoo config (a file, or a folder holding `promptfooconfig.yaml`)."""
    if source.is_dir():
        found = [source / n for n in ("promptfooconfig.yaml", "promptfooconfig.yml")]
        source = next((p for p in found if p.is_file()), found[0])
    node, config = _yaml(source)
    if not isinstance(config, dict):
        raise SourceError(f"{source}:1: a promptfoo config is a mapping with `prompts` and `tests`")
    base = source.parent
    for key in ("scenarios", "derivedMetrics", "nunjucksFilters", "extensions"):
        if key in config:
            imported.note(_at(source, node, key), f"`{key}` is not imported")
    _prompts(config.get("prompts"), source, node, base, imported)
    _providers(config.get("providers"), source, node, imported)
    default = _default_test(config.get("defaultTest"), source, node, base)
    tests = list(_tests(config.get("tests"), source, node, base, imported))
    if not tests:
        imported.note(str(source), "no tests found under `tests`", "warning")
    for test in tests:
        _case(test, default, stem, imported)


def _yaml(path: Path) -> tuple[Node | None, Any]:
    try:
        return load_yaml(read_text(path))
    except UnsafeInput as exc:
        raise SourceError(f"{path}:{exc.line or 1}: not usable YAML: {exc.problem}") from None


def _child(node: Node | None, key: str | int) -> Node | None:
    if isinstance(node, MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    if isinstance(node, SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]  # type: ignore[no-any-return]
    return None


def _at(path: Path, node: Node | None, *keys: str | int) -> str:
    for key in keys:
        inner = _child(node, key)
        if inner is None:
            break
        node = inner
    return f"{path}:{node.start_mark.line + 1}" if node is not None else str(path)


def _file_ref(value: Any) -> str | None:
    return (
        value[len("file://") :] if isinstance(value, str) and value.startswith("file://") else None
    )


def _prompts(prompts: Any, path: Path, node: Node | None, base: Path, imported: Imported) -> None:
    """Report each prompt: the target prompt to configure, or what Jinja would not render."""
    items = prompts if isinstance(prompts, list) else [prompts] if prompts else []
    usable = []
    for index, prompt in enumerate(items):
        where = (
            _at(path, node, "prompts", index)
            if isinstance(prompts, list)
            else _at(path, node, "prompts")
        )
        text = prompt.get("raw") if isinstance(prompt, dict) else prompt
        ref = _file_ref(text) or (prompt.get("id") if isinstance(prompt, dict) else None)
        if isinstance(ref, str) and _file_ref(text) is not None:
            if ref.lower().endswith(CODE_SUFFIXES) or ":" in ref:
                imported.note(where, f"prompt {ref} is code; not run, not imported", "warning")
                continue
            file = base / ref
            if not file.is_file() or file.suffix.lower() in (".json", ".jsonl", ".yaml", ".yml"):
                imported.note(where, f"prompt file {ref}: only text prompt files are read")
                continue
            text = read_text(file)
        if not isinstance(text, str):
            imported.note(where, "prompt is not text; not imported")
            continue
        problems = template_problems(text)
        if problems:
            imported.note(
                where,
                f"prompt {index + 1} would not render the same under Jinja: "
                f"{'; '.join(problems)}; rewrite it before using it as `target.prompt`",
                "warning",
            )
            continue
        usable.append(text)
    for number, text in enumerate(usable, start=1):
        label = "" if len(usable) == 1 else f" (prompt {number} of {len(usable)})"
        imported.hints.append(f"target prompt{label}: prompt = {_toml_string(text)}")


def _toml_string(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def _providers(providers: Any, path: Path, node: Node | None, imported: Imported) -> None:
    items = providers if isinstance(providers, list) else [providers] if providers else []
    for index, provider in enumerate(items):
        name = provider.get("id") if isinstance(provider, dict) else provider
        if not isinstance(name, str):
            continue
        kind, _, model = name.partition(":")
        model = model.removeprefix("chat:").removeprefix("messages:")
        if kind in _PROVIDERS and model:
            imported.hints.append(f'target model: model = "{_PROVIDERS[kind]}/{model}"')
        else:
            where = _at(path, node, "providers", index)
            imported.note(where, f"provider `{name}`: configure the target yourself", "info")


def _default_test(value: Any, path: Path, node: Node | None, base: Path) -> Test:
    ref = _file_ref(value)
    if ref is not None:
        file = base / ref
        node, value = _yaml(file)
        path = file
        return Test(value or {}, f"{file}:1", _assert_lines(file, node))
    if value is not None and not isinstance(value, dict):
        raise SourceError(f"{_at(path, node, 'defaultTest')}: `defaultTest` must be a mapping")
    inner = _child(node, "defaultTest")
    return Test(value or {}, _at(path, node, "defaultTest"), _assert_lines(path, inner))


def _assert_lines(path: Path, test_node: Node | None) -> tuple[str, ...]:
    asserts = _child(test_node, "assert")
    items = asserts.value if isinstance(asserts, SequenceNode) else []
    return tuple(f"{path}:{n.start_mark.line + 1}" for n in items)


def _tests(
    tests: Any, path: Path, node: Node | None, base: Path, imported: Imported
) -> Iterator[Test]:
    """Every test: inline ones, and those in `file://` files and globs, in written order."""
    if isinstance(tests, str):
        yield from _test_files(tests, _at(path, node, "tests"), base, imported)
        return
    if tests is None:
        return
    if not isinstance(tests, list):
        raise SourceError(f"{_at(path, node, 'tests')}: `tests` must be a list or a file path")
    tests_node = _child(node, "tests")
    for index, test in enumerate(tests):
        where = _at(path, node, "tests", index)
        if isinstance(test, str):
            yield from _test_files(test, where, base, imported)
        elif isinstance(test, dict):
            yield Test(test, where, _assert_lines(path, _child(tests_node, index)))
        else:
            imported.note(where, "a test must be a mapping or a file path; left out")


def _test_files(ref: str, where: str, base: Path, imported: Imported) -> Iterator[Test]:
    pattern = ref.removeprefix("file://")
    if pattern.startswith(("http://", "https://")) or "docs.google.com" in pattern:
        imported.note(where, f"tests at {pattern}: only local files are imported")
        return
    if pattern.lower().split(":")[0].endswith(CODE_SUFFIXES):
        imported.note(where, f"tests from code {pattern}: not run, not imported", "warning")
        return
    found = sorted(glob.glob(str(base / pattern), recursive=True))
    if not found:
        raise SourceError(f"{where}: no test file matches {pattern!r} (relative to {base})")
    for name in found:
        yield from _test_file(Path(name), imported)


def _test_file(path: Path, imported: Imported) -> Iterator[Test]:
    suffix = path.suffix.lower()
    if suffix == ".csv" or suffix == ".tsv":
        for record in csv_records(path, read_text(path), "\t" if suffix == ".tsv" else None):
            yield _csv_test(record.data, record.where, imported)
    elif suffix in (".yaml", ".yml"):
        node, data = _yaml(path)
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        for index, test in enumerate(items):
            inner = _child(node, index) if isinstance(data, list) else node
            where = f"{path}:{inner.start_mark.line + 1}" if inner is not None else str(path)
            yield Test(test, where, _assert_lines(path, inner))
    elif suffix in (".json", ".jsonl"):
        for record in records(path):
            yield Test(record.data, record.where)
    else:
        imported.note(str(path), f"tests in {suffix} files are not imported")


def _csv_test(row: dict[str, str], where: str, imported: Imported) -> Test:
    """A CSV row: var columns, `__expected…` assertions and the other special columns."""
    test: dict[str, Any] = {"vars": {}, "assert": [], "metadata": {}}
    metric = row.get("__metric") or None
    for column, cell in row.items():
        if column.startswith("__expected"):
            if cell.strip():
                assertion = from_shorthand(cell.strip())
                if metric:
                    assertion["metric"] = metric
                test["assert"].append(assertion)
        elif column == "__description":
            test["description"] = cell or None
        elif column == "__threshold" and cell.strip():
            test["threshold"] = float(cell)
        elif column == "__providerOutput" and cell != "":
            test["providerOutput"] = cell
        elif column.startswith("__metadata:"):
            test["metadata"][column.removeprefix("__metadata:")] = cell
        elif column.startswith("__") and column != "__metric":
            if cell.strip():
                imported.note(where, f"column `{column}` is not imported")
        elif not column.startswith("__"):
            test["vars"][column] = cell
    return Test(test, where)


def _merge(default: dict[str, Any], test: dict[str, Any]) -> dict[str, Any]:
    """promptfoo's merge: vars, metadata and options combined, default assertions first."""
    merged = {**default, **test}
    for key in ("vars", "metadata", "options"):
        if isinstance(default.get(key), dict) or isinstance(test.get(key), dict):
            merged[key] = {**(default.get(key) or {}), **(test.get(key) or {})}
    merged["assert"] = list(default.get("assert") or []) + list(test.get("assert") or [])
    return merged


def _case(test: Test, default: Test, stem: str, imported: Imported) -> None:
    data = _merge(default.data, test.data) if isinstance(test.data, dict) else {}
    where = test.where
    for key in sorted(set(data) - set(TEST_KEYS)):
        imported.note(where, f"test key `{key}` is not imported")
    for key in sorted(set(data.get("options") or {}) - {"provider"}):
        imported.note(where, f"test option `{key}` is not imported")
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        imported.note(where, "`vars` must be a mapping; test left out")
        return
    base = Path(where.rsplit(":", 1)[0]).parent
    variables = {k: _var_value(k, v, base, where, imported) for k, v in variables.items()}
    names = [k for k, v in variables.items() if isinstance(v, list)]
    combos = list(itertools.product(*(variables[k] for k in names))) or [()]
    for number, combo in enumerate(combos, start=1):
        values = {**variables, **dict(zip(names, combo, strict=False))}
        suffix = f"-{number}" if len(combos) > 1 else ""
        _one_case(data, values, test, default, where, stem, suffix, imported)


def _var_value(name: str, value: Any, base: Path, where: str, imported: Imported) -> Any:
    ref = _file_ref(value)
    if ref is None:
        return value
    if ref.lower().split(":")[0].endswith(CODE_SUFFIXES):
        imported.note(where, f"var `{name}` = {value}: code, not run; kept as the text", "warning")
        return value
    file = base / ref
    if file.is_file():
        imported.count("vars read from files")
        return read_text(file)
    imported.note(where, f"var `{name}` names {file}, which does not exist; kept as the text")
    return value


def _one_case(
    data: dict[str, Any],
    values: dict[str, Any],
    test: Test,
    default: Test,
    where: str,
    stem: str,
    suffix: str,
    imported: Imported,
) -> None:
    checks = Checks()
    own = list(test.data.get("assert") or []) if isinstance(test.data, dict) else []
    inherited = list(default.data.get("assert") or [])
    for index, assertion in enumerate(inherited + own):
        if index < len(inherited):
            lines = default.assert_where
            at = lines[index] if index < len(lines) else default.where
        else:
            lines, mine = test.assert_where, index - len(inherited)
            at = lines[mine] if mine < len(lines) else where
        map_assertion(assertion, at, checks, imported)
    case: dict[str, Any] = {"input": values}
    imported.count("cases")
    if checks.reference is not None:
        case["reference"] = checks.reference
    output = data.get("providerOutput")
    if output is not None:
        case["output"] = output if isinstance(output, str) else _toml_string(output)
        imported.count("fixed outputs (providerOutput)")
    if checks.criteria:
        known = set(values) | {"input", "reference", "metadata", "tags", "case_id", "messages"}
        case["rubric"] = rubric_for(checks, known, stem, where, imported)
    verify = checks.verify_block()
    if verify:
        case["verify"] = verify
    metadata = dict(data.get("metadata") or {})
    if data.get("description"):
        metadata["description"] = data["description"]
    if data.get("threshold") is not None:
        metadata["threshold"] = data["threshold"]
    if checks.kept:
        metadata["assertions"] = checks.kept
    metadata["source"] = where
    case["metadata"] = metadata
    wanted = f"{data['description']}{suffix}" if data.get("description") else None
    imported.add_case(case, wanted, f"{stem}-{len(imported.cases) + 1}")
