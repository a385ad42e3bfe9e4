"""The web UI: two Gradio apps mounted on the FastAPI app, behind one login.

    /review                  inspector review screen (every role)
    /engineer                policy, reports, history, models, export (engineer and admin only)
    /login, /logout, /media  the plain pages around them (`ui.pages`)

`inspection.api.app.create_web_app` builds the API and calls `mount_ui` here; this package never
imports the API. Access is enforced on the server three times over: the page redirect
(`ui.pages.PageGuard`), Gradio's `auth_dependency` on every route of each mounted app (config, queue,
component server …), and the role check inside every handler.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import gradio as gr
from fastapi import FastAPI, Request

from inspection.services.accounts import Permission
from inspection.services.context import Pipeline
from ui import engineer, pages, review
from ui.assets import CSS
from ui.context import UiContext, cookie_from
from ui.media import MediaCache
from ui.pages import ENGINEER_PATH, REVIEW_PATH


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
            f"<b>{html.escape(user.name)}</b> ({user.role.value})</span>" + "".join(links) + "</div>"
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
# Mounting
# ---------------------------------------------------------------------------------------------


def _allowed(ctx: UiContext, permission: Permission) -> Callable[[Request], str | None]:
    """Gradio's auth_dependency: the user's name when they hold `permission`, else None (refused)."""

    def dependency(request: Request) -> str | None:
        user = ctx.sessions.user(cookie_from(request))
        return user.name if user is not None and user.can(permission) else None

    return dependency


def mount_ui(app: FastAPI, pipeline: Pipeline) -> FastAPI:
    """Add the login pages, the media route and both Gradio apps to an API app (called by
    `inspection.api.app.create_web_app`)."""
    ctx = UiContext.create(pipeline)
    media = MediaCache(pipeline)
    app.state.ui_context = ctx
    app.state.media = media
    app.include_router(pages.router)
    app.add_middleware(pages.PageGuard, ctx=ctx)
    screens = (
        (REVIEW_PATH, build_review_app(ctx, media), Permission.REVIEW),
        (ENGINEER_PATH, build_engineer_app(ctx), Permission.ENGINEER),
    )
    for path, blocks, permission in screens:
        gr.mount_gradio_app(
            app,
            blocks,
            path=path,
            auth_dependency=_allowed(ctx, permission),
            footer_links=[],
            ssr_mode=False,
            show_error=True,
            theme=theme(),
            css=CSS,
            run_history=False,
        )
    return app
