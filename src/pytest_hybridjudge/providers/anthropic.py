"""Anthropic Messages through the official async SDK."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import (
    Completion,
    CompletionRequest,
    MalformedResponse,
    ProviderBase,
    StructuredMode,
    api_key,
    is_malformed,
    retry_after_seconds,
    status_is_retryable,
)
from .failures import is_validation_error, names_parameter

if TYPE_CHECKING:
    from ..batches.anthropic import AnthropicBatches
    from ..config import ProviderSpec

PLACEHOLDER_KEY = "not-needed"  # what a keyless compatible server gets (the SDK demands a key)


class AnthropicProvider(ProviderBase):
    """`anthropic/<model>`, or a named Anthropic-compatible server with its own `base_url`."""

    structured_modes: tuple[StructuredMode, ...] = ("json_schema", "prompt")

    def __init__(
        self,
        name: str = "anthropic",
        base_url: str | None = None,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        concurrency: int | None = None,
    ):
        super().__init__(name)
        self.concurrency = concurrency
        key = api_key(name, api_key_env, required=bool(api_key_env))
        self._key, self._base_url = key or PLACEHOLDER_KEY, base_url
        self._client: Any = None  # built on the first call: a fully cached run never imports it
        self._takes_temperature = True

    @classmethod
    def from_spec(
        cls, name: str, spec: ProviderSpec, root: Path | None = None
    ) -> AnthropicProvider:
        """ANTHROPIC_API_KEY unless `api_key_env` names another variable, or is `""` (none)."""
        key_env = "ANTHROPIC_API_KEY" if spec.api_key_env is None else spec.api_key_env
        return cls(
            name=name,
            base_url=spec.base_url,
            api_key_env=key_env or None,
            concurrency=spec.concurrency,
        )

    @property
    def identity(self) -> Mapping[str, Any]:
        """Kind and the base URL the calls go to."""
        return {"kind": "anthropic", "base_url": self.base_url}

    @property
    def base_url(self) -> str:
        """The configured URL, else ANTHROPIC_BASE_URL, else Anthropic's."""
        return self._base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"

    @property
    def client(self) -> Any:
        """The SDK's async client (SDK retries off: the scheduler has the one retry policy)."""
        if self._client is None:
            import anthropic

            self._client = anthropic.AsyncAnthropic(
                api_key=self._key, base_url=self.base_url, max_retries=0
            )
            params = inspect.signature(self._client.messages.create).parameters
            self._takes_temperature = "temperature" in params
        return self._client

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The Messages body for `request`, as a direct call sends it and a batch request
        carries it (`params`): system messages joined into `system`; structured output through
        `output_config.format` json_schema, or (mode `prompt`) only in the messages."""
        system = "\n\n".join(c for r, c in request.messages if r == "system")
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages if r != "system"],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if system:
            body["system"] = system
        if request.json_schema is not None and request.structured_output == "json_schema":
            body["output_config"] = {
                "format": {"type": "json_schema", "schema": request.json_schema}
            }
        return body

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """One Messages call with `request_body`."""
        client = self.client
        kwargs = self.request_body(request)
        if not self._takes_temperature:  # newer SDKs dropped the parameter; the API reads it
            kwargs["extra_body"] = {"temperature": kwargs.pop("temperature")}
        response = await client.messages.create(**kwargs, timeout=timeout)
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

    def batches(self) -> AnthropicBatches:
        """This provider's Message Batches API on the same client."""
        from ..batches.anthropic import AnthropicBatches

        return AnthropicBatches(self.client, self.name, self.base_url)

    def should_retry(self, exc: BaseException) -> bool:
        """Timeouts, dropped connections, 429, 529 and other 5xx."""
        import anthropic

        if isinstance(exc, anthropic.APIConnectionError) or is_malformed(exc):
            return True
        if isinstance(exc, anthropic.APIStatusError):
            return status_is_retryable(exc.status_code) and not is_validation_error(exc)
        return False

    def rejects_structured_output(self, exc: BaseException) -> bool:
        """A 400/422/500 naming `output_config` (servers without structured outputs)."""
        return names_parameter(exc, ("output_config", "output_format"))

    def retry_after(self, exc: BaseException) -> float | None:
        """The server's Retry-After, if any."""
        return retry_after_seconds(exc)

    async def aclose(self) -> None:
        """Close the HTTP client, if one was ever built."""
        if self._client is not None:
            await self._client.close()


def completion_from_message(message: Any) -> Completion:
    """A decoded Messages response body (a batch result's `message`) as a `Completion`;
    MalformedResponse if it is not one."""
    try:
        blocks = message["content"]
        if not isinstance(blocks, list):
            raise TypeError("content is not a list")
        text = "".join(block.get("text") or "" for block in blocks if block.get("type") == "text")
        usage = message.get("usage") or {}
        return Completion(
            text=text,
            input_tokens=usage.get("input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
        )
    except (LookupError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"response has no content: {repr(message)[:200]}") from exc
