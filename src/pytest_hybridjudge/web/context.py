"""What every route of the review page shares: the records, the guard, the templates, and
who is asking."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .records import Records
from .security import Guard

REVIEWER_COOKIE = "hybridjudge_reviewer"


@dataclass
class Site:
    """What the routes share: the records, the guard and the templates."""

    records: Records
    guard: Guard
    templates: Environment
    charts: tuple[tuple[object, ...], Any] | None = None
    """The chart tables and the records' fingerprint they were computed for."""

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        html = self.templates.get_template(name).render(
            csrf=self.guard.csrf, reviewer=reviewer_of(request), **context
        )
        return HTMLResponse(html, status_code=status)


def reviewer_of(request: Request) -> str | None:
    """The reviewer's name, remembered in a cookie."""
    name = unquote(request.cookies.get(REVIEWER_COOKIE, "")).strip()
    return name or None


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def now_of(request: Request) -> dt.datetime:
    return site_of(request).records.clock()
