"""What the engineer tabs share: the handler error wrapper, the status line, auto-refresh, image
galleries, the station list and its dropdowns."""

from __future__ import annotations

import functools
import html
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import cv2
import gradio as gr
import numpy as np

from inspection.core.domain import PolicyError
from inspection.services import errors, policies, review, validation
from inspection.services.context import Pipeline
from ui.context import Permission, UiContext

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ALL = "(all stations)"
INTERNAL = "internal error: nothing was changed; the server log has the details"


def handler_messages(
    *expected: type[Exception], where: str, internal: str = INTERNAL
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator for Gradio handlers: `expected` errors become their message (gr.Error), any other
    exception a short `internal` message (the trace goes to the server log, never to the page)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except expected as exc:
                raise gr.Error(web_text(exc)) from None
            except Exception:
                log.exception("%s: %s failed", where, getattr(fn, "__name__", "handler"))
                raise gr.Error(internal) from None

        return wrapper

    return decorate


def web_text(exc: BaseException) -> str:
    """An error's message in the screen's words (`DeployError.web`), else its text."""
    web = getattr(exc, "web", None)
    return web if isinstance(web, str) and web else str(exc)


def status_html(text: str, *, kind: str = "ok") -> str:
    """A status line (ok / warn / error) for a tab's own message area: errors are shown there, in
    place, instead of as Gradio error badges laid over the input fields."""
    colours = {"ok": ("#e8f4ea", "#1d5e2a"), "warn": ("#fdf1e7", "#7a4a10"), "error": ("#fbecea", "#9b1c1c")}
    bg, fg = colours.get(kind, colours["ok"])
    role = ' role="alert"' if kind == "error" else ""
    return (
        f'<div class="eng-status {kind}"{role} style="background:{bg};color:{fg};padding:8px 12px;'
        f'border-radius:8px;font-size:15px">{html.escape(text)}</div>'
    )


def expected_error(exc: Exception, *, where: str, expected: tuple[type[Exception], ...]) -> str:
    """The status text for an error raised by a handler: the message of an expected one, a short
    internal-error line (trace to the server log) otherwise."""
    if isinstance(exc, expected):
        return web_text(exc)
    log.error("%s failed", where, exc_info=exc)
    return INTERNAL


messages = handler_messages(
    PolicyError, errors.InputError, errors.NotFound, errors.QueueConflict, where="engineer screen"
)


def stations(app: Pipeline) -> list[str]:
    """Configured stations plus stations that have items in the queue."""
    names = {rec.policy.station for rec in policies.list_policies(app)}
    names.update(q.station for q in review.queue_depth(app))
    return sorted(names)


def pct(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:.{digits}f} %"


def station_dropdown(ctx: UiContext, label: str = "Station") -> gr.Dropdown:
    names = stations(ctx.pipeline)
    return gr.Dropdown(
        choices=names,
        value=names[0] if names else None,
        label=label,
        allow_custom_value=True,
        info="pick a station or type a new name",
        elem_id=f"{label.lower().replace(' ', '-')}-station",
    )


def all_stations_dropdown(ctx: UiContext, *, elem_id: str, custom: bool = False) -> gr.Dropdown:
    """A station filter whose first choice is every station."""
    return gr.Dropdown(
        [ALL, *stations(ctx.pipeline)], value=ALL, label="Station", elem_id=elem_id, allow_custom_value=custom
    )


def on_load(
    ctx: UiContext,
    station: gr.Dropdown,
    fn: Callable[..., Any],
    outputs: list[Any],
    *,
    then: tuple[Callable[..., Any], list[Any], list[Any]] | None = None,
) -> None:
    """Fill a tab when the page loads (the Blocks' load event)."""
    root = gr.context.Context.root_block
    if root is None:
        return
    refresh_choices(ctx, station, with_all=False)
    ev = root.load(fn, [station], outputs)
    if then is not None:
        ev.then(then[0], then[1], then[2], show_progress="hidden")


def refresh_choices(ctx: UiContext, dropdown: gr.Dropdown, *, with_all: bool) -> None:
    """New stations appear in the dropdown at the next page load."""
    root = gr.context.Context.root_block
    if root is None:
        return

    def choices(request: gr.Request) -> Any:
        ctx.require(request, Permission.ENGINEER)
        names = stations(ctx.pipeline)
        return gr.update(choices=[ALL, *names] if with_all else names)

    root.load(choices, None, [dropdown], show_progress="hidden")


def wire_filter(
    ctx: UiContext,
    station: gr.Dropdown,
    refresh: gr.Button,
    run: Callable[..., Any],
    inputs: list[Any],
    outputs: list[Any],
) -> None:
    """A tab filtered by an all-stations dropdown: run on refresh, on change and at page load."""
    refresh.click(run, inputs, outputs)
    station.change(run, inputs, outputs)
    refresh_choices(ctx, station, with_all=True)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(run, inputs, outputs)


def station_filter(name: str | None) -> str | None:
    """The station a filter dropdown names; None for every station."""
    return None if not name or name == ALL else validation.validate_station(name)


# Confirmation dialogs

DIALOG_CSS = """<style>
.eng-dialog { position: fixed !important; left: 50%; bottom: 24px; transform: translateX(-50%); z-index: 1000;
  width: min(760px, 94vw); max-height: 70vh; overflow: auto; background: #fff; border: 2px solid #d35400 !important;
  border-radius: 12px; box-shadow: 0 8px 32px rgba(0, 0, 0, .35); padding: 8px 12px; }
.eng-dialog .eng-dialog { position: static !important; transform: none; width: auto; max-height: none;
  border: 0 !important; box-shadow: none; padding: 0; }
</style>"""


def dialog_style() -> None:
    """The style that shows `elem_classes=["eng-dialog"]` groups as a dialog over the page (always in
    view at 1366x768, whatever the scroll position), until Confirm or Cancel hides it."""
    gr.HTML(DIALOG_CSS, visible=True, padding=False, elem_classes=["eng-dialog-style"])


# Auto-refresh

REFRESH_S = 10.0  # seconds between refreshes of the selected engineer tab


def auto_refresh(
    fn: Callable[..., Any],
    inputs: list[Any],
    outputs: list[Any],
    *,
    every: float = REFRESH_S,
    then: tuple[Callable[..., Any], list[Any], list[Any]] | None = None,
) -> None:
    """Run `fn` when the tab being built (the enclosing gr.Tab) is selected, and every `every`
    seconds while it stays selected: a gr.Timer that the parent Tabs' selection switches on for
    this tab and off for the others, so unseen tabs cost nothing. `then` runs after `fn`, reading
    its inputs only then (a figure computed from values the engineer changed meanwhile is never
    overwritten by one from older values). Call inside `with gr.Tab(...)`."""
    tab = gr.context.Context.block
    while tab is not None and not isinstance(tab, gr.Tab):
        tab = getattr(tab, "parent", None)
    parent = getattr(tab, "parent", None)
    first = isinstance(parent, gr.Tabs) and bool(parent.children) and parent.children[0] is tab
    timer = gr.Timer(every, active=first)
    events = [timer.tick(fn, inputs, outputs, show_progress="hidden")]
    if tab is not None:
        events.append(tab.select(fn, inputs, outputs, show_progress="hidden"))
    if then is not None:
        for ev in events:
            ev.then(then[0], then[1], then[2], show_progress="hidden")
    if tab is None:
        return
    if not isinstance(parent, gr.Tabs):
        tab.select(lambda: gr.Timer(active=True), None, [timer], show_progress="hidden")
        return
    label, tab_id = tab.label, tab.id

    def follow(evt: gr.SelectData) -> gr.Timer:
        return gr.Timer(active=evt.value == label or evt.index == tab_id)

    parent.select(follow, None, [timer], show_progress="hidden")


# Image galleries

THUMB_W = 360


def gallery_images(items: Sequence[tuple[Path | str, str]]) -> list[tuple[np.ndarray, str]]:
    """(image, caption) pairs for a gr.Gallery: downscaled RGB copies of the files that can be read,
    sent as data so the image folders are never exposed to Gradio's file server."""
    out = []
    for path, caption in items:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        if w > THUMB_W:
            img = cv2.resize(img, (THUMB_W, max(1, round(h * THUMB_W / w))), interpolation=cv2.INTER_AREA)
        out.append((cv2.cvtColor(img, cv2.COLOR_BGR2RGB), caption))
    return out
