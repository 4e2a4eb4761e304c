"""pytest-hybridjudge: LLM gold sets under pytest, graded by a judge panel, escalated to people.

Names are imported on first use, so that loading the pytest plugin costs a plain run nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .calibration import load_calibration
    from .config import HybridJudgeConfig, load_config
    from .escalation import decide
    from .gold import GoldCase, load_gold_file
    from .panel import aggregate
    from .review.manifest import ReviewItem, item_id
    from .review.resolutions import Resolution
    from .rubric import Rubric, RubricLibrary, parse_rubric
    from .stats import (
        Fit,
        PassRate,
        cohen_kappa,
        confusion,
        fit_threshold,
        krippendorff_alpha,
        ppi_mean,
    )
    from .summary import RunSummary
    from .verdict import CaseResult, JudgeVerdict, PanelVerdict, Verdict

_HOMES = {
    "CaseResult": "verdict",
    "GoldCase": "gold",
    "HybridJudgeConfig": "config",
    "JudgeVerdict": "verdict",
    "PanelVerdict": "verdict",
    "Resolution": "review.resolutions",
    "ReviewItem": "review.manifest",
    "Rubric": "rubric",
    "RubricLibrary": "rubric",
    "RunSummary": "summary",
    "Verdict": "verdict",
    "aggregate": "panel",
    "Fit": "stats",
    "PassRate": "stats",
    "cohen_kappa": "stats",
    "confusion": "stats",
    "ppi_mean": "stats",
    "fit_threshold": "stats",
    "krippendorff_alpha": "stats",
    "load_calibration": "calibration",
    "decide": "escalation",
    "item_id": "review.manifest",
    "load_config": "config",
    "load_gold_file": "gold",
    "parse_rubric": "rubric",
}

__all__ = [
    "CaseResult",
    "Fit",
    "GoldCase",
    "HybridJudgeConfig",
    "JudgeVerdict",
    "PanelVerdict",
    "PassRate",
    "Resolution",
    "ReviewItem",
    "Rubric",
    "RubricLibrary",
    "RunSummary",
    "Verdict",
    "aggregate",
    "cohen_kappa",
    "confusion",
    "decide",
    "fit_threshold",
    "item_id",
    "krippendorff_alpha",
    "load_calibration",
    "load_config",
    "load_gold_file",
    "parse_rubric",
    "ppi_mean",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
