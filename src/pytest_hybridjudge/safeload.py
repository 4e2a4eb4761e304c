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
from yaml.composer import Composer
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings accepted in a gold file or front matter."""

ALIAS_EXPANSION = 10
"""Aliases may make the document at most this many times its own size (plus `ALIAS_SLACK`)."""

ALIAS_SLACK = 10_000

_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


class _LimitedLoader(Composer, _FastLoader):  # type: ignore[misc,valid-type]
    """libyaml's parser with PyYAML's composer, which counts depth and aliases as it goes."""

    def __init__(self, text: str):
        _FastLoader.__init__(self, text)
        self.anchors: dict[Any, Node] = {}
        self.depth = 0
        self.aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self.aliases += 1
        elif not self.check_event(ScalarEvent):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise UnsafeInput(f"nested more than {MAX_DEPTH} levels deep", line)
            node = Composer.compose_node(self, parent, index)
            self.depth -= 1
            return node
        return Composer.compose_node(self, parent, index)


def load_yaml(text: str) -> tuple[Node | None, Any]:
    """One YAML document as (node, data); nodes keep each value's line.

    Raises `yaml.YAMLError` for bad syntax and `UnsafeInput` for nesting beyond `MAX_DEPTH` or
    aliases that expand the document too far (or into itself).
    """
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if loader.aliases:
            _check_expansion(node)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: Node) -> None:
    """Refuse a node graph whose aliases expand it too far, too deep, or into a cycle."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded node count, height)
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            below = [sizes[id(c)] for c in children]
            size = 1 + sum(s for s, _ in below)
            height = 1 + max((h for _, h in below), default=0)
            if height > MAX_DEPTH:
                raise UnsafeInput(
                    f"aliases nest data more than {MAX_DEPTH} levels deep",
                    node.start_mark.line + 1,
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
    expanded, distinct = sizes[id(root)][0], len(sizes)
    if expanded > ALIAS_EXPANSION * distinct + ALIAS_SLACK:
        raise UnsafeInput(
            f"aliases expand {distinct:,} nodes to {expanded:,} (more than "
            f"{ALIAS_EXPANSION}x); write the values out or share fewer anchors",
            1,
        )


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
