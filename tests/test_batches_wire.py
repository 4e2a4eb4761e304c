"""The batch transports on the wire: OpenAI's /v1/files + /v1/batches and Anthropic's Message
Batches, through the official SDKs against the loopback server's batch endpoints."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import openai
import pytest

from loopback import MALFORMED_VERDICT, Call, Faults, LoopbackLLM, Reply, default_responder
from loopback_batches import BatchDesk
from pytest_hybridjudge.batches import anthropic as anthropic_batches
from pytest_hybridjudge.batches import openai as openai_batches
from pytest_hybridjudge.batches.retrying import RetryingTransport
from pytest_hybridjudge.batches.transport import (
    BatchingProvider,
    BatchResult,
    BatchTransport,
    BatchUnsupported,
    EnqueuedLimit,
    custom_id,
)
from pytest_hybridjudge.providers.anthropic import AnthropicProvider, completion_from_message
from pytest_hybridjudge.providers.base import (
    CompletionRequest,
    MalformedResponse,
    ProviderBase,
    StructuredMode,
)
from pytest_hybridjudge.providers.openai import OpenAIProvider, completion_from_body

T = TypeVar("T")
SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "rationale": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["score", "rationale", "confidence"],
}
# what the scripted responder answers each question with (besides a plain echo)
FAILURES = {
    "invalid": Reply(status=400, error_message="max_tokens is too large"),
    "denied": Reply(status=403, error_message="no access to this model"),
    "unpaid": Reply(status=402, error_message="your credit balance is too low"),
    "broken": Reply(status=500, error_message="the server fell over"),
    "stuck": Reply(hang=True),
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def responder(call: Call) -> Reply | str:
    return FAILURES.get(call.last_user) or default_responder(call)


@pytest.fixture
def server() -> Iterator[LoopbackLLM]:
    with LoopbackLLM(responder) as srv:
        yield srv


def desk(server: LoopbackLLM, **knobs: Any) -> BatchDesk:
    return BatchDesk(server, **knobs)


def openai_provider(server: LoopbackLLM) -> OpenAIProvider:
    return OpenAIProvider(base_url=server.openai_base_url, api_key_env=None, require_key=False)


def anthropic_provider(server: LoopbackLLM) -> AnthropicProvider:
    return AnthropicProvider(base_url=server.anthropic_base_url, api_key_env=None)


Provider = OpenAIProvider | AnthropicProvider


def make_provider(api: str, server: LoopbackLLM) -> Provider:
    return openai_provider(server) if api == "openai" else anthropic_provider(server)


def ask(
    question: str, judge: bool = False, mode: StructuredMode = "json_schema"
) -> CompletionRequest:
    return CompletionRequest(
        model="model-x",
        messages=(("system", "Be brief."), ("user", question)),
        json_schema=SCHEMA if judge else None,
        structured_output=mode,
    )


def cid(question: str, attempt: int = 0) -> str:
    return custom_id(f"gold/q.yaml::{question}", "target", "", "", attempt, "key-" + question)


async def submit(
    provider: Provider, questions: list[str], key: str = "run-1"
) -> tuple[BatchTransport, str]:
    transport = provider.batches()
    requests = [
        transport.request(cid(q), provider.request_body(ask(q, judge=q.startswith("judge"))))
        for q in questions
    ]
    return transport, await transport.create(requests, key)


async def collect(transport: BatchTransport, batch_id: str, polls: int = 5) -> list[BatchResult]:
    for _ in range(polls):
        if (await transport.progress(batch_id)).done:
            return await transport.results(batch_id)
    raise AssertionError(f"batch {batch_id} did not end in {polls} polls")


def text_of(api: str, result: BatchResult) -> str:
    assert result.kind == "succeeded" and result.body is not None, result
    read = completion_from_body if api == "openai" else completion_from_message
    return read(result.body).text


def test_openai_and_anthropic_providers_batch_and_read_their_results(server: LoopbackLLM) -> None:
    body = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}
    message = {"content": [{"type": "text", "text": "hi"}], "usage": {"output_tokens": 2}}
    oai, ant = openai_provider(server), anthropic_provider(server)
    assert isinstance(oai, BatchingProvider) and isinstance(ant, BatchingProvider)
    assert not isinstance(ProviderBase("plugin"), BatchingProvider)
    assert (oai.read_body(body).text, oai.read_body(body).input_tokens) == ("hi", 3)
    assert (ant.read_body(message).text, ant.read_body(message).output_tokens) == ("hi", 2)
    with pytest.raises(MalformedResponse):
        oai.read_body({"choices": []})
    with pytest.raises(MalformedResponse):
        ant.read_body({"content": "not blocks"})


# ---------------------------------------------------------------------- round trip


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_round_trip_maps_shuffled_results_by_custom_id(api: str, server: LoopbackLLM) -> None:
    batches = desk(server, hold=1, seed=3)
    questions = [f"question {i}" for i in range(6)] + ["judge this"]
    provider = make_provider(api, server)

    async def scenario() -> tuple[Any, Any, list[BatchResult]]:
        transport, batch_id = await submit(provider, questions)
        first = await transport.progress(batch_id)
        second = await transport.progress(batch_id)
        results = await transport.results(batch_id)
        await provider.aclose()
        return first, second, results

    first, second, results = run(scenario())

    assert (first.state, first.processing, first.succeeded) == ("in_progress", 7, 0)
    assert (second.state, second.processing, second.succeeded) == ("ended", 0, 7)
    by_id = {r.custom_id: r for r in results}
    for question in questions[:-1]:
        assert text_of(api, by_id[cid(question)]) == f"Answer: {question}"
    assert json.loads(text_of(api, by_id[cid("judge this")]))["score"] == 4
    assert [r.custom_id for r in results] != [cid(q) for q in questions]  # shuffled lines
    assert batches.created == {api: 1} and batches.answered == {api: 7}
    assert server.count(api=api) == 7 and server.count(api=api, judge=True) == 1
    assert {c.headers["batch-id"] for c in server.calls} == {second.batch_id}


# ---------------------------------------------------------------------- typed partial failure


def test_openai_results_are_typed(server: LoopbackLLM) -> None:
    desk(server, expire_ids={cid("late")})
    provider = openai_provider(server)
    questions = ["fine", "late", *FAILURES]

    async def scenario() -> tuple[Any, list[BatchResult]]:
        transport, batch_id = await submit(provider, questions)
        results = await collect(transport, batch_id)
        progress = await transport.progress(batch_id)
        await provider.aclose()
        return progress, results

    progress, results = run(scenario())

    kinds = {r.custom_id: r.kind for r in results}
    assert kinds == {
        cid("fine"): "succeeded",
        cid("late"): "expired",
        cid("stuck"): "expired",  # never answered inside the window
        cid("invalid"): "invalid",
        cid("denied"): "auth",
        cid("unpaid"): "billing",
        cid("broken"): "server",
    }
    errors = {r.custom_id: r.error for r in results}
    assert errors[cid("invalid")] == "max_tokens is too large"  # the provider's own message
    assert (progress.state, progress.extra["status"]) == ("ended", "expired")
    assert (progress.succeeded, progress.errored, progress.expired) == (1, 4, 2)


def test_anthropic_results_are_typed(server: LoopbackLLM) -> None:
    desk(server, expire=1.0, expire_ids=set())  # every request expires ...
    provider = anthropic_provider(server)

    async def expired_batch() -> tuple[Any, list[BatchResult]]:
        transport, batch_id = await submit(provider, ["fine", "other"])
        results = await collect(transport, batch_id)
        progress = await transport.progress(batch_id)
        await provider.aclose()
        return progress, results

    progress, expired = run(expired_batch())
    assert {r.kind for r in expired} == {"expired"} and progress.expired == 2
    assert server.count() == 0  # an expired request never reached the model

    desk(server)  # ... then a fresh desk with none expiring
    provider = anthropic_provider(server)

    async def scenario() -> list[BatchResult]:
        transport, batch_id = await submit(provider, ["fine", *FAILURES])
        results = await collect(transport, batch_id)
        await provider.aclose()
        return results

    kinds = {r.custom_id: (r.kind, r.error) for r in run(scenario())}
    assert kinds[cid("fine")][0] == "succeeded"
    assert kinds[cid("invalid")] == ("invalid", "max_tokens is too large")
    assert kinds[cid("denied")] == ("auth", "no access to this model")
    assert kinds[cid("unpaid")] == ("billing", "your credit balance is too low")
    assert kinds[cid("broken")] == ("server", "the server fell over")
    assert kinds[cid("stuck")][0] == "expired"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_cancelled_batch_cancels_what_had_not_run(api: str, server: LoopbackLLM) -> None:
    desk(server, hold=5)
    provider = make_provider(api, server)

    async def scenario() -> tuple[Any, list[BatchResult]]:
        transport, batch_id = await submit(provider, ["one", "two"])
        await transport.cancel(batch_id)
        progress = await transport.progress(batch_id)
        results = await transport.results(batch_id)
        await provider.aclose()
        return progress, results

    progress, results = run(scenario())
    assert progress.state == "ended" and progress.canceled == 2
    assert sorted((r.custom_id, r.kind) for r in results) == sorted(
        [(cid("one"), "canceled"), (cid("two"), "canceled")]
    )
    assert server.count() == 0


def test_openai_lines_the_api_does_not_document_are_server_errors() -> None:
    lines = [
        {"custom_id": "a", "response": {"status_code": 200, "body": "not json"}, "error": None},
        {"custom_id": "b", "response": None, "error": {"code": "weird", "message": "?"}},
        {"custom_id": "c", "response": {"status_code": 429, "body": {"error": {}}}},
        {
            "custom_id": "d",
            "response": {
                "status_code": 429,
                "body": {"error": {"code": "insufficient_quota", "message": "pay"}},
            },
        },
    ]
    data = b"\n".join(json.dumps(line).encode() for line in lines) + b"\nnot json\n{}\n"
    kinds = [(r.custom_id, r.kind) for r in openai_batches.read_result_lines(data)]
    assert kinds == [("a", "server"), ("b", "server"), ("c", "server"), ("d", "billing")]


def test_anthropic_lines_the_api_does_not_document_are_server_errors() -> None:
    odd = {
        "type": "errored",
        "error": {"type": "error", "error": {"type": "new_error", "message": "?"}},
    }
    assert anthropic_batches.read_result({"custom_id": "a", "result": odd}).kind == "server"
    assert (
        anthropic_batches.read_result({"custom_id": "b", "result": {"type": "succeeded"}}).kind
        == "server"
    )
    assert anthropic_batches.read_result({"custom_id": "c"}).kind == "server"


# ---------------------------------------------------------------------- find, limits, no API


def test_find_lists_every_page_for_a_batch_whose_id_was_not_saved(server: LoopbackLLM) -> None:
    desk(server, list_page=2)
    provider = openai_provider(server)

    async def scenario() -> tuple[list[str], str | None, str | None]:
        transport = provider.batches()
        ids = []
        for n in range(5):
            request = transport.request(cid(f"q{n}"), provider.request_body(ask(f"q{n}")))
            ids.append(await transport.create([request], key=f"key-{n}"))
        oldest, unknown = await transport.find("key-0"), await transport.find("key-9")
        await provider.aclose()
        return ids, oldest, unknown

    ids, oldest, unknown = run(scenario())
    assert oldest == ids[0]  # on the third page of two
    assert unknown is None


def test_find_skips_a_failed_batch_and_anthropic_cannot_find(server: LoopbackLLM) -> None:
    desk(server, fail_creates=1)
    provider, other = openai_provider(server), anthropic_provider(server)

    async def scenario() -> tuple[str | None, str, str | None, str | None]:
        transport, _ = await submit(provider, ["q"], key="same")
        found_failed = await transport.find("same")
        _, retried = await submit(provider, ["q"], key="same")
        found = await transport.find("same")
        _, _ = await submit(other, ["q"], key="same")
        nothing = await other.batches().find("same")
        await provider.aclose()
        await other.aclose()
        return found_failed, retried, found, nothing

    found_failed, retried, found, nothing = run(scenario())
    assert found_failed is None and found == retried and nothing is None


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_create_refused_for_the_enqueued_limit_is_enqueued_limit(
    api: str, server: LoopbackLLM
) -> None:
    batches = desk(server, reject_creates=1)
    provider = make_provider(api, server)

    async def scenario() -> str:
        with pytest.raises(EnqueuedLimit, match=r"(?i)enqueued|queue"):
            await submit(provider, ["q"])
        _, batch_id = await submit(provider, ["q"])
        await provider.aclose()
        return batch_id

    assert run(scenario())
    assert batches.rejected == {api: 1} and batches.created == {api: 1}
    assert len(batches.files) == (1 if api == "openai" else 0)  # the refused upload is deleted


def test_openai_batch_failed_for_the_enqueued_limit_says_so(server: LoopbackLLM) -> None:
    desk(server, fail_creates=1)
    provider = openai_provider(server)

    async def scenario() -> tuple[Any, Any]:
        transport, failed = await submit(provider, ["q"])
        _, fine = await submit(provider, ["q"])
        states = await transport.progress(failed), await transport.progress(fine)
        await provider.aclose()
        return states

    failed, fine = run(scenario())
    assert failed.state == "failed" and failed.done
    assert failed.extra["enqueued_limit"] is True
    assert "Enqueued token limit" in failed.extra["errors"][0]
    assert fine.state == "ended" and "enqueued_limit" not in fine.extra


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_server_without_batches_is_batch_unsupported(api: str, server: LoopbackLLM) -> None:
    provider = make_provider(api, server)  # no BatchDesk: 404 on every batch path

    async def scenario() -> None:
        with pytest.raises(BatchUnsupported) as created:
            await submit(provider, ["q"])
        with pytest.raises(BatchUnsupported):
            await provider.batches().progress("batch_gone")
        await provider.aclose()
        assert f"provider '{api}'" in str(created.value)
        assert "without --judge-batch" in str(created.value)

    run(scenario())


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_an_unknown_batch_on_a_batch_server_is_not_unsupported(
    api: str, server: LoopbackLLM
) -> None:
    desk(server)
    provider = make_provider(api, server)

    async def scenario() -> None:
        with pytest.raises((openai.NotFoundError, anthropic.NotFoundError)):
            await provider.batches().progress("batch_gone")
        await provider.aclose()

    run(scenario())


def test_a_custom_id_neither_provider_accepts_is_refused(server: LoopbackLLM) -> None:
    with pytest.raises(ValueError, match="custom_id 'a b'"):
        openai_provider(server).batches().request("a b", {})
    with pytest.raises(ValueError, match="1-64"):
        anthropic_provider(server).batches().request("x" * 65, {})


# ---------------------------------------------------------------------- same request either way


@pytest.mark.parametrize(
    ("api", "mode"),
    [("openai", "json_schema"), ("openai", "json_object"), ("anthropic", "json_schema")],
)
def test_a_batch_carries_exactly_the_direct_request(
    api: str, mode: StructuredMode, server: LoopbackLLM
) -> None:
    desk(server)
    provider = make_provider(api, server)
    request = ask("judge this", judge=True, mode=mode)
    if api == "openai":
        request = dataclasses.replace(request, logprobs=True)  # sent only by OpenAI

    async def scenario() -> list[BatchResult]:
        await provider.complete(request, timeout=5)
        transport = provider.batches()
        batch_id = await transport.create(
            [transport.request(cid("judge"), provider.request_body(request))], "k"
        )
        results = await collect(transport, batch_id)
        await provider.aclose()
        return results

    (result,) = run(scenario())
    direct, batched = server.calls
    assert "batch-id" not in direct.headers and "batch-id" in batched.headers
    assert batched.body == direct.body
    assert batched.schema is not None and direct.schema == batched.schema
    assert batched.attempt == 2  # the server saw the same request twice
    assert json.loads(text_of(api, result))["score"] == 4


# ---------------------------------------------------------------------- the server as a process


def test_the_loopback_script_serves_batches_with_its_knobs() -> None:
    script = Path(__file__).with_name("loopback.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--batches", "--batch-hold", "1", "--batch-reject", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        provider = OpenAIProvider(base_url=url + "/v1", api_key_env=None, require_key=False)

        async def scenario() -> tuple[str, list[Any]]:
            with pytest.raises(EnqueuedLimit):
                await submit(provider, ["q"])
            transport, batch_id = await submit(provider, ["q"])
            states = [(await transport.progress(batch_id)).state for _ in range(2)]
            results = await transport.results(batch_id)
            await provider.aclose()
            return results[0].kind, states

        kind, states = run(scenario())
        with urllib.request.urlopen(url + "/_loopback/batches") as response:
            stats = json.load(response)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert states == ["in_progress", "ended"] and kind == "succeeded"
    assert stats == {"created": {"openai": 1}, "rejected": {"openai": 1}, "answered": {"openai": 1}}


@pytest.mark.parametrize(
    ("fault", "kind", "said"),
    [
        ("server_error", "server", "injected fault: server_error"),
        ("rate_limit", "server", "injected fault: rate_limit"),
        ("hang", "expired", None),
        ("drop", None, None),
        ("malformed", "succeeded", None),
    ],
)
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_direct_calls_fault_is_what_a_batch_returns_for_it(
    api: str, fault: str, kind: str | None, said: str | None
) -> None:
    """With the server's faults, a batch line gets what a batch really returns: a 500 or 429
    line, an expired request for a hang, no line for a dropped connection, a 200 that is no
    verdict for a malformed judge reply; each counted as injected, none as answered."""
    with LoopbackLLM(responder, faults=Faults(**{fault: 1.0})) as server:
        desk(server, shuffle=False)
        provider = make_provider(api, server)

        async def scenario() -> list[BatchResult]:
            transport, batch_id = await submit(provider, ["judge this"])
            try:
                return await collect(transport, batch_id)
            finally:
                await provider.aclose()

        results = run(scenario())
        assert server.injected == {fault: 1} and server.answered.total() == 0
    if kind is None:
        assert results == []
        return
    assert [r.kind for r in results] == [kind]
    if said is not None:
        assert said in (results[0].error or "")
    if kind == "succeeded":
        assert text_of(api, results[0]) == MALFORMED_VERDICT


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_batch_api_calls_failing_now_and_then_are_asked_again_and_make_one_batch(
    api: str, server: LoopbackLLM
) -> None:
    """A third of the batch API calls (upload, create, retrieve, results) answered 500 or 429
    or dropped before they are handled: the retrying transport rides them out, one batch is
    created and every request answered from it."""
    batches = desk(server, api_faults=Faults(server_error=0.12, rate_limit=0.12, drop=0.12, seed=5))
    provider = make_provider(api, server)
    questions = [f"question {i}" for i in range(6)]

    async def scenario() -> tuple[list[BatchResult], int]:
        transport = RetryingTransport(provider.batches(), first=0.001, longest=0.01)
        body = {q: provider.request_body(ask(q)) for q in questions}
        try:
            batch_id = await transport.create(
                [transport.request(cid(q), body[q]) for q in questions], "k"
            )
            return await collect(transport, batch_id, polls=20), transport.retries
        finally:
            await provider.aclose()

    results, retries = run(scenario())
    assert sorted(text_of(api, r) for r in results) == sorted(f"Answer: {q}" for q in questions)
    # each fault asked again once (a failed clean-up of a refused upload is not asked again)
    assert 0 < retries <= batches.api_injected.total()
    assert sum(batches.created.values()) == 1
