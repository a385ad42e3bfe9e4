"""Engineer screen, "Tokens" tab: the stations' API tokens (never the tokens themselves: their first
characters), when each was created and last used, and revocation with a confirmation step. The
handlers check the engineer role on the server first; the tab refreshes itself while shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import gradio as gr

from inspection.services import errors, tokens
from ui.context import Permission, UiContext
from ui.engineer_common import auto_refresh, dialog_style, expected_error, status_html

TOKEN_HEADERS = ["id", "station", "token starts", "created", "by", "last used", "state"]
EXPECTED: tuple[type[Exception], ...] = (errors.NotFound, errors.InputError)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def token_rows(infos: list[tokens.TokenInfo]) -> list[list[Any]]:
    return [
        [
            t.id,
            t.station,
            f"{t.prefix}…",
            _when(t.created_at),
            t.created_by or "",
            _when(t.last_used),
            "active" if t.active else f"revoked {_when(t.revoked_at)}",
        ]
        for t in infos
    ]


def build(ctx: UiContext) -> None:
    """The Tokens tab (call inside a Tab)."""
    app = ctx.pipeline
    dialog_style()
    gr.Markdown(
        "API tokens let camera stations send images. Create one with `inspection tokens create --station NAME` "
        "(it is shown once). *Last used* is the station's latest item received while the token was valid."
    )
    table = gr.Dataframe(headers=TOKEN_HEADERS, interactive=False, wrap=True, elem_id="tokens-table")
    with gr.Row():
        pick = gr.Dropdown(choices=[], label="Token to revoke", elem_id="tokens-pick")
        reason = gr.Textbox(label="Reason (stored with the revocation)", elem_id="tokens-reason", scale=2)
        revoke = gr.Button("Revoke…", variant="stop", elem_id="tokens-revoke")
        refresh_btn = gr.Button("Refresh", elem_id="tokens-refresh")
    status = gr.HTML(elem_id="tokens-status")
    with gr.Group(visible=False, elem_id="tokens-confirm", elem_classes=["eng-dialog"]) as box:
        text = gr.Markdown(elem_id="tokens-confirm-text")
        with gr.Row():
            yes = gr.Button("Confirm revocation", variant="stop", elem_id="tokens-confirm-yes")
            no = gr.Button("Cancel", elem_id="tokens-confirm-no")

    pending = gr.State(None)  # the token id awaiting confirmation

    def snapshot() -> tuple[Any, Any]:
        infos = tokens.list_tokens(app)
        live = [(f"{t.id}: {t.station} ({t.prefix}…)", t.id) for t in infos if t.active]
        return token_rows(infos), gr.update(choices=live)

    def refresh(request: gr.Request) -> tuple[Any, Any]:
        ctx.require(request, Permission.ENGINEER)
        return snapshot()

    def ask(token_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        info = next((t for t in tokens.list_tokens(app) if t.id == token_id), None)
        if info is None or not info.active:
            return gr.update(visible=False), "", None, status_html("Pick an active token first.", kind="error")
        msg = (
            f"### Revoke token {info.id} of station {info.station} ({info.prefix}…)?\n\n"
            f"Last used {_when(info.last_used)}. The station's next request with it is refused."
        )
        return gr.update(visible=True), msg, info.id, status_html("Not revoked yet: Confirm or Cancel.", kind="warn")

    def confirm(token_id: int | None, why: str, request: gr.Request) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        try:
            info = tokens.revoke_token(app, token_id=int(token_id or 0), by=user.name, reason=why)
        except Exception as exc:
            msg = expected_error(exc, where="tokens revoke", expected=EXPECTED)
            return gr.update(), gr.update(), gr.update(visible=False), status_html(msg, kind="error"), gr.update()
        done = status_html(f"Revoked token {info.id} of station {info.station}.")
        rows, _choices = snapshot()
        live = [(f"{t.id}: {t.station} ({t.prefix}…)", t.id) for t in tokens.list_tokens(app) if t.active]
        return rows, gr.update(choices=live, value=None), gr.update(visible=False), done, ""

    refresh_btn.click(refresh, None, [table, pick])
    root = gr.context.Context.root_block
    if root is not None:
        root.load(refresh, None, [table, pick], show_progress="hidden")
    auto_refresh(refresh, [], [table, pick])
    revoke.click(ask, [pick], [box, text, pending, status])
    yes.click(confirm, [pending, reason], [table, pick, box, status, reason])
    no.click(lambda: (gr.update(visible=False), status_html("Cancelled.", kind="warn")), None, [box, status])
