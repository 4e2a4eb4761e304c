"""OpenAI Chat Completions, and any OpenAI-compatible server, through the official async SDK."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from ..config import ProviderSpec

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
        """The SDK's async client (SDK retries off: the scheduler has the one retry policy)."""
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._key, base_url=self.base_url, max_retries=0
            )
        return self._client

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """One Chat Completions call; structured output as `response_format` json_schema or
        json_object with its `schema`, or (mode `prompt`) only in the messages the caller wrote."""
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": timeout,
        }
        if request.json_schema is not None and request.structured_output == "json_object":
            # JSON mode carrying the schema the way llama.cpp's servers (llama-cpp-python,
            # llama-server) read it: they turn it into a grammar; without it a small model
            # writes any JSON. The schema is in the prompt too (see `structured.shape_request`).
            schema = grammar_schema(request.json_schema, string_budget(request.max_tokens))
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        elif request.json_schema is not None and request.structured_output == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.json_schema,
                    "strict": True,
                },
            }
        if request.logprobs and self.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = 5
        response = await self.client.chat.completions.create(**kwargs)
        if not getattr(response, "choices", None):
            raise MalformedResponse(f"response has no choices: {str(response)[:200]}")
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            logprobs=_logprobs(choice),
        )

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


def _logprobs(choice: Any) -> list[dict[str, Any]] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    return [
        {
            "token": item.token,
            "logprob": item.logprob,
            "top": {t.token: t.logprob for t in (item.top_logprobs or [])},
        }
        for item in content
    ]
