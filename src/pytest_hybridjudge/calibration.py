"""The calibration file: the thresholds `hybridjudge calibrate --write` fitted, per rubric.

`calibration.json` lives beside the resolutions file; `load_calibration` reads it as
`{rubric: min_confidence}`, where None means that no threshold was certified: every case of that
rubric goes to people. The statistics behind it are in `stats`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ConfigError
from .errors import describe_validation_error

CALIBRATION_NAME = "calibration.json"
HISTORY_NAME = "calibration-history.jsonl"


class CalibrationError(ConfigError):
    """The calibration file (or a run's results) cannot be read; the message names the file."""


class RubricCalibration(BaseModel):
    """The threshold fitted for one rubric by `hybridjudge calibrate --write`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_confidence: float | None = Field(
        ge=0.0,
        le=1.0,
        description="Escalate this rubric's cases with panel confidence below this; null when "
        "no threshold could be certified: the panel decides none of its cases",
    )
    target: float | None = Field(None, description="Agreement with reviewers it was fitted for")
    delta: float | None = Field(None, description="Allowed probability of missing the target")
    coverage: float | None = Field(
        None, description="Share of judged cases the panel decides at this threshold"
    )
    n: int | None = Field(None, description="Calibration cases it was fitted on")
    lower_bound: float | None = Field(
        None, description="Clopper-Pearson lower bound of agreement on the decided cases"
    )
    rubric_version: str | None = Field(None, description="Newest rubric version in the data")
    fitted_at: dt.datetime | None = Field(None, description="When it was fitted (UTC)")


class CalibrationFile(BaseModel):
    """`calibration.json`: per-rubric thresholds, rewritten atomically by `calibrate --write`."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(1, description="Calibration file version")
    rubrics: dict[str, RubricCalibration] = Field(
        default_factory=dict, description="Rubric name -> its fitted threshold"
    )


def calibration_paths(resolutions: Path) -> tuple[Path, Path]:
    """`calibration.json` and `calibration-history.jsonl`, beside the resolutions file."""
    return resolutions.parent / CALIBRATION_NAME, resolutions.parent / HISTORY_NAME


def parse_calibration(text: str, path: Path) -> CalibrationFile:
    """Validate the text of a calibration file; problems raise `CalibrationError` naming it."""
    fix = "fix it, or delete it and run `hybridjudge calibrate --target T --write` again"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); {fix}") from None
    try:
        return CalibrationFile.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise CalibrationError(f"{path}: not a valid calibration file: {problems}; {fix}") from None


def read_calibration(path: Path) -> CalibrationFile:
    """The calibration file at `path`; an empty one when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CalibrationFile()
    except UnicodeDecodeError:
        raise CalibrationError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_calibration(text, path)


def load_calibration(path: Path) -> dict[str, float | None]:
    """Rubric name -> fitted `min_confidence`, from `path` (normally `review/calibration.json`).

    None for a rubric where no threshold was certified: every one of its cases is escalated.

    A missing file gives `{}`. A malformed one raises `CalibrationError` (a `ConfigError`)
    naming the file, and the line or key at fault.
    """
    return {name: entry.min_confidence for name, entry in read_calibration(path).rubrics.items()}
