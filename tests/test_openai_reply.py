"""The OpenAI provider reads the raw Chat Completions body itself (no pydantic models)."""

from __future__ import annotations

import json

import pytest

from pytest_hybridjudge.providers.base import MalformedResponse
from pytest_hybridjudge.providers.openai import read_completion


def test_text_usage_and_logprobs_are_read_from_the_body() -> None:
    body = {
        "choices": [
            {
                "message": {"role": "assistant", "content": '{"score": 4}'},
                "logprobs": {
                    "content": [
                        {
                            "token": "4",
                            "logprob": -0.1,
                            "top_logprobs": [
                                {"token": "4", "logprob": -0.1},
                                {"token": "5", "logprob": -2.5},
                            ],
                        }
                    ]
                },
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127},
    }
    completion = read_completion(json.dumps(body).encode())
    assert completion.text == '{"score": 4}'
    assert (completion.input_tokens, completion.output_tokens) == (120, 7)
    assert completion.logprobs == [{"token": "4", "logprob": -0.1, "top": {"4": -0.1, "5": -2.5}}]


def test_null_content_usage_and_logprobs_read_as_empty() -> None:
    body = {"choices": [{"message": {"content": None}, "logprobs": None}], "usage": None}
    completion = read_completion(json.dumps(body).encode())
    assert (completion.text, completion.input_tokens, completion.logprobs) == ("", 0, None)


@pytest.mark.parametrize("raw", [b"{not json", b'{"foo": 1}', b'{"choices": []}', b"[1]"])
def test_a_body_that_is_not_a_completion_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedResponse, match="not a chat completion"):
        read_completion(raw)
