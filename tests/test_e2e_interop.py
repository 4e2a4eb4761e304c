"""`pytest --judge` against servers that differ from OpenAI's: keyless servers, servers that
refuse structured output, a changed base URL, invalid replies, keys echoed back, and
`python:` verifiers that would run arbitrary code."""

from __future__ import annotations

import pytest

from conftest import Project
from loopback import Call, LoopbackLLM, Reply, tiny_model, verdict

ONE_CASE = """
    cases:
      - id: capital-france
        input: "What is the capital of France?"
        reference: "Paris"
"""


def _paris_then(judge_reply):  # type: ignore[no-untyped-def]
    def responder(call: Call) -> Reply | str:
        return judge_reply(call) if call.is_judge else "Paris"

    return responder


def test_server_without_json_schema_is_detected_and_judged(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.structured = "json_object"
    llm.responder = _paris_then(lambda c: verdict(5))
    project.config(judges=["openai/judge-a", "openai/judge-b"], retries=4)
    project.gold("g.yaml", ONE_CASE)
    result = project.run("--judge")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*provider openai: structured output json_schema refused, used json_object instead (*"]
    )
    switch = project.summary()["calls"]["mode_switches"]["openai"]
    assert (switch["started"], switch["now"]) == ("json_schema", "json_object")
    kinds = [c.body["response_format"]["type"] for c in llm.calls if c.is_judge]
    assert kinds.count("json_schema") <= 2  # refused once per call in flight, never retried
    assert kinds[-1] == "json_object"
    assert all(v["score"] == 5 for v in project.results()["capital-france"]["verdicts"])


def test_small_model_on_a_json_object_server_gets_the_schema(
    project: Project, llm: LoopbackLLM
) -> None:
    """Like SmolLM2 behind llama-cpp-python: verdicts parse only because the fallback to
    `json_object` still carries the schema."""
    llm.structured = "json_object"
    llm.responder = tiny_model
    project.config(judges=["openai/judge-a", "openai/judge-b"])
    project.gold("g.yaml", ONE_CASE)
    project.run("--judge").assert_outcomes(passed=1)
    verdicts = project.results()["capital-france"]["verdicts"]
    assert [(v["error"], v["score"]) for v in verdicts] == [(None, 4), (None, 4)]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_empty_api_key_env_needs_no_key(
    project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    llm.responder = _paris_then(lambda c: verdict(5))
    base_url = llm.openai_base_url if kind == "openai" else llm.anthropic_base_url
    project.config(
        target={"model": f"{kind}/t"},
        judges=[f"{kind}/j"],
        providers={kind: {"kind": kind, "base_url": base_url, "api_key_env": ""}},
    )
    project.gold("g.yaml", ONE_CASE)
    project.run("--judge").assert_outcomes(passed=1)
    assert {c.api for c in llm.calls} == {kind}


def test_changed_base_url_is_not_answered_from_the_old_servers_cache(
    project: Project, llm: LoopbackLLM
) -> None:
    llm.responder = _paris_then(lambda c: verdict(5))
    project.config(judges=["srv/j"], providers={"srv": {"base_url": llm.openai_base_url}})
    project.gold("g.yaml", ONE_CASE)
    project.run("--judge").assert_outcomes(passed=1)
    with LoopbackLLM(_paris_then(lambda c: verdict(1))) as other:
        project.config(judges=["srv/j"], providers={"srv": {"base_url": other.openai_base_url}})
        project.run("--judge").assert_outcomes(failed=1)
        assert other.count(judge=True) == 1


def test_invalid_verdict_is_not_cached(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = _paris_then(lambda c: "no verdict here")
    project.config(judges=["openai/judge-a"])
    project.gold("g.yaml", ONE_CASE)
    project.run("--judge").stdout.fnmatch_lines(["*1 escalated*"])
    llm.reset()
    llm.responder = _paris_then(lambda c: verdict(5))
    project.run("--judge").assert_outcomes(passed=1)
    assert llm.count(judge=True) == 1  # asked again; the target's answer came from the cache


def test_usage_counts_retries_and_failed_requests(project: Project, llm: LoopbackLLM) -> None:
    llm.responder = _paris_then(lambda c: Reply(status=503) if c.attempt == 1 else verdict(5))
    project.config(judges=["openai/judge-a"], retries=2, backoff=0.01)
    project.gold("g.yaml", ONE_CASE)
    result = project.run("--judge")
    result.assert_outcomes(passed=1)
    record = project.results()["capital-france"]
    assert record["verdicts"][0]["usage"]["calls"] == 2
    assert record["usage"]["calls"] == 3 == len(llm.calls)
    result.stdout.fnmatch_lines(
        ["*requests: 3 sent, 1 retries, 0 failed for good (openai 3 (1 retries))*"]
    )
    assert project.summary()["calls"]["providers"]["openai"] == {"requests": 3, "retries": 1}


def test_extra_keys_in_a_verdict_are_kept(project: Project, llm: LoopbackLLM) -> None:
    reply = '{"score": 5, "rationale": "ok", "confidence": 0.9, "reasoning": "step by step"}'
    llm.responder = _paris_then(lambda c: reply)
    project.config(judges=["openai/judge-a"])
    project.gold("g.yaml", ONE_CASE)
    project.run("--judge").assert_outcomes(passed=1)
    [judged] = project.results()["capital-france"]["verdicts"]
    assert judged["attempts"] == 1 and judged["extra"] == {"reasoning": "step by step"}


def test_echoed_keys_never_reach_files_or_the_terminal(
    project: Project, llm: LoopbackLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_TOKEN", "gw7f3a9c2e1b5d")

    def echo_auth(call: Call) -> Reply:
        auth = call.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        return Reply(status=400, error_message=f"token {token} refused (header {auth!r})")

    llm.responder = _paris_then(echo_auth)
    project.config(
        judges=["openai/judge-a", "gw/judge-b"],
        providers={"gw": {"base_url": llm.openai_base_url, "api_key_env": "GATEWAY_TOKEN"}},
    )
    project.gold("g.yaml", ONE_CASE)
    result = project.run("--judge", "--junitxml", "junit.xml", "-rA")
    result.stdout.fnmatch_lines(["*1 escalated*"])
    assert "refused" in project.manifest()[0]["verdicts"][0]["error"]  # the cause is kept
    texts = [result.stdout.str(), result.stderr.str(), (project.path / "junit.xml").read_text()]
    texts += [p.read_text() for p in project.run_dir().glob("*.json*")]
    for text in texts:
        for secret in ("gw7f3a9c2e1b5d", "sk-test-openai-secret"):
            assert secret not in text


def test_credentials_in_a_base_url_never_reach_files_or_the_terminal(
    project: Project, llm: LoopbackLLM
) -> None:
    """The SDK sends a URL's `user:pass` as `Authorization: Basic <base64>`; a server echoing
    it, and the failed request's URL in the error, are redacted like keys."""
    import base64

    basic = base64.b64encode(b"gwuser:Pa55w0rd-hunter2").decode()
    seen: list[str] = []

    def echo_auth(call: Call) -> Reply:
        seen.append(call.headers.get("authorization", ""))
        return Reply(status=400, error_message=f"refused {call.headers.get('authorization')}")

    llm.responder = _paris_then(echo_auth)
    with_credentials = llm.openai_base_url.replace("http://", "http://gwuser:Pa55w0rd-hunter2@")
    project.config(
        judges=["gw/judge-b"],
        providers={"gw": {"base_url": with_credentials, "api_key_env": ""}},
    )
    project.gold("g.yaml", ONE_CASE)
    result = project.run("--judge", "-rA")
    result.stdout.fnmatch_lines(["*1 escalated*"])
    assert seen and seen[0] == f"Basic {basic}"  # the real SDK sent them as basic auth
    error = project.manifest()[0]["verdicts"][0]["error"]
    assert "refused Basic [REDACTED]" in error and "http://[REDACTED]@127.0.0.1" in error
    texts = [result.stdout.str(), result.stderr.str()]
    texts += [p.read_text() for p in project.run_dir().glob("*.json*")]
    for text in texts:
        assert "Pa55w0rd-hunter2" not in text and basic not in text


def test_python_verifier_outside_the_project_is_a_collection_error(project: Project) -> None:
    project.config()
    gold = project.gold(
        "g.yaml",
        """
        cases:
          - id: wipe
            input: "Name a folder"
            verify: {python: "shutil:rmtree"}
        """,
    )
    result = project.run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [f"*{gold.name}:2: case 'wipe' verify.python 'shutil:rmtree': *python_verifiers = *shutil*"]
    )


def test_python_verifier_in_the_project_runs(project: Project, llm: LoopbackLLM) -> None:
    project.pytester.makepyfile(
        checks="def says_paris(output, case):\n    return 'Paris' in output\n"
    )
    llm.responder = _paris_then(lambda c: verdict(5))
    project.config(judges=["openai/judge-a"])
    project.gold(
        "g.yaml",
        """
        cases:
          - id: c
            input: "Capital of France?"
            verify: {python: "checks:says_paris"}
        """,
    )
    project.run("--judge").assert_outcomes(passed=1)
    assert project.results()["c"]["verifiers"][0]["passed"] is True
