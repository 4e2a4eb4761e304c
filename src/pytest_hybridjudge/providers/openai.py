"""OpenAI Chat Completions, and any OpenAI-compatible server, through the official async SDK."""

from __future__ import annotations

import os
from typing import Any

from .base import (
    Completion,
    CompletionRequest,
    MalformedResponse,
    api_key,
    is_malformed,
    retry_after_seconds,
    status_is_retryable,
)


class OpenAIProvider:
    """`openai/<model>`, or a named OpenAI-compatible server with its own `base_url`."""

    def __init__(
        self,
        name: str = "openai",
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int | None = None,
        require_key: bool = True,
        logprobs: bool = True,
    ):
        self.name = name
        self.concurrency = concurrency
        self.logprobs = logprobs
        key = api_key(name, api_key_env, require_key)
        self._key, self._base_url = key or "not-needed", base_url
        self._client: Any = None  # built on the first call: a fully cached run never imports it

    @property
    def client(self) -> Any:
        """The SDK's async client (SDK retries off: the scheduler has the one retry policy)."""
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self._base_url or os.environ.get("OPENAI_BASE_URL") or None,
                max_retries=0,
            )
        return self._client

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """One Chat Completions call; structured output through `response_format` json_schema."""
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": timeout,
        }
        if request.json_schema is not None:
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
            return status_is_retryable(exc.status_code)
        return False

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
