"""The inspector's review screen: one large image, one key per action, auto-advance.

The screen is a single `gr.HTML` component whose script talks to one server function, `act`, over
Gradio's component-server route (one small HTTP round trip, no queue). Each call carries the id of
the item on screen, so a label can only ever land on the item the inspector saw. The server renders
the display JPEG of the returned item before answering and pre-renders the likely next items in the
background; the page pre-loads those images, so the next image is usually on screen within one
round trip of the key press.

Blind items (shadow, human_only, audit, fail-safe) carry no model information at all: no score, no
overlay URL, and the media route refuses their overlay.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from inspection.services import errors, review
from inspection.services.accounts import AuthError, Permission, require
from inspection.services.review import ReviewTask
from ui.assets import SCRIPT, SKELETON
from ui.context import UiContext
from ui.media import MediaCache, MediaError

log = logging.getLogger(__name__)

MEDIA_PREFIX = "/media/review"

KEYS: dict[str, str] = {"o": "ok", "x": "scratch", "s": "skip", "u": "undo", "h": "overlay"}


def image_url(inspection_id: int, *, overlay: bool = False) -> str:
    return f"{MEDIA_PREFIX}/{inspection_id}{'.overlay' if overlay else ''}.jpg"


@dataclass
class Reply:
    """What the page gets back from one action."""

    item: dict[str, Any] | None
    stats: dict[str, int]
    message: str = ""
    error: str | None = None
    prefetch: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "stats": self.stats,
            "message": self.message,
            "error": self.error,
            "prefetch": list(self.prefetch),
        }


def task_view(task: ReviewTask) -> dict[str, Any]:
    """The item as the page sees it. For blind items nothing about the model is included."""
    item: dict[str, Any] = {
        "id": task.inspection_id,
        "station": task.station,
        "received": task.received_at.strftime("%Y-%m-%d %H:%M:%S"),
        "image": image_url(task.inspection_id),
        "blind": not task.show_model,
        "problem": task.error,
    }
    if task.show_model:
        item.update(
            overlay=image_url(task.inspection_id, overlay=True),
            score=None if task.score is None else round(float(task.score), 4),
            model=task.model_version,
            regions=len(task.regions),
        )
    return item


class ReviewActions:
    """Server side of the review screen: each method is one use case plus formatting."""

    def __init__(self, ctx: UiContext, media: MediaCache) -> None:
        self.ctx = ctx
        self.media = media

    def _stats(self, inspector: str) -> dict[str, int]:
        s = review.inspector_stats(self.ctx.pipeline, inspector=inspector)
        return {"queue": s.queue, "today": s.labelled_today, "hour": s.last_hour}

    def _reply(self, inspector: str, task: ReviewTask | None, message: str = "", error: str | None = None) -> Reply:
        prefetch: list[str] = []
        if task is not None:
            # The item on screen must be ready now; its overlay and the next items in the background.
            with contextlib.suppress(MediaError):
                self.media.get(task.inspection_id, overlay=False)
            if task.show_model:
                self.media.prerender(task.inspection_id, overlay=True)
        for nxt in review.peek_queue(self.ctx.pipeline, inspector=inspector, limit=2):
            self.media.prerender(nxt, overlay=False)
            prefetch.append(image_url(nxt))
        item = task_view(task) if task is not None else None
        return Reply(item, self._stats(inspector), message, error, tuple(prefetch))

    def _next(self, inspector: str) -> ReviewTask | None:
        return review.claim_next(self.ctx.pipeline, inspector=inspector)

    def act(self, inspector: str, action: str, inspection_id: int | None) -> Reply:
        app = self.ctx.pipeline
        if action in ("ok", "scratch"):
            if inspection_id is None:
                return self._reply(inspector, self._next(inspector), error="no item on screen")
            out = review.submit_label(app, inspection_id=inspection_id, inspector=inspector, label=action)
            msg = f"#{inspection_id} labelled {out.label.value.upper()}"
            return self._reply(inspector, self._next(inspector), msg)
        if action == "skip":
            if inspection_id is None:
                return self._reply(inspector, self._next(inspector), error="no item on screen")
            review.skip(app, inspection_id=inspection_id, inspector=inspector)
            return self._reply(inspector, self._next(inspector), f"#{inspection_id} skipped")
        if action == "undo":
            task = review.undo_last(app, inspector=inspector)
            return self._reply(inspector, task, f"label of #{task.inspection_id} withdrawn: label it again")
        if action == "next":
            return self._reply(inspector, self._next(inspector))
        raise errors.InputError(f"unknown action {action!r}")


def _problem(exc: Exception) -> str | None:
    """A message a person can act on for expected errors; None for bugs."""
    if isinstance(exc, AuthError | errors.QueueConflict | errors.NotFound | errors.InputError):
        return str(exc)
    return None


def build(ctx: UiContext, media: MediaCache) -> gr.HTML:
    """The review component (call inside a Blocks context)."""
    actions = ReviewActions(ctx, media)

    def act(data: Any, request: gr.Request) -> dict[str, Any]:
        """One key press: {"action": "ok"|"scratch"|"skip"|"undo"|"next", "id": int|None}."""
        try:
            user = require(ctx.user(request), Permission.REVIEW)
        except AuthError as exc:
            return Reply(None, {}, error=str(exc)).to_dict()
        payload = data if isinstance(data, dict) else {}
        action = str(payload.get("action") or "next")
        raw_id = payload.get("id")
        inspection_id = int(raw_id) if isinstance(raw_id, int | float | str) and str(raw_id).isdigit() else None
        try:
            return actions.act(user.name, action, inspection_id).to_dict()
        except Exception as exc:
            message = _problem(exc)
            if message is None:
                log.exception("review action %s on %s failed", action, inspection_id)
                message = "internal error: nothing was stored; try again or tell an engineer"
            # Stay on the same item: show the problem, never silently move on.
            current = None
            if inspection_id is not None and action not in ("undo", "next"):
                current = {"keep": True}
            try:
                stats = actions._stats(user.name)
            except Exception:
                stats = {}
            return {"item": current, "stats": stats, "message": "", "error": message, "prefetch": []}

    return gr.HTML(
        value=SKELETON,
        js_on_load=SCRIPT,
        server_functions=[act],
        elem_id="review-screen",
        apply_default_css=False,
    )
