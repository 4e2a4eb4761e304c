"""Pairwise judging: which of two outputs is better, asked in both orders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def position_consistency(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Per judge, the share of its pairwise verdicts that did not flip when the order did."""
    stable: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    for record in records:
        for j in (record.get("pairwise") or {}).get("judgments", ()):
            if j.get("consistent") is not None:
                judged[j["judge"]] += 1
                stable[j["judge"]] += bool(j["consistent"])
    return {judge: stable[judge] / judged[judge] for judge in sorted(judged)}
