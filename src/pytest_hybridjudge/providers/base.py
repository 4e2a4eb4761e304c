"""The one small async interface every provider implements."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, Protocol

from ..errors import FailureKind as FailureKind  # re-exported: providers name them from here
from ..errors import ProviderConfigError as ProviderConfigError
from ..errors import ProviderError as ProviderError

StructuredMode = Literal["json_schema", "json_object", "prompt"]
STRUCTURED_MODES: tuple[StructuredMode, ...] = ("json_schema", "json_object", "prompt")


class MalformedResponse(ProviderError):
    """The server answered 2xx with a body that is not the API's response shape."""


class MissingCredentials(ProviderConfigError):
    """The provider's API key is not in the environment."""


@dataclass(frozen=True)
class CompletionRequest:
    """What to ask a model. Everything here changes the output, so all of it is in the cache key."""

    model: str  # the model name after `provider/`
    messages: tuple[tuple[str, str], ...]  # (role, content)
    temperature: float = 0.0
    max_tokens: int = 512
    json_schema: dict[str, Any] | None = None  # ask for structured output matching this schema
    schema_name: str = "verdict"
    logprobs: bool = False
    sample: int = 0  # distinguishes repeated samples of the same request
    # how a provider asks for `json_schema`: natively, as JSON mode, or only in the prompt
    structured_output: StructuredMode = "json_schema"

    def cache_key(self, identity: Mapping[str, Any]) -> str:
        """A hash of what changes the output: the provider's identity (kind, base URL, ...) and
        every field of the request; never timeouts, retries or keys.

        Fields by name, as `dataclasses.asdict` would give them, without its deep copy (which
        was most of a cached run's time).
        """
        fields = {f.name: getattr(self, f.name) for f in _REQUEST_FIELDS}
        payload = json.dumps([dict(identity), fields], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


_REQUEST_FIELDS = fields(CompletionRequest)


@dataclass
class Completion:
    """What a model answered, with what it cost."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    logprobs: list[dict[str, Any]] | None = None  # per token: {token, logprob, top: {token: lp}}
    cached: bool = False
    latency: float = 0.0
    cost: float = 0.0  # USD of this call; 0 for a cache hit
    priced: bool = True  # False: the model's price is unknown, and `cost` counts nothing
    requests: int = 1  # requests sent for it, retries included; 0 for a cache hit

    def to_json(self) -> dict[str, Any]:
        """The cached form (without `cached`, `latency`, `requests`: they describe one call)."""
        return {
            "text": self.text,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "logprobs": self.logprobs,
        }


class Provider(Protocol):
    """A model API behind `provider/model` names (subclass `ProviderBase` for the defaults)."""

    name: str
    concurrency: int | None
    # the structured-output modes it can send, in the order `auto` tries them
    structured_modes: tuple[StructuredMode, ...]

    @property
    def identity(self) -> Mapping[str, Any]:
        """What, besides the request, decides the answer (kind, base URL, model file)."""
        ...

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """Send one request; raise the SDK's own exceptions so the retry policy can judge them."""
        ...

    def should_retry(self, exc: BaseException) -> bool:
        """Whether the call that raised `exc` is worth trying again (429, 5xx, timeouts)."""
        ...

    def retry_after(self, exc: BaseException) -> float | None:
        """Seconds the server asked us to wait, if it said."""
        ...

    def rejects_structured_output(self, exc: BaseException) -> bool:
        """Whether `exc` is the server refusing the request's structured-output mode."""
        ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...


class ProviderBase:
    """Defaults for a provider: subclass it, write `complete`, register the class (its
    constructor is the factory `(name, spec, root)`) under `pytest_hybridjudge.providers`.

    `structured_modes` defaults to `prompt`: the caller puts the verdict's JSON Schema in the
    messages and reads the JSON from the reply, so `complete` may ignore `json_schema`.
    """

    concurrency: int | None = None
    structured_modes: tuple[StructuredMode, ...] = ("prompt",)

    def __init__(self, name: str, spec: Any = None, root: Path | None = None):
        self.name, self.spec, self.root = name, spec, root
        self.concurrency = getattr(spec, "concurrency", None) or type(self).concurrency

    @property
    def identity(self) -> Mapping[str, Any]:
        """The class and its configured base URL and options."""
        return {
            "kind": f"{type(self).__module__}.{type(self).__qualname__}",
            "base_url": getattr(self.spec, "base_url", None),
            "options": getattr(self.spec, "options", None) or {},
        }

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """Send one request (subclasses implement it)."""
        raise NotImplementedError

    def should_retry(self, exc: BaseException) -> bool:
        """Malformed replies, and 429/5xx of errors carrying a `status_code`."""
        return is_malformed(exc) or status_is_retryable(getattr(exc, "status_code", None))

    def retry_after(self, exc: BaseException) -> float | None:
        """The server's Retry-After, if the error carries an HTTP response."""
        return retry_after_seconds(exc)

    def rejects_structured_output(self, exc: BaseException) -> bool:
        """Never, unless a subclass knows its server's refusal."""
        return False

    async def aclose(self) -> None:
        """Nothing to release."""


def api_key(provider: str, env_var: str | None, required: bool = True) -> str | None:
    """The provider's key from the environment (never from files); one clear line if missing."""
    import os

    key = os.environ.get(env_var) if env_var else None
    if not key and required:
        raise MissingCredentials(
            f"provider '{provider}': set {env_var} in the environment "
            f"(or configure another judge or target)"
        )
    return key


def retry_after_seconds(exc: BaseException) -> float | None:
    """Read `retry-after-ms` / `retry-after` (seconds or HTTP date) from an SDK error's response."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_malformed(exc: BaseException) -> bool:
    """A 2xx body the SDK could not parse (the SDKs raise bare JSONDecodeError) or we rejected."""
    return isinstance(exc, MalformedResponse | json.JSONDecodeError)


def status_is_retryable(status: int | None) -> bool:
    """429 and 5xx are worth retrying; other statuses will fail the same way again."""
    return status is not None and (status == 429 or status >= 500)


def grammar_schema(schema: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """Adapt a JSON Schema to what llama.cpp's grammar enforces (the embedded model, and the
    `json_object` + `schema` form llama.cpp's servers read).

    The grammar ignores `minimum`/`maximum` on numbers, so a 0..1 number becomes an enum of
    tenths; strings get a `maxLength` so a reply cannot be cut off mid-string by `max_tokens`.
    """
    properties = {}
    for key, prop in schema.get("properties", {}).items():
        if prop.get("type") == "number" and (prop.get("minimum"), prop.get("maximum")) == (0, 1):
            prop = {"enum": [round(i / 10, 1) for i in range(11)]}
        elif prop.get("type") == "string" and "maxLength" not in prop:
            prop = {**prop, "maxLength": max_chars}
        properties[key] = prop
    return {**schema, "properties": properties}


def string_budget(max_tokens: int) -> int:
    """Characters a grammar may give the reply's strings: a token can be one character (digits,
    punctuation), and ~32 tokens are left for the JSON around them, so it closes in time."""
    return max(24, max_tokens - 32)
