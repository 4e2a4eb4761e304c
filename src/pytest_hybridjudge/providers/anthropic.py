"""Anthropic Messages through the official async SDK."""

from __future__ import annotations

import inspect
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


class AnthropicProvider:
    """`anthropic/<model>`."""

    def __init__(
        self,
        name: str = "anthropic",
        base_url: str | None = None,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        concurrency: int | None = None,
    ):
        self.name = name
        self.concurrency = concurrency
        key = api_key(name, api_key_env)
        self._key, self._base_url = key, base_url
        self._client: Any = None  # built on the first call: a fully cached run never imports it
        self._takes_temperature = True

    @property
    def client(self) -> Any:
        """The SDK's async client (SDK retries off: the scheduler has the one retry policy)."""
        if self._client is None:
            import anthropic

            self._client = anthropic.AsyncAnthropic(
                api_key=self._key,
                base_url=self._base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
                max_retries=0,
            )
            params = inspect.signature(self._client.messages.create).parameters
            self._takes_temperature = "temperature" in params
        return self._client

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """One Messages call; structured output through `output_config.format` json_schema."""
        client = self.client
        system = "\n\n".join(c for r, c in request.messages if r == "system")
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages if r != "system"],
            "max_tokens": request.max_tokens,
            "timeout": timeout,
        }
        if self._takes_temperature:
            kwargs["temperature"] = request.temperature
        else:  # newer SDKs dropped the parameter; the API still reads it from the body
            kwargs["extra_body"] = {"temperature": request.temperature}
        if system:
            kwargs["system"] = system
        if request.json_schema is not None:
            kwargs["output_config"] = {
                "format": {"type": "json_schema", "schema": request.json_schema}
            }
        response = await client.messages.create(**kwargs)
        if not isinstance(getattr(response, "content", None), list):
            raise MalformedResponse(f"response has no content: {str(response)[:200]}")
        text = "".join(
            getattr(block, "text", "") for block in response.content if block.type == "text"
        )
        return Completion(
            text=text,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
        )

    def should_retry(self, exc: BaseException) -> bool:
        """Timeouts, dropped connections, 429, 529 and other 5xx."""
        import anthropic

        if isinstance(exc, anthropic.APIConnectionError) or is_malformed(exc):
            return True
        if isinstance(exc, anthropic.APIStatusError):
            return status_is_retryable(exc.status_code)
        return False

    def retry_after(self, exc: BaseException) -> float | None:
        """The server's Retry-After, if any."""
        return retry_after_seconds(exc)

    async def aclose(self) -> None:
        """Close the HTTP client, if one was ever built."""
        if self._client is not None:
            await self._client.close()
