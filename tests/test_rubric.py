"""Unit tests for `rubric.py`: front matter, versions, errors with file lines, the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.rubric import BUILTIN_DIR, RubricError, RubricLibrary, parse_rubric


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


RUBRIC = """\
---
scale: [0, 10]
pass_threshold: 7
description: Is it right?
tier: senior
review_minutes: 3
criteria:
  - Correct
  - Complete
---
Question: {{ input }}
Reference: {{ reference }}
"""


def test_front_matter_is_parsed(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "grade.md", RUBRIC))
    assert rubric.name == "grade"
    assert rubric.scale == (0, 10)
    assert rubric.meta.pass_threshold == 7
    assert rubric.meta.description == "Is it right?"
    assert rubric.meta.tier == "senior"
    assert rubric.meta.review_minutes == 3
    assert rubric.meta.criteria == ["Correct", "Complete"]
    assert rubric.body_line == 11
    assert rubric.source == "Question: {{ input }}\nReference: {{ reference }}\n"


def test_passes_uses_threshold(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "grade.md", RUBRIC))
    assert rubric.passes(7)
    assert rubric.passes(10)
    assert not rubric.passes(6)
    assert not rubric.passes(6.9)


def test_render_substitutes_variables(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "grade.md", RUBRIC))
    text = rubric.render({"input": "2+2?", "reference": "4"})
    assert text == "Question: 2+2?\nReference: 4"


def test_no_front_matter_uses_defaults_and_whole_text_as_body(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "plain.md", "Just {{ input }}\n"))
    assert rubric.scale == (1, 5)
    assert rubric.meta.pass_threshold == 4
    assert rubric.body_line == 1
    assert rubric.render({"input": "x"}) == "Just x"


def test_name_can_be_given(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "file.md", "x"), name="other")
    assert rubric.name == "other"


def test_version_changes_when_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "grade.md", RUBRIC)
    first = parse_rubric(path).version
    assert parse_rubric(path).version == first  # deterministic
    path.write_text(RUBRIC.replace("Is it right?", "Is it right, really?"))
    second = parse_rubric(path).version
    assert second != first
    path.write_text(RUBRIC)
    assert parse_rubric(path).version == first


def test_version_is_content_not_path(tmp_path: Path) -> None:
    a = parse_rubric(write(tmp_path / "a" / "r.md", RUBRIC))
    b = parse_rubric(write(tmp_path / "b" / "r.md", RUBRIC))
    assert a.version == b.version


def test_pass_threshold_outside_scale_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.md", "---\nscale: [1, 5]\npass_threshold: 6\n---\nbody\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert str(path) in str(info.value)
    assert "pass_threshold 6 is outside scale [1, 5]" in str(info.value)


def test_inverted_scale_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.md", "---\nscale: [5, 1]\npass_threshold: 3\n---\nbody\n")
    with pytest.raises(RubricError, match="low < high"):
        parse_rubric(path)


def test_unknown_front_matter_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.md", "---\nthreshold: 3\n---\nbody\n")
    with pytest.raises(RubricError, match="'threshold'"):
        parse_rubric(path)


def test_bad_tier_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match="unknown tier 'intern'; known tiers: annotator"):
        parse_rubric(write(tmp_path / "bad.md", "---\ntier: intern\n---\nbody\n"))


def test_front_matter_bad_yaml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.md", "---\nscale: [1, 5\n---\nbody\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert str(path) in str(info.value)
    assert "front matter is not valid YAML" in str(info.value)


def test_front_matter_bad_yaml_names_the_file_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.md", "---\ndescription: ok\nscale: [1, 5]\n\tbad: x\n---\nbody\n")
    with pytest.raises(RubricError, match=rf"^{re.escape(str(path))}:4: front matter"):
        parse_rubric(path)


def test_unclosed_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path / "open.md", "---\nscale: [1, 5]\nGrade {{ input }}\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert f"{path}:1:" in str(info.value)
    assert "never closed" in str(info.value)


def test_syntax_error_names_file_and_file_line(tmp_path: Path) -> None:
    # front matter takes lines 1-4, the body starts at line 5; the error is on body line 3.
    text = "---\nscale: [1, 5]\npass_threshold: 3\n---\nline five\nline six\n{% if %}\n"
    path = write(tmp_path / "syntax.md", text)
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert str(info.value).startswith(f"{path}:7: template syntax error")


def test_syntax_error_line_without_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path / "syntax.md", "one\ntwo {{ x }\n")
    with pytest.raises(RubricError, match=r"syntax\.md:2: template syntax error"):
        parse_rubric(path)


def test_undefined_variable_names_file_line_and_case(tmp_path: Path) -> None:
    text = "---\nscale: [1, 5]\n---\nfirst {{ input }}\nsecond {{ missing }}\n"
    rubric = parse_rubric(write(tmp_path / "undef.md", text))
    with pytest.raises(RubricError) as info:
        rubric.render({"input": "x"}, case_id="case-7")
    message = str(info.value)
    assert message.startswith(f"{rubric.path}:5:")
    assert "'missing' is undefined" in message
    assert "(case 'case-7')" in message


def test_undefined_attribute_is_an_error(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "attr.md", "{{ metadata.context }}\n"))
    with pytest.raises(RubricError, match=r"attr\.md:1:"):
        rubric.render({"metadata": {}}, case_id="c")


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ input.__class__.__base__.__subclasses__() }}",
        "{{ lipsum.__globals__ }}",
        "{{ '{0.__class__}'.format(input) }}",
    ],
)
def test_sandbox_blocks_unsafe_access(tmp_path: Path, expression: str) -> None:
    text = f"---\nscale: [1, 5]\n---\nok\n{expression}\n"
    rubric = parse_rubric(write(tmp_path / "evil.md", text))
    with pytest.raises(RubricError) as info:
        rubric.render({"input": "x"}, case_id="c")
    message = str(info.value)
    assert "unsafe" in message
    assert message.startswith(f"{rubric.path}:5:")
    assert "sandbox" in message


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("{{ 1 / n }}", "ZeroDivisionError"),
        ("{{ range(10**9) | list | length }}", "`range` was given 1,000,000,000"),
    ],
)
def test_other_render_errors_name_file_line_and_case(
    tmp_path: Path, expression: str, problem: str
) -> None:
    rubric = parse_rubric(write(tmp_path / "r.md", f"---\n---\nok\n{expression}\n"))
    with pytest.raises(RubricError) as info:
        rubric.render({"n": 0}, case_id="c9")
    message = str(info.value)
    assert message.startswith(f"{rubric.path}:4: {problem}")
    assert "(case 'c9')" in message


def test_variable_values_are_data_not_template(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "r.md", "Q: {{ input }} R: {{ reference }}\n"))
    hostile = "{{ 7*7 }} {% for x in range(3) %}{{ x }}{% endfor %}"
    text = rubric.render({"input": hostile, "reference": "{{ cycler.__init__ }}"})
    assert text == f"Q: {hostile} R: {{{{ cycler.__init__ }}}}"
    assert "49" not in text
    assert "012" not in text


def test_variables_are_not_html_escaped(tmp_path: Path) -> None:
    rubric = parse_rubric(write(tmp_path / "r.md", "{{ input }}"))
    assert rubric.render({"input": 'a < b & "c"'}) == 'a < b & "c"'


@pytest.mark.parametrize("name", ["correctness", "faithfulness", "helpfulness"])
def test_builtin_rubrics_load_and_render(name: str) -> None:
    library = RubricLibrary(None)
    rubric = library.get(name)
    assert rubric.path == BUILTIN_DIR / f"{name}.md"
    assert rubric.scale == (1, 5)
    assert rubric.meta.description
    assert rubric.meta.criteria
    case = GoldCase(id="c", input="What is the capital of France?", reference="Paris")
    text = rubric.render(case.variables(), case_id=case.id)
    assert "What is the capital of France?" in text
    assert "Paris" in text
    assert "{{" not in text


@pytest.mark.parametrize("name", ["correctness", "helpfulness"])
def test_builtin_rubrics_render_without_reference(name: str) -> None:
    rubric = RubricLibrary(None).get(name)
    text = rubric.render(GoldCase(id="c", input="Hello?").variables(), case_id="c")
    assert "Hello?" in text
    assert "None" not in text


def test_faithfulness_prefers_metadata_context() -> None:
    rubric = RubricLibrary(None).get("faithfulness")
    case = GoldCase(id="c", input="q", reference="ref", metadata={"context": "the context"})
    text = rubric.render(case.variables(), case_id="c")
    assert "the context" in text
    assert "ref" not in text


def test_library_names_include_builtins_and_project(tmp_path: Path) -> None:
    write(tmp_path / "rubrics" / "tone.md", "Tone of {{ input }}")
    names = RubricLibrary(tmp_path / "rubrics").names()
    assert {"correctness", "faithfulness", "helpfulness", "tone"} <= set(names)
    assert names == sorted(names)


def test_unknown_rubric_lists_available_names(tmp_path: Path) -> None:
    write(tmp_path / "rubrics" / "tone.md", "Tone of {{ input }}")
    library = RubricLibrary(tmp_path / "rubrics")
    with pytest.raises(RubricError) as info:
        library.get("corectness")
    message = str(info.value)
    assert "unknown rubric 'corectness'" in message
    for name in ("correctness", "faithfulness", "helpfulness", "tone"):
        assert name in message.split("use one of", 1)[1]
    assert "corectness.md" in message


def test_project_folder_overrides_builtin(tmp_path: Path) -> None:
    folder = tmp_path / "rubrics"
    write(
        folder / "correctness.md", "---\nscale: [0, 3]\npass_threshold: 2\n---\nMine: {{ input }}"
    )
    library = RubricLibrary(folder)
    rubric = library.get("correctness")
    assert rubric.path == folder / "correctness.md"
    assert rubric.scale == (0, 3)
    assert rubric.render({"input": "x"}) == "Mine: x"
    # the other built-ins are still there
    assert library.get("helpfulness").path == BUILTIN_DIR / "helpfulness.md"


def test_missing_project_folder_falls_back_to_builtins(tmp_path: Path) -> None:
    library = RubricLibrary(tmp_path / "does-not-exist")
    assert library.get("correctness").path == BUILTIN_DIR / "correctness.md"
    assert "correctness" in library.names()


def test_library_caches_loaded_rubrics(tmp_path: Path) -> None:
    folder = tmp_path / "rubrics"
    write(folder / "r.md", "v1 {{ input }}")
    library = RubricLibrary(folder)
    assert library.get("r") is library.get("r")


@pytest.mark.parametrize("name", ["../outside", "../../outside", "sub/../../outside", "..", ""])
def test_rubric_names_cannot_leave_the_rubrics_folder(tmp_path: Path, name: str) -> None:
    write(tmp_path / "outside.md", "OUTSIDE {{ input }}")
    folder = tmp_path / "rubrics"
    write(folder / "sub" / "inner.md", "inner {{ input }}")
    library = RubricLibrary(folder)
    with pytest.raises(RubricError) as info:
        library.get(name)
    message = str(info.value)
    assert f"rubric '{name}' is not a name inside the rubrics folder {folder}" in message
    assert "correctness" in message  # what to write instead


def test_absolute_rubric_path_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.md", "OUTSIDE {{ input }}")
    library = RubricLibrary(tmp_path / "rubrics")
    with pytest.raises(RubricError, match="is not a name inside the rubrics folder"):
        library.get(str(outside.with_suffix("")))


def test_rubric_in_a_subfolder_of_the_rubrics_folder_is_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "rubrics"
    write(folder / "policy" / "refunds.md", "Refunds: {{ input }}")
    assert RubricLibrary(folder).get("policy/refunds").render({"input": "x"}) == "Refunds: x"
