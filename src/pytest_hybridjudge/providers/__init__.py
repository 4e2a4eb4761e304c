"""Providers behind `provider/model` names, each imported only when a model names it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config import ProviderSpec
from .base import Completion, CompletionRequest, MissingCredentials, Provider, ProviderError

__all__ = [
    "Completion",
    "CompletionRequest",
    "MissingCredentials",
    "Provider",
    "ProviderError",
    "make_provider",
    "split_model",
]

BUILTIN = {"openai": "openai", "anthropic": "anthropic", "local": "local"}


def split_model(spec: str) -> tuple[str, str]:
    """`openai/gpt-4.1` -> (`openai`, `gpt-4.1`)."""
    provider, _, model = spec.partition("/")
    return provider, model


def make_provider(
    name: str, specs: Mapping[str, ProviderSpec], root: Path | None = None
) -> Provider:
    """Build the provider called `name` from the built-ins and the `providers` config table."""
    spec = specs.get(name)
    if spec is None and name not in BUILTIN:
        known = sorted(set(BUILTIN) | set(specs))
        raise ProviderError(
            f"unknown provider '{name}': use one of {known}, or add "
            f"[tool.hybridjudge.providers.{name}] with a base_url for an OpenAI-compatible server"
        )
    kind = spec.kind if spec else name
    base_url = spec.base_url if spec else None
    concurrency = spec.concurrency if spec else None
    if kind == "openai":
        from .openai import OpenAIProvider

        builtin = name == "openai"
        key_env = spec.api_key_env if spec and spec.api_key_env else None
        return OpenAIProvider(
            name=name,
            base_url=base_url,
            api_key_env=key_env or ("OPENAI_API_KEY" if builtin else None),
            concurrency=concurrency,
            require_key=builtin or key_env is not None,
            logprobs=spec.logprobs if spec and spec.logprobs is not None else builtin,
        )
    if kind == "anthropic":
        from .anthropic import AnthropicProvider

        return AnthropicProvider(
            name=name,
            base_url=base_url,
            api_key_env=(spec.api_key_env if spec else None) or "ANTHROPIC_API_KEY",
            concurrency=concurrency,
        )
    from .local import LocalProvider

    return LocalProvider(name=name, model_path=spec.model_path if spec else None, root=root)
