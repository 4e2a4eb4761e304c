"""Unit tests for `gold.py`: YAML and JSONL gold files, line numbers, errors, variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_hybridjudge.gold import GoldCase, GoldError, Message, load_gold_file


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


YAML_FILE = """\
rubric: correctness
cases:
  - id: capital-france
    input: "What is the capital of France?"
    reference: "Paris"
    tags: [geography]

  - id: refund-policy
    messages: [{role: user, content: "Can I get a refund after 40 days?"}]
    rubric: policy-faithfulness
    verify: {regex: "(?i)no|not eligible"}
  - id: mapping-input
    input: {question: "Why?", context: "Because."}
    metadata: {difficulty: hard}
"""


def test_yaml_file_parses_every_case(tmp_path: Path) -> None:
    path = write(tmp_path, "set.yaml", YAML_FILE)
    cases = load_gold_file(path)
    assert [c.id for c in cases] == ["capital-france", "refund-policy", "mapping-input"]
    first, second, third = cases
    assert first.input == "What is the capital of France?"
    assert first.reference == "Paris"
    assert first.tags == ("geography",)
    assert second.messages == (Message(role="user", content="Can I get a refund after 40 days?"),)
    assert second.verify == {"regex": "(?i)no|not eligible"}
    assert third.input == {"question": "Why?", "context": "Because."}
    assert third.metadata == {"difficulty": "hard"}
    assert all(c.source == str(path) for c in cases)


def test_file_level_rubric_is_the_default_and_cases_may_override(tmp_path: Path) -> None:
    cases = load_gold_file(write(tmp_path, "set.yaml", YAML_FILE))
    assert [c.rubric for c in cases] == ["correctness", "policy-faithfulness", "correctness"]


def test_no_file_level_rubric_leaves_rubric_unset(tmp_path: Path) -> None:
    cases = load_gold_file(write(tmp_path, "set.yaml", "cases:\n  - id: a\n    input: x\n"))
    assert cases[0].rubric is None


def test_yaml_line_of_each_case(tmp_path: Path) -> None:
    cases = load_gold_file(write(tmp_path, "set.yaml", YAML_FILE))
    assert [c.line for c in cases] == [3, 8, 12]


def test_top_level_list_form(tmp_path: Path) -> None:
    text = "# comment\n- id: a\n  input: x\n- id: b\n  input: y\n"
    cases = load_gold_file(write(tmp_path, "list.yml", text))
    assert [(c.id, c.line, c.rubric) for c in cases] == [("a", 2, None), ("b", 4, None)]


def test_empty_yaml_file_has_no_cases(tmp_path: Path) -> None:
    assert load_gold_file(write(tmp_path, "empty.yaml", "# nothing yet\n")) == []


def test_jsonl_cases_and_line_numbers_skip_blank_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "input": "x", "reference": 1}),
        "",
        json.dumps({"id": "b", "input": {"q": "y"}, "rubric": "helpfulness"}),
    ]
    cases = load_gold_file(write(tmp_path, "set.jsonl", "\n".join(lines) + "\n"))
    assert [(c.id, c.line) for c in cases] == [("a", 1), ("b", 3)]
    assert cases[0].reference == 1
    assert cases[1].rubric == "helpfulness"


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    text = "cases:\n  - id: a\n    input: x\n  - id: b\n    input: y\n  - id: a\n    input: z\n"
    path = write(tmp_path, "dup.yaml", text)
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    error = info.value
    assert error.line == 6
    assert error.case == "a"
    assert f"{path}:6" in str(error)
    assert "duplicate id" in str(error)
    assert "first at line 2" in str(error)


def test_duplicate_id_in_jsonl(tmp_path: Path) -> None:
    text = '{"id": "a", "input": "x"}\n{"id": "b", "input": "y"}\n{"id": "a", "input": "z"}\n'
    with pytest.raises(GoldError, match=r":3: case 'a' duplicate id \(first at line 1\)"):
        load_gold_file(write(tmp_path, "dup.jsonl", text))


def test_missing_input_names_case_and_line(tmp_path: Path) -> None:
    text = "cases:\n  - id: ok\n    input: x\n  - id: no-input\n    reference: y\n"
    path = write(tmp_path, "missing.yaml", text)
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert info.value.line == 4
    assert info.value.case == "no-input"
    assert "needs `input`" in str(info.value)
    assert "`messages`" in str(info.value)


def test_missing_id_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GoldError, match="missing 'id'"):
        load_gold_file(write(tmp_path, "noid.yaml", "cases:\n  - input: x\n"))


def test_unknown_case_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.yaml", "cases:\n  - id: a\n    input: x\n    refrence: y\n")
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert "unknown key 'refrence'" in str(info.value)
    assert info.value.line == 2
    assert info.value.case == "a"


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(GoldError, match=r"unknown top-level key\(s\) \['casez'\]"):
        load_gold_file(write(tmp_path, "top.yaml", "casez:\n  - id: a\n    input: x\n"))


def test_cases_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(GoldError, match="`cases` must be a list"):
        load_gold_file(write(tmp_path, "notlist.yaml", "cases: {id: a}\n"))


def test_case_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "scalar.yaml", "cases:\n  - id: a\n    input: x\n  - just a string\n")
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert info.value.line == 4
    assert "must be a mapping" in str(info.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    text = "cases:\n  - id: a\n    input: x\n\tbroken: tab\n"
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert info.value.line == 4
    assert str(info.value).startswith(f"{path}:4:")
    assert "not valid YAML" in str(info.value)


def test_bad_jsonl_names_the_line(tmp_path: Path) -> None:
    text = '{"id": "a", "input": "x"}\n\n{"id": "b", "input": "y"}\n{"id": "c", input: z}\n'
    path = write(tmp_path, "bad.jsonl", text)
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert info.value.line == 4
    assert f"{path}:4" in str(info.value)
    assert "not valid JSON" in str(info.value)


def test_variables_spread_a_mapping_input() -> None:
    case = GoldCase(
        id="c1",
        input={"question": "Why?", "context": "Because."},
        reference="r",
        metadata={"k": "v"},
        tags=("t",),
    )
    values = case.variables()
    assert values["question"] == "Why?"
    assert values["context"] == "Because."
    assert values["input"] == {"question": "Why?", "context": "Because."}
    assert values["reference"] == "r"
    assert values["metadata"] == {"k": "v"}
    assert values["tags"] == ["t"]
    assert values["case_id"] == "c1"
    assert values["messages"] == []


def test_variables_builtins_win_over_spread_keys() -> None:
    case = GoldCase(id="c1", input={"reference": "from-input", "q": 1}, reference="real")
    assert case.variables()["reference"] == "real"
    assert case.variables()["q"] == 1


def test_variables_for_string_input() -> None:
    values = GoldCase(id="c", input="plain").variables()
    assert values["input"] == "plain"
    assert values["reference"] is None


def test_messages_case_uses_last_user_message_as_input(tmp_path: Path) -> None:
    text = """\
cases:
  - id: chat
    messages:
      - {role: system, content: "be brief"}
      - {role: user, content: "first"}
      - {role: assistant, content: "answer"}
      - {role: user, content: "second"}
"""
    (case,) = load_gold_file(write(tmp_path, "chat.yaml", text))
    assert case.input is None
    assert case.last_user_text() == "second"
    values = case.variables()
    assert values["input"] == "second"
    assert [m["role"] for m in values["messages"]] == ["system", "user", "assistant", "user"]
    assert values["messages"][0] == {"role": "system", "content": "be brief"}


def test_messages_case_without_user_message_has_empty_input() -> None:
    case = GoldCase(id="c", messages=(Message(role="system", content="s"),))
    assert case.last_user_text() == ""
    assert case.variables()["input"] == ""


def test_bad_message_role_is_an_error(tmp_path: Path) -> None:
    text = "cases:\n  - id: a\n    messages: [{role: robot, content: hi}]\n"
    with pytest.raises(GoldError, match=r"'messages\.0\.role'"):
        load_gold_file(write(tmp_path, "role.yaml", text))


def test_empty_messages_without_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs `input`"):
        GoldCase(id="c", messages=())


def test_id_with_node_id_separator_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path, "colon.yaml", "cases:\n  - id: ok\n    input: x\n  - id: a::b\n    input: y\n"
    )
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert info.value.line == 4
    assert info.value.case == "a::b"
    assert str(info.value).startswith(f"{path}:4: case 'a::b' id contains '::'")
    assert "node id" in str(info.value)


@pytest.mark.parametrize("char", ["\x1b", "\x07", "\n", "\u202e", "\u2066"])
def test_id_with_control_or_bidi_character_is_rejected_and_shown_escaped(
    tmp_path: Path, char: str
) -> None:
    path = write(tmp_path, "ctl.jsonl", json.dumps({"id": f"a{char}b", "input": "x"}) + "\n")
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    message = str(info.value)
    assert f"U+{ord(char):04X}" in message
    assert char not in message  # the message itself is safe to print
    assert info.value.line == 1


@pytest.mark.parametrize(
    "tag", ["skip", "skipif", "xfail", "usefixtures", "filterwarnings", "parametrize"]
)
def test_tag_that_is_a_builtin_pytest_mark_is_rejected(tmp_path: Path, tag: str) -> None:
    path = write(
        tmp_path,
        "tags.yaml",
        f"cases:\n  - id: ok\n    input: x\n    tags: [skipped]\n"
        f"  - id: marked\n    input: y\n    tags: [geo, {tag}]\n",
    )
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    assert (info.value.line, info.value.case) == (5, "marked")
    message = str(info.value)
    assert message.startswith(f"{path}:5: case 'marked' tag '{tag}' is one of pytest's built-in")
    assert "rename the tag" in message
