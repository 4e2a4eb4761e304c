"""OpenAI Chat Completions, and any OpenAI-compatible server, through the official async SDK."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .base import (
    STRUCTURED_MODES,
    Completion,
    CompletionRequest,
    MalformedResponse,
    ProviderBase,
    api_key,
    grammar_schema,
    is_malformed,
    retry_after_seconds,
    status_is_retryable,
    string_budget,
)
from .failures import is_validation_error, names_parameter

if TYPE_CHECKING:
    from ..batches.openai import OpenAIBatches
    from ..config import ProviderSpec

# The SDK's aiohttp transport costs less CPU per call than its default one (README, Performance)
HAVE_AIOHTTP = importlib.util.find_spec("aiohttp") is not None
PLACEHOLDER_KEY = "not-needed"  # what a keyless local server gets (the SDK demands a key)


class OpenAIProvider(ProviderBase):
    """`openai/<model>`, or a named OpenAI-compatible server with its own `base_url`."""

    structured_modes = STRUCTURED_MODES

    def __init__(
        self,
        name: str = "openai",
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int | None = None,
        require_key: bool = True,
        logprobs: bool = True,
    ):
        super().__init__(name)
        self.concurrency = concurrency
        self.logprobs = logprobs
        key = api_key(name, api_key_env, require_key)
        self._key, self._base_url = key or PLACEHOLDER_KEY, base_url
        self._client: Any = None  # built on the first call: a fully cached run never imports it

    @classmethod
    def from_spec(cls, name: str, spec: ProviderSpec, root: Path | None = None) -> OpenAIProvider:
        """The built-in `openai` needs OPENAI_API_KEY unless `api_key_env = ""`; a named
        server needs a key only when `api_key_env` names one."""
        builtin = name == "openai"
        key_env = spec.api_key_env
        if key_env is None and builtin:
            key_env = "OPENAI_API_KEY"
        return cls(
            name=name,
            base_url=spec.base_url,
            api_key_env=key_env or None,
            concurrency=spec.concurrency,
            require_key=bool(key_env),
            logprobs=spec.logprobs if spec.logprobs is not None else builtin,
        )

    @property
    def identity(self) -> Mapping[str, Any]:
        """Kind and the base URL the calls go to."""
        return {"kind": "openai", "base_url": self.base_url}

    @property
    def base_url(self) -> str:
        """The configured URL, else OPENAI_BASE_URL, else OpenAI's."""
        return self._base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    @property
    def client(self) -> Any:
        """The SDK's async client (SDK retries off: the scheduler has the one retry policy),
        on the SDK's aiohttp transport when aiohttp is installed (`openai[aiohttp]`)."""
        if self._client is None:
            import openai

            aiohttp_client = getattr(openai, "DefaultAioHttpClient", None)  # openai >= 1.88
            # only httpx sends a URL's `user:pass` (as basic auth): keep it for such URLs
            fast = HAVE_AIOHTTP and not urlsplit(self.base_url).username
            http_client = aiohttp_client() if fast and aiohttp_client else None
            self._client = openai.AsyncOpenAI(
                api_key=self._key, base_url=self.base_url, max_retries=0, http_client=http_client
            )
        return self._client

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The Chat Completions body for `request`, as a direct call POSTs it and a batch line
        carries it: structured output as `response_format` json_schema or json_object with its
        `schema`, or (mode `prompt`) only in the messages the caller wrote."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.json_schema is not None and request.structured_output == "json_object":
            # JSON mode carrying the schema the way llama.cpp's servers (llama-cpp-python,
            # llama-server) read it: they turn it into a grammar; without it a small model
            # writes any JSON. The schema is in the prompt too (see `structured.shape_request`).
            schema = grammar_schema(request.json_schema, string_budget(request.max_tokens))
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif request.json_schema is not None and request.structured_output == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.json_schema,
                    "strict": True,
                },
            }
        if request.logprobs and self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 5
        return body

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """One Chat Completions call with `request_body`.

        The SDK's documented call for raw requests: its client, headers, timeout and typed
        errors, without re-walking the request against its TypedDicts and building pydantic
        models of the reply (a fifth of the SDK's CPU per call; see the README, Performance).
        """
        raw = await self.client.post(
            "/chat/completions",
            body=self.request_body(request),
            cast_to=bytes,
            options={"timeout": timeout},
        )
        return read_completion(raw)

    def batches(self) -> OpenAIBatches:
        """This provider's Batch API (`/v1/files` + `/v1/batches`) on the same client."""
        from ..batches.openai import OpenAIBatches

        return OpenAIBatches(self.client, self.name, self.base_url)

    def should_retry(self, exc: BaseException) -> bool:
        """Timeouts, dropped connections, 429 and 5xx."""
        import openai

        if isinstance(exc, openai.APIConnectionError) or is_malformed(exc):
            return True  # connection errors include APITimeoutError
        if isinstance(exc, openai.APIStatusError):
            return status_is_retryable(exc.status_code) and not is_validation_error(exc)
        return False

    def rejects_structured_output(self, exc: BaseException) -> bool:
        """A 400/422/500 naming `response_format` (llama-cpp-python: 500 "Input should be
        'text' or 'json_object'")."""
        return names_parameter(exc, ("response_format",))

    def retry_after(self, exc: BaseException) -> float | None:
        """The server's Retry-After, if any."""
        return retry_after_seconds(exc)

    async def aclose(self) -> None:
        """Close the HTTP client, if one was ever built."""
        if self._client is not None:
            await self._client.close()


def read_completion(raw: bytes) -> Completion:
    """A Chat Completions response body as a `Completion`; MalformedResponse if it is not one."""
    try:
        response = json.loads(raw)
    except ValueError:
        response = None
    return completion_from_body(response, shown=raw[:200].decode("utf-8", "replace"))


def completion_from_body(response: Any, shown: str | None = None) -> Completion:
    """A decoded Chat Completions body (a direct reply, or a batch line's `response.body`) as
    a `Completion`; MalformedResponse, quoting `shown` (else the body), if it is not one."""
    try:
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            input_tokens=usage.get("prompt_tokens") or 0,
            output_tokens=usage.get("completion_tokens") or 0,
            logprobs=_logprobs(choice),
        )
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        text = shown if shown is not None else repr(response)[:200]
        raise MalformedResponse(f"response is not a chat completion: {text}") from exc


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return [
        {
            "token": item["token"],
            "logprob": item["logprob"],
            "top": {t["token"]: t["logprob"] for t in (item.get("top_logprobs") or [])},
        }
        for item in content
    ]
