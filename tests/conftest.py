"""Shared fixtures: the loopback LLM server and small gold projects for pytester."""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Imported here once: pytester's in-process runs then keep them loaded (see below).
import anthropic
import openai
import pytest
import scipy.stats  # noqa: F401  # the gate's statistics: numpy's C modules load once per process

with contextlib.suppress(ImportError):  # the `local` extra; loaded once, like the SDKs
    import llama_cpp  # noqa: F401

sys.path.insert(0, str(Path(__file__).parent))

from loopback import LoopbackLLM, default_responder


def _load_lazy_sdk_modules() -> None:
    """Make one call with each SDK (and a timeout) so every lazily imported module is loaded.

    pytester's in-process runs restore `sys.modules` afterwards; a module first imported inside
    one would be imported again later, and exception classes from the two copies would no longer
    match (an SDK would then leak raw `httpcore2.ReadTimeout` instead of `APITimeoutError`).
    """
    import asyncio

    from loopback import Reply

    async def calls(server: LoopbackLLM) -> None:
        oai = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        ant = anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key="k", max_retries=0
        )
        user = [{"role": "user", "content": "hi"}]
        await oai.chat.completions.create(model="m", messages=user)  # type: ignore[arg-type]
        await ant.messages.create(model="m", max_tokens=8, messages=user)  # type: ignore[arg-type]
        with contextlib.suppress(openai.APITimeoutError):
            hang = [{"role": "user", "content": "hang"}]
            await oai.chat.completions.create(model="m", messages=hang, timeout=0.2)  # type: ignore[arg-type]
        await oai.close()
        await ant.close()

    def responder(call: Any) -> Any:
        return Reply(hang=True) if call.last_user == "hang" else default_responder(call)

    with LoopbackLLM(responder) as server:
        asyncio.run(calls(server))


_load_lazy_sdk_modules()

QUIET_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider", "-p", "no:benchmark")
DEFAULT_JUDGES = ["openai/judge-a", "openai/judge-b", "anthropic/judge-c"]


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackLLM]:
    """A scripted OpenAI + Anthropic server on loopback, with the SDKs pointed at it."""
    server = LoopbackLLM(default_responder).start()
    point_sdks_at(server, monkeypatch)
    yield server
    server.stop()


def point_sdks_at(server: LoopbackLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both official SDKs (and every run started from this test) talk to `server`."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)


def toml_value(value: Any) -> str:
    """Render a Python value as TOML (enough for test configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(value)


class Project:
    """A small gold project inside a pytester directory."""

    def __init__(self, pytester: pytest.Pytester):
        self.pytester = pytester
        self.path = Path(pytester.path)

    def config(self, **table: Any) -> None:
        """Write pyproject.toml with [tool.hybridjudge] (nested dicts become sub-tables)."""
        table.setdefault("target", {"model": "openai/target-model"})
        table.setdefault("judges", DEFAULT_JUDGES)
        table.setdefault("retries", 0)
        lines = ["[tool.hybridjudge]"]
        subtables = []
        for key, value in table.items():
            if isinstance(value, dict) and key in ("escalation", "providers", "review", "gate"):
                subtables.append((key, value))
            else:
                lines.append(f"{key} = {toml_value(value)}")
        for key, value in subtables:
            if key == "providers":
                for name, spec in value.items():
                    lines.append(f"\n[tool.hybridjudge.providers.{name}]")
                    lines += [f"{k} = {toml_value(v)}" for k, v in spec.items()]
            else:
                lines.append(f"\n[tool.hybridjudge.{key}]")
                lines += [f"{k} = {toml_value(v)}" for k, v in value.items()]
        (self.path / "pyproject.toml").write_text("\n".join(lines) + "\n")

    def run(self, *args: str) -> pytest.RunResult:
        """`pytest *args` in process, without unrelated plugins that slow every run."""
        return self.pytester.runpytest(*args, *QUIET_PLUGINS)

    def gold(self, name: str, text: str) -> Path:
        """Write a gold file under gold/."""
        path = self.path / "gold" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def rubric(self, name: str, text: str) -> Path:
        """Write a rubric under rubrics/."""
        path = self.path / "rubrics" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def run_dir(self) -> Path:
        """The folder of the newest run (complete or not: `LATEST` names only complete ones)."""
        runs = self.path / ".hybridjudge" / "runs"
        return max(runs.glob("*/summary.json"), key=lambda p: p.stat().st_mtime_ns).parent

    def results(self) -> dict[str, dict[str, Any]]:
        """results.jsonl of the latest run, by case id."""
        lines = (self.run_dir() / "results.jsonl").read_text().splitlines()
        return {r["case_id"]: r for r in map(json.loads, lines)}

    def manifest(self) -> list[dict[str, Any]]:
        """manifest.jsonl of the latest run."""
        text = (self.run_dir() / "manifest.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]

    def summary(self) -> dict[str, Any]:
        """summary.json of the latest run."""
        return json.loads((self.run_dir() / "summary.json").read_text())


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    """A pytester project with helpers to write config, gold sets and rubrics."""
    return Project(pytester)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the probes `tests/hostile_suite.py` names, so `pytest -m hostile` runs the suite."""
    from hostile_suite import probe_ids

    probes = probe_ids()
    for item in items:
        test = item.nodeid.split("[", 1)[0]
        if test in probes or test.split("::", 1)[0] in probes:
            item.add_marker(pytest.mark.hostile)
