"""What every UI tab receives: the pipeline, the settings, and server-side identity/role checks.

Tabs of the engineer screen are plain functions `build(ctx: UiContext) -> None`, called inside a
`with gr.Tab(...)` block. Each event handler that changes anything must check the role itself:

    def on_save(..., request: gr.Request) -> ...:
        user = ctx.require(request, Permission.ENGINEER)   # raises gr.Error for others
        ...

Hiding a tab is a convenience; the check in the handler is the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import gradio as gr

from inspection.config import Settings
from inspection.services.accounts import COOKIE_NAME, AuthError, Permission, Sessions, User, require
from inspection.services.context import Pipeline

__all__ = ["Permission", "UiContext", "User", "cookie_from"]


def cookie_from(request: Any) -> str | None:
    """The session cookie of a gr.Request or a starlette Request (None when absent)."""
    if request is None:
        return None
    cookies = getattr(request, "cookies", None)
    if isinstance(cookies, dict) and COOKIE_NAME in cookies:
        return str(cookies[COOKIE_NAME])
    headers = getattr(request, "headers", None) or {}
    raw = headers.get("cookie") if hasattr(headers, "get") else None
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


@dataclass(frozen=True)
class UiContext:
    """Built once at start-up and shared by every session of the UI."""

    pipeline: Pipeline
    settings: Settings
    sessions: Sessions

    @classmethod
    def create(cls, pipeline: Pipeline) -> UiContext:
        return cls(pipeline=pipeline, settings=pipeline.settings, sessions=Sessions(pipeline))

    def user(self, request: gr.Request | None) -> User | None:
        """The logged-in user of this request (role read from the database), or None."""
        return self.sessions.user(cookie_from(request))

    def require(self, request: gr.Request | None, permission: Permission = Permission.ENGINEER) -> User:
        """The user when allowed; raises gr.Error (shown as a message) otherwise. Call it first in
        every handler that reads engineer data or changes anything."""
        try:
            return require(self.user(request), permission)
        except AuthError as exc:
            raise gr.Error(str(exc)) from None
