"""Jinja's sandbox with bounds: rubrics and prompt templates cannot hang a run or fill memory.

`SandboxedEnvironment` stops attribute tricks but not work: nested `range(100000)` loops run for
hours and `'a' * 10**9` allocates a gigabyte. Here every render gets a budget of steps (loop
iterations, calls, filter work over long values) and wall time, the output is capped, and the
operations that can grow a value a lot in one step (`*`, `**`, `%`, padding, `replace`, `join`,
...) are checked before they run. A bound that is hit raises `RenderLimit`, naming the bound.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

MAX_OUTPUT = 1_000_000
"""Characters one render may produce (and the largest string or list it may build)."""

MAX_STEPS = 250_000
"""Loop iterations, calls and filter work (one step per 64 characters of input) per render.

A step is roughly a microsecond or a few; a rubric renders one prompt in a few hundred steps.
"""

MAX_SECONDS = 10.0
"""Wall time one render may take, a backstop for work the step count does not see."""

MAX_INT_BITS = 100_000
"""Largest integer (in bits) that `*` or `**` may produce."""

_CHARS_PER_STEP = 64
_MACRO_CALL = 20  # steps: a macro call costs as much as a few dozen loop iterations
_PADDING = frozenset({"center", "ljust", "rjust", "zfill"})
_BIG_NUMBER = re.compile(r"\d{7,}")  # a width or precision of 1,000,000 or more
_NUMBERS = re.compile(r"\d+")


class RenderLimit(SecurityError):
    """A render hit one of the bounds; the message names it."""


class _Budget:
    """Steps and time left for the render in progress."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def charge(self, steps: int) -> None:
        before, self.steps = self.steps, self.steps + steps
        if self.steps > MAX_STEPS:
            raise RenderLimit(
                f"rendering took more than {MAX_STEPS:,} steps (loop iterations, calls, "
                "filter work); bound the loops"
            )
        if before // 1024 != self.steps // 1024 and time.monotonic() > self.deadline:
            raise RenderLimit(f"rendering took more than {MAX_SECONDS:g} s; bound the loops")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


def _charge(steps: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(steps)


def _length(value: Any) -> int | None:
    """`len(value)` for built-in containers (not for `Undefined`, whose `len` may raise)."""
    return len(value) if isinstance(value, str | list | tuple | dict | set | range) else None


def _work(value: Any) -> int:
    """Steps a linear pass over `value` costs."""
    if isinstance(value, str):
        return 1 + len(value) // _CHARS_PER_STEP
    return 1 + (_length(value) or 0)


def _too_big(what: str, size: int) -> None:
    if size > MAX_OUTPUT:
        raise RenderLimit(
            f"{what} would build a value of size {size:,} (the limit is {MAX_OUTPUT:,})"
        )


def _checked_size(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple | dict):
        _too_big(what, len(value))
    return value


def render_bounded(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render `template` within the bounds; `RenderLimit` when one is hit."""
    token = _BUDGET.set(_Budget())
    try:
        parts: list[str] = []
        size = 0
        for part in template.generate(**variables):
            size += len(part)
            if size > MAX_OUTPUT:
                raise RenderLimit(f"rendering produced more than {MAX_OUTPUT:,} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        _BUDGET.reset(token)


def _counted_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """What a `{% for %}` loop iterates: the same items, one step each."""
    for item in iterable:
        _charge(1)
        yield item


def _bounded_range(*args: int) -> range:
    """`range`, paid for up front, with the sandbox's own size limit."""
    from jinja2.sandbox import safe_range

    values = safe_range(*args)
    _charge(len(values))
    return values


_bounded_range.__name__ = "range"  # what error messages call it: the template's name for it


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """`lipsum`, paid for by the words it may write (`n` paragraphs of up to `max` words)."""
    from jinja2.utils import generate_lorem_ipsum

    if isinstance(n, int) and isinstance(max, int):
        _too_big("`lipsum`", n * max)
        _charge(n * max)
    return str(generate_lorem_ipsum(n, html, min, max))


_bounded_lipsum.__name__ = "lipsum"


class _Guard(NodeTransformer):
    """Count every loop's iterations and check every `~` concatenation's size."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise TemplateSyntaxError(
                "recursive loops are not allowed here; use a plain loop", node.lineno
            )
        self.generic_visit(node)
        node.iter = _filter(node.iter, "_hybridjudge_loop")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, "_hybridjudge_sized")


def _filter(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """An immutable sandbox whose templates render within `MAX_STEPS`, time and output bounds.

    Render with `render_bounded`; outside it the step budget is not enforced.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}
        self.filters["_hybridjudge_loop"] = _counted_loop
        self.filters["_hybridjudge_sized"] = lambda value: _checked_size(value, "`~`")

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # every way of compiling a template (compile, from_string, get_template) parses here
        tree = super()._parse(source, name, filename)
        guarded: nodes.Template = _Guard().visit(tree)
        return guarded

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _charge(1)
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        return _checked_size(result, f"`{operator}`")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` / `format_map` with every field's width and precision checked once the
        nested fields (`{:>{}}`) are filled in, and the result's size counted as it grows."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType):
            return None
        text = value.__self__
        if value.__name__ not in ("format", "format_map") or not isinstance(text, str):
            return None
        formatter: _BoundedFormatter = (
            _BoundedEscapeFormatter(self, escape=text.escape)
            if isinstance(text, Markup)
            else _BoundedFormatter(self)
        )
        is_map, str_type = value.__name__ == "format_map", type(text)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if not is_map:
                return str_type(formatter.vformat(text, args, kwargs))
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument, a mapping")
            return str_type(formatter.vformat(text, (), args[0]))

        return functools.update_wrapper(wrapper, value)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        _charge(_MACRO_CALL if isinstance(__obj, Macro) else _work(owner))
        if isinstance(owner, str):
            _check_growth(name, owner, args, kwargs)
        if not isinstance(__obj, Macro) and name not in ("format", "format_map"):
            _check_ints(f"`{name}`", args, kwargs)  # widths, counts, lengths: `to_bytes(10**9)`
        return _checked_size(super().call(__context, __obj, *args, **kwargs), f"`{name}`")


class _BoundedFormatter(SandboxedFormatter):
    """The sandbox's `str.format`, refusing a width or precision over `MAX_OUTPUT` wherever it
    comes from (the template, an argument, a nested field) and a result over `MAX_OUTPUT`."""

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._size = 0
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec)
        _charge(_work(value))
        result = super().format_field(value, format_spec)
        self._size += len(result)
        _too_big("`format`", self._size)
        return result


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    """The same for a `Markup` string's `format` (each field escaped)."""


def _check_spec(spec: str) -> None:
    """Refuse a format spec (nested fields filled in) with a number over `MAX_OUTPUT`."""
    for number in _NUMBERS.findall(spec):
        digits = number.lstrip("0")
        if len(digits) > len(str(MAX_OUTPUT)) or (digits and int(digits) > MAX_OUTPUT):
            shown = f"{int(digits):,}" if len(digits) <= 30 else f"{digits[:12]}..."
            raise RenderLimit(
                f"a format width or precision of {shown} is refused (the limit is {MAX_OUTPUT:,})"
            )


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `**`, `+` and `%` whose result would be too large, before computing it."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                _too_big("`*`", len(seq) * max(times, 0))
        if isinstance(left, int) and isinstance(right, int):
            _int_bits(left.bit_length() + right.bit_length())
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _int_bits(left.bit_length() * right)
    elif operator == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _too_big("`+`", len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right if isinstance(right, tuple) else (right,), {})


def _int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise RenderLimit(f"arithmetic would build a {bits:,}-bit number (over {MAX_INT_BITS:,})")


def _check_ints(what: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse numbers that would be sizes (widths, counts, lengths) beyond `MAX_OUTPUT`."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
            raise RenderLimit(f"{what} was given {value:,}; sizes above {MAX_OUTPUT:,} are refused")


def _check_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """A format string whose widths are too large, or `*` widths given too large numbers."""
    if _BIG_NUMBER.search(template):
        raise RenderLimit(f"a format width or precision of {MAX_OUTPUT:,} or more is refused")
    if "*" in template:
        _check_ints("a format width", args, kwargs)


def _check_growth(name: str, text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a string method or filter (`text` first) whose result would exceed `MAX_OUTPUT`."""
    first = args[0] if args else None
    if name == "indent":
        width = first if first is not None else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _too_big("`indent`", len(text) + pad * (text.count("\n") + 1))
    elif name == "expandtabs":
        tab = first if isinstance(first, int) else kwargs.get("tabsize", 8)
        _too_big("`expandtabs`", len(text) + int(tab) * text.count("\t"))
    elif name == "wordwrap":
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring")
        width = first if isinstance(first, int) else kwargs.get("width", 79)
        lines = len(text) // max(int(width), 1) + text.count("\n") + 1
        _too_big("`wordwrap`", len(text) + lines * len(wrap if isinstance(wrap, str) else "\n"))
    elif name == "replace" and len(args) >= 2 and isinstance(first, str):
        new = args[1]
        if isinstance(new, str) and len(new) > len(first):
            count = text.count(first) if first else len(text) + 1
            _too_big("`replace`", len(text) + count * (len(new) - len(first)))
    elif name == "translate" and isinstance(first, Mapping):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        _too_big("`translate`", len(text) * longest)
    elif name == "join" and _length(first) is not None:
        _too_big("`join`", len(text) * (_length(first) or 0))
    elif name in ("format", "format_map"):
        _check_format(text, args, kwargs)


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (a built-in filter) paying for its work and checked like the method it mirrors."""
    value_at = 1 if getattr(func, "jinja_pass_arg", None) else 0  # after context or environment

    @functools.wraps(func)  # keeps `jinja_pass_arg`, so Jinja still passes it
    def guarded(*args: Any, **kwargs: Any) -> Any:
        value, rest = args[value_at] if len(args) > value_at else None, args[value_at + 1 :]
        _charge(_work(value))
        if isinstance(value, str):
            _check_growth(name, value, rest, kwargs)
        elif name == "join" and _length(value) is not None:
            separator = rest[0] if rest else kwargs.get("d", "")
            _too_big("`join`", (_length(value) or 0) * len(str(separator)))
        if name != "format":
            _check_ints(f"the `{name}` filter", rest, kwargs)
        return _checked_size(func(*args, **kwargs), f"the `{name}` filter")

    return guarded
