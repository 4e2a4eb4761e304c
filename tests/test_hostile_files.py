"""Hostile or broken gold files and rubrics: each is one clear error, fast and with bounded memory.

Non-UTF-8 bytes, nesting thousands deep and YAML alias bombs ("billion laughs") must become a
`GoldError` / `RubricError` naming the file (and line), never a traceback or a MemoryError.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_hybridjudge.gold import GoldError, load_gold_file
from pytest_hybridjudge.rubric import RubricError, parse_rubric
from pytest_hybridjudge.safeload import MAX_DEPTH, UnsafeInput, load_json_line, load_yaml

DEEP = 10_000


def billion_laughs(levels: int = 9, indent: str = "") -> str:
    """Nested anchors: each level lists the previous one 9 times (9**levels strings in all)."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"{indent}l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def peak_bytes(func: Callable[[], Any]) -> int:
    """Peak memory Python allocated while `func` ran (its exception is swallowed)."""
    tracemalloc.start()
    try:
        func()
    except Exception:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def gold_error(path: Path) -> GoldError:
    with pytest.raises(GoldError) as info:
        load_gold_file(path)
    message = str(info.value)
    assert "\n" not in message  # one line, as a collection error
    assert message.startswith(str(path))
    return info.value


# --------------------------------------------------------------------------- gold files


def test_non_utf8_gold_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("cases:\n  - id: cafe\n    input: caf\xe9\n".encode("latin-1"))
    error = gold_error(path)
    assert error.line == 3
    assert "not UTF-8" in str(error)
    assert "0xe9" in str(error)
    assert "save the file as UTF-8" in str(error)


def test_non_utf8_jsonl_gold_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "a", "input": "x"}\n{"id": "b", "input": "\xff"}\n')
    assert gold_error(path).line == 2


def test_yaml_nested_deep_in_flow_style(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("cases:\n  - id: a\n    input: x\n    metadata: " + "[" * DEEP + "]" * DEEP)
    error = gold_error(path)
    assert error.line == 4
    assert "nest" in str(error)


def test_yaml_nested_deeper_than_the_limit_in_block_style(tmp_path: Path) -> None:
    # below libyaml's own limit (1000), so this is the loader's own depth check
    levels = MAX_DEPTH + 5
    block = "".join(f"{'  ' * (i + 3)}k{i}:\n" for i in range(levels))
    path = tmp_path / "deep.yaml"
    path.write_text("cases:\n  - id: a\n    input: x\n    metadata:\n" + block)
    error = gold_error(path)
    assert f"nested more than {MAX_DEPTH} levels deep" in str(error)
    assert error.line is not None and error.line > 4


def test_jsonl_nested_deep(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    deep = "[" * DEEP + "]" * DEEP
    path.write_text(
        f'{{"id": "a", "input": "x"}}\n{{"id": "b", "input": "x", "reference": {deep}}}\n'
    )
    error = gold_error(path)
    assert error.line == 2
    assert f"nested more than {MAX_DEPTH} levels deep" in str(error)


def test_jsonl_nested_below_the_recursion_limit_but_above_the_depth_limit(tmp_path: Path) -> None:
    deep = "[" * 200 + "]" * 200  # json.loads accepts this; later consumers might not
    path = tmp_path / "deep.jsonl"
    path.write_text(f'{{"id": "a", "input": "x", "reference": {deep}}}\n')
    assert f"nested more than {MAX_DEPTH} levels deep" in str(gold_error(path))


def test_yaml_alias_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    text = "cases:\n  - id: a\n    input: x\n    metadata:\n" + billion_laughs(indent="      ")
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    error = gold_error(path)
    assert "aliases expand" in str(error)
    assert peak_bytes(lambda: load_gold_file(path)) < 50_000_000


def size_bomb(length: int = 100_000, times: int = 10_000) -> str:
    """One long string aliased `times` times: few nodes, but `length * times` bytes expanded."""
    return (
        "cases:\n  - id: a\n    input: x\n    metadata:\n"
        f"      big: &big {'x' * length}\n"
        f"      many: [{', '.join(['*big'] * times)}]\n"
    )


def test_yaml_alias_bomb_by_size_is_refused_at_its_line_with_bounded_memory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "size-bomb.yaml"
    path.write_text(size_bomb())  # 150 kB that would expand to 1 GB
    error = gold_error(path)
    assert error.line == 6  # where the aliases pile up
    assert "aliases expand this value to" in str(error)
    assert "write the values out or share fewer anchors" in str(error)
    assert peak_bytes(lambda: load_gold_file(path)) < 20_000_000


def test_nested_aliases_of_a_long_string_are_refused_in_a_memory_capped_process(
    tmp_path: Path,
) -> None:
    """A list of 50 aliases to a 300 kB string, listed 50 times: 750 MB expanded from 300 kB
    with few nodes. Loaded and written out as JSON (as results.jsonl would be) in a process
    capped at 1 GB of address space: refused, not a MemoryError."""
    import subprocess
    import sys

    path = tmp_path / "nested.yaml"
    path.write_text(
        "cases:\n  - id: a\n    input: x\n    metadata:\n"
        f"      s: &s {'y' * 300_000}\n"
        f"      l: &l [{', '.join(['*s'] * 50)}]\n"
        f"      m: [{', '.join(['*l'] * 50)}]\n"
    )
    probe = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from pytest_hybridjudge.gold import GoldError, load_gold_file\n"
        "try:\n"
        "    case = load_gold_file(__import__('pathlib').Path(sys.argv[1]))[0]\n"
        "except GoldError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print(len(json.dumps(case.metadata)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{path}:6: not usable YAML: aliases expand this value to")


def test_a_long_value_shared_a_few_times_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text(size_bomb(times=5))
    assert load_gold_file(path)[0].metadata["many"] == ["x" * 100_000] * 5


def test_yaml_alias_into_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("cases:\n  - id: a\n    input: x\n    metadata: &m {again: [*m]}\n")
    error = gold_error(path)
    assert error.line == 4
    assert "refers to a node that contains it" in str(error)


def test_aliases_cannot_stack_nesting_past_the_limit(tmp_path: Path) -> None:
    half = "[" * 40 + "1" + "]" * 40
    stacked = "[" * 40 + "*a" + "]" * 40
    text = f"cases:\n  - id: a\n    input: x\n    metadata: {{a: &a {half}, b: {stacked}}}\n"
    path = tmp_path / "stacked.yaml"
    path.write_text(text)
    assert f"more than {MAX_DEPTH} levels deep" in str(gold_error(path))


def test_modest_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = (
        "cases:\n"
        "  - id: a\n    input: x\n    metadata: &shared {team: search, owner: ana}\n"
        "  - id: b\n    input: y\n    metadata: *shared\n"
        "  - <<: {rubric: helpfulness}\n    id: c\n    input: z\n"
    )
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    cases = load_gold_file(path)
    assert cases[1].metadata == {"team": "search", "owner": "ana"}
    assert cases[2].rubric == "helpfulness"
    assert [c.line for c in cases] == [2, 5, 8]


def test_ordinary_nesting_is_accepted(tmp_path: Path) -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH - 4):  # the case, its mapping and `metadata` add levels
        nested = [nested]
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"id": "a", "input": "x", "metadata": {"n": nested}}) + "\n")
    assert load_gold_file(path)[0].metadata["n"] == nested


# --------------------------------------------------------------------------- rubrics


def test_non_utf8_rubric_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_bytes(b"---\nscale: [1, 5]\n---\nGrade \xff{{ input }}\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert str(info.value).startswith(f"{path}:4: not UTF-8 text")


def test_rubric_front_matter_alias_bomb(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("---\n" + billion_laughs() + "---\nGrade {{ input }}\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert str(info.value).startswith(f"{path}:")
    assert "aliases expand" in str(info.value)
    assert peak_bytes(lambda: parse_rubric(path)) < 50_000_000


def test_rubric_front_matter_nested_deep(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("---\ncriteria: " + "[" * DEEP + "]" * DEEP + "\n---\nGrade\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path)
    assert str(info.value).startswith(f"{path}:2:")


# --------------------------------------------------------------------------- the loaders


def test_load_yaml_keeps_lines_and_data() -> None:
    node, data = load_yaml("a: 1\nb:\n  - x\n")
    assert data == {"a": 1, "b": ["x"]}
    assert node is not None
    assert node.value[1][1].start_mark.line == 2


def test_load_yaml_of_an_empty_document() -> None:
    assert load_yaml("# nothing\n") == (None, None)


def test_load_json_line_depth() -> None:
    assert load_json_line('{"a": [[1]]}') == {"a": [[1]]}
    with pytest.raises(UnsafeInput, match="levels deep"):
        load_json_line("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("tag", "shown"),
    [('""', "'' (empty)"), ("_private", "'_private'"), ('"a: b"', "'a: b'"), ("not", "'not'")],
)
def test_tags_that_cannot_be_markers_are_refused_with_the_fix(
    tmp_path: Path, tag: str, shown: str
) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text(
        f"cases:\n  - id: ok\n    input: x\n  - id: t1\n    input: x\n    tags: [{tag}]\n"
    )
    error = gold_error(path)
    assert (error.line, error.case) == (4, "t1")
    assert f"tag {shown} cannot be a pytest marker" in str(error)
    assert "a letter or digit first" in str(error)  # what a valid tag looks like


def test_ordinary_tags_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text(
        "cases:\n  - id: a\n    input: x\n"
        "    tags: [geo, red_team, safety-critical, v2.1, 2026q1]\n"
    )
    assert load_gold_file(path)[0].tags == ("geo", "red_team", "safety-critical", "v2.1", "2026q1")


# ------------------------------------------------------------------- errors in the right place


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "quote.yaml"
    path.write_text(
        'cases:\n  - id: a\n    input: "never closed\n  - id: b\n    input: fine\n'
        "  - id: c\n    input: fine too\n"
    )
    error = gold_error(path)
    assert error.line == 3
    assert "the quoted string that starts on this line is never closed" in str(error)
    assert "the file ends first" in str(error)


@pytest.mark.parametrize(("opening", "what"), [("[a, b", "`[` list"), ("{a: b", "`{` mapping")])
def test_an_unclosed_bracket_is_reported_where_it_opens(
    tmp_path: Path, opening: str, what: str
) -> None:
    path = tmp_path / "bracket.yaml"
    path.write_text(f"cases:\n  - id: a\n    input: x\n    metadata: {opening}\n\n\n")
    error = gold_error(path)
    assert error.line == 4
    assert f"the {what} that starts on this line is never closed" in str(error)


def test_the_undefined_variable_hint_works_as_suggested(tmp_path: Path) -> None:
    import re

    path = tmp_path / "r.md"
    path.write_text("---\nscale: [1, 5]\n---\nGrade {{ topic }}\n")
    with pytest.raises(RubricError) as info:
        parse_rubric(path).render({"input": "x"}, case_id="c")
    message = str(info.value)
    guard = re.search(r"`(\{% if topic is defined %\}\.\.\.\{% endif %\})`", message)
    default = re.search(r"`(\{\{ topic \| default\(''\) \}\})`", message)
    assert guard and default, message
    for body in (guard.group(1).replace("...", "{{ topic }}"), default.group(1)):
        path.write_text(f"---\nscale: [1, 5]\n---\nGrade {body}\n")
        assert parse_rubric(path).render({"input": "x"}) == "Grade "
    path.write_text("---\nscale: [1, 5]\n---\nGrade {% if topic %}{{ topic }}{% endif %}\n")
    with pytest.raises(RubricError):  # why the hint is not a bare `{% if topic %}`
        parse_rubric(path).render({"input": "x"})


def test_unknown_front_matter_keys_get_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("---\npass_treshold: 3\n---\nGrade\n")
    with pytest.raises(
        RubricError, match="unknown key 'pass_treshold': did you mean 'pass_threshold'"
    ):
        parse_rubric(path)


def test_unknown_case_keys_get_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("cases:\n  - id: a\n    input: x\n    refrence: y\n")
    assert "unknown key 'refrence': did you mean 'reference'?" in str(gold_error(path))
