"""The review page's charts: matplotlib draws each table of `chartdata` as SVG on the server
(loaded as an image, so nothing in it runs and the CSP needs no exception), with the same
numbers in a table beneath and as JSON at `/api/charts/<name>.json`."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..calibration import calibration_paths, read_calibration
from ..review.labelled import labelled_cases
from ..review.lead_times import lead_times
from ..runs import RunStore
from . import chartdata as cd
from . import queue as q
from .context import site_of
from .records import Records

COLORS = ("#2456c7", "#e07b39", "#3a9a5b", "#b42318", "#7a5af8", "#667085")


@dataclass(frozen=True)
class Chart:
    """One chart: its name in URLs, how to draw its table."""

    name: str
    draw: Callable[[Any, cd.Table], None]


def tables(request: Request) -> dict[str, cd.Table]:
    """Every chart's table, from one read of the records (again only once they changed)."""
    site = site_of(request)
    key = site.records.fingerprint()
    if site.charts is None or site.charts[0] != key:
        site.charts = (key, compute(site.records))
    result: dict[str, cd.Table] = site.charts[1]
    return result


def compute(records: Records) -> dict[str, cd.Table]:
    """Every chart's table."""
    by_item = records.resolutions()
    review = records.config.review
    history = RunStore(records.store.folder).judged_history()  # afresh: runs come and go
    judged, sent = history.judged, history.sent
    dataset = labelled_cases(judged, [r for rs in by_item.values() for r in rs], sent)
    calibrated = read_calibration(calibration_paths(records.resolutions_path)[0]).rubrics
    open_items = q.open_items(records.items(), by_item, review)
    loads = q.tier_loads(open_items, review, lead_times(r for rs in by_item.values() for r in rs))
    return {
        "outcomes": cd.outcome_mix(judged),
        "load": cd.review_load(loads),
        "scores": cd.score_distribution(judged),
        "reliability": cd.reliability(dataset),
        "coverage": cd.coverage_curve(dataset, calibrated),
        "confusion": cd.judge_confusion(dataset),
        "reviewers": cd.reviewer_agreement(by_item),
        "reviewers-over-time": cd.reviewer_agreement_by_week(by_item),
    }


def _empty(ax: Any, table: cd.Table) -> bool:
    if table.rows:
        return False
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", color="#667085")
    ax.set_axis_off()
    return True


def draw_outcomes(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    names = [str(r[0]) for r in table.rows]
    ax.barh(names, [r[1] for r in table.rows], color=COLORS[0])
    ax.set_xlabel("cases")
    ax.invert_yaxis()


def draw_load(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    tiers = [str(r[0]) for r in table.rows]
    ax.bar(tiers, [r[2] for r in table.rows], color=COLORS[1])
    ax.set_ylabel("minutes")
    for x, row in enumerate(table.rows):
        ax.annotate(f"{row[1]} items, ${row[3]:.2f}", (x, row[2]), ha="center", va="bottom",
                    fontsize=8)  # fmt: skip


def draw_scores(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    judges = sorted({str(r[0]) for r in table.rows})
    width = 0.8 / len(judges)
    for j, judge in enumerate(judges):
        rows = [r for r in table.rows if r[0] == judge]
        ax.bar([float(r[1]) + (j - (len(judges) - 1) / 2) * width for r in rows],  # type: ignore[arg-type]
               [r[2] for r in rows], width, label=judge, color=COLORS[j % len(COLORS)])  # fmt: skip
    ax.set_xlabel("score")
    ax.set_ylabel("cases")
    ax.legend(fontsize=7)


def draw_reliability(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    ax.plot([0, 1], [0, 1], ls=":", color="#98a2b3", label="perfectly calibrated")
    for k, rubric in enumerate(sorted({str(r[0]) for r in table.rows})):
        rows = [r for r in table.rows if r[0] == rubric]
        mid = [(float(r[1]) + float(r[2])) / 2 for r in rows]  # type: ignore[arg-type]
        share = [float(r[4]) for r in rows]  # type: ignore[arg-type]
        low = [s - float(r[5]) for s, r in zip(share, rows, strict=True)]  # type: ignore[arg-type]
        high = [float(r[6]) - s for s, r in zip(share, rows, strict=True)]  # type: ignore[arg-type]
        color = COLORS[k % len(COLORS)]
        ax.errorbar(mid, share, yerr=[low, high], fmt="o-", capsize=3, color=color, label=rubric)
        for x, y, r in zip(mid, share, rows, strict=True):
            ax.annotate(f"n={r[3]}", (x, y), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color=color)  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("panel confidence (bin centre)")
    ax.set_ylabel("agreement with reviewers (Wilson 95%)")
    ax.legend(fontsize=7)


def draw_coverage(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    for k, rubric in enumerate(sorted({str(r[0]) for r in table.rows})):
        rows = [r for r in table.rows if r[0] == rubric and r[2] is not None]
        color = COLORS[k % len(COLORS)]
        ax.plot([r[2] for r in rows], [r[3] for r in rows], "o-", color=color, label=rubric)
        for r in rows:
            if r[5] != "yes":
                continue
            ax.plot([r[2]], [r[3]], marker="*", markersize=16, color=color, ls="none")
            if r[6] is not None:
                ax.axhline(float(r[6]), color=color, ls="--", lw=1)
            ax.annotate(
                f"threshold {r[1]}" + ("" if r[6] is None else f", certified >= {r[6]:.2f}"),
                (r[2], r[3]), textcoords="offset points", xytext=(-10, -22), fontsize=7,
                color=color,
            )  # fmt: skip
    ax.set_xlabel("coverage (share of judged cases the panel decides)")
    ax.set_ylabel("agreement at or above the threshold")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)


def draw_confusion(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    rubrics = [str(r[0]) for r in table.rows]
    parts = [
        ("both pass", 1, COLORS[2]),
        ("judges pass, reviewers fail", 2, COLORS[3]),
        ("judges fail, reviewers pass", 3, COLORS[1]),
        ("both fail", 4, COLORS[0]),
    ]
    left = [0.0] * len(rubrics)
    for label, col, color in parts:
        values = [float(r[col]) for r in table.rows]  # type: ignore[arg-type]
        ax.barh(rubrics, values, left=left, label=label, color=color)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, row in enumerate(table.rows):
        kappa = "-" if row[5] is None else f"{row[5]:.2f}"
        ax.annotate(f"kappa {kappa}", (left[y], y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)  # fmt: skip
    ax.set_xlabel("labelled cases")
    ax.legend(fontsize=7, loc="lower right")


def draw_reviewers(ax: Any, table: cd.Table) -> None:
    rows = [r for r in table.rows if r[5] is not None or r[2] == "adjudicated outcome"]
    if _empty(ax, cd.Table(table.title, table.columns, rows)):
        return
    labels = [f"{r[1]} / {r[2]} ({r[0]})" for r in rows]
    values = [float(r[5] if r[5] is not None else r[4] or 0) for r in rows]
    ax.barh(labels, values, color=[COLORS[4] if r[5] is not None else COLORS[5] for r in rows])
    ax.set_xlim(-1, 1)
    ax.axvline(0, color="#98a2b3", lw=0.8)
    ax.set_xlabel("Cohen's kappa (pairs) / agreement (with adjudication)")
    ax.invert_yaxis()


def draw_reviewers_over_time(ax: Any, table: cd.Table) -> None:
    if _empty(ax, table):
        return
    weeks = sorted({str(r[0]) for r in table.rows})
    several = len({r[1] for r in table.rows}) > 1
    series = sorted({(str(r[1]), str(r[2]), str(r[3])) for r in table.rows})
    for k, (rubric, reviewer, against) in enumerate(series):
        rows = [r for r in table.rows if (r[1], r[2], r[3]) == (rubric, reviewer, against)]
        dodge = (k - (len(series) - 1) / 2) * min(0.08, 0.6 / len(series))  # points apart
        x = [weeks.index(str(r[0])) + dodge for r in rows]
        share = [float(r[5]) for r in rows]  # type: ignore[arg-type]
        low = [s - float(r[6]) for s, r in zip(share, rows, strict=True)]  # type: ignore[arg-type]
        high = [float(r[7]) - s for s, r in zip(share, rows, strict=True)]  # type: ignore[arg-type]
        label = f"{reviewer} vs {against}" + (f" ({rubric})" if several else "")
        ls = "--" if against == cd.ADJUDICATED else "-"
        ax.errorbar(x, share, yerr=[low, high], fmt="o", ls=ls, capsize=3,
                    color=COLORS[k % len(COLORS)], label=label)  # fmt: skip
    ax.set_xticks(range(len(weeks)), weeks, fontsize=8)
    ax.set_xlim(-0.5, len(weeks) - 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("ISO week")
    ax.set_ylabel("agreement (Wilson 95%)")
    ax.legend(fontsize=7)


CHARTS = {
    c.name: c
    for c in (
        Chart("outcomes", draw_outcomes),
        Chart("load", draw_load),
        Chart("scores", draw_scores),
        Chart("reliability", draw_reliability),
        Chart("coverage", draw_coverage),
        Chart("confusion", draw_confusion),
        Chart("reviewers", draw_reviewers),
        Chart("reviewers-over-time", draw_reviewers_over_time),
    )
}


def svg(chart: Chart, table: cd.Table) -> bytes:
    """The chart as SVG (matplotlib's Agg-free SVG backend; no script, data escaped)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(table.title, fontsize=10)
    chart.draw(ax, table)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


async def chart_svg(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in CHARTS:
        return Response("no such chart", status_code=404)
    table = tables(request)[name]
    return Response(svg(CHARTS[name], table), media_type="image/svg+xml")


async def chart_json(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in CHARTS:
        return JSONResponse({"error": f"no chart {name!r}; charts: {', '.join(CHARTS)}"}, 404)
    return JSONResponse(tables(request)[name].json())


async def charts_page(request: Request) -> Response:
    return site_of(request).render(request, "charts.html", tables=tables(request))


def chart_routes() -> list[BaseRoute]:
    """`/charts` (the page), `/charts/<name>.svg` and `/api/charts/<name>.json`."""
    return [
        Route("/charts", charts_page),
        Route("/charts/{name}.svg", chart_svg),
        Route("/api/charts/{name}.json", chart_json),
    ]
