"""Reading the files users write without trusting them: UTF-8 text, YAML and JSON with limits.

A gold file or rubric may be hostile or just broken: bytes that are not UTF-8, collections nested
thousands deep (which overflow the parser's or a later consumer's stack), or YAML anchors whose
aliases expand to billions of nodes ("billion laughs"). Each is refused here, fast and with
bounded memory, as an `UnsafeInput` naming the line; callers add the file and their error type.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings accepted in a gold file or front matter."""

ALIAS_EXPANSION = 10
"""Aliases may make the document at most this many times its own size (plus `ALIAS_SLACK`)."""

ALIAS_SLACK = 100_000
"""Bytes aliases may always add, whatever the document's size."""


class UnsafeInput(ValueError):
    """Input refused before it is used; `line` is 1-based where known."""

    def __init__(self, problem: str, line: int | None = None):
        super().__init__(problem)
        self.problem, self.line = problem, line


def decode_utf8(raw: bytes) -> str:
    """The text of a file that must be UTF-8; else `UnsafeInput` with the line of the bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise UnsafeInput(
            f"not UTF-8 text (byte 0x{byte} at offset {exc.start}); save the file as UTF-8", line
        ) from None


class InvalidYAML(UnsafeInput):
    """Text that is not valid YAML (or uses a tag the safe loader refuses)."""


# libyaml's parser when PyYAML was built with it (several times faster), else PyYAML's own.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The errors that parser raises. libyaml's binding keeps the classes of the first `yaml` import,
# which are not those of a re-imported `yaml` (pytester's in-process runs re-import modules).
_binding = getattr(yaml, "_yaml", None)
_YAML_ERRORS: tuple[type[Exception], ...] = (
    yaml.YAMLError,
    getattr(_binding, "YAMLError", yaml.YAMLError),
)


def load_yaml(text: str) -> tuple[Node | None, Any]:
    """One YAML document as (node, data); nodes keep each value's line.

    Raises `InvalidYAML` for bad syntax, and `UnsafeInput` for nesting beyond `MAX_DEPTH` or
    aliases that expand the document too far (or into itself).
    """
    loader = _Loader(text)
    try:
        node, aliases = _compose(loader)
        if node is None:
            return None, None
        if aliases:
            _check_expansion(node)
        return node, loader.construct_document(node)
    except _YAML_ERRORS as exc:
        raise _invalid(exc, text) from None
    finally:
        loader.dispose()


_OPENED = {
    "quoted scalar": "the quoted string",
    "flow sequence": "the `[` list",
    "flow mapping": "the `{` mapping",
}


def _invalid(exc: Exception, text: str) -> InvalidYAML:
    """The parser's error at the line to fix.

    A quote, bracket or brace that is never closed is found only at the end of the file; the
    line to fix is where it opened (the error's context mark), so that line is the one named.
    """
    problem = getattr(exc, "problem", None) or str(exc)
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    if mark is None:
        return InvalidYAML(problem)
    at_end = mark.index >= len(text.rstrip()) or "end of stream" in problem
    what = str(getattr(exc, "context", None) or "")
    opened = next((name for key, name in _OPENED.items() if key in what), None)
    if context is not None and at_end and opened is not None:
        return InvalidYAML(
            f"{opened} that starts on this line is never closed (the file ends first); close "
            "it where it should end",
            context.line + 1,
        )
    return InvalidYAML(problem, mark.line + 1)


_START = {"SequenceStartEvent": SequenceNode, "MappingStartEvent": MappingNode}
_END = ("SequenceEndEvent", "MappingEndEvent")
_NO_KEY = object()


def _compose(loader: Any) -> tuple[Node | None, int]:
    """The document's node graph and its number of aliases, built without recursion.

    Like PyYAML's composer, but it refuses nesting beyond `MAX_DEPTH` as soon as the parser
    reaches it, and it tells events apart by class name (see `_YAML_ERRORS` for why).
    """
    loader.get_event()  # stream start
    if type(loader.peek_event()).__name__ == "StreamEndEvent":
        return None, 0
    loader.get_event()  # document start
    anchors: dict[str, Node] = {}
    open_nodes: list[list[Any]] = []  # [collection node, pending mapping key]
    aliases = 0
    while True:
        event = loader.get_event()
        kind = type(event).__name__
        line = event.start_mark.line + 1
        node: Node
        if kind == "AliasEvent":
            if event.anchor not in anchors:
                raise InvalidYAML(f"found undefined alias {event.anchor!r}", line)
            node, aliases = anchors[event.anchor], aliases + 1
        elif kind == "ScalarEvent":
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(ScalarNode, event.value, event.implicit)
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        elif kind in _START:
            if len(open_nodes) >= MAX_DEPTH:
                raise UnsafeInput(f"nested more than {MAX_DEPTH} levels deep", line)
            cls = _START[kind]
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(cls, None, event.implicit)
            collection = cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = collection
            open_nodes.append([collection, _NO_KEY])
            continue
        elif kind in _END:
            node = open_nodes.pop()[0]
            node.end_mark = event.end_mark
        else:
            raise InvalidYAML(f"unexpected {kind}", line)
        if kind == "ScalarEvent" and event.anchor is not None:
            anchors[event.anchor] = node
        if not open_nodes:
            break
        parent = open_nodes[-1]
        if isinstance(parent[0], SequenceNode):
            parent[0].value.append(node)
        elif parent[1] is _NO_KEY:
            parent[1] = node
        else:
            parent[0].value.append((parent[1], node))
            parent[1] = _NO_KEY
    loader.get_event()  # document end
    if type(loader.peek_event()).__name__ != "StreamEndEvent":
        raise InvalidYAML("expected a single document", loader.peek_event().start_mark.line + 1)
    return node, aliases


def _check_expansion(root: Node) -> None:
    """Refuse a node graph whose aliases expand it too far, too deep, or into a cycle.

    The expanded size of each node is computed once, bottom up; the first node whose expansion
    passes the bound is refused with its line, so the error points at the list or mapping where
    the aliases pile up.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded bytes, height)
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    own = _own_size(root)
    limit = ALIAS_EXPANSION * own + ALIAS_SLACK
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            below = [sizes[id(c)] for c in children]
            size = _scalar_size(node) + sum(s for s, _ in below)
            height = 1 + max((h for _, h in below), default=0)
            line = node.start_mark.line + 1
            if height > MAX_DEPTH:
                raise UnsafeInput(f"aliases nest data more than {MAX_DEPTH} levels deep", line)
            if size > limit:
                raise UnsafeInput(
                    f"aliases expand this value to {_bytes(size)}, more than {ALIAS_EXPANSION}x "
                    f"the document's {_bytes(own)}; write the values out or share fewer anchors",
                    line,
                )
            sizes[key] = (size, height)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise UnsafeInput(
                "an alias refers to a node that contains it", node.start_mark.line + 1
            )
        on_path.add(key)
        stack.append((node, True))
        stack += [(c, False) for c in children if id(c) not in sizes]


def _scalar_size(node: Node) -> int:
    """Bytes a node adds by itself: a scalar's UTF-8 text, and one or two for punctuation."""
    if isinstance(node, ScalarNode):
        return len(node.value.encode("utf-8", "surrogatepass")) + 1
    return 2


def _own_size(root: Node) -> int:
    """Bytes of the document with each node counted once (as written, aliases not expanded)."""
    seen: set[int] = set()
    total, stack = 0, [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        total += _scalar_size(node)
        stack += _children(node)
    return total


def _bytes(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_json_line(line: str) -> Any:
    """One JSON value; `json.JSONDecodeError` for bad syntax, `UnsafeInput` when nested too deep."""
    try:
        data = json.loads(line)
    except RecursionError:
        raise UnsafeInput(f"nested more than {MAX_DEPTH} levels deep") from None
    if line.count("[") + line.count("{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise UnsafeInput(f"nested more than {MAX_DEPTH} levels deep")
    return data


def _depth(data: Any) -> int:
    """Deepest nesting of lists and dicts in parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack += [(v, level + 1) for v in value if isinstance(v, list | dict)]
    return deepest
