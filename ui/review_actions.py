"""Server side of the review screen: each method is one use case plus formatting (ui.review wires them
to the page)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

from inspection.services import defect_book, errors, review
from inspection.services.accounts import Permission, User
from inspection.services.review import ReviewTask
from ui.context import UiContext
from ui.media import MediaCache, MediaError

MEDIA_PREFIX = "/media/review"
PREFETCH = 2  # next items whose images the page pre-loads (plain and highlighted)


def image_url(inspection_id: int, *, overlay: bool = False, view: str = "crop") -> str:
    """/media/review/<id>[.crop|.thumb][.overlay].jpg (no view part: the whole frame)."""
    part = "" if view == "frame" else f".{view}"
    return f"{MEDIA_PREFIX}/{inspection_id}{part}{'.overlay' if overlay else ''}.jpg"


@dataclass
class Reply:
    """What the page gets back from one action."""

    item: dict[str, Any] | None
    stats: dict[str, int]
    message: str = ""
    error: str | None = None
    prefetch: tuple[str, ...] = ()
    # The item the next label or skip will most likely bring (the head of the inspector's open queue):
    # the page shows its pre-loaded image at the key press and the server's answer confirms or corrects it.
    upcoming: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "stats": self.stats,
            "message": self.message,
            "error": self.error,
            "prefetch": list(self.prefetch),
            "upcoming": self.upcoming,
        }


def task_view(task: ReviewTask, *, note: str = "") -> dict[str, Any]:
    """The item as the page sees it. For blind items nothing about the model is included."""
    iid = task.inspection_id
    item: dict[str, Any] = {
        "id": iid,
        "station": task.station,
        "received": task.received_at.strftime("%Y-%m-%d %H:%M:%S"),
        "image": image_url(iid),
        "frame": image_url(iid, view="frame"),
        "blind": not task.show_model,
        "problem": task.error,
        "note": note,
        "highlight": False,
    }
    if task.show_model:
        item.update(
            overlay=image_url(iid, overlay=True),
            frame_overlay=image_url(iid, overlay=True, view="frame"),
            score=None if task.score is None else round(float(task.score), 4),
            model=task.model_version,
            regions=[{"n": n, "score": round(float(r.score), 3)} for n, r in enumerate(task.regions[:9], start=1)],
            highlight=task.highlight,
        )
    return item


class ReviewActions:
    """The review screen's use cases for one inspector at a time (stateless: safe across threads)."""

    def __init__(self, ctx: UiContext, media: MediaCache) -> None:
        self.ctx = ctx
        self.media = media

    def stats(self, inspector: str) -> dict[str, int]:
        s = review.inspector_stats(self.ctx.pipeline, inspector=inspector)
        # "queue" is what this inspector would get next: 0 exactly when the screen says "Queue empty".
        return {"queue": s.for_me, "skipped": s.skipped, "waiting": s.queue, "today": s.labelled_today,
                "hour": s.last_hour}  # fmt: skip

    def _render(self, task: ReviewTask) -> tuple[str, list[str]]:
        """Render what the page shows first now (so it is ready), the item's other views in the
        background; (a note on the crop, the item's other URLs to pre-load)."""
        iid, first_overlay = task.inspection_id, task.show_model and task.highlight
        with contextlib.suppress(MediaError):
            self.media.get(iid, overlay=first_overlay, view="crop")
        urls = [image_url(iid, view="frame")]
        variants = [("crop", not first_overlay), ("frame", False)]
        if task.show_model:
            variants.append(("frame", True))
            urls += [image_url(iid, overlay=not first_overlay), image_url(iid, overlay=True, view="frame")]
        for view, overlay in variants:
            if overlay and not task.show_model:
                continue
            self.media.prerender(iid, overlay=overlay, view=view)
        note = ""
        with contextlib.suppress(MediaError):
            crop = self.media.crop(iid)
            note = "" if crop.found else crop.note
        return note, urls

    def _reply(self, inspector: str, task: ReviewTask | None, message: str = "", error: str | None = None) -> Reply:
        # The next items' crops, plain and highlighted, go to the render pool first: they are what the
        # next key press needs (the current item's other views can wait for their own key).
        upcoming: list[str] = []
        guess: dict[str, Any] | None = None
        for nxt, show_model in review.peek_open(self.ctx.pipeline, inspector=inspector, limit=PREFETCH):
            self.media.prerender(nxt, overlay=False, view="crop")
            upcoming.append(image_url(nxt))
            if show_model:  # both versions of the next items: the highlight costs no wait either
                self.media.prerender(nxt, overlay=True, view="crop")
                upcoming.append(image_url(nxt, overlay=True))
            if guess is None:  # a blind item gets no overlay URL, so the page cannot show one early
                overlay = image_url(nxt, overlay=True) if show_model else None
                guess = {"id": nxt, "image": image_url(nxt), "overlay": overlay}
        item: dict[str, Any] | None = None
        others: list[str] = []
        if task is not None:
            note, others = self._render(task)
            item = task_view(task, note=note)
        return Reply(item, self.stats(inspector), message, error, tuple(upcoming + others), guess)

    def _next(self, inspector: str) -> ReviewTask | None:
        return review.claim_next(self.ctx.pipeline, inspector=inspector)

    def _marks(self, inspection_id: int, raw: Any) -> list[dict[str, Any]]:
        """Marks drawn on a view's pixels -> frame pixels (the service validates them)."""
        if not isinstance(raw, list) or not raw:
            return []
        if len(raw) > 50:
            raise errors.InputError("too many marks")
        out = []
        for m in raw:
            if not isinstance(m, dict) or not isinstance(m.get("points"), list):
                raise errors.InputError("a mark needs points")
            view = str(m.get("view") or "crop")
            try:
                pts = [(float(p[0]), float(p[1])) for p in m["points"][:500]]
                frame_pts = self.media.to_frame(inspection_id, view, pts)
            except (TypeError, ValueError, IndexError, MediaError) as exc:
                raise errors.InputError(f"a mark could not be read: {exc}") from None
            width = float(m.get("width") or 0.0)
            scale = self.media.view_scale(inspection_id, view)
            out.append({"kind": m.get("kind"), "points": frame_pts,
                        "width": width / scale if math.isfinite(width) else 0.0})  # fmt: skip
        return out

    def act(
        self, inspector: str, action: str, inspection_id: int | None, payload: dict[str, Any] | None = None
    ) -> Reply:
        app, payload = self.ctx.pipeline, payload or {}
        if action in ("ok", "scratch", "skip") and inspection_id is None:
            return self._reply(inspector, self._next(inspector), error="no item on screen")
        if action in ("ok", "scratch"):
            assert inspection_id is not None
            marks = self._marks(inspection_id, payload.get("marks"))
            out = review.submit_label(app, inspection_id=inspection_id, inspector=inspector, label=action,
                                      note=str(payload.get("note") or "") or None, marks=marks)  # fmt: skip
            done = f"#{inspection_id} labelled {out.label.value.upper()}"
            done += f" with {len(marks)} mark(s)" if marks else ""
            return self._reply(inspector, self._next(inspector), done)
        if action == "skip":
            assert inspection_id is not None
            reason = str(payload.get("reason") or "") or None
            review.skip(app, inspection_id=inspection_id, inspector=inspector, reason=reason)
            why = f" ({review.SKIP_REASONS.get(reason, reason)})" if reason else ""
            return self._reply(inspector, self._next(inspector), f"#{inspection_id} skipped{why}")
        if action == "undo":
            undone = review.undo(app, inspector=inspector)
            msg = (f"Undone: #{undone.task.inspection_id} was labelled {undone.label.upper()} "
                   f"at {undone.labelled_at.strftime('%H:%M:%S')}; label it again")  # fmt: skip
            return self._reply(inspector, undone.task, msg)
        if action == "next":
            return self._reply(inspector, self._next(inspector))
        raise errors.InputError(f"unknown action {action!r}")

    def book(self, user: User) -> dict[str, Any]:
        classes = [
            {
                "key": key,
                "title": defect_book.CLASSES[key],
                "entries": [
                    {"id": e.id, "item": e.inspection_id, "caption": e.caption, "by": e.added_by,
                     "thumb": image_url(e.inspection_id, view="thumb")}  # fmt: skip
                    for e in entries
                ],
            }
            for key, entries in defect_book.book(self.ctx.pipeline).items()
        ]
        return {"classes": classes, "engineer": user.can(Permission.ENGINEER)}
