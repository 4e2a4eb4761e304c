"""Secrets out of every message the tool stores or prints: `redact(text) -> str`.

Removed: the values of the environment variables that hold API keys (OPENAI_API_KEY,
ANTHROPIC_API_KEY, every provider's `api_key_env`, registered with `watch_env`), and anything
shaped like a key (`sk-...`, `Bearer ...`, `x-api-key: ...`) whatever its source.
"""

from __future__ import annotations

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
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
