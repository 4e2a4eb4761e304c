"""The run's record: results.jsonl, manifest.jsonl, summary.json and the terminal summary."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DEFAULT_RATES, Tier
from .cost import review_cost
from .files import write_json_atomic, write_jsonl_atomic, write_text_atomic
from .manifest import ReviewItem, write_manifest
from .verdict import CaseResult, Usage

OUTCOMES = ("passed", "failed", "escalated", "skipped")


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable, unique: `20261129T223700Z-3fa2c1`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunPaths:
    """Where this run's files go."""

    run_dir: Path
    results: Path
    manifest: Path
    summary: Path

    @classmethod
    def for_run(
        cls, runs_dir: Path, run_id: str, results: Path | None = None, manifest: Path | None = None
    ) -> RunPaths:
        """Default paths under `runs_dir/run_id`, with the command line's overrides."""
        run_dir = runs_dir / run_id
        return cls(
            run_dir=run_dir,
            results=results or run_dir / "results.jsonl",
            manifest=manifest or run_dir / "manifest.jsonl",
            summary=run_dir / "summary.json",
        )


@dataclass
class RunReport:
    """Filled from test reports on the controller, written at session finish."""

    run_id: str
    paths: RunPaths
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    results: dict[str, CaseResult] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=lambda: tier_rates(DEFAULT_RATES))

    def add(self, result: CaseResult) -> None:
        """Record a case's result (the last record for a node id wins)."""
        self.results[result.nodeid or result.case_id] = result

    def review_items(self) -> list[ReviewItem]:
        """One review item per escalated case."""
        return [
            ReviewItem.from_result(r, self.run_id)
            for r in self.results.values()
            if r.outcome == "escalated"
        ]

    def summary(self) -> dict[str, Any]:
        """Counts, pass rate per rubric, tokens, cache hits and paths."""
        counts: Counter[str] = Counter(r.outcome for r in self.results.values())
        usage = Usage()
        per_rubric: dict[str, Counter[str]] = defaultdict(Counter)
        per_model: dict[str, Usage] = defaultdict(Usage)
        for r in self.results.values():
            usage.add(r.usage)
            per_rubric[r.rubric or "(none)"][r.outcome] += 1
            per_model[r.target].add(r.target_usage)
            for v in r.verdicts:
                per_model[v.judge].add(v.usage)
        from .agreement import judge_alpha

        escalated = [r for r in self.results.values() if r.outcome == "escalated"]
        review: dict[str, dict[str, float]] = defaultdict(lambda: {"items": 0, "minutes": 0.0})
        for r in escalated:
            entry = review[r.tier or "annotator"]
            entry["items"] += 1
            entry["minutes"] += r.review_minutes or 0.0
        judged = [r.verdicts for r in self.results.values() if r.verdicts]
        return {
            "run_id": self.run_id,
            "started": self.started.isoformat(),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
            "cases": len(self.results),
            "outcomes": {o: counts.get(o, 0) for o in OUTCOMES},
            "pass_rate": _rate(counts),
            "rubrics": {
                name: {**{o: c.get(o, 0) for o in OUTCOMES}, "pass_rate": _rate(c)}
                for name, c in sorted(per_rubric.items())
            },
            "agreement": {
                "krippendorff_alpha_ordinal": judge_alpha(judged),
                "cases_judged": len(judged),
                "split_cases": sum(
                    1
                    for r in self.results.values()
                    if r.panel and r.panel.votes_pass and r.panel.votes_fail
                ),
            },
            "review": {tier: dict(v) for tier, v in sorted(review.items())},
            "cost": self._cost(per_model, review),
            "audits": sum(1 for r in escalated if r.audit),
            "by_review": sum(1 for r in self.results.values() if r.resolved_by),
            "usage": usage.model_dump(),
            "models": {name: u.model_dump() for name, u in sorted(per_model.items())},
            "paths": {
                "results": str(self.paths.results),
                "manifest": str(self.paths.manifest),
                "summary": str(self.paths.summary),
            },
        }

    def _cost(
        self, per_model: Mapping[str, Usage], review: Mapping[str, Mapping[str, float]]
    ) -> dict[str, Any]:
        """Inference per model and expected human review per tier, with totals, in USD."""
        inference = {name: round(u.cost, 6) for name, u in sorted(per_model.items())}
        people = {
            tier: {
                "items": int(v["items"]),
                "minutes": v["minutes"],
                "rate_per_hour": self.rates.get(tier, 0.0),
                "usd": round(review_cost(v["minutes"], self.rates.get(tier, 0.0)), 4),
            }
            for tier, v in sorted(review.items())
        }
        inference_total = sum(inference.values())
        review_total = sum(p["usd"] for p in people.values())
        return {
            "inference": inference,
            "inference_total": round(inference_total, 6),
            "review": people,
            "review_total": round(review_total, 4),
            "total": round(inference_total + review_total, 4),
        }

    def write(self) -> dict[str, Any]:
        """Write results, manifest and summary atomically; return the summary."""
        ordered = sorted(self.results.values(), key=lambda r: r.nodeid)
        write_jsonl_atomic(self.paths.results, (r.model_dump(mode="json") for r in ordered))
        write_manifest(self.paths.manifest, self.review_items())
        summary = self.summary()
        write_json_atomic(self.paths.summary, summary)
        write_text_atomic(self.paths.run_dir.parent / "LATEST", self.run_id + "\n")
        return summary


def tier_rates(table: Mapping[Tier, float]) -> dict[str, float]:
    """USD per hour by tier name."""
    return {str(tier): rate for tier, rate in table.items()}


def _rate(counts: Mapping[str, int]) -> float | None:
    decided = counts.get("passed", 0) + counts.get("failed", 0)
    return round(counts.get("passed", 0) / decided, 4) if decided else None


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The terminal summary section, as plain lines."""
    o = summary["outcomes"]
    u = summary["usage"]
    rate = summary["pass_rate"]
    lines = [
        f"run {summary['run_id']}: {summary['cases']} cases: {o['passed']} passed, "
        f"{o['failed']} failed, {o['escalated']} escalated, {o['skipped']} skipped"
        + (f" (pass rate {rate:.1%} of decided)" if rate is not None else ""),
    ]
    for name, r in summary["rubrics"].items():
        r_rate = f"{r['pass_rate']:.1%}" if r["pass_rate"] is not None else "n/a"
        lines.append(
            f"  rubric {name}: pass rate {r_rate} ({r['passed']} passed, {r['failed']} failed, "
            f"{r['escalated']} escalated)"
        )
    agreement = summary["agreement"]
    alpha = agreement["krippendorff_alpha_ordinal"]
    if agreement["cases_judged"]:
        shown = f"{alpha:.3f}" if alpha is not None else "undefined"
        lines.append(
            f"judge agreement: Krippendorff's alpha (ordinal) {shown} over "
            f"{agreement['cases_judged']} cases; {agreement['split_cases']} split"
        )
    if summary["review"]:
        tiers = ", ".join(
            f"{tier} {int(v['items'])} ({v['minutes']:g} min)"
            for tier, v in summary["review"].items()
        )
        lines.append(
            f"to review by tier: {tiers}; {summary['audits']} audit samples; "
            f"{summary['by_review']} decided by earlier reviews"
        )
    cost = summary["cost"]
    models = ", ".join(f"{m} ${usd:.4f}" for m, usd in cost["inference"].items())
    lines.append(f"cost: inference ${cost['inference_total']:.4f} ({models})")
    if cost["review"]:
        people = ", ".join(
            f"{tier} {p['items']} x {p['minutes'] / max(p['items'], 1):g} min at "
            f"${p['rate_per_hour']:g}/h = ${p['usd']:.2f}"
            for tier, p in cost["review"].items()
        )
        lines.append(f"  expected review ${cost['review_total']:.2f} ({people})")
    lines.append(f"  total ${cost['total']:.2f}")
    lines.append(
        f"tokens: {u['input_tokens']:,} in / {u['output_tokens']:,} out; "
        f"provider calls: {u['calls']:,}; cache hits: {u['cache_hits']:,}"
    )
    for name, m in summary["models"].items():
        lines.append(
            f"  {name}: {m['calls']:,} calls, {m['cache_hits']:,} cached, "
            f"{m['input_tokens']:,} in / {m['output_tokens']:,} out"
        )
    paths = summary["paths"]
    lines += [
        f"results: {paths['results']}",
        f"manifest: {paths['manifest']} ({o['escalated']} to review)",
        f"summary: {paths['summary']}",
    ]
    return lines
