"""Finding the raw `[tool.hybridjudge]` table: TOML only, so the plugin costs plain runs nothing."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError


class ConfigError(InputError):
    """The user's configuration is invalid; the message names the file and key."""


def find_config_table(rootdir: Path) -> tuple[dict[str, Any], Path | None]:
    """Return the raw `[tool.hybridjudge]` table and the file it came from."""
    for name, keys in (("pyproject.toml", ("tool", "hybridjudge")), ("hybridjudge.toml", ())):
        path = rootdir / name
        if not path.is_file():
            continue
        try:
            data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        tools = data.get("tool") if isinstance(data, dict) else None
        if isinstance(tools, dict) and "hybridjudge" not in tools:
            _refuse_misspelled_table(path, tools)
        if name == "hybridjudge.toml" and "tool" in data:
            data = data["tool"].get("hybridjudge", data)
        for key in keys:
            data = data.get(key) if isinstance(data, dict) else None
        if data is not None:
            return dict(data), path
    return {}, None


def _refuse_misspelled_table(path: Path, tools: dict[str, Any]) -> None:
    """A `[tool.hybridjuge]` table would be silently ignored: name it and the right spelling."""
    names = {name.lower(): name for name in tools}
    close = difflib.get_close_matches("hybridjudge", list(names), n=1, cutoff=0.8)
    if close:
        raise ConfigError(
            f"{path}: found [tool.{names[close[0]]}], which hybridjudge does not read; did you "
            "mean [tool.hybridjudge]? Rename the table (its sub-tables too)"
        )
