"""The file layer: atomic writes that follow the umask, and the one locked append."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_hybridjudge.files import append_jsonl, read_locked, write_text_atomic


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_follow_the_umask_like_a_plain_open(
    tmp_path: Path, umask: None, mask: int
) -> None:
    os.umask(mask)
    written, plain = tmp_path / "atomic.json", tmp_path / "plain.json"
    write_text_atomic(written, "{}\n")
    plain.write_text("{}\n")
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_text_atomic(path, "old\n")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_append_adds_lines_after_a_hand_edit_and_a_failed_check_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.jsonl"
    assert read_locked(path) is None
    path.write_bytes(b'{"a":1}')  # no final newline
    append_jsonl(path, [{"b": 2}, {"c": "\u00e9"}])
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n{"c":"\xc3\xa9"}\n'

    def refuse(existing: bytes) -> None:
        assert existing.endswith(b'{"c":"\xc3\xa9"}\n')
        raise ValueError("duplicate")

    with pytest.raises(ValueError, match="duplicate"):
        append_jsonl(path, [{"d": 4}], check=refuse)
    assert read_locked(path) == b'{"a":1}\n{"b":2}\n{"c":"\xc3\xa9"}\n'
