"""The review page's guard: one-time token, session cookie, CSRF, Host and Origin checks, and
the headers every response carries. Model outputs and gold data are hostile input, and the page
runs on a reviewer's machine beside their browser.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
COOKIE = "hybridjudge_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """`host` is a loopback address or `localhost`."""
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The `Host` header values this server answers: the bound address with its port (and the
    loopback names for a loopback bind). Anything else is a DNS-rebinding attempt."""
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = {bound}
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return frozenset({f"{name}:{port}".lower() for name in names})


@dataclass
class Guard:
    """The secrets of one `serve` process: the one-time URL token and the session it opens."""

    host: str
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    session: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    spent: bool = False

    @property
    def csrf(self) -> str:
        """The CSRF token writes carry, bound to the session."""
        return hmac.new(self.session.encode(), b"csrf", hashlib.sha256).hexdigest()

    def url(self, path: str = "/review") -> str:
        """The URL to open once, carrying the one-time token."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}?{urlencode({'token': self.token})}"

    def exchange(self, token: str) -> bool:
        """Spend the one-time token; True the first time it is given right."""
        if self.spent or not hmac.compare_digest(token.encode(), self.token.encode()):
            return False
        self.spent = True
        return True

    def signed_in(self, request: Request) -> bool:
        """The request carries this process's session cookie."""
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.session.encode())

    def write_refused(self, request: Request) -> str | None:
        """Why a write (POST) is refused: a cross-site origin or fetch, or a missing or wrong
        CSRF token; None when it may go ahead."""
        origin = request.headers.get("origin")
        if origin is not None and f"{origin.lower()}/" != self.origin(request):
            return f"cross-site request from {origin} refused"
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request ({site}) refused"
        given = request.headers.get(CSRF_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self.csrf.encode()):
            return "missing or wrong CSRF token; reload the page and try again"
        return None

    @staticmethod
    def origin(request: Request) -> str:
        return f"http://{request.headers.get('host', '').lower()}/"


class GuardMiddleware:
    """ASGI middleware enforcing `Guard` on every HTTP request and adding `HEADERS`."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard
        self.hosts = allowed_hosts(guard.host, guard.port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])  # type: ignore[attr-defined]
                    if k.lower() not in {h.lower().encode() for h in HEADERS}
                ]
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        response = self.check(Request(scope))
        if response is not None:
            await response(scope, receive, send_with_headers)  # type: ignore[arg-type]
            return
        await self.app(scope, receive, send_with_headers)  # type: ignore[arg-type]

    def check(self, request: Request) -> Response | None:
        """A refusal or the token exchange's redirect; None lets the request through."""
        host = request.headers.get("host", "").lower()
        if host not in self.hosts:
            return PlainTextResponse(
                f"421 Misdirected Request: this review page answers only {sorted(self.hosts)[0]}",
                status_code=421,
            )
        token = request.query_params.get("token")
        if token is not None:
            if not self.guard.exchange(token):
                return PlainTextResponse(
                    "403 Forbidden: this link was already used or is wrong. Restart "
                    "`hybridjudge review serve` for a new one.",
                    status_code=403,
                )
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = URL(request.url.path + (f"?{urlencode(query)}" if query else ""))
            response = RedirectResponse(str(target), status_code=303)
            response.set_cookie(
                COOKIE, self.guard.session, httponly=True, samesite="strict", path="/"
            )
            return response
        if not self.guard.signed_in(request):
            return PlainTextResponse(
                "403 Forbidden: open the link `hybridjudge review serve` printed (it signs this "
                "browser in once).",
                status_code=403,
            )
        if request.method not in SAFE_METHODS:
            why = self.guard.write_refused(request)
            if why is not None:
                return PlainTextResponse(f"403 Forbidden: {why}", status_code=403)
        return None
