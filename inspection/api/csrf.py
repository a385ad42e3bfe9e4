"""Cross-site request forgery: a state-changing browser request must come from our own pages.

Every POST/PUT/PATCH/DELETE (the API, the HTML login and logout, the Gradio screens' endpoints)
that carries an `Origin` header — or, without one, a `Referer` — must name this server's own host
(the request's `Host`, or `X-Forwarded-Host` when `behind_proxy` is set) or one of
`allowed_origins`; otherwise 403. Browsers always send `Origin` on a cross-site POST (`null` when
hidden), so a forged form or fetch cannot pass; the login form is covered too (login CSRF).

Exempt: requests with a Bearer token (stations; a browser never attaches one on its own) and
requests with neither header (scripts, curl, integrations with HTTP Basic: no browser involved).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from inspection.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _netloc(url: str) -> str | None:
    """host[:port] of an origin or URL, lower case; None for `null` or garbage."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    default = {"http": ":80", "https": ":443"}[parts.scheme]
    return parts.netloc.lower().removesuffix(default)


class CsrfMiddleware:
    """Refuses cross-site state-changing requests (403) before any route runs."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.behind_proxy = settings.behind_proxy
        self.allowed = {n for o in settings.allowed_origins.split(",") if o.strip() and (n := _netloc(o))}

    def _own_hosts(self, headers: Headers) -> set[str]:
        hosts = {headers.get("host", "").lower().removesuffix(":80").removesuffix(":443")}
        forwarded = headers.get("x-forwarded-host", "") if self.behind_proxy else ""
        hosts |= {h.strip().lower() for h in forwarded.split(",") if h.strip()}
        return (hosts | self.allowed) - {""}

    def refusal(self, scope: Scope) -> str | None:
        """Why this request is refused, or None when it may pass."""
        if scope["type"] != "http" or scope.get("method", "GET") in SAFE_METHODS:
            return None
        headers = Headers(scope=scope)
        if headers.get("authorization", "").partition(" ")[0].lower() == "bearer":
            return None
        source = headers.get("origin") or headers.get("referer")
        if source is None:
            return None
        if _netloc(source) in self._own_hosts(headers):
            return None
        return "cross-site request refused: the Origin/Referer is not this server (CSRF protection)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = self.refusal(scope)
        if reason is not None:
            await JSONResponse({"detail": reason}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
