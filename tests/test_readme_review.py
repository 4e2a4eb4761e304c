"""The README's review walkthrough, run as written against the example project and manifest."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from pytest_hybridjudge.cli import main
from pytest_hybridjudge.review.resolutions import (
    human_decision,
    load_resolutions,
    resolutions_by_item,
)
from pytest_hybridjudge.review.store import read_manifest

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "examples" / "review" / "manifest.example.jsonl"


def readme_commands() -> list[list[str]]:
    """The `$ hybridjudge review resolve ...` lines of the README's walkthrough, continuation
    lines joined and comments dropped, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("**Walkthrough**") :]
    block = block[block.index("```console") : block.index("```\n", block.index("```console") + 3)]
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        shlex.split(line[2:], comments=True)
        for line in joined.splitlines()
        if line.startswith("$ hybridjudge review resolve ")
    ]


def test_the_readme_resolve_commands_work_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the last one (`--adjudicate` on the red-team item) always failed: no tier ranks
    above red_team, so nobody could settle its disputes."""
    shutil.copy(REPO / "examples" / "pyproject.toml", tmp_path / "pyproject.toml")
    items = read_manifest(MANIFEST)
    run_dir = tmp_path / ".hybridjudge" / "runs" / items[0].run_id
    run_dir.mkdir(parents=True)
    shutil.copy(MANIFEST, run_dir / "manifest.jsonl")
    (run_dir.parent / "LATEST").write_text(items[0].run_id + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYBRIDJUDGE_REVIEWER", raising=False)
    commands = readme_commands()
    assert any("--adjudicate" in argv for argv in commands), commands
    for argv in commands:
        assert argv[0] == "hybridjudge"
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
        assert out.startswith(("resolved ", "amended ", "adjudicated ")), out
    by_item = resolutions_by_item(load_resolutions(tmp_path / "review" / "resolutions.jsonl"))
    red_team = next(i for i in items if i.tier == "red_team")
    assert human_decision(by_item[red_team.item_id]) == ("fail", None)
    expert = next(i for i in items if i.tier == "domain_expert")
    assert human_decision(by_item[expert.item_id]) == ("pass", 4)
