"""Text from models, gold files and servers, made safe to print on a terminal.

Model outputs, rationales, error bodies and case ids can carry escape sequences (`ESC ] 0 ; title
BEL` retitles the window, `ESC [ 2 J` clears the screen) or bidirectional controls that make a
line read differently from what it holds. `printable` shows each such character as a visible
escape (`\\x1b`, `\\u202e`) instead, so what is printed is what the text contains.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; the Arabic letter mark; line and paragraph separators;
# the zero-width space; bidi marks, embeddings, overrides and isolates (U+200E/F,
# U+202A-U+202E, U+2066-U+2069).
_OTHERS = "\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_INLINE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # keeps tab (09) and newline (0a)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, block: bool = False) -> str:
    """`text` with control, escape-sequence and bidi characters shown as `\\xNN` / `\\uNNNN`.

    With `block=True` newlines and tabs are kept (a block of text printed as lines); otherwise
    they are escaped too, so the text stays on one line.
    """
    if text.isprintable():  # the common case: nothing to escape, no regex pass
        return text
    return (_BLOCK if block else _INLINE).sub(_escape, text)


def first_unprintable(text: str) -> str | None:
    """The first character `printable` would escape on one line, or None."""
    if text.isprintable():
        return None
    found = _INLINE.search(text)
    return found.group() if found else None


def safe_json(text: str) -> str:
    """Serialised JSON with every character `printable` would escape written as `\\uXXXX`.

    Such characters can only stand inside JSON strings, where the escape means the same
    character: the JSON is unchanged for a parser and harmless on a terminal.
    """
    if text.isprintable():
        return text
    return _BLOCK.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
