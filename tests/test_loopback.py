"""Tests for the loopback LLM server, driven through the real openai/anthropic SDKs."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import openai
import pytest

try:
    from tests.loopback import Call, LoopbackLLM, Reply, default_responder, verdict
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from loopback import Call, LoopbackLLM, Reply, default_responder, verdict

T = TypeVar("T")
LOOPBACK_PY = Path(__file__).with_name("loopback.py")
QUESTION = "What is 2+2?"
USER = [{"role": "user", "content": QUESTION}]


@pytest.fixture
def server() -> Iterator[LoopbackLLM]:
    with LoopbackLLM() as srv:
        yield srv


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# Building an SDK client costs ~50 ms (SSL context), so each test makes as few as it can.
def oai(base_url: str, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, **kwargs)


def ant(srv: LoopbackLLM) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="k", max_retries=0)


async def chat(client: openai.AsyncOpenAI, model: str = "gpt-test", **kwargs: Any) -> Any:
    kwargs.setdefault("messages", USER)
    return await client.chat.completions.create(model=model, **kwargs)


async def message(
    client: anthropic.AsyncAnthropic, model: str = "claude-test", **kwargs: Any
) -> Any:
    kwargs.setdefault("messages", USER)
    return await client.messages.create(model=model, max_tokens=64, **kwargs)


async def text(client: openai.AsyncOpenAI, **kwargs: Any) -> str:
    return str((await chat(client, **kwargs)).choices[0].message.content)


def test_openai_success_with_usage_and_logprobs(server: LoopbackLLM) -> None:
    lp = [
        {
            "token": "4",
            "logprob": -0.1,
            "top_logprobs": [{"token": "4", "logprob": -0.1}, {"token": "5", "logprob": -2.5}],
        }
    ]
    server.responder = lambda call: Reply(text="4", input_tokens=11, output_tokens=1, logprobs=lp)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]

    async def scenario() -> tuple[Any, Any]:
        async with oai(server.openai_base_url) as client:
            with_lp = await chat(client, messages=messages, logprobs=True, top_logprobs=5)
            return with_lp, await chat(client)

    resp, plain = run(scenario())
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-test"
    choice = resp.choices[0]
    assert choice.message.content == "4"
    assert choice.finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (11, 1)
    assert resp.usage.total_tokens == 12
    assert choice.logprobs is not None and choice.logprobs.content is not None
    tok = choice.logprobs.content[0]
    assert (tok.token, tok.logprob, tok.bytes) == ("4", -0.1, [52])
    assert [t.token for t in tok.top_logprobs] == ["4", "5"]
    # logprobs only when asked for; default usage is len(prompt)//4 + 1
    assert plain.choices[0].logprobs is None
    assert plain.id != resp.id

    first = server.calls[0]
    assert first.api == "openai" and first.path == "/v1/chat/completions"
    assert first.model == "gpt-test"
    assert first.system == "Be brief."
    assert first.prompt == f"Be brief.\n{QUESTION}"
    assert first.last_user == QUESTION
    assert not first.is_judge and first.attempt == 1
    assert first.headers["authorization"] == "Bearer k"
    assert first.body["top_logprobs"] == 5


def test_openai_default_usage(server: LoopbackLLM) -> None:
    async def scenario() -> Any:
        async with oai(server.openai_base_url) as client:
            return await chat(client)

    resp = run(scenario())
    assert resp.choices[0].message.content == f"Answer: {QUESTION}"
    assert resp.usage.prompt_tokens == len(QUESTION) // 4 + 1
    assert resp.usage.completion_tokens == len(f"Answer: {QUESTION}") // 4 + 1


def test_anthropic_success(server: LoopbackLLM) -> None:
    async def scenario() -> Any:
        async with ant(server) as client:
            return await message(client, system=[{"type": "text", "text": "Judge fairly."}])

    msg = run(scenario())
    assert msg.id.startswith("msg_")
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == "claude-test"
    assert msg.content[0].type == "text"
    assert msg.content[0].text == f"Answer: {QUESTION}"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens == len(f"Judge fairly.\n{QUESTION}") // 4 + 1
    assert msg.usage.output_tokens == len(f"Answer: {QUESTION}") // 4 + 1

    (call,) = server.calls
    assert call.api == "anthropic" and call.path == "/v1/messages"
    assert call.system == "Judge fairly."
    assert call.prompt == f"Judge fairly.\n{QUESTION}"
    assert call.last_user == QUESTION
    assert "anthropic-version" in call.headers


def test_judge_detection_and_default_verdict(server: LoopbackLLM) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "v", "schema": schema}}

    async def scenario() -> tuple[str, str]:
        async with oai(server.openai_base_url) as oc, ant(server) as ac:
            judged = await text(oc, response_format=fmt)
            msg = await message(
                ac, output_config={"format": {"type": "json_schema", "schema": schema}}
            )
            return judged, msg.content[0].text

    from_openai, from_anthropic = run(scenario())
    expected = {"score": 4, "rationale": "looks right", "confidence": 0.9}
    assert json.loads(from_openai) == expected
    assert json.loads(from_anthropic) == expected
    assert [c.is_judge for c in server.calls] == [True, True]
    assert json.loads(verdict(2, 0.5)) == {"score": 2, "rationale": "scripted", "confidence": 0.5}


def test_rate_limit_surfaces_retry_after(server: LoopbackLLM) -> None:
    server.responder = lambda call: Reply(
        status=429, error_message="slow down", headers={"Retry-After": "1"}
    )

    async def scenario() -> tuple[openai.RateLimitError, anthropic.RateLimitError]:
        async with oai(server.openai_base_url) as oc, ant(server) as ac:
            with pytest.raises(openai.RateLimitError) as oexc:
                await chat(oc)
            with pytest.raises(anthropic.RateLimitError) as aexc:
                await message(ac)
            return oexc.value, aexc.value

    oerr, aerr = run(scenario())
    assert oerr.status_code == 429
    assert oerr.response.headers["retry-after"] == "1"  # no dedicated attribute in openai 3.x
    assert oerr.code == "rate_limit_exceeded"
    assert oerr.message == "Error code: 429 - slow down"
    assert aerr.response.headers["retry-after"] == "1"
    assert aerr.type == "rate_limit_error"
    assert aerr.api_message == "slow down"


def test_server_error_and_responder_exception(server: LoopbackLLM) -> None:
    def boom(call: Call) -> str:
        raise RuntimeError("responder exploded")

    async def scenario() -> str:
        async with oai(server.openai_base_url) as oc, ant(server) as ac:
            server.responder = lambda call: Reply(status=500)
            with pytest.raises(openai.InternalServerError):
                await chat(oc)
            with pytest.raises(anthropic.InternalServerError):
                await message(ac)
            server.responder = boom
            with pytest.raises(openai.InternalServerError, match="responder exploded"):
                await chat(oc)
            with pytest.raises(anthropic.InternalServerError, match="responder exploded"):
                await message(ac)
            server.responder = default_responder  # the server survived
            return await text(oc)

    assert run(scenario()) == f"Answer: {QUESTION}"


def test_malformed_body_with_status_200(server: LoopbackLLM) -> None:
    async def scenario() -> Any:
        async with oai(server.openai_base_url) as oc, ant(server) as ac:
            # Both SDKs let the bare json.JSONDecodeError escape (it is not an APIError).
            server.responder = lambda call: Reply(raw=b'{"id": "chatcmpl-1", "choices": [')
            with pytest.raises(json.JSONDecodeError):
                await chat(oc)
            with pytest.raises(json.JSONDecodeError):
                await message(ac)
            # A non-JSON content type is no error at all: the SDK hands back the text.
            server.responder = lambda call: Reply(
                raw=b"<html/>", headers={"Content-Type": "text/html"}
            )
            return await chat(oc)

    assert run(scenario()) == "<html/>"


def test_dict_reply_and_unknown_path(server: LoopbackLLM) -> None:
    server.responder = lambda call: {"score": 5}

    async def scenario() -> str:
        async with oai(server.openai_base_url) as client:
            with pytest.raises(openai.NotFoundError, match="unknown path"):
                await client.post("/nope", cast_to=object, body={})
            return await text(client)

    assert json.loads(run(scenario())) == {"score": 5}
    assert server.count() == 1  # unknown paths are not recorded


def test_hang_times_out_and_server_recovers(server: LoopbackLLM) -> None:
    # Chosen by content, not arrival order: under load the two requests may race.
    server.responder = lambda call: Reply(hang=True) if call.last_user == "hang" else "recovered"

    async def scenario() -> str:
        async with oai(server.openai_base_url) as client:
            t0 = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await chat(client, timeout=0.5, messages=[{"role": "user", "content": "hang"}])
            assert time.monotonic() - t0 < 3
            return await text(client, timeout=30)

    assert run(scenario()) == "recovered"


def _raw_post(body: bytes) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def _addr(srv: LoopbackLLM) -> tuple[str, int]:
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_stop_releases_hanging_handler() -> None:
    srv = LoopbackLLM(responder=lambda call: Reply(hang=True)).start()
    with socket.create_connection(_addr(srv), timeout=5) as sock:
        sock.sendall(_raw_post(b'{"model": "m", "messages": []}'))
        deadline = time.monotonic() + 5
        while not srv.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        srv.stop()
        srv.stop()  # idempotent
        assert time.monotonic() - t0 < 2
        assert sock.recv(100) == b""  # closed without a reply


def test_attempt_counting_and_reset(server: LoopbackLLM) -> None:
    server.responder = lambda call: Reply(status=503) if call.attempt < 3 else f"#{call.attempt}"

    async def scenario() -> tuple[str, str]:
        async with oai(server.openai_base_url) as client:
            for model in ("a", "a", "b"):  # a different body has its own counter
                with pytest.raises(openai.InternalServerError):
                    await chat(client, model=model)
            third = await text(client, model="a")
            server.reset()
            assert server.calls == [] and server.count() == 0
            server.responder = lambda call: f"#{call.attempt}"
            return third, await text(client, model="a")

    assert run(scenario()) == ("#3", "#1")


def test_unrecorded_server_answers_and_keeps_no_history() -> None:
    async def scenario(srv: LoopbackLLM) -> list[str]:
        async with oai(srv.openai_base_url) as client:
            return [await text(client) for _ in range(3)]

    with LoopbackLLM(record=False) as srv:
        assert run(scenario(srv)) == [f"Answer: {QUESTION}"] * 3
        assert srv.calls == [] and srv._attempts == {}


def test_count_filters(server: LoopbackLLM) -> None:
    fmt = {"type": "json_object"}

    async def scenario() -> None:
        async with oai(server.openai_base_url) as oc, ant(server) as ac:
            await chat(oc, model="a")
            await chat(oc, model="a", response_format=fmt)
            await chat(oc, model="b", response_format=fmt)
            await message(ac, model="a")

    run(scenario())
    assert [(c.model, c.attempt) for c in server.calls] == [("a", 1), ("a", 1), ("b", 1), ("a", 1)]
    assert server.count() == 4
    assert server.count(api="openai") == 3
    assert server.count(api="anthropic") == 1
    assert server.count(model="a") == 3
    assert server.count(judge=True) == 2
    assert server.count(api="openai", model="a", judge=False) == 1


def test_concurrent_keepalive_connections() -> None:
    """64 keep-alive connections x 4 requests at 50 ms latency overlap instead of queueing."""
    conns, per_conn = 64, 4

    async def worker(srv: LoopbackLLM, w: int) -> list[str]:
        reader, writer = await asyncio.open_connection(*_addr(srv))
        out = []
        for i in range(per_conn):
            body = {"model": "m", "messages": [{"role": "user", "content": f"{w}.{i}"}]}
            writer.write(_raw_post(json.dumps(body).encode()))
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            reply = json.loads(await reader.readexactly(length))
            out.append(reply["choices"][0]["message"]["content"])
        writer.close()
        return out

    async def burst(srv: LoopbackLLM) -> list[list[str]]:
        return await asyncio.gather(*(worker(srv, w) for w in range(conns)))

    with LoopbackLLM(latency=0.05) as srv:
        t0 = time.monotonic()
        results = run(burst(srv))
        elapsed = time.monotonic() - t0
    assert results == [[f"Answer: {w}.{i}" for i in range(per_conn)] for w in range(conns)]
    assert srv.count() == conns * per_conn
    assert elapsed < 2.5, elapsed  # serial would be 12.8 s; ideal is 0.2 s


def test_cli_serves_and_exits_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(LOOPBACK_PY), "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")

        async def ask() -> str:
            async with oai(url + "/v1") as client:
                return await text(client)

        assert run(ask()) == f"Answer: {QUESTION}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
