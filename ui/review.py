"""The inspector's review screen: the phone, not the table; one key per action, auto-advance.

The screen is a single `gr.HTML` component whose script talks to server functions (`act`, `book`,
`book_add`) over Gradio's component-server route (one small HTTP round trip, no queue). Each call
carries the id of the item on screen, so a label can only ever land on the item the inspector saw.

What is shown first is the straightened phone crop at full resolution (ui.media); the whole frame is one
key away (F). The server renders the item's display image before answering and pre-renders the other
views and the likely next items in the background; the page pre-loads them all, plain and highlighted,
so the next image is on screen within one round trip of the key press whether the highlight is on or off.

Blind items (shadow, human_only, audit, fail-safe) carry no model information at all: no score, no
overlay URL, and the media route refuses their overlay.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import gradio as gr

from inspection.services import defect_book, errors
from inspection.services.accounts import AuthError, Permission, require
from ui.context import UiContext
from ui.media import MediaCache
from ui.review_actions import MEDIA_PREFIX, Reply, ReviewActions, image_url, task_view
from ui.review_assets import SCRIPT, SKELETON

log = logging.getLogger(__name__)

__all__ = ["MEDIA_PREFIX", "Reply", "ReviewActions", "build", "image_url", "task_view"]


def _problem(exc: Exception) -> str | None:
    """A message a person can act on for expected errors; None for bugs."""
    if isinstance(exc, AuthError | errors.QueueConflict | errors.NotFound | errors.InputError):
        return str(exc)
    return None


def _item_id(raw: Any) -> int | None:
    return int(raw) if isinstance(raw, int | float | str) and str(raw).isdigit() else None


def build(ctx: UiContext, media: MediaCache) -> gr.HTML:
    """The review component (call inside a Blocks context)."""
    actions = ReviewActions(ctx, media)

    def act(data: Any, request: gr.Request) -> dict[str, Any]:
        """One key press: {"action": "ok"|"scratch"|"skip"|"undo"|"next", "id": int|None,
        "reason": skip reason, "note": str, "marks": [{"kind", "points", "view", "width"}]}."""
        try:
            user = require(ctx.user(request), Permission.REVIEW)
        except AuthError as exc:
            return Reply(None, {}, error=str(exc)).to_dict()
        payload = data if isinstance(data, dict) else {}
        action = str(payload.get("action") or "next")
        inspection_id = _item_id(payload.get("id"))
        try:
            return actions.act(user.name, action, inspection_id, payload).to_dict()
        except Exception as exc:
            message = _problem(exc)
            if message is None:
                log.exception("review action %s on %s failed", action, inspection_id)
                message = "internal error: nothing was stored; try again or tell an engineer"
            # Stay on the same item: show the problem, never silently move on.
            current = {"keep": True} if inspection_id is not None and action not in ("undo", "next") else None
            stats: dict[str, int] = {}
            with contextlib.suppress(Exception):
                stats = actions.stats(user.name)
            return {"item": current, "stats": stats, "message": "", "error": message, "prefetch": []}

    def book(data: Any, request: gr.Request) -> dict[str, Any]:
        """The defect book: every class with its reference images; whether this user may add to it."""
        try:
            user = require(ctx.user(request), Permission.REVIEW)
            return actions.book(user)
        except Exception as exc:
            return {"classes": [], "engineer": False, "error": _problem(exc) or "the defect book could not be read"}

    def book_add(data: Any, request: gr.Request) -> dict[str, Any]:
        """Engineers: {"item": id, "class": key, "caption": text} files a stored item in the book."""
        payload = data if isinstance(data, dict) else {}
        try:
            user = require(ctx.user(request), Permission.ENGINEER)
            entry = defect_book.add_entry(
                ctx.pipeline,
                user=user,
                inspection_id=_item_id(payload.get("item")) or 0,
                defect_class=str(payload.get("class") or ""),
                caption=str(payload.get("caption") or ""),
            )
            title = defect_book.CLASSES[entry.defect_class]
            return {"message": f"#{entry.inspection_id} added to the defect book under {title}"}
        except Exception as exc:
            message = _problem(exc)
            if message is None:
                log.exception("defect book add failed")
                message = "internal error: nothing was stored"
            return {"error": message}

    return gr.HTML(
        value=SKELETON,
        js_on_load=SCRIPT,
        server_functions=[act, book, book_add],
        elem_id="review-screen",
        apply_default_css=False,
    )
