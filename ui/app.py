"""The web UI: two Gradio apps mounted on the FastAPI app, behind one login.

    /login, /logout          plain HTML login (argon2-checked password → signed session cookie)
    /review                  inspector review screen (every role)
    /engineer                policy, reports, history, models, export (engineer and admin only)
    /media/review/<id>.jpg   display images for the review screen (logged-in users)

Access is enforced on the server three times over: the page redirect below, Gradio's
`auth_dependency` on every route of each mounted app (config, queue, component server …), and the
role check inside every handler.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import quote

import gradio as gr
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from inspection.config import Settings
from inspection.services.accounts import COOKIE_NAME, Permission, User, login
from inspection.services.context import Pipeline, ScorerFactory
from ui import engineer, review
from ui.assets import CSS, LOGIN_PAGE
from ui.context import UiContext, cookie_from
from ui.media import MediaCache, MediaError

REVIEW_PATH = "/review"
ENGINEER_PATH = "/engineer"
_PAGES = {REVIEW_PATH: Permission.REVIEW, ENGINEER_PATH: Permission.ENGINEER}


def theme() -> gr.themes.Base:
    return gr.themes.Default(text_size=gr.themes.sizes.text_lg, spacing_size=gr.themes.sizes.spacing_lg)


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


def _topbar(ctx: UiContext, *, here: str) -> None:
    bar = gr.HTML(elem_id="topbar", apply_default_css=False)

    def who(request: gr.Request) -> str:
        user = ctx.user(request)
        brand = '<span class="brand">Scratch inspection</span>'
        if user is None:
            return f'<div class="topbar">{brand}<a href="/login">Log in</a></div>'
        links = []
        if here != REVIEW_PATH:
            links.append(f'<a href="{REVIEW_PATH}/" data-testid="nav-review">Review screen</a>')
        if here != ENGINEER_PATH and user.can(Permission.ENGINEER):
            links.append(f'<a href="{ENGINEER_PATH}/" data-testid="nav-engineer">Engineer screens</a>')
        links.append('<a href="/logout" data-testid="logout">Log out</a>')
        return (
            f'<div class="topbar">{brand}<span data-testid="whoami">Signed in as '
            f"<b>{html.escape(user.name)}</b> ({user.role.value})</span>"
            + "".join(links)
            + "</div>"
        )

    root = gr.context.Context.root_block
    assert root is not None
    root.load(who, None, [bar], show_progress="hidden")


def build_review_app(ctx: UiContext, media: MediaCache) -> gr.Blocks:
    with gr.Blocks(title="Review · scratch inspection", fill_width=True) as blocks:
        _topbar(ctx, here=REVIEW_PATH)
        review.build(ctx, media)
    return blocks


def build_engineer_app(ctx: UiContext) -> gr.Blocks:
    with gr.Blocks(title="Engineer · scratch inspection", fill_width=True) as blocks:
        _topbar(ctx, here=ENGINEER_PATH)
        engineer.build(ctx)
    return blocks


# ---------------------------------------------------------------------------------------------
# Login pages, media, redirects
# ---------------------------------------------------------------------------------------------


_SAFE_NEXT = re.compile(r"^/(review|engineer)/?$")


def _safe_next(value: str | None, user: User | None = None) -> str:
    if value and _SAFE_NEXT.match(value):
        return value if value.endswith("/") else value + "/"
    if user is not None and user.can(Permission.ENGINEER):
        return ENGINEER_PATH + "/"
    return REVIEW_PATH + "/"


class LoginThrottle:
    """At most `limit` failed logins per name in `window` seconds (slows password guessing)."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            q = self._fails[name]
            while q and q[0] < now - self.window:
                q.popleft()
            return len(q) >= self.limit

    def failed(self, name: str) -> None:
        with self._lock:
            self._fails[name].append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._fails.pop(name, None)


def web_router(ctx: UiContext, media: MediaCache) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    throttle = LoginThrottle()

    def login_page(error: str = "", nxt: str = "", status: int = 200) -> HTMLResponse:
        err = f'<p class="err" role="alert">{html.escape(error)}</p>' if error else ""
        return HTMLResponse(LOGIN_PAGE.format(error=err, next=html.escape(nxt)), status_code=status)

    @router.get("/")
    def root(request: Request) -> RedirectResponse:
        user = ctx.sessions.user(cookie_from(request))
        return RedirectResponse("/login" if user is None else _safe_next(None, user), status_code=303)

    @router.get("/login")
    def get_login(request: Request, next: str = "") -> Response:  # noqa: A002 - query name
        user = ctx.sessions.user(cookie_from(request))
        if user is not None:
            return RedirectResponse(_safe_next(next, user), status_code=303)
        return login_page(nxt=next)

    @router.post("/login")
    def post_login(name: str = Form(""), password: str = Form(""), next: str = Form("")) -> Response:  # noqa: A002
        name = name.strip()
        if throttle.blocked(name):
            return login_page("Too many failed attempts: wait a few minutes.", next, status=429)
        user = login(ctx.pipeline, name=name, password=password)
        if user is None:
            throttle.failed(name)
            return login_page("Wrong user name or password.", next, status=401)
        throttle.succeeded(name)
        resp = RedirectResponse(_safe_next(next, user), status_code=303)
        resp.set_cookie(
            COOKIE_NAME,
            ctx.sessions.issue(user),
            max_age=ctx.sessions.seconds,
            httponly=True,
            samesite="lax",
            path="/",
        )
        return resp

    @router.get("/logout")
    def logout() -> RedirectResponse:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE_NAME, path="/")
        return resp

    @router.get(review.MEDIA_PREFIX + "/{name}")
    def media_file(name: str, request: Request) -> Response:
        user = ctx.sessions.user(cookie_from(request))
        if user is None or not user.can(Permission.REVIEW):
            return Response("please log in", status_code=401, media_type="text/plain")
        m = re.fullmatch(r"(\d{1,12})(\.overlay)?\.jpg", name)
        if m is None:
            return Response("not found", status_code=404, media_type="text/plain")
        try:
            data = media.get(int(m.group(1)), overlay=bool(m.group(2)))
        except MediaError as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    return router


class PageGuard:
    """Browsers asking for a UI page without a session go to /login; without the role, get a 403
    page. (The Gradio apps refuse their API routes on their own; this only makes pages friendly.)"""

    def __init__(self, app: ASGIApp, ctx: UiContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        page = path.rstrip("/")
        if scope["type"] == "http" and page in _PAGES and scope.get("method") == "GET":
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            user = self.ctx.sessions.user(cookie_from(_Headers(headers)))
            response: Response | None = None
            if user is None:
                response = RedirectResponse(f"/login?next={quote(page + '/')}", status_code=303)
            elif not user.can(_PAGES[page]):
                response = HTMLResponse(
                    f"<h1>Not allowed</h1><p>{html.escape(user.name)} ({user.role.value}) may not open this "
                    f'screen.</p><p><a href="{REVIEW_PATH}/">Back to the review screen</a></p>',
                    status_code=403,
                )
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Headers:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


# ---------------------------------------------------------------------------------------------
# Mounting
# ---------------------------------------------------------------------------------------------


def mount_ui(app: FastAPI, pipeline: Pipeline | None = None) -> FastAPI:
    """Add login, media and both Gradio apps to the FastAPI app built by `inspection.api.app.create_app`."""
    pipe: Pipeline = pipeline or app.state.pipeline
    ctx = UiContext.create(pipe)
    media = MediaCache(pipe)
    app.state.ui_context = ctx
    app.state.media = media
    app.include_router(web_router(ctx, media))
    app.add_middleware(PageGuard, ctx=ctx)

    def allowed(permission: Permission) -> Any:
        def dependency(request: Request) -> str | None:
            user = ctx.sessions.user(cookie_from(request))
            return user.name if user is not None and user.can(permission) else None

        return dependency

    common: dict[str, Any] = {
        "footer_links": [],
        "ssr_mode": False,
        "show_error": True,
        "theme": theme(),
        "css": CSS,
        "run_history": False,
    }
    gr.mount_gradio_app(
        app,
        build_review_app(ctx, media),
        path=REVIEW_PATH,
        auth_dependency=allowed(Permission.REVIEW),
        **common,
    )
    gr.mount_gradio_app(
        app,
        build_engineer_app(ctx),
        path=ENGINEER_PATH,
        auth_dependency=allowed(Permission.ENGINEER),
        **common,
    )
    return app


def create_web_app(settings: Settings, *, scorer_factory: ScorerFactory | None = None) -> FastAPI:
    """The whole server: HTTP API (stations), user API (people), login, both UI apps."""
    from inspection.api import users as api_users
    from inspection.api.app import create_app

    app = create_app(settings, scorer_factory=scorer_factory)
    api_users.install(app)
    mount_ui(app)
    return app
