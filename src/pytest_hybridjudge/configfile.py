"""Finding the raw `[tool.hybridjudge]` table: TOML only, so the plugin costs plain runs nothing."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import HybridJudgeError


class ConfigError(HybridJudgeError):
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
        if name == "hybridjudge.toml" and "tool" in data:
            data = data["tool"].get("hybridjudge", data)
        for key in keys:
            data = data.get(key) if isinstance(data, dict) else None
        if data is not None:
            return dict(data), path
    return {}, None
