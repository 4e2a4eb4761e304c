"""Providers behind `provider/model` names, found through the registry when a model names one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config import ProviderSpec
from ..registry import PROVIDERS, RegistryError
from .base import (
    Completion,
    CompletionRequest,
    FailureKind,
    MissingCredentials,
    Provider,
    ProviderBase,
    ProviderConfigError,
    ProviderError,
    StructuredMode,
)

__all__ = [
    "Completion",
    "CompletionRequest",
    "FailureKind",
    "MissingCredentials",
    "Provider",
    "ProviderBase",
    "ProviderConfigError",
    "ProviderError",
    "StructuredMode",
    "make_provider",
    "split_model",
]


def split_model(spec: str) -> tuple[str, str]:
    """`openai/gpt-4.1` -> (`openai`, `gpt-4.1`)."""
    provider, _, model = spec.partition("/")
    return provider, model


def make_provider(
    name: str, specs: Mapping[str, ProviderSpec], root: Path | None = None
) -> Provider:
    """Build the provider called `name`: a `[tool.hybridjudge.providers.NAME]` table, else the
    provider kind of that name (built in, or registered by an installed package)."""
    spec = specs.get(name)
    if spec is None:
        if not PROVIDERS.is_builtin(name) and name not in PROVIDERS:
            known = sorted(set(PROVIDERS.names()) | set(specs))
            raise ProviderError(
                f"unknown provider '{name}': use one of {known}, or add "
                f"[tool.hybridjudge.providers.{name}] with a base_url for an OpenAI-compatible "
                "server"
            )
        spec = ProviderSpec(kind=name)
    try:
        factory = PROVIDERS.get(spec.kind)
    except RegistryError as exc:
        raise ProviderError(f"[tool.hybridjudge.providers.{name}] kind: {exc}") from None
    provider: Provider = factory(name, spec, root or Path.cwd())
    return provider
