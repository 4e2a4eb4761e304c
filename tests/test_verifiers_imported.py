"""Verifiers the importers map to: case-sensitive contains, starts_with, JSON checks, not, all."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.verdict import VerifierResult
from pytest_hybridjudge.verifiers import VerifierError, check_spec, run_verifiers


def verify(spec: dict[str, Any], output: str) -> VerifierResult:
    check_spec(spec)
    (result,) = run_verifiers(GoldCase(id="c", input="q", verify=spec), output)
    return result


def test_contains_case_is_case_sensitive_and_takes_lists() -> None:
    assert verify({"contains_case": "Paris"}, "It is Paris.").passed
    assert not verify({"contains_case": "Paris"}, "it is paris.").passed
    result = verify({"contains_case": ["Paris", "France"]}, "Paris")
    assert not result.passed and "France" in result.detail


def test_starts_with() -> None:
    assert verify({"starts_with": "Yes"}, "  Yes, it is").passed
    assert not verify({"starts_with": "Yes"}, "No. Yes").passed


def test_is_json_with_and_without_schema() -> None:
    assert verify({"is_json": None}, '{"a": 1}').passed
    assert not verify({"is_json": None}, 'here: {"a": 1}').passed
    schema = {"type": "object", "required": ["b"]}
    result = verify({"is_json": schema}, '{"a": 1}')
    assert not result.passed and "'b' is a required property" in result.detail


def test_contains_json_finds_json_inside_text() -> None:
    assert verify({"contains_json": True}, 'Sure! {"a": [1, 2]} done').passed
    assert not verify({"contains_json": True}, "no braces {here").passed
    schema = {"type": "object", "required": ["b"]}
    assert verify({"contains_json": schema}, '{"a": 1} then {"b": 2}').passed
    assert not verify({"contains_json": schema}, '{"a": 1}').passed


def test_not_passes_only_when_no_listed_check_holds() -> None:
    assert verify({"not": {"contains": "sorry"}}, "Paris").passed
    result = verify({"not": [{"contains": "sorry"}, {"regex": "^P"}]}, "Paris")
    assert not result.passed and "regex held" in result.detail


def test_all_holds_several_checks_of_one_kind() -> None:
    spec = {"all": [{"regex": "^P"}, {"regex": "s$"}]}
    assert verify(spec, "Paris").passed
    assert not verify(spec, "Pari").passed


@pytest.mark.parametrize("spec", [{"not": []}, {"all": "x"}, {"not": [{}]}])
def test_nested_checks_must_be_mappings(spec: dict[str, Any]) -> None:
    with pytest.raises(VerifierError, match="needs checks"):
        check_spec(spec)


def test_nested_checks_are_checked_like_top_level_ones() -> None:
    with pytest.raises(VerifierError, match="does not compile"):
        check_spec({"not": {"regex": "("}})
    with pytest.raises(VerifierError, match="not a module"):
        check_spec({"all": [{"python": "shutil:rmtree"}]})
