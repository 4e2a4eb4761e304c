"""ModelCaller through the real SDKs against the loopback server: structured-output modes,
counting, caching only what parsed, error messages, redaction."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopback import Call, LoopbackLLM, Reply, Structured, tiny_model, verdict
from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.calls import CallSettings, ModelCaller
from pytest_hybridjudge.config import HybridJudgeConfig, ProviderSpec
from pytest_hybridjudge.judge import parse_verdict
from pytest_hybridjudge.providers import Completion, CompletionRequest, ProviderError
from pytest_hybridjudge.redact import redact, watch_env
from pytest_hybridjudge.structured import extract_json, shape_request
from pytest_hybridjudge.verdict import verdict_schema

SCHEMA = verdict_schema((1, 5))
JUDGE = CompletionRequest(
    model="judge",
    messages=(("system", "Grade it."), ("user", "<<<ANSWER x>>>\nParis\n<<<END ANSWER x>>>")),
    json_schema=SCHEMA,
)


def _caller(
    server: LoopbackLLM, tmp_path: Path, cache: str = "use", retries: int = 2, **spec: Any
) -> ModelCaller:
    """A caller for provider `srv`: an OpenAI-compatible server that needs no key."""
    specs = {"srv": ProviderSpec(base_url=server.openai_base_url, api_key_env="", **spec)}
    store = CompletionCache(tmp_path / "c.sqlite", cache)  # type: ignore[arg-type]
    return ModelCaller(specs, store, CallSettings(retries=retries, backoff=0), tmp_path)


def _ask(caller: ModelCaller, request: CompletionRequest = JUDGE, **kw: Any) -> Completion:
    async def go() -> Completion:
        try:
            return await caller("srv", request, **kw)
        finally:
            await caller.aclose()

    return asyncio.run(go())


def _server(structured: Structured, responder: Callable[[Call], Any] | None = None) -> LoopbackLLM:
    reply = responder or (lambda c: verdict(4) if c.is_judge else "Paris")
    return LoopbackLLM(reply, structured=structured).start()


def test_refused_json_schema_switches_to_json_object_once(tmp_path: Path) -> None:
    with _server("json_object") as server:
        caller = _caller(server, tmp_path)
        completion = _ask(caller)
        assert parse_verdict(completion.text, (1, 5)).score == 4
        kinds = [c.body["response_format"]["type"] for c in server.calls]
        assert kinds == ["json_schema", "json_object"]  # refused once, not retried
        first, now, why = caller.stats.mode_switches["srv"]
        assert (first, now) == ("json_schema", "json_object")
        assert "Input should be 'text' or 'json_object'" in why
        assert caller.stats.requests == 2 and caller.stats.retries == 0
        assert completion.requests == 2
        # the schema travels in the prompt once the server no longer takes it natively
        assert '"score"' in server.calls[1].system

        again = _caller(server, tmp_path)  # a rerun is answered from the cache
        assert _ask(again).cached and len(server.calls) == 2


def test_json_object_fallback_carries_the_schema_as_llama_cpp_reads_it(tmp_path: Path) -> None:
    """llama-cpp-python turns `{"type": "json_object", "schema": ...}` into a grammar; without
    the schema its small model writes other JSON and no verdict parses."""
    with _server("json_object", tiny_model) as server:
        caller = _caller(server, tmp_path, cache="off")
        completion = _ask(caller)
        assert parse_verdict(completion.text, (1, 5)).score == 4
        fallback = server.calls[-1].body["response_format"]
        assert fallback["type"] == "json_object"
        assert fallback["schema"]["required"] == ["score", "rationale", "confidence"]
        # adapted to what a grammar enforces: strings bounded, confidence in tenths
        assert fallback["schema"]["properties"]["rationale"]["maxLength"] > 0
        assert 0.5 in fallback["schema"]["properties"]["confidence"]["enum"]


def test_server_refusing_both_falls_back_to_the_prompt(tmp_path: Path) -> None:
    fenced = "Sure!\n```json\n" + verdict(2) + "\n```"
    with _server("text", lambda c: fenced if c.is_judge else "Paris") as server:
        caller = _caller(server, tmp_path)
        completion = _ask(caller, validate=lambda t: parse_verdict(t, (1, 5)))
        assert parse_verdict(completion.text, (1, 5)).score == 2
        assert [c.body.get("response_format", {}).get("type") for c in server.calls] == [
            "json_schema",
            "json_object",
            None,
        ]
        assert caller.stats.mode_switches["srv"][:2] == ("json_schema", "prompt")
        assert "JSON Schema" in server.calls[-1].system


def test_explicit_mode_is_not_switched_and_not_retried(tmp_path: Path) -> None:
    with _server("json_object") as server:
        caller = _caller(server, tmp_path, structured_output="json_schema")
        with pytest.raises(ProviderError) as info:
            _ask(caller)
        message = str(info.value)
        assert "HTTP 500" in message and "Input should be 'text' or 'json_object'" in message
        assert f"POST {server.openai_base_url}/chat/completions" in message
        assert 'structured_output = "prompt"' in message
        assert "may be down" not in message and "overloaded" not in message
        assert len(server.calls) == 1 and info.value.requests == 1
        assert caller.stats.mode_switches == {}


def test_unsupported_mode_is_a_clear_error(tmp_path: Path) -> None:
    specs = {"c": ProviderSpec(kind="anthropic", api_key_env="", structured_output="json_object")}
    caller = ModelCaller(specs, CompletionCache(tmp_path / "c", "off"))
    with pytest.raises(ProviderError, match=r"providers\.c\] structured_output = 'json_object'"):
        caller.provider("c")


def test_invalid_reply_is_returned_but_not_cached(tmp_path: Path) -> None:
    replies = iter(['{"score": 9, "rationale": "x", "confidence": 1}', verdict(3)])
    with _server("json_schema", lambda c: next(replies)) as server:
        check = {"validate": lambda t: parse_verdict(t, (1, 5))}
        bad = _ask(_caller(server, tmp_path), **check)
        assert '"score": 9' in bad.text and not bad.cached
        good = _ask(_caller(server, tmp_path), **check)  # asked again, not served from cache
        assert parse_verdict(good.text, (1, 5)).score == 3 and len(server.calls) == 2
        assert _ask(_caller(server, tmp_path), **check).cached  # a valid one is cached


def test_every_request_and_retry_is_counted(tmp_path: Path) -> None:
    def responder(call: Call) -> Reply | str:
        return Reply(status=503) if call.attempt == 1 else verdict(5)

    with _server("json_schema", responder) as server:
        caller = _caller(server, tmp_path)
        completion = _ask(caller)
        assert completion.requests == 2
        assert caller.stats.requests == 2 and caller.stats.requests_by_provider == {"srv": 2}
        assert caller.stats.retries_by_provider == {"srv": 1} and caller.stats.failures == 0


def test_validation_500_keeps_the_message_url_and_no_wrong_hint(tmp_path: Path) -> None:
    message = (
        "1 validation error:\n  {'type': 'string_type', 'loc': ('body', 'messages', 0), "
        "'msg': 'Input should be a valid string'}\n\n  File app.py, line 3"
    )
    with _server("json_schema", lambda c: Reply(status=500, error_message=message)) as server:
        caller = _caller(server, tmp_path, cache="off")
        with pytest.raises(ProviderError) as info:
            _ask(caller, CompletionRequest(model="m", messages=(("user", "hi"),)))
    text = str(info.value)
    assert "Input should be a valid string" in text and "(POST http://127.0.0.1:" in text
    assert "after 1 attempt" in text  # a validation error is not retried
    assert "down" not in text and "rate limit" not in text


def test_plain_500_is_retried_and_hinted(tmp_path: Path) -> None:
    with _server("json_schema", lambda c: Reply(status=503, error_message="busy")) as server:
        caller = _caller(server, tmp_path, cache="off")
        with pytest.raises(ProviderError, match=r"after 3 attempts.*overloaded or down"):
            _ask(caller, CompletionRequest(model="m", messages=(("user", "hi"),)))


def test_redact_removes_configured_keys_and_key_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_GATEWAY_TOKEN", "gw-7f3a9c2e1b")
    watch_env("MY_GATEWAY_TOKEN")
    text = redact(
        "token gw-7f3a9c2e1b; Authorization: Bearer abc.def-123; key sk-proj-AbC123xyz789; "
        '"x-api-key": "plainsecret99"'
    )
    assert "gw-7f3a9c2e1b" not in text and "abc.def-123" not in text
    assert "sk-proj-AbC123xyz789" not in text and "plainsecret99" not in text
    assert text.count("[REDACTED]") == 4


def test_redact_removes_url_credentials_and_basic_auth() -> None:
    token = base64.b64encode(b"alice:s3cret-pw").decode()
    text = redact(
        f"POST https://alice:s3cret-pw@gw.example/v1/chat; Authorization: Basic {token}; "
        f"sent basic {token}; see http://token123@host/v1; Basic question, Basic arithmetic"
    )
    assert "s3cret-pw" not in text and token not in text and "token123" not in text
    assert "https://[REDACTED]@gw.example/v1/chat" in text
    assert "Basic question, Basic arithmetic" in text  # ordinary words stay


def test_from_config_reads_the_settings(tmp_path: Path) -> None:
    config = HybridJudgeConfig.model_validate(
        {"timeout": 7, "retries": 1, "budget": 2.5, "prices": {"a/b": {"input": 1, "output": 2}}}
    )
    caller = ModelCaller.from_config(config, CompletionCache(tmp_path / "c", "off"), tmp_path)
    assert caller.settings.timeout == 7 and caller.settings.retries == 1
    assert caller.settings.prices == {"a/b": (1.0, 2.0)}
    assert caller.root == tmp_path


def test_shape_request_and_extract_json() -> None:
    assert shape_request(JUDGE, "json_schema") is JUDGE
    prompted = shape_request(JUDGE, "prompt")
    assert prompted.structured_output == "prompt"
    assert prompted.messages[0][1].startswith("Grade it.\n\nReply with only a JSON object")
    assert json.loads(prompted.messages[0][1].split("\n")[-1]) == SCHEMA
    plain = CompletionRequest(model="m", messages=(("user", "q"),))
    assert shape_request(plain, "prompt") is plain  # no schema, nothing to shape
    assert extract_json('x ```json\n{"a": 1}\n``` y') == '{"a": 1}'
    assert extract_json('I think {"a": {"b": 2}} is it') == '{"a": {"b": 2}}'
