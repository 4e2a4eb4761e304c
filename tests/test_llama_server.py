"""Interop with a server nobody on the team wrote: llama-cpp-python's own OpenAI-compatible
server on the embedded SmolLM2 weights, reached through the `openai` provider kind.

Its request model only takes `response_format` `text` or `json_object`: the judges' first
`json_schema` request is refused with an HTTP 500 and the provider must move to `json_object`,
carrying the schema as `response_format.schema`, which the server turns into a grammar. The
tiny model's verdicts may be poor, but every one must parse: without the schema it writes other
JSON and none did.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Project
from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.calls import ModelCaller
from pytest_hybridjudge.config import ProviderSpec
from pytest_hybridjudge.judge import JUDGE_SYSTEM, parse_verdict
from pytest_hybridjudge.providers import CompletionRequest
from pytest_hybridjudge.providers.local import default_model_path
from pytest_hybridjudge.verdict import verdict_schema

START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on a free port; its base URL. Fails with its stderr."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama_cpp.server exited {server.returncode}:\n{log.read_text()}")
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()}")
                time.sleep(0.25)
        yield base_url
        if server.poll() is not None:
            pytest.fail(f"llama_cpp.server died during the test:\n{log.read_text()}")
    finally:
        server.terminate()
        server.wait(30)


def test_judges_on_llama_cpp_server(project: Project, llama_server: str) -> None:
    project.config(
        target={"model": "llama/smollm2", "max_tokens": 12},
        judges=[{"model": "llama/smollm2", "max_tokens": 80}],
        providers={"llama": {"base_url": llama_server, "api_key_env": "", "concurrency": 1}},
        timeout=300,
        retries=1,
    )
    project.gold(
        "g.yaml",
        """
        cases:
          - id: capital-france
            input: "What is the capital of France? One word."
            reference: "Paris"
          - id: two-plus-two
            input: "What is 2 + 2? One number."
            reference: "4"
        """,
    )
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*run *: 2 cases:*"])
    records = project.results()
    assert set(records) == {"capital-france", "two-plus-two"}
    for record in records.values():
        assert record["output"] is not None, record["error"]
        [judged] = record["verdicts"]
        assert judged["error"] is None, judged["error"]  # the verdict parsed
        assert 1 <= judged["score"] <= 5 and 0 <= judged["confidence"] <= 1
        assert judged["attempts"] == 1  # the first reply, constrained by the schema


def test_mode_detection_against_llama_cpp_server(tmp_path: Path, llama_server: str) -> None:
    specs = {"llama": ProviderSpec(base_url=llama_server, api_key_env="")}
    caller = ModelCaller(specs, CompletionCache(tmp_path / "c.sqlite", "off"))
    request = CompletionRequest(
        model="smollm2",
        messages=(("system", JUDGE_SYSTEM), ("user", "Paris is the capital of France. Grade.")),
        max_tokens=64,
        json_schema=verdict_schema((1, 5)),
    )

    async def ask() -> str:
        try:
            return (await caller("llama", request)).text
        finally:
            await caller.aclose()

    verdict = parse_verdict(asyncio.run(ask()), (1, 5))  # the schema became a grammar
    assert 1 <= verdict.score <= 5
    first, now, why = caller.stats.mode_switches["llama"]
    assert (first, now) == ("json_schema", "json_object")
    assert "Input should be 'text' or 'json_object'" in why
    assert caller.stats.requests == 2 and caller.stats.retries == 0
