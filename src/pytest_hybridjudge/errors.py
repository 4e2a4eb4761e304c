"""One base for every error a user can cause or meet, and one way to word a pydantic error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class HybridJudgeError(Exception):
    """Base of the plugin's errors; the message names the file, key or case and the fix."""


def validation_problems(
    exc: ValidationError, *, whole: str = "", allowed: Sequence[str] = ()
) -> list[str]:
    """One short phrase per pydantic error, naming the dotted key and what is wrong.

    `whole` names the object itself when an error has no key (e.g. "front matter"); `allowed`,
    if given, lists the keys an unknown key could have been.
    """
    problems = []
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        key = ".".join(p for p in parts if not p.startswith(("function-", "union"))) or whole
        if err["type"] == "extra_forbidden":
            hint = (
                f"allowed: {', '.join(allowed)}" if allowed else "remove it or check its spelling"
            )
            problems.append(f"unknown key '{key}': {hint}")
        elif err["type"] == "missing":
            problems.append(f"missing '{key}'")
        else:
            problems.append(f"'{key}': {err['msg']}" if key else str(err["msg"]))
    return problems


def describe_validation_error(
    exc: ValidationError, *, whole: str = "", allowed: Sequence[str] = ()
) -> str:
    """`validation_problems` joined into one line with `; `."""
    return "; ".join(validation_problems(exc, whole=whole, allowed=allowed))
