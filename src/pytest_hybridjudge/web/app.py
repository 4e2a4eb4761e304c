"""The review page: an ASGI app (Starlette) over the project's runs, resolutions and leases.

`create_app` builds it; `hybridjudge review serve` runs it under uvicorn. Pages are Jinja
templates with autoescape; scripts and styles are static files, so the CSP forbids anything
inline. Every write is a `fetch` carrying the CSRF token, answered with JSON: the page moves on
only after the server confirmed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import HybridJudgeError
from ..review.lead_times import lead_times
from ..review.leases import Leases
from ..review.manifest import ReviewItem
from ..review.resolutions import Resolution, reviewer_key, same_reviewer
from . import queue as q
from .charts import chart_routes
from .context import REVIEWER_COOKIE, Site, now_of, reviewer_of, site_of
from .records import Records
from .security import Guard, GuardMiddleware
from .views import as_text, score_keys, word_diff

HERE = Path(__file__).parent
MAX_NOTE = 10_000


@dataclass(frozen=True)
class State:
    """One read of the records for one request."""

    items: list[ReviewItem]
    by_item: dict[str, list[Resolution]]
    leases: Leases
    queue: list[ReviewItem]
    done: int
    loads: list[q.TierLoad]
    tier: str | None


def read_state(request: Request, reviewer: str | None) -> State:
    site = site_of(request)
    review = site.records.config.review
    items = site.records.items()
    by_item = site.records.resolutions()
    leases = site.records.leases.state(now_of(request))
    open_items = q.open_items(items, by_item, review)
    loads = q.tier_loads(open_items, review, lead_times(r for rs in by_item.values() for r in rs))
    if reviewer is None:
        return State(items, by_item, leases, open_items, 0, loads, None)
    queue = q.reviewer_queue(items, by_item, reviewer, review, leases)
    ids = {i.item_id for i in items}
    done = sum(1 for k, rs in by_item.items() if k in ids and q.reviewed_by(rs, reviewer))
    tier = {reviewer_key(n): t for n, t in review.reviewers.items()}.get(reviewer_key(reviewer))
    return State(items, by_item, leases, queue, done, loads, tier)


# --- pages ---------------------------------------------------------------------------------


async def queue_page(request: Request) -> Response:
    site = site_of(request)
    reviewer = reviewer_of(request)
    params = request.query_params
    filters = q.Filters(
        tier=params.get("tier") or None,
        rubric=params.get("rubric") or None,
        run=params.get("run") or None,
        reason=params.get("reason") or None,
        mine=params.get("mine") == "1",
    )
    state = read_state(request, reviewer)
    rows = [
        i
        for i in state.queue
        if filters.keep(i, state.tier, state.leases.holder(i.item_id), reviewer or "")
    ]
    try:
        number = int(params.get("page", "1"))
    except ValueError:
        number = 1
    page = q.page_of(rows, number)
    query = {k: v for k, v in params.items() if k != "page"}
    return site.render(
        request,
        "queue.html",
        page=page,
        filters=filters,
        query=query,
        loads=state.loads,
        leases=state.leases,
        reasons_of=q.reasons_of,
        tiers=sorted({i.tier for i in state.queue}),
        rubrics=sorted({i.rubric for i in state.queue if i.rubric}),
        runs=sorted({i.run_id for i in state.queue}, reverse=True),
        disputes=sum(1 for rs in state.by_item.values() if q.disputed(rs)),
        progress=header(state),
        now=now_of(request),
    )


def header(state: State) -> q.Progress:
    return q.progress(state.done, state.queue, state.tier, state.loads)


async def resume(request: Request) -> Response:
    """Land on this reviewer's first unresolved item (the one they hold, else the next)."""
    reviewer = reviewer_of(request)
    if reviewer is None:
        return RedirectResponse("/name", status_code=303)
    target = next_url(request, reviewer)
    return RedirectResponse(target, status_code=303)


def next_url(request: Request, reviewer: str, after: str | None = None) -> str:
    """Lease the reviewer's next item and return its page (the queue when none is left)."""
    state = read_state(request, reviewer)
    ids = [i.item_id for i in state.queue if i.item_id != after]
    lease = site_of(request).records.leases.next(ids, reviewer, now_of(request))
    return f"/item/{lease.item_id}" if lease else "/?done=1"


async def name_page(request: Request) -> Response:
    return site_of(request).render(request, "name.html")


async def item_page(request: Request) -> Response:
    site = site_of(request)
    review = site.records.config.review
    reviewer = reviewer_of(request)
    if reviewer is None:
        return RedirectResponse("/name", status_code=303)
    state = read_state(request, reviewer)
    wanted = request.path_params["item_id"]
    item = next((i for i in state.items if i.item_id == wanted), None)
    if item is None:
        return site.render(request, "error.html", 404, message=f"no review item {wanted}")
    earlier = state.by_item.get(item.item_id, [])
    mine_in = q.reviewed_by(earlier, reviewer)
    ids = [i.item_id for i in state.queue]
    at = ids.index(item.item_id) if item.item_id in ids else -1
    lease = state.leases.holder(item.item_id)
    return site.render(
        request,
        "item.html",
        item=item,
        text=as_text,
        diff=word_diff(item.reference, item.output),
        hidden=q.is_blind(item, review) and not mine_in,
        blind=q.is_blind(item, review),
        mine_in=mine_in,
        earlier=earlier if mine_in else [],
        others=len(earlier),
        disputed=q.disputed(earlier),
        reasons=q.reasons_of(item),
        keys=score_keys(item.scale),
        lease=lease,
        held_by_other=lease is not None and not same_reviewer(lease.reviewer, reviewer),
        prev_id=ids[at - 1] if at > 0 else None,
        next_id=ids[at + 1] if 0 <= at < len(ids) - 1 else None,
        opened=now_of(request).timestamp(),
        progress=header(state),
    )


# --- writes (JSON) -------------------------------------------------------------------------


def refuse(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


async def body_of(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def set_name(request: Request) -> Response:
    name = str((await body_of(request)).get("name", "")).strip()
    if not name or len(name) > 100:
        return refuse("give your name (1 to 100 characters)")
    response = JSONResponse({"ok": True, "next": "/review"})
    response.set_cookie(
        REVIEWER_COOKIE, quote(name), max_age=365 * 86400, samesite="strict", httponly=True
    )
    return response


async def take_next(request: Request) -> Response:
    reviewer = reviewer_of(request)
    if reviewer is None:
        return refuse("say who you are first", 401)
    return JSONResponse({"ok": True, "next": next_url(request, reviewer)})


async def skip(request: Request) -> Response:
    reviewer = reviewer_of(request)
    if reviewer is None:
        return refuse("say who you are first", 401)
    item_id = str((await body_of(request)).get("item_id", ""))
    records = site_of(request).records
    try:
        records.leases.skip(item_id, reviewer, now_of(request))
    except HybridJudgeError as exc:
        return refuse(str(exc), 409)
    return JSONResponse({"ok": True, "next": next_url(request, reviewer, after=item_id)})


def _score(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("the score must be a whole number")
    return int(value)


async def resolve(request: Request) -> Response:
    """Record the reviewer's decision; answer with the next item's page only once written."""
    site = site_of(request)
    reviewer = reviewer_of(request)
    if reviewer is None:
        return refuse("say who you are first", 401)
    data = await body_of(request)
    verdict = data.get("verdict")
    if verdict not in ("pass", "fail"):
        return refuse("choose pass (p) or fail (f)")
    note = str(data.get("note") or "")
    if len(note) > MAX_NOTE:
        return refuse(f"the note is longer than {MAX_NOTE} characters; shorten it")
    try:
        score = _score(data.get("score"))
        opened = float(data.get("opened") or "nan")
    except ValueError as exc:
        return refuse(f"{exc}" if "score" in str(exc) else "the page is stale; reload it")
    state = read_state(request, reviewer)
    item = next((i for i in state.items if i.item_id == data.get("item_id")), None)
    if item is None:
        return refuse("no such review item; reload the queue", 404)
    earlier = state.by_item.get(item.item_id, [])
    now = now_of(request)
    lead = now.timestamp() - opened
    try:
        status = site.records.resolve(
            item,
            verdict,
            reviewer,
            score=score,
            note=note,
            amend=bool(data.get("amend")),
            adjudicate=bool(data.get("adjudicate")),
            blind=q.is_blind(item, site.records.config.review)
            and not q.reviewed_by(earlier, reviewer),
            lead_time_s=round(lead, 1) if math.isfinite(lead) and lead >= 0 else None,
        )
        site.records.leases.release(item.item_id, reviewer, now)
    except HybridJudgeError as exc:
        return refuse(str(exc), 409)
    except OSError as exc:
        return refuse(f"could not write the decision: {exc}", 500)
    return JSONResponse({"ok": True, "status": status, "next": next_url(request, reviewer)})


async def adjudication(request: Request) -> Response:
    state = read_state(request, reviewer_of(request))
    disputes = [i for i in state.items if q.disputed(state.by_item.get(i.item_id, []))]
    return site_of(request).render(
        request, "adjudicate.html", disputes=disputes, by_item=state.by_item
    )


async def trouble(request: Request, exc: Exception) -> Response:
    """A record that cannot be read or written: said in words, as JSON to a write."""
    if request.url.path.startswith("/api/"):
        return refuse(str(exc), 409)
    return site_of(request).render(request, "error.html", 500, message=str(exc))


def create_app(records: Records, guard: Guard) -> Starlette:
    """The review page for `records`, guarded by `guard`."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    routes = [
        Route("/", queue_page),
        Route("/review", resume),
        Route("/name", name_page),
        Route("/item/{item_id}", item_page),
        Route("/adjudicate", adjudication),
        Route("/api/name", set_name, methods=["POST"]),
        Route("/api/next", take_next, methods=["POST"]),
        Route("/api/skip", skip, methods=["POST"]),
        Route("/api/resolve", resolve, methods=["POST"]),
        *chart_routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, guard=guard)],
        exception_handlers={HybridJudgeError: trouble},
    )
    app.state.site = Site(records, guard, templates)
    return app
