"""The README's commands stay true: CI runs the test command and the development checks."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _ci_lines() -> list[str]:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_ci_runs_the_readme_test_command_and_development_checks_as_written() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    development = readme.split("## Development", 1)[1].split("```", 2)[1]
    checks = [
        re.sub(r"\s+#.*$", "", line).strip()
        for line in development.splitlines()
        if line.startswith("ruff ")
    ]
    assert checks, "the README's development section lists no ruff/mypy checks"
    test_command = re.search(
        r"The test suite \(the same command CI runs\):\n\n```bash\n(.+)\n", readme
    )
    assert test_command is not None
    ci = _ci_lines()
    assert test_command.group(1) in ci
    for check in checks:
        ran = any(line == check or line.startswith(f"{check} || exit") for line in ci)
        assert ran, f"{check!r} is in the README but CI does not run it (or ignores its failure)"
        assert "." not in check.split(), f"{check!r} checks README.md and other non-code files"


def test_gold_readme_sends_reviewer_files_where_they_live() -> None:
    text = (ROOT / "gold" / "README.md").read_text(encoding="utf-8")
    assert "review/resolutions.jsonl" in text and "hybridjudge migrate" in text
