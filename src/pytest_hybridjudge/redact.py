"""Secrets out of every message the tool stores or prints: `redact(text) -> str`.

Removed: the values of the environment variables that hold API keys (OPENAI_API_KEY,
ANTHROPIC_API_KEY, every provider's `api_key_env`, registered with `watch_env`), anything
shaped like a key (`sk-...`, `Bearer ...`, `x-api-key: ...`) whatever its source, credentials in
a URL (`http://user:pass@host` keeps only the host) and basic-auth values (`Basic <base64 of
user:pass>`, as an HTTP client sends a URL's credentials).
"""

from __future__ import annotations

import base64
import binascii
import os
import re

MASK = "[REDACTED]"
DEFAULT_KEY_ENVS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
MIN_SECRET = 6  # shorter values ("1", "yes") would blank out ordinary words

_watched: set[str] = set(DEFAULT_KEY_ENVS)
_PATTERNS = (
    re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"),
    re.compile(r"(?i)\b(x-api-key|api[_-]?key)([\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"),
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_BASIC = re.compile(
    r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)?(Basic)\s+([A-Za-z0-9+/_-]+={0,2})"
)


def watch_env(*names: str) -> None:
    """Treat the values of these environment variables as secrets from now on."""
    _watched.update(n for n in names if n)


def redact(text: str) -> str:
    """`text` with every known key value and key-shaped token replaced by `[REDACTED]`."""
    if not text:
        return text
    values = {os.environ.get(name, "") for name in _watched}
    for value in sorted((v for v in values if len(v) >= MIN_SECRET), key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _PATTERNS[0].sub(f"Bearer {MASK}", text)
    text = _PATTERNS[1].sub(MASK, text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _BASIC.sub(_basic, text)


def _basic(match: re.Match[str]) -> str:
    """`Basic <token>` masked when it follows `Authorization` or decodes to `user:pass`
    (so the English word "Basic" before an ordinary word is left alone)."""
    header, word, token = match.groups()
    if header or _is_userinfo(token):
        return f"{header or ''}{word} {MASK}"
    return match.group(0)


def _is_userinfo(token: str) -> bool:
    padded = token + "=" * (-len(token) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded.encode())
        except (binascii.Error, ValueError):
            continue
        if b":" in raw:
            return True
    return False
