"""The plain pages around the Gradio screens: login and logout, the review screen's display images,
and the guard that sends browsers without a session to the login page.

    /login, /logout          plain HTML login (throttled argon2 check → server-side session cookie)
    /media/review/<id>[.crop|.thumb][.overlay].jpg   display images for the review screen (logged-in users)

The routes read the `UiContext` and the media cache from `app.state`, where
`ui.app.mount_ui` puts them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from inspection.services.accounts import COOKIE_NAME, Permission, User, attempt_login, cookie_options
from inspection.services.throttle import TooManyAttempts
from ui import review
from ui.assets import LOGIN_PAGE
from ui.context import UiContext, cookie_from
from ui.media import MediaCache, MediaError

REVIEW_PATH = "/review"
ENGINEER_PATH = "/engineer"
PAGES = {REVIEW_PATH: Permission.REVIEW, ENGINEER_PATH: Permission.ENGINEER}
_SAFE_NEXT = re.compile(r"^/(review|engineer)/?$")
_MEDIA_NAME = re.compile(r"(\d{1,12})(?:\.(crop|thumb))?(\.overlay)?\.jpg")  # no view part: the whole frame


@dataclass(frozen=True)
class _Ui:
    ctx: UiContext
    media: MediaCache


def _ui(request: Request) -> _Ui:
    state = request.app.state
    return _Ui(state.ui_context, state.media)


UiDep = Annotated[_Ui, Depends(_ui)]


def _visitor(request: Request, ui: UiDep) -> User | None:
    return ui.ctx.sessions.user(cookie_from(request))


Visitor = Annotated[User | None, Depends(_visitor)]

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None, user: User | None = None) -> str:
    if value and _SAFE_NEXT.match(value):
        return value if value.endswith("/") else value + "/"
    if user is not None and user.can(Permission.ENGINEER):
        return ENGINEER_PATH + "/"
    return REVIEW_PATH + "/"


def _login_page(error: str = "", nxt: str = "", status: int = 200) -> HTMLResponse:
    err = f'<p class="err" role="alert">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(LOGIN_PAGE.format(error=err, next=html.escape(nxt)), status_code=status)


@router.get("/")
def root(user: Visitor) -> RedirectResponse:
    return RedirectResponse("/login" if user is None else _safe_next(None, user), status_code=303)


@router.get("/login")
def get_login(user: Visitor, next: str = "") -> Response:  # noqa: A002 - query name
    if user is not None:
        return RedirectResponse(_safe_next(next, user), status_code=303)
    return _login_page(nxt=next)


@router.post("/login")
def post_login(
    request: Request,
    ui: UiDep,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",  # noqa: A002 - form field name
) -> Response:
    pipeline, sessions = ui.ctx.pipeline, ui.ctx.sessions
    address = request.client.host if request.client is not None else None
    try:
        user = attempt_login(pipeline, name=name, password=password, address=address)
    except TooManyAttempts as exc:
        page = _login_page(f"Too many failed attempts: {exc}", next, status=429)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if user is None:
        return _login_page("Wrong user name or password.", next, status=401)
    resp = RedirectResponse(_safe_next(next, user), status_code=303)
    options = cookie_options(
        pipeline, scheme=request.url.scheme, forwarded_proto=request.headers.get("x-forwarded-proto")
    )
    resp.set_cookie(COOKIE_NAME, sessions.issue(user), max_age=sessions.seconds, **options)
    return resp


@router.get("/logout")
@router.post("/logout")
def logout(request: Request, ui: UiDep) -> RedirectResponse:
    """Ends the session on the server (every tab, device copy and process), then the cookie."""
    ui.ctx.sessions.end(cookie_from(request))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE_NAME, path="/")
    return resp


@router.get(review.MEDIA_PREFIX + "/{name}")
def media_file(name: str, user: Visitor, ui: UiDep) -> Response:
    if user is None or not user.can(Permission.REVIEW):
        return Response("please log in", status_code=401, media_type="text/plain")
    m = _MEDIA_NAME.fullmatch(name)
    if m is None:
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        data = ui.media.get(int(m.group(1)), overlay=bool(m.group(3)), view=m.group(2) or "frame")
    except MediaError as exc:
        return Response(str(exc), status_code=404, media_type="text/plain")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


class PageGuard:
    """Browsers asking for a UI page without a session go to /login; without the role, get a 403
    page. (The Gradio apps refuse their API routes on their own; this only makes pages friendly.)"""

    def __init__(self, app: ASGIApp, ctx: UiContext) -> None:
        self.app = app
        self.ctx = ctx

    def _refusal(self, request: Request, page: str) -> Response | None:
        user = self.ctx.sessions.user(cookie_from(request))
        if user is None:
            return RedirectResponse(f"/login?next={quote(page + '/')}", status_code=303)
        if not user.can(PAGES[page]):
            return HTMLResponse(
                f"<h1>Not allowed</h1><p>{html.escape(user.name)} ({user.role.value}) may not open this "
                f'screen.</p><p><a href="{REVIEW_PATH}/">Back to the review screen</a></p>',
                status_code=403,
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        page = str(scope.get("path", "")).rstrip("/") if scope["type"] == "http" else ""
        if page in PAGES and scope.get("method") == "GET":
            response = self._refusal(Request(scope), page)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
