"""pytest-hybridjudge: LLM gold sets under pytest, graded by a judge panel, escalated to people."""

from __future__ import annotations

from .config import HybridJudgeConfig, load_config
from .escalation import decide
from .gold import GoldCase, load_gold_file
from .manifest import ReviewItem, item_id
from .panel import aggregate
from .rubric import Rubric, RubricLibrary, parse_rubric
from .verdict import CaseResult, JudgeVerdict, PanelVerdict, Verdict

__all__ = [
    "CaseResult",
    "GoldCase",
    "HybridJudgeConfig",
    "JudgeVerdict",
    "PanelVerdict",
    "ReviewItem",
    "Rubric",
    "RubricLibrary",
    "Verdict",
    "aggregate",
    "decide",
    "item_id",
    "load_config",
    "load_gold_file",
    "parse_rubric",
]
