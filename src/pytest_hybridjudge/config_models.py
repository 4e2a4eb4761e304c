"""The settings of a model call, a target, a provider and a price (`[tool.hybridjudge]` tables)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

StructuredOutput = Literal["auto", "json_schema", "json_object", "prompt"]


class Strict(BaseModel):
    """A settings table: an unknown key is refused (with a "did you mean"), values are frozen.

    Validators are built when first used (`defer_build`): a run validates one whole
    `[tool.hybridjudge]` table, so building one validator per table at import was start-up
    paid for nothing (~30 ms of a cached rerun).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ModelSpec(Strict):
    """A model call's settings: which model, and the sampling parameters that change its output."""

    model: str = Field(
        description="`provider/model`, e.g. `openai/gpt-4.1-mini` or `local/smollm2`"
    )
    name: str | None = Field(None, description="Display name; defaults to the model string")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature")
    max_tokens: int = Field(512, gt=0, description="Upper bound on generated tokens")
    system: str | None = Field(None, description="Optional system prompt sent before the messages")
    samples: int = Field(1, ge=1, le=20, description="Judges only: repeated calls per verdict")

    @field_validator("model")
    @classmethod
    def _provider_slash_model(cls, value: str) -> str:
        provider, _, model = value.partition("/")
        if not provider or not model:
            raise ValueError(f"{value!r} is not `provider/model` (e.g. `openai/gpt-4.1-mini`)")
        return value

    @property
    def label(self) -> str:
        """The name shown in reports and node ids."""
        return self.name or self.model


class TargetSpec(ModelSpec):
    """A model target: the case's variables are rendered into `prompt`."""

    prompt: str = Field("{{ input }}", description="Jinja template for the user message")


class CallableTarget(Strict):
    """A Python callable of the user's application, `module:function`, sync or async."""

    callable: str = Field(description="`module:function` receiving the case, returning text")
    name: str | None = Field(None, description="Display name; defaults to the callable path")

    @field_validator("callable")
    @classmethod
    def _module_colon_function(cls, value: str) -> str:
        module, _, func = value.partition(":")
        if not module or not func:
            raise ValueError(f"{value!r} is not `module:function` (e.g. `myapp.qa:answer`)")
        return value

    @property
    def label(self) -> str:
        """The name shown in reports and node ids."""
        return self.name or self.callable


Target = TargetSpec | CallableTarget


class ProviderSpec(Strict):
    """An OpenAI-compatible server (vLLM, llama.cpp server, Ollama) or an override of a built-in."""

    kind: str = Field(
        "openai",
        description="Wire format the server speaks: `openai`, `anthropic`, `local`, or a kind "
        "an installed package registers (entry point group `pytest_hybridjudge.providers`)",
    )
    base_url: str | None = Field(None, description="Server URL, e.g. `http://localhost:8000/v1`")
    api_key_env: str | None = Field(
        None,
        description='Environment variable holding the key; `""` for a server that needs none '
        "(unset: OPENAI_API_KEY/ANTHROPIC_API_KEY for the built-in `openai`/`anthropic`)",
    )
    structured_output: StructuredOutput = Field(
        "auto",
        description="How judges ask for JSON: `json_schema`, `json_object`, `prompt` (schema in "
        "the prompt, JSON read from the reply), or `auto` (the first the server accepts)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Settings for a provider kind from another package"
    )
    concurrency: int | None = Field(None, gt=0, description="Calls in flight for this provider")
    model_path: str | None = Field(None, description="`local` only: path of a GGUF file")
    logprobs: bool | None = Field(
        None, description="Ask for token log-probabilities (default: on for OpenAI and local)"
    )


class PriceSpec(Strict):
    """A model's price in USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")
