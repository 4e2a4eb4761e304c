"""One base for every error a user can cause or meet: catch `HybridJudgeError` to catch them all."""

from __future__ import annotations


class HybridJudgeError(Exception):
    """Base of the plugin's errors; the message names the file, key or case and the fix."""
