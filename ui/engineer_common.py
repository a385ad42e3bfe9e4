"""What the engineer tabs share: the handler error wrapper, the station list and its dropdowns."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import gradio as gr

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
                raise gr.Error(str(exc)) from None
            except Exception:
                log.exception("%s: %s failed", where, getattr(fn, "__name__", "handler"))
                raise gr.Error(internal) from None

        return wrapper

    return decorate


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
