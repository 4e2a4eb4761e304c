"""The run's record: results.jsonl, manifest.jsonl, summary.json and the terminal summary."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .agreement import panel_scores
from .config import DEFAULT_RATES, Tier
from .cost import review_cost
from .files import write_json_atomic, write_text_atomic
from .manifest import ReviewItem, write_manifest
from .terminal import printable
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
class Tally:
    """Running totals over a run's results: all the summary needs, without keeping the results.

    Per case it keeps only the judges' scores (for alpha); the escalated results are kept whole
    for the manifest. So a 10,000-case run does not hold 10,000 results in memory.
    """

    counts: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    per_rubric: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_model: dict[str, Usage] = field(default_factory=lambda: defaultdict(Usage))
    review: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: {"items": 0, "minutes": 0.0})
    )
    panels: list[dict[str, int]] = field(default_factory=list)
    split: int = 0
    audits: int = 0
    by_review: int = 0
    escalated: list[CaseResult] = field(default_factory=list)

    def add(self, r: CaseResult) -> None:
        """Count one case's result."""
        self.counts[r.outcome] += 1
        self.usage.add(r.usage)
        self.per_rubric[r.rubric or "(none)"][r.outcome] += 1
        self.per_model[r.target].add(r.target_usage)
        for v in r.verdicts:
            self.per_model[v.judge].add(v.usage)
        if r.verdicts:
            self.panels.append(panel_scores(r.verdicts))
        if r.panel and r.panel.votes_pass and r.panel.votes_fail:
            self.split += 1
        if r.resolved_by:
            self.by_review += 1
        if r.outcome == "escalated":
            self.escalated.append(r)
            entry = self.review[r.tier or "annotator"]
            entry["items"] += 1
            entry["minutes"] += r.review_minutes or 0.0
            self.audits += bool(r.audit)


@dataclass
class RunReport:
    """Filled from test reports on the controller, written at session finish.

    Each result is appended to `<results>.partial` as it arrives and counted in `tally`; at the
    end the partial file becomes results.jsonl by an atomic rename. A case recorded twice (a
    rerun plugin, a crashed xdist worker) keeps its last record, found by one pass over the file.
    """

    run_id: str
    paths: RunPaths
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    rates: Mapping[str, float] = field(default_factory=lambda: tier_rates(DEFAULT_RATES))
    tally: Tally = field(default_factory=Tally)
    _times: Counter[str] = field(default_factory=Counter)  # records per node id
    _spool: TextIO | None = None

    @property
    def partial(self) -> Path:
        """Where results go while the run is going on."""
        return self.paths.results.with_name(self.paths.results.name + ".partial")

    def add(self, result: CaseResult) -> None:
        """Record a case's result (the last record for a node id wins)."""
        if self._spool is None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            # line-buffered: a killed run still leaves every record it made on disk
            self._spool = self.partial.open("w", encoding="utf-8", buffering=1)
        self._spool.write(result.model_dump_json() + "\n")
        key = _key(result)
        self._times[key] += 1
        if self._times[key] == 1:
            self.tally.add(result)  # a repeated record is counted when the file is reread

    def recorded(self, nodeid: str) -> bool:
        """Whether the case has a record yet."""
        return nodeid in self._times

    def __len__(self) -> int:
        return len(self._times)

    def review_items(self) -> list[ReviewItem]:
        """One review item per escalated case."""
        return [ReviewItem.from_result(r, self.run_id) for r in self.tally.escalated]

    def summary(self) -> dict[str, Any]:
        """Counts, pass rate per rubric, tokens, cache hits and paths."""
        from .agreement import judge_alpha

        t = self.tally
        return {
            "run_id": self.run_id,
            "started": self.started.isoformat(),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
            "cases": len(self),
            "outcomes": {o: t.counts.get(o, 0) for o in OUTCOMES},
            "pass_rate": _rate(t.counts),
            "rubrics": {
                name: {**{o: c.get(o, 0) for o in OUTCOMES}, "pass_rate": _rate(c)}
                for name, c in sorted(t.per_rubric.items())
            },
            "agreement": {
                "krippendorff_alpha_ordinal": judge_alpha(t.panels),
                "cases_judged": len(t.panels),
                "split_cases": t.split,
            },
            "review": {tier: dict(v) for tier, v in sorted(t.review.items())},
            "cost": self._cost(t.per_model, t.review),
            "audits": t.audits,
            "by_review": t.by_review,
            "usage": t.usage.model_dump(),
            "models": {name: u.model_dump() for name, u in sorted(t.per_model.items())},
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
        self._finish_results()
        write_manifest(self.paths.manifest, self.review_items())
        summary = self.summary()
        write_json_atomic(self.paths.summary, summary)
        write_text_atomic(self.paths.run_dir.parent / "LATEST", self.run_id + "\n")
        return summary

    def _finish_results(self) -> None:
        """Turn the partial file into results.jsonl: renamed, or rewritten with last records."""
        spool, self._spool = self._spool, None
        if spool is None:
            if not self._times:  # no case at all: still an (empty) results file
                write_text_atomic(self.paths.results, "")
            return
        spool.flush()
        os.fsync(spool.fileno())
        spool.close()
        if max(self._times.values()) > 1:
            self._keep_last_records()
        os.replace(self.partial, self.paths.results)

    def _keep_last_records(self) -> None:
        """Rewrite the partial file with each case's last record, and count those afresh."""
        seen: Counter[str] = Counter()
        self.tally = Tally()
        with (
            self.partial.open(encoding="utf-8") as lines,
            tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=self.partial.parent, delete=False, suffix=".tmp"
            ) as out,
        ):
            for line in lines:
                result = CaseResult.model_validate_json(line)
                key = _key(result)
                seen[key] += 1
                if seen[key] == self._times[key]:  # this case's last record
                    out.write(line)
                    self.tally.add(result)
            out.flush()
            os.fsync(out.fileno())
        os.replace(out.name, self.partial)


def _key(result: CaseResult) -> str:
    return result.nodeid or result.case_id


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
    return [printable(line) for line in lines]  # names and reasons come from users and models
