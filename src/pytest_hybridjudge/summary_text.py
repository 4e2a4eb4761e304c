"""The terminal summary of a run, as plain lines, read from its `RunSummary`.

Every line goes through `printable` at the end: rubric names, judge labels and reasons come from
users and models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .summary import BatchCounts, PassRate, ReviewLoad, RunSummary
from .terminal import printable
from .words import counted


def pass_rate_text(rate: PassRate, how: bool = False) -> str:
    """`71.2% [65.0%, 77.4%]`, `83.3% (no interval)` or `n/a`; with `how`, the headline:
    the rate, its interval and how it was computed (`passrates.how`)."""
    if rate.estimate is None:
        return "n/a"
    text = f"{rate.estimate:.1%}"
    if rate.low is not None and rate.high is not None:
        text += f" [{rate.low:.1%}, {rate.high:.1%}]"
    if how and rate.how:
        tail = "; an interval once audits are reviewed" if rate.method == "judge-only" else ""
        return f"{text} ({rate.how}{tail})"
    return text if rate.low is not None else f"{text} (no interval)"


def _to_review(escalated: int, audits: int) -> str:
    """`3 to review`, or `4 to review: 3 escalated, 1 audit sample` when audits are among them."""
    if not audits:
        return f"{escalated} to review"
    return (
        f"{escalated + audits} to review: {escalated} escalated, {counted(audits, 'audit sample')}"
    )


def minutes_text(load: ReviewLoad, per_item: bool = False) -> str:
    """`6 min`, or `4.2 min measured` when reviewers' measured median lead time replaced the
    configured minutes; with `per_item`, per item and saying what the median rests on."""
    minutes = load.minutes / max(load.items, 1) if per_item else load.minutes
    if load.minutes_from != "measured":
        return f"{minutes:g} min"
    text = f"{round(minutes, 1):g} min measured"
    if per_item:
        text += f" (median of {counted(load.timed_reviews, 'timed review')})"
    return text


def _calls(n: int) -> str:
    return f"{n:,} call" if n == 1 else f"{n:,} calls"


def cost_lines(s: RunSummary) -> list[str]:
    """Inference cost per model; a model without a known price shows as unknown, never $0, and
    calls paid for by cases stopped before they finished (Ctrl-C) are added, not lost."""
    cost = s.cost
    models = ", ".join(
        f"{m} price unknown ({_calls(cost.unpriced[m])})"
        if m in cost.unpriced and not usd
        else f"{m} ${usd:.4f}" + (" + unknown" if m in cost.unpriced else "")
        for m, usd in cost.inference.items()
    )
    total = f"${cost.inference_total:.4f}" + (" + unknown" if cost.unpriced else "")
    lines = [f"cost: inference {total} ({models})"]
    stopped = s.calls.cost - cost.inference_total if s.calls is not None else 0.0
    if stopped > 5e-7:
        lines.append(f"  + ${stopped:.4f} for calls of cases stopped before they finished")
    # by label from the records; else (cases stopped before they finished) by provider/model
    unpriced = list(cost.unpriced) or (list(s.calls.unpriced) if s.calls is not None else [])
    if unpriced:
        names = ", ".join(unpriced)
        lines.append(
            f"warning: no price known for {names}: their cost is not counted (nor in a budget); "
            f'add [tool.hybridjudge.prices] "provider/model" = {{ input = USD, output = USD }} '
            "per million tokens"
        )
    return lines


def batch_line(b: BatchCounts) -> str:
    """`batches: 2 waves, 3 created, 12 requests (11 succeeded, 1 expired); 1 resubmitted`."""
    ended = ", ".join(f"{n:,} {kind}" for kind, n in b.results.items())
    earlier = f", {b.collected} collected from an earlier run" if b.collected else ""
    held = f"; held {b.held} times for the enqueued-token limit" if b.held else ""
    return (
        f"batches: {b.waves} waves, {b.batches} created{earlier}, {b.requests:,} requests"
        + (f" ({ended})" if ended else "")
        + f"; {b.resubmitted} resubmitted, {b.deduplicated} identical calls sent once{held}"
    )


def summary_lines(summary: RunSummary | Mapping[str, Any]) -> list[str]:
    """The terminal summary section, as plain lines."""
    s = summary if isinstance(summary, RunSummary) else RunSummary.model_validate(summary)
    o, u = s.outcomes, s.usage
    lines = [
        f"run {s.run_id}: {s.cases} cases: {o.passed} passed, {o.failed} failed, "
        f"{o.escalated} escalated, {o.skipped} skipped",
        f"pass rate: {pass_rate_text(s.pass_rate, how=True)}",
    ]
    for name, r in s.rubrics.items():
        alpha = ""
        if r.agreement is not None and r.agreement.cases_judged:
            a = r.agreement.krippendorff_alpha_ordinal
            alpha = f"; judge alpha {a:.3f}" if a is not None else "; judge alpha undefined"
        lines.append(
            f"  rubric {name}: {pass_rate_text(r.pass_rate)} "
            f"({r.passed} passed, {r.failed} failed, {r.escalated} escalated){alpha}"
        )
    agreement = s.agreement
    if agreement.cases_judged:
        pooled = agreement.krippendorff_alpha_ordinal
        several = sum(1 for r in s.rubrics.values() if r.agreement is not None) > 1
        shown = "per rubric above" if several else f"{pooled:.3f}" if pooled is not None else None
        lines.append(
            f"judge agreement: Krippendorff's alpha (ordinal) {shown or 'undefined'} over "
            f"{agreement.cases_judged} cases; {agreement.split_cases} split"
        )
    if s.audit is not None and s.audit.rate is not None:
        lines.append(
            f"audit: {s.audit.rate:.0%} of confident cases (seed {s.audit.seed}): "
            f"{s.audit.samples} drawn, expected review {s.audit.minutes:g} min, ${s.audit.usd:.2f}"
            + ("" if s.audit.rate else "; without audits no pass rate or threshold can be trusted")
        )
    if s.review:
        tiers = ", ".join(f"{tier} {v.items} ({minutes_text(v)})" for tier, v in s.review.items())
        lines.append(
            f"to review by tier: {tiers}; {counted(s.audits, 'audit sample')}; "
            f"{counted(s.by_review, 'case')} decided by earlier reviews"
        )
    if s.escalation_reasons:
        lines.append("escalated because:")
        lines += [f"  {reason}: {counted(n, 'case')}" for reason, n in s.escalation_reasons.items()]
    if s.judge_errors:
        errors = ", ".join(f"{judge} {n}" for judge, n in s.judge_errors.items())
        lines.append(f"judge errors (no valid verdict): {errors}; see each case's reasons")
    if s.budget is not None:
        b = s.budget
        lines.append(
            f"budget: ${b.spent:.4f} of ${b.limit:.4f} spent; {b.cases_covered} cases covered"
            + (
                f", {b.cases_skipped} skipped (budget exhausted: their worst case did not fit)"
                if b.cases_skipped
                else ""
            )
        )
    cost = s.cost
    lines += cost_lines(s)
    if cost.review:
        people = ", ".join(
            f"{tier} {p.items} x {minutes_text(p, per_item=True)} at "
            f"${p.rate_per_hour:g}/h = ${p.usd:.2f}"
            for tier, p in cost.review.items()
        )
        lines.append(f"  expected review ${cost.review_total:.2f} ({people})")
    unknown = " + unknown inference" if cost.unpriced else ""
    lines.append(f"  total ${cost.total:.2f}{unknown}")
    sent = s.calls.requests if s.calls is not None else u.calls
    unrecorded = (
        f" ({sent - u.calls:,} by cases stopped before they finished)" if sent > u.calls else ""
    )
    lines.append(
        f"tokens: {u.input_tokens:,} in / {u.output_tokens:,} out; "
        f"provider calls: {sent:,}{unrecorded}; cache hits: {u.cache_hits:,}"
    )
    for name, m in s.models.items():
        lines.append(
            f"  {name}: {m.calls:,} calls, {m.cache_hits:,} cached, "
            f"{m.input_tokens:,} in / {m.output_tokens:,} out"
        )
    if s.calls is not None:
        c = s.calls
        per = ", ".join(
            f"{name} {p.requests:,} ({p.retries:,} retries)" for name, p in c.providers.items()
        )
        lines.append(
            f"requests: {c.requests:,} sent, {c.retries:,} retries, {c.failures:,} failed for good"
            + (f" ({per})" if per else "")
        )
        if c.batches is not None:
            lines.append(batch_line(c.batches))
        for name, switch in c.mode_switches.items():
            lines.append(
                f"  provider {name}: structured output {switch.started} refused, used "
                f"{switch.now} instead ({switch.why})"
            )
    lines += [
        f"results: {s.paths.results}",
        f"manifest: {s.paths.manifest} ({_to_review(o.escalated, s.audits)})",
        f"summary: {s.paths.summary}",
    ]
    return [printable(line) for line in lines]  # names and reasons come from users and models
