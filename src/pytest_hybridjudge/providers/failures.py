"""What went wrong with a provider call, in words a user can act on (secrets redacted)."""

from __future__ import annotations

import re
from typing import Any

from ..redact import redact
from .base import FailureKind, is_malformed

MAX_LINES, MAX_CHARS = 3, 400
# FastAPI/pydantic servers (llama-cpp-python, vLLM) answer a bad request with these words,
# sometimes with status 500: retrying sends the same bad request again.
_VALIDATION = re.compile(r"validation error|Input should be|Extra inputs are not permitted", re.I)
# a server naming the model as unknown with a 400/422 rather than OpenAI's 404
_UNKNOWN_MODEL = re.compile(
    r"model_not_found|unknown model|invalid model|model\b[^.]{0,80}\b(not found|does not exist|"
    r"not exist|is not available|unknown)",
    re.I,
)
CONFIG_STATUSES = (401, 402, 403, 404)  # key, billing, permission, model name or URL


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error, if it has one."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def provider_message(exc: BaseException) -> str:
    """The server's own message from the error body, else the exception's text."""
    found = _message_in(getattr(exc, "body", None))
    return found or str(exc)


def _message_in(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if found := _message_in(body.get(key)):
                return found
    if isinstance(body, list):  # FastAPI's 422 detail: [{"loc": [...], "msg": "..."}]
        parts = [
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}"
            if isinstance(e, dict)
            else str(e)
            for e in body
        ]
        return "\n".join(parts)
    return ""


def request_url(exc: BaseException) -> str | None:
    """`METHOD url` of the request that failed, when the SDK error kept it."""
    request = getattr(exc, "request", None)
    if request is None:
        request = getattr(getattr(exc, "response", None), "request", None)
    url = getattr(request, "url", None)
    if url is None:
        return None
    method = getattr(request, "method", "")
    return f"{method} {url}".strip()


def trimmed(message: str) -> str:
    """The first few non-blank lines, joined on one line and bounded in length."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " | ".join(lines[:MAX_LINES]) + (" | ..." if len(lines) > MAX_LINES else "")
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def is_validation_error(exc: BaseException) -> bool:
    """A 4xx/5xx whose message says the request itself is invalid."""
    status = status_of(exc)
    return status is not None and bool(_VALIDATION.search(provider_message(exc)))


def names_parameter(exc: BaseException, parameters: tuple[str, ...]) -> bool:
    """A 400/422/500 whose message names one of `parameters` (e.g. `response_format`)."""
    if status_of(exc) not in (400, 422, 500):
        return False
    message = provider_message(exc)
    return any(p in message for p in parameters)


def failure_kind(exc: BaseException, retryable: bool) -> FailureKind:
    """What a call that failed for good with `exc` means: a configuration error (401, 402,
    403, 404, an unknown model), an outage (a failure worth retrying that still failed:
    timeouts, connection errors, 429, 5xx), or the server's refusal of this request (a 400)."""
    status = status_of(exc)
    if status in CONFIG_STATUSES:
        return "config"
    if status in (400, 422) and _UNKNOWN_MODEL.search(provider_message(exc)):
        return "config"
    if retryable or isinstance(exc, TimeoutError | ConnectionError):
        return "outage"
    kind = type(exc).__name__
    if status is None and ("Timeout" in kind or "Connection" in kind):
        return "outage"
    return "rejected"


def hint(exc: BaseException) -> str:
    """What to do about `exc`, or "" when the provider's message says it all."""
    status, kind = status_of(exc), type(exc).__name__
    if status in (401, 403):
        return "check the key (`api_key_env`) and that it may use this model"
    if status == 402:
        return "the account cannot pay for this call: check its billing"
    if status == 404:
        return "check the model name and `base_url`"
    if status == 429:
        return "rate limited: lower `concurrency`, raise `retries`, or try later"
    if is_malformed(exc):
        return "the server's reply was not the API's response shape; check base_url and server"
    if status is not None and (status in (400, 422) or is_validation_error(exc)):
        return ""  # the server said what is wrong with the request; retrying will not help
    if status is not None and status >= 500:
        return "the server failed; it may be overloaded or down: try later or raise `retries`"
    if "Timeout" in kind:
        return "no reply in time: raise `timeout`, or check that the server is up"
    if "Connection" in kind:
        return "could not reach the server: is it running, and is `base_url` right?"
    if status is not None:
        return ""
    return "unexpected error; please report it with this message"


def describe(provider: str, model: str, exc: BaseException, attempts: int) -> str:
    """One line: which call, what failed, the server's message, where, and the fix."""
    status, kind = status_of(exc), type(exc).__name__
    what = f"HTTP {status} {kind}" if status else kind
    message = trimmed(provider_message(exc))
    where = request_url(exc)
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    text = f"{provider}/{model}: {what}: {message} ({f'{where}, ' if where else ''}{tries})"
    advice = hint(exc)
    return redact(f"{text}; {advice}" if advice else text)
