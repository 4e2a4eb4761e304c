"""Bounded rendering: rubrics that loop forever or build huge values stop with a named bound."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pytest_hybridjudge.config import TargetSpec
from pytest_hybridjudge.gold import GoldCase
from pytest_hybridjudge.rubric import RubricError, parse_rubric
from pytest_hybridjudge.sandbox import (
    MAX_OUTPUT,
    MAX_STEPS,
    BoundedEnvironment,
    RenderLimit,
    render_bounded,
)
from pytest_hybridjudge.targets import TargetError, target_messages

NESTED_LOOPS = (
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}"
)


def render(tmp_path: Path, body: str, **variables: object) -> str:
    """Render a rubric whose body starts on file line 4."""
    path = tmp_path / "bounded.md"
    path.write_text(f"---\nscale: [1, 5]\n---\n{body}\n")
    return parse_rubric(path).render(variables, case_id="c1")


def render_error(tmp_path: Path, body: str, line: bool = True, **variables: object) -> str:
    """The error rendering `body` raises; it names the rubric, the line (where known), the case."""
    with pytest.raises(RubricError) as info:
        render(tmp_path, body, **variables)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'bounded.md'}{':4:' if line else ':'}")
    assert "(case 'c1')" in message
    return message


def test_nested_range_loops_stop_at_a_bound(tmp_path: Path) -> None:
    message = render_error(tmp_path, NESTED_LOOPS, line=False)
    assert f"more than {MAX_STEPS:,} steps" in message or f"{MAX_OUTPUT:,} characters" in message


def test_nested_loops_without_output_stop_too(tmp_path: Path) -> None:
    silent = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    assert f"more than {MAX_STEPS:,} steps" in render_error(tmp_path, silent)


def test_nested_loops_over_a_long_input_stop(tmp_path: Path) -> None:
    body = "{% for a in input %}{% for b in input %}{{ b }}{% endfor %}{% endfor %}"
    message = render_error(tmp_path, body, line=False, input="x" * 5_000)
    assert "steps" in message or "characters" in message


@pytest.mark.parametrize(
    "expression",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 'a' * 1000000000 }}",  # a literal: not folded into the template at compile time
        "{{ [0] * 10**9 }}",
        "{{ 'a'.center(10**9) }}",
        "{{ 'a' | center(1000000000) }}",
        "{{ input.replace('', input) }}",
        "{{ input | join(input) }}",
        "{{ '%1000000000s' % 'a' }}",
        "{{ '{:>1000000000}'.format('a') }}",
        # widths that only appear once the nested fields are filled in
        "{{ '{:>{}}'.format('a', 200000000) }}",
        "{{ '{:>{w}}'.format('a', w=200000000) }}",
        "{{ '{x:>{w}}'.format_map({'x': 'a', 'w': 200000000}) }}",
        "{{ '{:.{}f}'.format(1.5, 200000000) }}",
        "{{ '{:{}{}}'.format('a', '>2000', '00000') }}",
        "{{ '{:>{}}'.format('a', '0000000200000000') }}",
        "{{ '{0[a]:>{0[w]}}'.format({'a': 'x', 'w': 200000000}) }}",
        "{{ '%*s' % (200000000, 'a') }}",
        "{{ '%.*f' % (200000000, 1.5) }}",
        "{{ '%*s' | format(200000000, 'a') }}",
        "{{ range(10**9) | list | length }}",
        "{{ (10).to_bytes(10**9, 'big') }}",
        "{{ lipsum(10**6) }}",
        "{{ 9 ** 999999 }}",
    ],
)
def test_one_step_that_would_build_a_huge_value_is_refused(tmp_path: Path, expression: str) -> None:
    tracemalloc.start()
    try:
        message = render_error(tmp_path, expression, input="y" * 10_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "limit" in message or "refused" in message or "over" in message
    assert peak < 100_000_000


def test_many_format_fields_stop_at_the_size_bound(tmp_path: Path) -> None:
    message = render_error(tmp_path, "{{ '{:>{w}}{:>{w}}'.format('a', 'b', w=600000) }}")
    assert f"the limit is {MAX_OUTPUT:,}" in message


def test_ordinary_format_widths_still_work(tmp_path: Path) -> None:
    body = "{{ '{:>{}}|{:.{p}f}|{x:03d}'.format('a', 3, 2.5, p=2, x=7) }}"
    assert render(tmp_path, body) == "  a|2.50|007"


@pytest.mark.parametrize("operator", ["~", "+"])
def test_doubling_a_string_in_a_loop_stops_at_the_size_bound(tmp_path: Path, operator: str) -> None:
    body = (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        f"{{% set ns.s = ns.s {operator} ns.s %}}{{% endfor %}}{{{{ ns.s | length }}}}"
    )
    assert f"the limit is {MAX_OUTPUT:,}" in render_error(tmp_path, body)


def test_output_is_capped(tmp_path: Path) -> None:
    body = "{% for i in range(3) %}{{ 'a'.ljust(900000) }}{% endfor %}"
    message = render_error(tmp_path, body, line=False)  # the whole output, not one line
    assert f"more than {MAX_OUTPUT:,} characters" in message


def test_recursive_loops_are_refused_when_the_rubric_loads(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("---\n---\nok\n{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}\n")
    with pytest.raises(RubricError, match=r"r\.md:4: template syntax error: recursive loops"):
        parse_rubric(path)


def test_exponential_macro_calls_stop_at_the_step_bound(tmp_path: Path) -> None:
    body = (
        "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}"
        "{{ f(0) }}"
    )
    assert "steps" in render_error(tmp_path, body)


def test_lists_cannot_be_mutated(tmp_path: Path) -> None:
    assert "unsafe" in render_error(tmp_path, "{% set l = [1] %}{{ l.extend(l) }}")


def test_ordinary_templates_render_as_before(tmp_path: Path) -> None:
    body = (
        "{{ input | upper }} {% for t in tags %}{{ loop.index }}{{ t }}{% if not loop.last %},"
        "{% endif %}{% endfor %} {{ metadata.missing | default('none') }} {{ '%03d' % 7 }} "
        "{{ '{:>4}'.format('z') }} {{ items | join('/') }} {{ 'a' ~ 'b' }} {{ 2 ** 10 }} "
        "{{ lipsum(1, False, 2, 3) | length > 0 }}"
    )
    text = render(tmp_path, body, input="hi", tags=["x", "y"], metadata={}, items=[1, 2])
    assert text == "HI 1x,2y none 007    z 1/2 ab 1024 True"


def test_large_but_bounded_work_is_allowed(tmp_path: Path) -> None:
    body = "{% for i in range(50000) %}{{ i % 10 }}{% endfor %}"
    assert len(render(tmp_path, body)) == 50_000


def test_render_bounded_is_what_enforces_the_budget() -> None:
    loops = "{% for i in range(1001) %}{% for j in range(1000) %}{% endfor %}{% endfor %}done"
    template = BoundedEnvironment().from_string(loops)
    assert template.render() == "done"  # outside render_bounded: the sandbox only
    with pytest.raises(RenderLimit):
        render_bounded(template, {})


def test_target_prompt_templates_are_bounded_too() -> None:
    spec = TargetSpec(model="openai/m", prompt="{{ input * 10**9 }}")
    with pytest.raises(TargetError) as info:
        target_messages(spec, GoldCase(id="c2", input="x"))
    message = str(info.value)
    assert "target prompt" in message and "case 'c2'" in message
    assert f"(the limit is {MAX_OUTPUT:,})" in message
    loops = TargetSpec(model="openai/m", prompt=NESTED_LOOPS)
    with pytest.raises(TargetError, match=r"more than|characters"):
        target_messages(loops, GoldCase(id="c3", input="x"))


def test_target_prompt_still_renders_case_variables() -> None:
    spec = TargetSpec(model="openai/m", prompt="Q: {{ input }} ({{ tags | join(',') }})")
    case = GoldCase(id="c", input="why?", tags=("a", "b"))
    assert target_messages(spec, case) == (("user", "Q: why? (a,b)"),)
