"""The plugin's errors, in families (httpx's shape), and one way to word a pydantic error.

Every error the plugin raises for a user to read is a `HybridJudgeError`; its message names the
file, line, key or case and the fix. Below it, by what the user does about it:

    HybridJudgeError
    ├── InputError            the user fixes a file or a flag
    │   ├── ConfigError       `[tool.hybridjudge]` (configfile.py); CalibrationError
    │   ├── GoldError         a gold file (gold.py)
    │   ├── RubricError       a rubric (rubric.py)
    │   ├── TargetError       a target's prompt or callable (targets.py)
    │   ├── VerifierError     a case's `verify` (verifiers.py)
    │   ├── RegistryError     a provider or verifier name, or a plugin package (registry.py)
    │   ├── BaselineError     `--judge-baseline` or the gate's targets (gate/baseline.py)
    │   ├── UnwritablePath    a path the run writes (preflight.py)
    │   ├── RunReferenceError `--run` or `--judge-baseline` names no run (runs.py)
    │   └── CommandError      a `hybridjudge` command's arguments (cli/common.py)
    ├── RecordError           a file the tool wrote cannot be read (the run store's)
    └── ProviderError         a provider call failed for good, after its retries (`kind` says how)
        ├── ProviderConfigError   every call would fail alike: also an InputError (key, model, URL)
        │   └── MissingCredentials
        └── MalformedResponse

Not in a family: `BudgetExhausted` and `InvalidVerdict` are turned into a case's outcome and
never reach the user as errors; the review desk's `ReviewError` family stays in `review/`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

# outage: transient (timeouts, connection errors, 429, 5xx after retries), says nothing about
# the model; config: key, permission, model name or base URL, every call would fail alike;
# rejected: the server refused this request (a 400: context length, content policy);
# expired: a provider batch expired or cancelled the request more often than it is resubmitted
FailureKind = Literal["outage", "config", "rejected", "expired"]


class HybridJudgeError(Exception):
    """Base of the plugin's errors; the message names the file, key or case and the fix."""


class InputError(HybridJudgeError):
    """Something the user fixes in a file or a flag: the configuration, a gold file, a rubric,
    a command's arguments. The message names where, and the fix."""


class RecordError(HybridJudgeError):
    """A record the tool wrote (a run's results, manifest or summary) cannot be read; the
    message names `path:line` and the fix."""


class ProviderError(HybridJudgeError):
    """A provider call failed for good (after retries); the message says why and what to do."""

    def __init__(self, message: str, requests: int = 0, kind: FailureKind = "rejected"):
        super().__init__(message)
        self.requests = requests  # requests sent before giving up (each may have been billed)
        self.kind: FailureKind = kind


class ProviderConfigError(ProviderError, InputError):
    """The provider's configuration is wrong (401/403/404, unknown model, a structured-output
    mode the server refuses): every call would fail the same way, so the run stops."""

    def __init__(self, message: str, requests: int = 0):
        super().__init__(message, requests, kind="config")


def validation_problems(
    exc: ValidationError,
    *,
    whole: str = "",
    allowed: Sequence[str] = (),
    model: type[BaseModel] | None = None,
) -> list[str]:
    """One short phrase per pydantic error, naming the dotted key and what is wrong.

    `whole` names the object itself when an error has no key (e.g. "front matter"); `allowed`,
    if given, lists the keys an unknown key could have been; `model`, if given, is the model
    validated, whose fields an unknown key is compared with for a "did you mean".
    """
    problems = []
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        key = ".".join(p for p in parts if not p.startswith(("function-", "union"))) or whole
        if err["type"] == "extra_forbidden":
            known = list(allowed) or (_fields_at(model, parts[:-1]) if model else [])
            close = difflib.get_close_matches(parts[-1], known, n=1, cutoff=0.6) if parts else []
            listed = f"allowed: {', '.join(allowed)}" if allowed else ""
            if close:
                hint = f"did you mean '{close[0]}'?" + (f" ({listed})" if listed else "")
            else:
                hint = listed or "remove it or check its spelling"
            problems.append(f"unknown key '{key}': {hint}")
        elif err["type"] == "missing":
            problems.append(f"missing '{key}'")
        else:
            problems.append(f"'{key}': {err['msg']}" if key else str(err["msg"]))
    return problems


def describe_validation_error(
    exc: ValidationError,
    *,
    whole: str = "",
    allowed: Sequence[str] = (),
    model: type[BaseModel] | None = None,
) -> str:
    """`validation_problems` joined into one line with `; `."""
    return "; ".join(validation_problems(exc, whole=whole, allowed=allowed, model=model))


def _fields_at(model: type[BaseModel], path: Sequence[str]) -> list[str]:
    """The field names of the model found at `path` (keys, list indexes and union members
    walked through), or [] when the path does not lead to a model."""
    from pydantic import BaseModel

    current: Any = model
    for part in path:
        if part.startswith("function-"):
            continue
        origin, args = typing.get_origin(current), typing.get_args(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in args if getattr(a, "__name__", None) == part]
            if not members:
                return []
            current = members[0]
        elif origin in (dict, list, tuple):
            current = args[-1] if args else None  # `part` is a key or an index
        else:
            return []
    if typing.get_origin(current) in (typing.Union, types.UnionType):  # `X | Y | None`
        candidates = typing.get_args(current)
    else:
        candidates = (current,)
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return [name for m in models for name in m.model_fields]
