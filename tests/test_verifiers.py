"""Unit tests for `verifiers.py`: each verifier kind passing and failing, and `check_spec`."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.verdict import VerifierResult
from pytest_hybridjudge.verifiers import KINDS, VerifierError, check_spec, run_verifiers


def verify(
    spec: dict[str, Any], output: str, root: Path | None = None, allowed: tuple[str, ...] = ()
) -> VerifierResult:
    """Run a single-verifier spec (checked as collection would, for project `root`)."""
    check_spec(spec, root, allowed)
    (result,) = run_verifiers(GoldCase(id="c", input="q", reference="ref", verify=spec), output)
    return result


def test_exact_passes_ignoring_surrounding_whitespace() -> None:
    result = verify({"exact": "Paris"}, "  Paris\n")
    assert result == VerifierResult(name="exact", passed=True, detail="expected exactly 'Paris'")


def test_exact_fails_on_different_text() -> None:
    assert not verify({"exact": "Paris"}, "Paris, France").passed
    assert not verify({"exact": "Paris"}, "paris").passed


def test_exact_compares_numbers_as_text() -> None:
    assert verify({"exact": 42}, "42").passed


def test_contains_string_is_case_insensitive() -> None:
    assert verify({"contains": "paris"}, "The capital is PARIS.").passed
    result = verify({"contains": "Lyon"}, "The capital is Paris.")
    assert not result.passed
    assert "Lyon" in result.detail


def test_contains_list_needs_every_item() -> None:
    assert verify({"contains": ["Paris", "France"]}, "Paris is in France").passed
    result = verify({"contains": ["Paris", "Germany", "Spain"]}, "Paris is in France")
    assert not result.passed
    assert result.detail == "missing ['Germany', 'Spain']"


def test_regex_searches_anywhere() -> None:
    assert verify({"regex": "(?i)no|not eligible"}, "Sorry, you are NOT ELIGIBLE.").passed
    assert verify({"regex": r"\d{3}"}, "code 123 here").passed


def test_regex_fails_without_match() -> None:
    result = verify({"regex": r"^\d+$"}, "12 apples")
    assert not result.passed
    assert result.name == "regex"


@pytest.mark.parametrize(
    ("spec", "output"),
    [
        (42, "The answer is 42."),
        (1234.5, "It costs 1,234.5 dollars"),
        (1000000, "one million: 1,000,000"),
        (-3, "It is -3 degrees"),
        (0.001, "about 1e-3"),
        ({"value": 100, "tolerance": 0.5}, "roughly 100.4"),
        ({"value": 100, "tolerance": 0.5}, "roughly 99.5"),
        ({"value": 7}, "first 3, then 7"),
    ],
)
def test_numeric_passes(spec: Any, output: str) -> None:
    assert verify({"numeric": spec}, output).passed


@pytest.mark.parametrize(
    ("spec", "output"),
    [
        (42, "The answer is 43."),
        (42, "forty-two"),
        ({"value": 100, "tolerance": 0.5}, "roughly 100.6"),
        (3, "It is -3 degrees"),
    ],
)
def test_numeric_fails(spec: Any, output: str) -> None:
    result = verify({"numeric": spec}, output)
    assert not result.passed
    assert result.name == "numeric"


def test_numeric_detail_shows_expected_and_found() -> None:
    result = verify({"numeric": {"value": 10, "tolerance": 1}}, "got 12 and 1,500")
    assert result.detail == "expected 10.0 ± 1.0, found [12.0, 1500.0]"


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
}


def test_json_schema_valid() -> None:
    result = verify({"json_schema": SCHEMA}, '{"name": "Ada", "age": 36}')
    assert result == VerifierResult(name="json_schema", passed=True, detail="valid")


def test_json_schema_invalid_names_the_path() -> None:
    result = verify({"json_schema": SCHEMA}, '{"name": "Ada", "age": -1}')
    assert not result.passed
    assert result.detail.startswith("$.age:")


def test_json_schema_missing_required() -> None:
    result = verify({"json_schema": SCHEMA}, '{"age": 3}')
    assert not result.passed
    assert "'name' is a required property" in result.detail


def test_json_schema_not_json() -> None:
    result = verify({"json_schema": SCHEMA}, "Sure! Here is the JSON: {name: Ada}")
    assert not result.passed
    assert result.detail.startswith("not JSON:")


@pytest.fixture
def checks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A verifier module on sys.path, with a unique name for this test."""
    name = f"hj_checks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def is_short(output, case):
                return len(output) < 10

            def matches_reference(output, case):
                ok = output.strip() == case.reference
                return ok, f"compared with {case.reference!r}"

            def explodes(output, case):
                raise RuntimeError("boom")

            def truthy(output, case):
                return "non-empty string"

            async def is_async(output, case):
                return True
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_python_bool_result(checks_module: str, tmp_path: Path) -> None:
    passed = verify({"python": f"{checks_module}:is_short"}, "tiny", tmp_path)
    assert passed == VerifierResult(name="python", passed=True, detail=f"{checks_module}:is_short")
    assert not verify(
        {"python": f"{checks_module}:is_short"}, "much too long output", tmp_path
    ).passed


def test_python_tuple_result_with_detail(checks_module: str, tmp_path: Path) -> None:
    result = verify({"python": f"{checks_module}:matches_reference"}, " ref ", tmp_path)
    assert result.passed
    assert result.detail == "compared with 'ref'"
    result = verify({"python": f"{checks_module}:matches_reference"}, "other", tmp_path)
    assert not result.passed
    assert result.detail == "compared with 'ref'"


def test_python_truthy_result_is_coerced_to_bool(checks_module: str, tmp_path: Path) -> None:
    assert verify({"python": f"{checks_module}:truthy"}, "x", tmp_path).passed is True


def test_python_raising_is_a_fail_with_detail(checks_module: str, tmp_path: Path) -> None:
    result = verify({"python": f"{checks_module}:explodes"}, "x", tmp_path)
    assert not result.passed
    assert "raised RuntimeError('boom')" in result.detail


def test_python_missing_function_is_a_fail(checks_module: str, tmp_path: Path) -> None:
    result = verify({"python": f"{checks_module}:nope"}, "x", tmp_path)
    assert not result.passed
    assert "AttributeError" in result.detail


def test_python_missing_module_is_a_fail() -> None:
    result = verify(
        {"python": "hj_no_such_module_xyz:check"}, "x", None, ("hj_no_such_module_xyz",)
    )
    assert not result.passed
    assert "ModuleNotFoundError" in result.detail


def test_python_async_function_does_not_silently_pass(checks_module: str, tmp_path: Path) -> None:
    result = verify({"python": f"{checks_module}:is_async"}, "x", tmp_path)
    assert not result.passed
    assert "awaitable" in result.detail


def test_several_verifiers_run_in_written_order() -> None:
    spec = {"regex": "Paris", "contains": "france", "exact": "nope"}
    case = GoldCase(id="c", input="q", verify=spec)
    results = run_verifiers(case, "Paris, France")
    assert [r.name for r in results] == ["regex", "contains", "exact"]
    assert [r.passed for r in results] == [True, True, False]


def test_no_verify_block_runs_nothing() -> None:
    assert run_verifiers(GoldCase(id="c", input="q"), "anything") == []


def test_check_spec_accepts_every_kind() -> None:
    check_spec(
        {
            "exact": "x",
            "contains": ["a", "b"],
            "regex": "^a",
            "json_schema": {"type": "object"},
            "numeric": {"value": 1.5, "tolerance": 0.1},
            "python": "pkg.mod:fn",
        },
        allowed=["pkg"],
    )
    assert set(KINDS) == {"exact", "contains", "regex", "json_schema", "numeric", "python"} | {
        "contains_case",
        "starts_with",
        "is_json",
        "contains_json",
        "not",
        "all",
    }


def test_check_spec_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(VerifierError) as info:
        check_spec({"regexp": "x"})
    assert "unknown verifier 'regexp'" in str(info.value)
    for kind in KINDS:
        assert kind in str(info.value)


def test_check_spec_bad_regex() -> None:
    with pytest.raises(VerifierError, match=r"verify\.regex '\(unclosed' does not compile"):
        check_spec({"regex": "(unclosed"})


@pytest.mark.parametrize("schema", [{"type": "bogus"}, {"required": "name"}, ["not", "a", "map"]])
def test_check_spec_bad_schema(schema: Any) -> None:
    with pytest.raises(VerifierError, match=r"verify\.json_schema"):
        check_spec({"json_schema": schema})


@pytest.mark.parametrize(
    "spec",
    [
        "5",
        True,
        None,
        {"tolerance": 1},
        {"value": "5"},
        {"value": 5, "tolerance": "a"},
        {"value": 5, "tolerance": -1},
        {"value": 5, "tol": 0.1},
    ],
)
def test_check_spec_bad_numeric(spec: Any) -> None:
    with pytest.raises(VerifierError, match=r"verify\.numeric needs a number"):
        check_spec({"numeric": spec})


@pytest.mark.parametrize("path", ["no_colon", ":fn", "mod:", 5])
def test_check_spec_bad_python_path(path: Any) -> None:
    with pytest.raises(VerifierError, match=r"verify\.python must be `module:function`"):
        check_spec({"python": path})


def test_python_outside_the_project_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(VerifierError) as info:
        check_spec({"python": "shutil:rmtree"}, tmp_path)
    message = str(info.value)
    assert "'shutil'" in message and "is not a module under the project root" in message
    assert 'python_verifiers = ["shutil"]' in message
    check_spec({"python": "shutil:rmtree"}, tmp_path, ["shutil"])  # allow-listed: accepted


def test_python_without_a_project_root_needs_the_allow_list(checks_module: str) -> None:
    with pytest.raises(VerifierError, match="python_verifiers"):
        check_spec({"python": f"{checks_module}:is_short"})


def test_python_in_an_environment_inside_the_project_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv under the project root holds installed code, not the project's."""
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "hj_installed_pkg.py").write_text("def check(output, case):\n    return True\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(VerifierError, match="hj_installed_pkg"):
        check_spec({"python": "hj_installed_pkg:check"}, tmp_path)


def test_python_function_imported_into_a_project_module_is_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`from shutil import rmtree` in a project module does not make it a project verifier."""
    name = f"hj_helpers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "from os import remove\nfrom shutil import rmtree\nfrom os.path import join as joined\n\n"
        "def own(output, case):\n    return True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    victim = tmp_path / "victim"
    victim.mkdir()
    try:
        for borrowed in ("rmtree", "joined"):
            result = verify({"python": f"{name}:{borrowed}"}, str(victim), tmp_path)
            assert result.passed is False
            assert "not in the project" in result.detail and "not run" in result.detail
        assert victim.is_dir()
        assert verify({"python": f"{name}:own"}, "x", tmp_path).passed  # its own: runs
        builtin = verify({"python": f"{name}:remove"}, "x", tmp_path)  # a builtin
        assert not builtin.passed and "not run" in builtin.detail
    finally:
        sys.modules.pop(name, None)
