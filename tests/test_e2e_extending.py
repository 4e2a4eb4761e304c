"""A third-party package adds a provider kind and a verifier through entry points, for real:
an installed distribution (a `.dist-info` folder) on PYTHONPATH of a subprocess run."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, Project

PLUGIN = '''
import os

from pytest_hybridjudge.providers import Completion, ProviderBase

open(os.environ["HJ_PLUGIN_MARK"], "a").write("imported\\n")


class EchoProvider(ProviderBase):
    """Answers targets with the question; judges with a verdict in prose."""

    async def complete(self, request, timeout):
        if request.json_schema is not None:
            return Completion(text='Verdict: {"score": 5, "rationale": "echo", "confidence": 1}')
        return Completion(text=request.messages[-1][1].upper())


def shouting(arg, output, case):
    return output.isupper(), f"{arg}: upper case"
'''

ENTRY_POINTS = """
[pytest_hybridjudge.providers]
echo = hj_echo_plugin:EchoProvider

[pytest_hybridjudge.verifiers]
shouting = hj_echo_plugin:shouting
"""


def _install(site: Path) -> None:
    """What `pip install` leaves behind: the module and its dist-info."""
    site.mkdir()
    (site / "hj_echo_plugin.py").write_text(PLUGIN)
    info = site / "hj_echo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hj-echo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))


def test_entry_point_provider_and_verifier(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    _install(site)
    mark = tmp_path / "imported.txt"
    monkeypatch.setenv("HJ_PLUGIN_MARK", str(mark))
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    project.config(
        target={"model": "loud/any"},
        judges=["loud/judge"],
        providers={"loud": {"kind": "echo"}},
    )
    project.gold(
        "g.yaml",
        """
        cases:
          - id: echo
            input: "say it"
            verify: {shouting: "loud"}
        """,
    )

    plain = project.pytester.runpytest_subprocess(*QUIET_PLUGINS)
    plain.assert_outcomes(skipped=1)
    assert not mark.exists()  # a plain run checks the name but never imports the plugin

    result = project.pytester.runpytest_subprocess("--judge", *QUIET_PLUGINS)
    result.assert_outcomes(passed=1)
    record = project.results()["echo"]
    assert record["output"] == "SAY IT"
    assert record["verifiers"] == [
        {"name": "shouting", "passed": True, "detail": "loud: upper case"}
    ]
    assert record["verdicts"][0]["score"] == 5
    assert mark.read_text() == "imported\n"


def test_unknown_provider_kind_names_the_entry_point_group(project: Project) -> None:
    project.config(
        target={"model": "x/t"}, judges=["x/judge"], providers={"x": {"kind": "nosuchkind"}}
    )
    project.gold("g.yaml", "cases: [{id: a, input: q}]\n")
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown provider kind 'nosuchkind'*entry point group `pytest_hybridjudge.providers`"]
    )
