"""Terminal safety: escape sequences and bidi controls from untrusted text are shown, not obeyed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hybridjudge.report import RunReport
from pytest_hybridjudge.runs import RunPaths
from pytest_hybridjudge.summary_text import summary_lines
from pytest_hybridjudge.terminal import first_unprintable, printable
from pytest_hybridjudge.verdict import CaseResult, JudgeVerdict

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
RLO = "\u202e"


def test_osc_and_csi_sequences_are_shown_escaped() -> None:
    assert printable(f"a{TITLE}b{CLEAR}c") == "a\\x1b]0;pwned\\x07b\\x1b[2Jc"


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\x00", "\\x00"),
        ("\r", "\\x0d"),
        ("\x7f", "\\x7f"),
        ("\x9b", "\\x9b"),  # C1 CSI
        ("\u061c", "\\u061c"),
        ("\u200e", "\\u200e"),
        ("\u200f", "\\u200f"),
        ("\u2028", "\\u2028"),
        *((chr(c), f"\\u{c:04x}") for c in range(0x202A, 0x202F)),
        *((chr(c), f"\\u{c:04x}") for c in range(0x2066, 0x206A)),
    ],
)
def test_control_and_bidi_characters_are_escaped(char: str, shown: str) -> None:
    assert printable(f"x{char}y") == f"x{shown}y"
    assert first_unprintable(f"x{char}y") == char


def test_newline_and_tab_are_kept_only_in_a_block() -> None:
    assert printable("a\n\tb") == "a\\x0a\\x09b"
    assert printable("a\n\tb\r", block=True) == "a\n\tb\\x0d"


def test_ordinary_text_is_unchanged() -> None:
    text = "Paris, café, 東京, emoji 👩‍💻, \\x1b (already a visible escape)"
    assert printable(text) == text
    assert printable(text, block=True) == text
    assert first_unprintable(text) is None


def test_terminal_summary_lines_show_untrusted_names_escaped(tmp_path: Path) -> None:
    report = RunReport("run-1", RunPaths.for_run(tmp_path / "runs", "run-1"))
    report.add(
        CaseResult(
            case_id="c",
            target="app:answer\x1b]0;pwned\x07",
            rubric="tone\u202e",
            outcome="failed",
            verdicts=[JudgeVerdict(judge="j\x1b[2J", model="openai/j", score=1)],
        )
    )
    lines = summary_lines(report.write())
    text = "\n".join(lines)
    assert not {"\x1b", "\x07", "\u202e"} & set(text)
    assert "  rubric tone\\u202e: " in text
    assert "app:answer\\x1b]0;pwned\\x07" in text
    assert "j\\x1b[2J" in text
