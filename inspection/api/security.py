"""What every response carries and who may read the server's self-description.

- `SecurityHeaders`: a pure ASGI middleware (it never buffers bodies, so Gradio's server-sent
  events and file streams pass untouched) that adds the browser hardening headers to every HTTP
  response: no framing (clickjacking), no MIME sniffing, referrer kept on this site, and a
  Content-Security-Policy Gradio's front end runs under.
- `exposure_refusal`: whether `/docs`, `/openapi.json`, `/metrics` … are served to this request
  (settings `expose_docs`, `expose_metrics`, `metrics_token`; `serve --demo` turns both on).
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspection.config import Settings

# Gradio's front end needs inline scripts and styles (its config is an inline <script>), eval for a
# few components, and data:/blob: for images, audio and its workers; everything else stays on this
# origin. frame-ancestors 'none' is the CSP twin of X-Frame-Options: DENY.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# The mounted Gradio apps describe their endpoints here (already behind the UI login; also off with the docs).
GRADIO_OPENAPI_SUFFIX = "/gradio_api/openapi.json"


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (a header a route set itself is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def metrics_authorized(settings: Settings, headers: Headers) -> bool:
    """True when the request carries the metrics token (constant-time comparison)."""
    if settings.metrics_token is None:
        return False
    expected = settings.metrics_token.get_secret_value()
    got = headers.get("authorization", "")
    return bool(expected) and hmac.compare_digest(got.encode(), f"Bearer {expected}".encode())


def exposure_refusal(settings: Settings, path: str, headers: Headers) -> int | None:
    """The status to answer instead of serving `path` (404: off, 401: token needed), or None."""
    if path in DOCS_PATHS or path.endswith(GRADIO_OPENAPI_SUFFIX):
        return None if settings.expose_docs else 404
    if path == "/metrics":
        if settings.metrics_token is not None:
            return None if metrics_authorized(settings, headers) else 401
        return None if settings.expose_metrics else 404
    return None


class ExposureGuard:
    """Answers 404 / 401 for the self-description routes the settings keep closed (see `exposure_refusal`).
    A middleware rather than per-route checks: FastAPI's /docs routes and Gradio's are not ours to edit."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            status = exposure_refusal(self.settings, scope["path"], Headers(scope=scope))
            if status is not None:
                await _plain(send, status)
                return
        await self.app(scope, receive, send)


async def _plain(send: Send, status: int) -> None:
    body = b'{"detail":"Not Found"}' if status == 404 else b'{"detail":"metrics token required"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
